"""scripts/bench_quality.py: one call trains every config for every seed and summarises mean ± std."""
import importlib.util
import json
from pathlib import Path

from le3d.synth.generate import generate

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_quality.py"


def _load():
    spec = importlib.util.spec_from_file_location("bench_quality", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_summarise():
    bq = _load()
    assert bq.summarise([20.0, 22.0, 24.0]) == "22 ± 2"
    assert bq.summarise([0.5]) == "0.5"
    assert bq.summarise([None, None]) == "-"
    assert bq.summarise([19000, 19100]) == "19050 ± 71"
    assert bq.summarise([21.2, 21.5, 21.8]) == "21.5 ± 0.3"


def test_quick_matrix_over_two_seeds(tmp_path, capsys):
    bq = _load()
    scene = tmp_path / "scene"
    generate(scene, n_views=9, width=64, height=48, seed=1, progress=False)
    assert bq.main(["--scene", str(scene), "--work", str(tmp_path / "w"), "--quick", "--iters", "4",
                    "--seeds", "0", "1"]) == 0
    runs = json.loads((tmp_path / "w" / "bench_quality.json").read_text())
    assert set(runs) == {"demo_cpu", "rawgs_cpu"}
    assert [r["seed"] for r in runs["demo_cpu"]] == [0, 1]
    assert all(r["srgb_psnr"] > 0 and r["num_primitives"] > 0 for rs in runs.values() for r in rs)
    table = capsys.readouterr().out
    assert "| demo_cpu | 2 |" in table and "±" in table
