

import json
from pathlib import Path

import numpy as np
import pytest

from le3d.data import load_scene

FOX = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "fox"


@pytest.mark.skipif(not (FOX / "transforms.json").is_file(), reason="shared fox data not present")
def test_fox_transforms():
    meta = json.loads((FOX / "transforms.json").read_text())
    with pytest.warns(UserWarning, match="17 of 67 frames"):
        s = load_scene(FOX, downscale=8)
    assert len(s.train) + len(s.test) == 50 and len(s.test) == 7
    f = s.train[0]
    assert f.image.shape == (240, 135, 3) and s.kind == "ldr"
    assert f.camera.K[0, 0] == pytest.approx(meta["fl_x"] / 8, rel=1e-5)
    # OpenGL c2w -> OpenCV viewmat: the camera centre is the translation of transform_matrix
    fm = next(x for x in meta["frames"] if Path(x["file_path"]).name == Path(f.path).name)
    np.testing.assert_allclose(f.camera.center.numpy(), np.array(fm["transform_matrix"])[:3, 3], atol=1e-4)
    # OpenCV +z looks along -z of the OpenGL frame
    np.testing.assert_allclose(f.camera.viewmat[2, :3].numpy(), -np.array(fm["transform_matrix"])[:3, 2], atol=1e-5)
