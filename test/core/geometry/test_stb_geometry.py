"""Stereo geometry against the real STB labels and images (../shared/realdata/stb).

Facts from the sample's README: the right camera is the left one moved by the 120.054 mm
baseline along +x; frame 0 has z ~ 664-675 mm and disparity ~ 147-149 px; over all 1500 frames z is
606-721 mm. Labels are (3, 21, N) in mm, left optical frame.
"""
import numpy as np
import scipy.io
import torch

from hand_mesh_core.config.presets import preset_path
from hand_mesh_core.geometry.camera import StereoCamera
from hand_mesh_core.geometry.projection import depth_to_disparity, project, triangulate

#: Half size of the patch compared between the two views, px.
PATCH_HALF_PX = 7


def _labels_m(stb_dir):
    hand = scipy.io.loadmat(stb_dir / "labels" / "B1Counting_BB.mat")["handPara"]
    return torch.as_tensor(np.transpose(hand, (2, 1, 0)) / 1000.0)  # (N, 21, 3) metres


def _image(path):
    import cv2
    return cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1]


def test_z_range_over_all_frames(stb_dir):
    joints = _labels_m(stb_dir)
    assert joints.shape == (1500, 21, 3)
    z_mm = joints[..., 2] * 1000
    assert 605.0 < z_mm.min() < 607.0
    assert 720.0 < z_mm.max() < 722.0


def test_frame0_projects_onto_the_hand_in_both_views(stb_dir):
    cam = StereoCamera.from_yaml(preset_path("cameras", "stb_bumblebee"))
    K = cam.K_tensor(torch.float64)
    j = _labels_m(stb_dir)[0]
    uv_l = project(j, K)
    uv_r = project(j - torch.tensor([cam.baseline_m, 0.0, 0.0], dtype=torch.float64), K)
    disparity = uv_l[:, 0] - uv_r[:, 0]
    assert disparity.min() > 146.0 and disparity.max() < 150.0
    assert torch.allclose(disparity, depth_to_disparity(j[:, 2], cam.fx, cam.baseline_m))
    # triangulating the two projections gives the labels back
    assert torch.allclose(triangulate(uv_l, uv_r, K, cam.baseline_m), j, atol=1e-9)

    left = _image(stb_dir / "images" / "B1Counting" / "BB_left_0.png").astype(np.float64)
    right = _image(stb_dir / "images" / "B1Counting" / "BB_right_0.png").astype(np.float64)
    assert left.shape == (cam.height, cam.width, 3)
    skin_both, ncc = 0, []
    for (ul, vl), (ur, vr) in zip(uv_l.round().long().tolist(), uv_r.round().long().tolist()):
        assert 0 <= ul < cam.width and 0 <= vl < cam.height
        assert 0 <= ur < cam.width and 0 <= vr < cam.height
        pl, pr = left[vl, ul], right[vr, ur]
        skin_both += int(pl[0] > pl[2] and pr[0] > pr[2])  # skin: red above blue
        h = PATCH_HALF_PX
        a = left[vl - h:vl + h + 1, ul - h:ul + h + 1].mean(-1).ravel()
        b = right[vr - h:vr + h + 1, ur - h:ur + h + 1].mean(-1).ravel()
        a, b = a - a.mean(), b - b.mean()
        ncc.append(float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9)))
    # the joints land on skin in both images, and the two views see the same texture there
    assert skin_both >= 18
    assert np.median(ncc) > 0.5


def test_wrong_baseline_sign_breaks_consistency(stb_dir):
    """The same check fails with the baseline's sign flipped: the test can fail."""
    cam = StereoCamera.from_yaml(preset_path("cameras", "stb_bumblebee"))
    K = cam.K_tensor(torch.float64)
    j = _labels_m(stb_dir)[0]
    uv_r_wrong = project(j + torch.tensor([cam.baseline_m, 0.0, 0.0], dtype=torch.float64), K)
    disparity = project(j, K)[:, 0] - uv_r_wrong[:, 0]
    assert disparity.max() < 0
