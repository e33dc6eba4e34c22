"""StereoCamera: CameraInfo parsing, rectification checks, matrices."""
import numpy as np
import pytest
import torch

from hand_mesh_core.config.base import ConfigError
from hand_mesh_core.geometry.camera import RectificationError, StereoCamera


@pytest.fixture
def cam():
    return StereoCamera(fx=700.0, fy=701.0, cx=320.0, cy=240.0, baseline_m=0.1, width=640,
                        height=480)


def test_from_camera_info_round_trip(cam):
    got = StereoCamera.from_camera_info(cam.P("left").ravel(), cam.P("right").ravel(), cam.size,
                                        cam.size)
    assert got == cam


def test_from_camera_info_accepts_3x4_and_offset_left_tx(cam):
    pl, pr = cam.P("left"), cam.P("right")
    # Some drivers put a non-zero Tx in the left P too; the baseline is the difference.
    pl[0, 3] = -5.0
    pr[0, 3] += -5.0
    got = StereoCamera.from_camera_info(pl, pr, cam.size, cam.size)
    assert got.baseline_m == pytest.approx(cam.baseline_m)


@pytest.mark.parametrize("field, value, pattern", [
    ("fx", 710.0, "fx differs"),
    ("fy", 690.0, "fy differs"),
    ("cy", 250.0, "cy differs"),
])
def test_unrectified_pair_refused(cam, field, value, pattern):
    pr = cam.P("right")
    idx = {"fx": (0, 0), "fy": (1, 1), "cy": (1, 2)}[field]
    pr[idx] = value
    with pytest.raises(RectificationError, match=pattern):
        StereoCamera.from_camera_info(cam.P("left"), pr, cam.size, cam.size)


def test_vertical_offset_refused(cam):
    pr = cam.P("right")
    pr[1, 3] = 10.0
    with pytest.raises(RectificationError, match="vertical offset"):
        StereoCamera.from_camera_info(cam.P("left"), pr, cam.size, cam.size)


def test_size_mismatch_refused(cam):
    with pytest.raises(RectificationError, match="sizes differ"):
        StereoCamera.from_camera_info(cam.P("left"), cam.P("right"), (640, 480), (640, 360))


@pytest.mark.parametrize("tx, pattern", [(0.0, "baseline must be > 0"),
                                         (70.0, "left and right swapped")])
def test_bad_baseline_refused(cam, tx, pattern):
    pr = cam.P("right")
    pr[0, 3] = tx
    with pytest.raises(ValueError, match=pattern):
        StereoCamera.from_camera_info(cam.P("left"), pr, cam.size, cam.size)


def test_bad_matrix_values(cam):
    with pytest.raises(ValueError, match="12 values"):
        StereoCamera.from_camera_info(np.zeros(9), cam.P("right"), cam.size, cam.size)
    pl = cam.P("left")
    pl[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        StereoCamera.from_camera_info(pl, cam.P("right"), cam.size, cam.size)
    pl = cam.P("left")
    pl[0, 0] = 0.0
    with pytest.raises(ValueError, match="focal length must be > 0"):
        StereoCamera.from_camera_info(pl, cam.P("right"), cam.size, cam.size)


@pytest.mark.parametrize("changes, pattern", [
    ({"baseline_m": -0.12}, "baseline_m = -0.12: must be > 0"),
    ({"fx": 0.0}, "fx = 0.0: must be > 0"),
    ({"width": 0}, "width = 0: must be > 0"),
    ({"fy": float("nan")}, "finite"),
])
def test_config_validation(changes, pattern):
    with pytest.raises(ConfigError, match=pattern):
        StereoCamera.from_dict(changes)


def test_matrices(cam):
    assert np.allclose(cam.K, [[700, 0, 320], [0, 701, 240], [0, 0, 1]])
    assert cam.P("right")[0, 3] == pytest.approx(-70.0)
    assert cam.K_tensor(torch.float64).dtype == torch.float64
    with pytest.raises(ValueError, match=r"\['left', 'right'\]"):
        cam.P("centre")
    # T_left_right maps a point in the right frame to the left frame.
    p_left = np.array([0.05, -0.02, 0.6, 1.0])
    p_right = p_left - np.array([cam.baseline_m, 0, 0, 0])
    assert np.allclose(cam.T_left_right @ p_right, p_left)
    assert cam.fx_baseline == pytest.approx(70.0)


def test_scaled_keeps_projection(cam):
    half = cam.scaled(0.5)
    assert half.size == (320, 240)
    # a pixel centre u maps to (u + 0.5) * s - 0.5
    x, z = 0.1, 0.5
    u_full = cam.fx * x / z + cam.cx
    u_half = half.fx * x / z + half.cx
    assert u_half == pytest.approx((u_full + 0.5) * 0.5 - 0.5)
    with pytest.raises(ValueError, match="> 0"):
        cam.scaled(0.0)
