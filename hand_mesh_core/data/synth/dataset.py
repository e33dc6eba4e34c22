"""Read a synthetic data set written by :func:`~hand_mesh_core.data.synth.writer.write_dataset`.

Each item is a :class:`~hand_mesh_core.data.types.StereoSample` (RGB uint8 images, bool hand
masks, joints and vertices in metres in the left optical frame). With ``load_depth=True`` the
sample's ``extras`` also hold ``depth_left``, ``depth_right`` and ``disparity_left`` (float32,
metres / px, 0 = none); ``extras`` always hold ``index``, ``pose``, ``shape``,
``global_orient``, ``transl`` and ``faces``.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from torch.utils.data import Dataset

from hand_mesh_core.data.synth.generator import MASK_HAND
from hand_mesh_core.data.synth.writer import (DEPTH_PNG_SCALE, DISPARITY_PNG_SCALE, IMAGE_EXTS,
                                              LABEL_KEYS, SPLITS)
from hand_mesh_core.data.types import StereoSample
from hand_mesh_core.geometry.camera import StereoCamera

__all__ = ["SynthStereoDataset", "read_image"]

#: Labels that data sets written by older generator versions lack, and what they mean there.
OPTIONAL_LABELS = {"image_ext": IMAGE_EXTS[0]}


def read_image(path: Path, flags: int = cv2.IMREAD_UNCHANGED) -> np.ndarray:
    """Read a PNG or JPEG (RGB order for colour images).

    Raises:
        FileNotFoundError: the file is missing or unreadable.
    """
    img = cv2.imread(str(path), flags)
    if img is None:
        raise FileNotFoundError(f"cannot read image {path}")
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return img


class SynthStereoDataset(Dataset):
    """A split of a synthetic data set folder.

    Args:
        root: the folder given to ``hand-mesh synth --out``.
        split: "train" or "test".
        load_depth: also read the depth and disparity PNGs into ``extras``.

    Raises:
        ValueError: unknown split.
        FileNotFoundError: the folder has no ``labels_<split>.npz`` or ``metadata.json``.
    """

    def __init__(self, root: str | Path, split: str = "train", load_depth: bool = False
                 ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
        self.root = Path(root)
        meta_path = self.root / "metadata.json"
        labels_path = self.root / f"labels_{split}.npz"
        for p in (meta_path, labels_path):
            if not p.is_file():
                raise FileNotFoundError(f"{p} not found: is {self.root} a synthetic data set "
                                        "(hand-mesh synth --out)?")
        self.metadata = json.loads(meta_path.read_text())
        with np.load(labels_path, allow_pickle=False) as npz:
            missing = [k for k in LABEL_KEYS if k not in npz.files and k not in OPTIONAL_LABELS]
            if missing:
                raise ValueError(f"{labels_path} lacks {missing}")
            self.labels = {k: npz[k] for k in npz.files}
        self.split = split
        self.load_depth = load_depth

    def __len__(self) -> int:
        return len(self.labels["index"])

    def camera(self, item: int) -> StereoCamera:
        """The camera of item ``item``."""
        lab = self.labels
        return StereoCamera(fx=float(lab["fx"][item]), fy=float(lab["fy"][item]),
                            cx=float(lab["cx"][item]), cy=float(lab["cy"][item]),
                            baseline_m=float(lab["baseline_m"][item]),
                            width=int(lab["width"][item]), height=int(lab["height"][item]))

    def __getitem__(self, item: int) -> StereoSample:
        if not -len(self) <= item < len(self):
            raise IndexError(f"index {item} out of range for {len(self)} samples")
        item = item % len(self)
        lab = self.labels
        index = int(lab["index"][item])
        name = f"{index:06d}.png"
        image_name = f"{index:06d}" + (str(lab["image_ext"][item]) if "image_ext" in lab
                                       else OPTIONAL_LABELS["image_ext"])
        handedness = str(lab["handedness"][item])
        extras = {"index": index, "pose": lab["pose"][item], "shape": lab["shape"][item],
                  "global_orient": lab["global_orient"][item], "transl": lab["transl"][item],
                  "faces": lab[f"faces_{handedness}"],
                  "pose_family": str(lab["pose_family"][item]),
                  "background": str(lab["background"][item])}
        if self.load_depth:
            for view in ("left", "right"):
                d = read_image(self.root / "depth" / view / name).astype(np.float32)
                extras[f"depth_{view}"] = d / np.float32(DEPTH_PNG_SCALE)
            disp = read_image(self.root / "disparity" / "left" / name).astype(np.float32)
            extras["disparity_left"] = disp / np.float32(DISPARITY_PNG_SCALE)
        domain = self.metadata.get("domain", {}).get("name", "synth")
        return StereoSample(
            left=read_image(self.root / "images" / "left" / image_name, cv2.IMREAD_COLOR),
            right=read_image(self.root / "images" / "right" / image_name, cv2.IMREAD_COLOR),
            camera=self.camera(item), handedness=handedness,
            joints_m=lab["joints_m"][item], vertices_m=lab["vertices_m"][item],
            mask_left=read_image(self.root / "masks" / "left" / name) == MASK_HAND,
            mask_right=read_image(self.root / "masks" / "right" / name) == MASK_HAND,
            source=f"synth/{domain}/{index}", extras=extras)
