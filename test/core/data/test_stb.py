"""STB reader: real files (frame 0 + 1500 labels) and fabricated trees in the official layout."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io

from hand_mesh_core.config.base import ConfigError
from hand_mesh_core.data.config import StbConfig
from hand_mesh_core.data.stb import (
    STB_CAMERA, STB_SEQUENCES, StbDataset, StbLabelDataset, load_stb_labels, load_stb_raw,
    stb_sequences, stb_to_canonical,
)
from hand_mesh_core.geometry.camera import StereoCamera
from shared_data import STB_DIR as REAL

REPO = Path(__file__).resolve().parents[3]
needs_real = pytest.mark.skipif(not (REAL / "labels" / "B1Counting_BB.mat").is_file(),
                                reason="real STB sample not available")


def _write_tree(root: Path, seq: str, n: int, frames_with_images: tuple[int, ...],
                seed: int = 0) -> np.ndarray:
    """Write an STB tree; returns handPara (3, 21, n) in mm."""
    rng = np.random.default_rng(seed)
    para = rng.uniform(-100, 100, size=(3, 21, n))
    para[2] += 650.0
    (root / "labels").mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(root / "labels" / f"{seq}_BB.mat", {"handPara": para})
    folder = root / "images" / seq
    folder.mkdir(parents=True, exist_ok=True)
    for i in frames_with_images:
        img = np.zeros((480, 640, 3), np.uint8)
        img[..., 2] = 200  # BGR on disk: red
        cv2.imwrite(str(folder / f"BB_left_{i}.png"), img)
        cv2.imwrite(str(folder / f"BB_right_{i}.png"), img)
    return para


# ---------------------------------------------------------------- real data
@needs_real
def test_real_labels_z_range_and_bones():
    labels = StbLabelDataset(REAL, StbConfig(split="test"))
    assert labels.missing_sequences == ("B1Random",)
    assert len(labels) == 1500
    joints = labels.all_joints_m()
    assert joints.shape == (1500, 21, 3) and joints.dtype == np.float32
    labelled = np.concatenate([labels.all_palm_centres_m()[:, None], joints[:, 1:]], axis=1)
    z_mm = labelled[..., 2] * 1000
    assert 600 < z_mm.min() < 612 and 715 < z_mm.max() < 725  # README: 606-721 mm
    # README: middle MCP-PIP is 40.0 mm in every frame (canonical 9 -> 10).
    bone_mm = np.linalg.norm(joints[:, 10] - joints[:, 9], axis=-1) * 1000
    np.testing.assert_allclose(bone_mm, 40.0, atol=0.1)
    item = labels[-1]
    assert item.sequence == "B1Counting" and item.frame == 1499
    # The estimated wrist sits beyond the palm centre, away from the ring MCP (hand.joints).
    np.testing.assert_allclose(item.joints_m[0], 2 * item.palm_centre_m - item.joints_m[13],
                               atol=1e-6)


@needs_real
def test_real_frame0_images_and_disparity():
    ds = StbDataset(REAL)
    assert len(ds) == 1
    s = ds[0]
    assert s.left.shape == (480, 640, 3) and s.right.shape == (480, 640, 3)
    assert s.handedness == "left" and s.source == "stb/B1Counting/0"
    bgr = cv2.imread(str(REAL / "images/B1Counting/BB_left_0.png"))
    np.testing.assert_array_equal(s.left, bgr[..., ::-1])  # RGB order
    disp = STB_CAMERA.fx_baseline / s.joints_m[:, 2]
    assert 146.5 < disp.min() and disp.max() < 149.5  # README: 147-149 px
    # README: projecting frame 0's joints puts them in the image.
    u = STB_CAMERA.fx * s.joints_m[:, 0] / s.joints_m[:, 2] + STB_CAMERA.cx
    assert 0 < u.min() and u.max() < 640


@needs_real
def test_real_item_matches_raw_mat():
    raw = scipy.io.loadmat(REAL / "labels/B1Counting_BB.mat")["handPara"][:, :, 0].T / 1000
    s = StbDataset(REAL)[0]
    np.testing.assert_allclose(s.joints_m[9], raw[9], atol=1e-6)   # middle MCP stays
    np.testing.assert_allclose(s.joints_m[4], raw[20], atol=1e-6)  # thumb tip
    np.testing.assert_allclose(s.joints_m[20], raw[4], atol=1e-6)  # little tip
    np.testing.assert_allclose(s.extras["palm_centre_m"], raw[0], atol=1e-6)


def test_camera_preset_matches_constants():
    preset = REPO / "config" / "cameras" / "stb_bumblebee.yaml"
    if not preset.is_file():
        pytest.skip("camera preset not shipped yet")
    assert StereoCamera.from_yaml(preset) == STB_CAMERA


# ---------------------------------------------------------------- mapping and splits
def test_to_canonical_map_by_finger(tmp_path):
    stb = np.arange(21 * 3, dtype=np.float64).reshape(21, 3)
    can = stb_to_canonical(stb)
    expected = list(range(17, 21)) + list(range(13, 17)) + list(range(9, 13)) \
        + list(range(5, 9)) + list(range(1, 5))
    np.testing.assert_array_equal(can[1:], stb[expected])
    para = _write_tree(tmp_path, "B1Random", 3, ())
    raw = load_stb_raw(tmp_path / "labels/B1Random_BB.mat")
    np.testing.assert_allclose(raw, para.transpose(2, 1, 0) / 1000)
    np.testing.assert_allclose(load_stb_labels(tmp_path / "labels/B1Random_BB.mat"),
                               stb_to_canonical(raw), rtol=1e-6)
    with pytest.raises(ValueError, match="21, 3"):
        stb_to_canonical(np.zeros((20, 3)))


def test_splits():
    assert stb_sequences("test") == ("B1Counting", "B1Random")
    train = stb_sequences("train")
    assert len(train) == 10 and not set(train) & {"B1Counting", "B1Random"}
    assert set(train) | set(stb_sequences("test")) == set(STB_SEQUENCES)
    with pytest.raises(ValueError, match="train"):
        stb_sequences("val")
    with pytest.raises(ConfigError, match="must be one of"):
        StbConfig(split="val")


# ---------------------------------------------------------------- fabricated trees
def test_fabricated_tree(tmp_path):
    para = _write_tree(tmp_path, "B2Random", 5, (0, 3))
    (tmp_path / "images/B2Random/BB_right_3.png").unlink()  # frame 3: left image only
    ds = StbDataset(tmp_path, sequences=("B2Random",))
    assert len(ds) == 1 and ds.index == [("B2Random", 0)]
    s = ds[0]
    assert tuple(s.left[0, 0]) == (200, 0, 0)
    np.testing.assert_allclose(s.joints_m[1], para[:, 17, 0] / 1000, rtol=1e-6)
    np.testing.assert_allclose(s.extras["palm_centre_m"], para[:, 0, 0] / 1000, rtol=1e-6)
    labels = StbLabelDataset(tmp_path, StbConfig(split="train"))
    assert len(labels) == 5 and len(labels.missing_sequences) == 9
    with pytest.raises(IndexError):
        ds[1]
    with pytest.raises(IndexError):
        labels[5]


def test_fabricated_errors(tmp_path):
    _write_tree(tmp_path, "B2Random", 2, ())
    with pytest.raises(FileNotFoundError, match="B3Random_BB.mat"):
        StbDataset(tmp_path, sequences=("B2Random", "B3Random"))
    with pytest.raises(FileNotFoundError, match="missing"):
        StbDataset(tmp_path, StbConfig(split="train", require_all_sequences=True))
    with pytest.raises(FileNotFoundError, match="no STB label file"):
        StbDataset(tmp_path, StbConfig(split="test"))
    with pytest.raises(ValueError, match="unknown STB sequence"):
        StbDataset(tmp_path, sequences=("B7Random",))
    with pytest.raises(FileNotFoundError, match="not a directory"):
        StbDataset(tmp_path / "nope")
    with pytest.raises(TypeError, match="StbConfig"):
        StbDataset(tmp_path, config={"split": "test"})
    with pytest.raises(FileNotFoundError):
        load_stb_raw(tmp_path / "x.mat")
    scipy.io.savemat(tmp_path / "bad_key.mat", {"other": np.zeros((3, 21, 2))})
    with pytest.raises(ValueError, match="handPara"):
        load_stb_labels(tmp_path / "bad_key.mat")
    scipy.io.savemat(tmp_path / "bad_shape.mat", {"handPara": np.zeros((3, 20, 2))})
    with pytest.raises(ValueError, match=r"\(3, 21, N\)"):
        load_stb_labels(tmp_path / "bad_shape.mat")
    (tmp_path / "images/B2Random/BB_left_0.png").write_bytes(b"not a png")
    (tmp_path / "images/B2Random/BB_right_0.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot decode"):
        StbDataset(tmp_path, sequences=("B2Random",))[0]


def test_camera_yaml_override(tmp_path):
    _write_tree(tmp_path, "B1Counting", 1, (0,))
    cam = STB_CAMERA.replace(fx=800.0, fy=800.0)
    cam.to_yaml(tmp_path / "cam.yaml")
    ds = StbDataset(tmp_path, StbConfig(camera_yaml=str(tmp_path / "cam.yaml")))
    assert ds[0].camera.fx == 800.0
