"""Domain presets: loading, YAML round trip, validation errors."""
import pytest

from hand_mesh_core.config.base import ConfigError
from hand_mesh_core.data.synth.config import (BackgroundConfig, DistractorConfig, DomainConfig,
                                              LightingConfig, PoseConfig, SkinToneConfig,
                                              load_domain)

PRESETS = ("source_studio", "target_lab")


@pytest.mark.parametrize("name", PRESETS)
def test_preset_yaml_round_trip(name, tmp_path):
    d = load_domain(name)
    assert d.name == name
    path = tmp_path / "d.yaml"
    d.to_yaml(path)
    assert DomainConfig.from_yaml(path) == d
    assert load_domain(str(path)) == d  # a path works like a preset name


def test_presets_differ_where_the_gap_is():
    src, tgt = load_domain("source_studio"), load_domain("target_lab")
    assert src.camera != tgt.camera
    assert src.skin.tones_rgb != tgt.skin.tones_rgb
    assert src.lighting.ambient[0] > tgt.lighting.ambient[1]
    assert tgt.distractors.forearm_prob > 0 and src.distractors.forearm_prob == 0
    assert set(src.background.kinds).isdisjoint({"clutter", "floral"})
    assert tgt.placement.depth_m == (0.3, 1.0)


def test_unknown_key_lists_valid_keys(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nlighting:\n  brightnes: 2\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['brightnes'\].*valid keys"):
        load_domain(path)


def test_unknown_preset_lists_presets():
    with pytest.raises(FileNotFoundError, match="source_studio"):
        load_domain("no_such_domain")


@pytest.mark.parametrize("cls, kwargs, message", [
    (PoseConfig, {"kinds": ("grasp", "dance"), "weights": (1.0, 1.0)}, "each must be one of"),
    (PoseConfig, {"kinds": (), "weights": ()}, "at least one"),
    (PoseConfig, {"kinds": ("grasp",), "weights": (1.0, 2.0)}, "has 2 values"),
    (PoseConfig, {"kinds": ("grasp",), "weights": (0.0,)}, "sum must be > 0"),
    (PoseConfig, {"kinds": ("named",), "weights": (1.0,)}, "must list named poses"),
    (PoseConfig, {"kinds": ("named",), "weights": (1.0,), "named": ("moonwalk",)},
     "each must be one of"),
    (LightingConfig, {"ambient": (0.5, 0.1)}, "min must be <= max"),
    (LightingConfig, {"light_rgb_min": (1.0, 1.0, 1.0), "light_rgb_max": (0.5, 1.0, 1.0)},
     "per channel"),
    (LightingConfig, {"light_angle_deg": (0.0, 120.0)}, "must be <= 90"),
    (SkinToneConfig, {"tones_rgb": ()}, "at least one colour"),
    (SkinToneConfig, {"tones_rgb": ((1.2, 0.5, 0.5),)}, r"\[0, 1\]"),
    (BackgroundConfig, {"kinds": ("plain",), "weights": (1.0,), "brightness": (0.9, 0.1)},
     "min must be <= max"),
    (BackgroundConfig, {"kinds": ("wallpaper",), "weights": (1.0,)}, "each must be one of"),
    (DistractorConfig, {"skin_patches": (3, 1)}, "min must be <= max"),
])
def test_validation_errors(cls, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        cls(**kwargs)


def test_camera_nests_and_validates():
    d = load_domain("target_lab")
    small = d.with_camera(d.camera.scaled(0.5))
    assert (small.camera.width, small.camera.height) == (320, 240)
    with pytest.raises(ConfigError, match="baseline_m"):
        DomainConfig.from_dict({"camera": {"baseline_m": -0.1}})
