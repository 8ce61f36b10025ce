from pathlib import Path

import pytest
import yaml

from le3d.errors import Le3dError
from le3d.train.config import PRESETS, TrainConfig, apply_overrides, load_config

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_yaml_matches_preset(name):
    data = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())
    assert data == PRESETS[name]
    assert load_config(name) == apply_overrides(TrainConfig(), PRESETS[name])


def test_unknown_key_is_an_error(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_text("base: demo_cpu\nnot_a_key: 1\n")
    with pytest.raises(Le3dError, match="not_a_key"):
        load_config(str(p))
    p.write_text("base: demo_cpu\niters: 7\n")
    c = load_config(str(p))
    assert c.iters == 7 and c.downscale == PRESETS["demo_cpu"]["downscale"]
