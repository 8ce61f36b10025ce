"""The public Python API, used only through documented names: runs the example of docs/api.md."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import run_fixture


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    return run_fixture.get_tiny_run(tmp_path_factory)

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def doc_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 1, "docs/api.md should hold exactly one python example"
    return blocks[0]


def test_docs_example_runs(tiny_run, capsys):
    code = doc_example()
    assert code.startswith('RUN = "RUN"')
    code = code.replace('RUN = "RUN"', f"RUN = {str(tiny_run)!r}", 1)
    ns: dict = {"__name__": "docs_api_example"}
    exec(compile(code, str(DOC), "exec"), ns)  # noqa: S102 - our own documentation
    out = capsys.readouterr().out
    assert "SH bake RMSE" in out and "PLY render vs le3d render" in out
    assert ns["stats"]["rmse"] < 0.01


def test_public_names_exist():
    import convex_splat
    import le3d
    from le3d.io import ply, splat

    assert callable(le3d.load_run) and callable(le3d.rasterize_gaussians)
    assert callable(convex_splat.rasterize_convexes)
    for name in ("load_ply", "save_ply", "render_cloud", "bake_run", "GaussianCloud"):
        assert hasattr(ply, name)
    assert hasattr(splat, "save_splat") and hasattr(splat, "load_splat")
