"""Shipped presets load and resolve."""
import pytest

from hand_mesh_core.config.presets import list_presets, preset_path
from hand_mesh_core.geometry.camera import StereoCamera


def test_camera_presets_load():
    assert {"mynt_d1000_120", "stb_bumblebee"} <= set(list_presets("cameras"))
    stb = StereoCamera.from_yaml(preset_path("cameras", "stb_bumblebee"))
    assert (stb.fx, stb.cx, stb.cy) == (822.79041, 318.47345, 250.31296)
    assert stb.baseline_m == pytest.approx(0.120054)
    assert stb.size == (640, 480)
    mynt = StereoCamera.from_yaml(preset_path("cameras", "mynt_d1000_120"))
    assert mynt.size == (1280, 720) and mynt.baseline_m == pytest.approx(0.12)
    assert mynt.fx == pytest.approx(762.7)


def test_preset_path_accepts_explicit_file(tmp_path):
    f = tmp_path / "cam.yaml"
    StereoCamera(width=320, height=240).to_yaml(f)
    assert preset_path("cameras", f) == f
    assert StereoCamera.from_yaml(preset_path("cameras", str(f))).width == 320


def test_unknown_preset_lists_known():
    with pytest.raises(FileNotFoundError, match="stb_bumblebee"):
        preset_path("cameras", "no_such_camera")
