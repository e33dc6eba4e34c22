"""STB (Stereo Hand Pose Tracking Benchmark) reader, official layout.

Zhang et al., "3D Hand Pose Tracking and Estimation Using Stereo Matching", ICIP 2017. Layout::

    <root>/images/<SEQ>/BB_left_<i>.png, BB_right_<i>.png      rectified Bumblebee2 pair, 640x480
    <root>/labels/<SEQ>_BB.mat                                 handPara (3, 21, 1500), mm, left cam

``SEQ`` is ``B<k>Counting`` or ``B<k>Random`` for backgrounds ``k = 1..6``. The labels are the
subject's LEFT hand, in the left camera optical frame, in STB's joint order: palm centre, then
little, ring, middle, index, thumb, each MCP, PIP, DIP, tip. :func:`stb_to_canonical` reorders
them to hand_mesh's canonical order with ``hand_mesh_core.hand.joints.to_canonical``. STB has
no wrist label: canonical joint 0 is the wrist *estimated* from the palm centre (see
``hand.joints``); the labelled palm centre is kept in ``extras["palm_centre_m"]`` and
:attr:`StbLabel.palm_centre_m`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch.utils.data

from hand_mesh_core.data.config import StbConfig
from hand_mesh_core.data.types import StereoSample
from hand_mesh_core.geometry.camera import StereoCamera
from hand_mesh_core.hand.joints import to_canonical

__all__ = [
    "STB_CAMERA", "STB_SEQUENCES", "STB_TEST_SEQUENCES", "STB_FRAMES_PER_SEQUENCE",
    "STB_HANDEDNESS", "stb_sequences", "stb_to_canonical", "load_stb_raw", "load_stb_labels",
    "StbLabel", "StbDataset", "StbLabelDataset",
]

#: Official BB2Stereo parameters (STB README: baseline 120.054 mm, fx = fy = 822.79041,
#: principal point 318.47345, 250.31296), rectified 640x480.
STB_CAMERA = StereoCamera(fx=822.79041, fy=822.79041, cx=318.47345, cy=250.31296,
                          baseline_m=0.120054, width=640, height=480)
#: The 12 sequences: 6 backgrounds x {Counting, Random} (STB README).
STB_SEQUENCES = tuple(f"B{k}{kind}" for k in range(1, 7) for kind in ("Counting", "Random"))
#: The paper's test sequences; every other sequence is for training.
STB_TEST_SEQUENCES = ("B1Counting", "B1Random")
#: Frames per sequence (STB README).
STB_FRAMES_PER_SEQUENCE = 1500
#: STB films the subject's left hand.
STB_HANDEDNESS = "left"
#: STB labels are in millimetres.
MM_PER_M = 1000.0
#: Name of the label variable in the .mat files.
_MAT_KEY = "handPara"


def stb_sequences(split: str) -> tuple[str, ...]:
    """The sequences of a split in {"train", "test", "all"} (paper protocol)."""
    if split == "test":
        return STB_TEST_SEQUENCES
    if split == "train":
        return tuple(s for s in STB_SEQUENCES if s not in STB_TEST_SEQUENCES)
    if split == "all":
        return STB_SEQUENCES
    raise ValueError(f"split must be one of ['train', 'test', 'all'], got {split!r}")


def stb_to_canonical(joints: np.ndarray) -> np.ndarray:
    """STB-order joints ``(..., 21, 3)`` -> canonical order, wrist estimated from the palm.

    Thin wrapper of ``hand_mesh_core.hand.joints.to_canonical(joints, source="stb")``.
    """
    return np.asarray(to_canonical(np.asarray(joints), source="stb"))


def load_stb_raw(path: str | Path) -> np.ndarray:
    """Read one ``<SEQ>_BB.mat`` as stored, converted to metres.

    Args:
        path: the .mat file (MATLAB v5, variable ``handPara`` of shape (3, 21, N), mm).

    Returns:
        ``(N, 21, 3)`` float64 joints in metres, left optical frame, STB order (palm first).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file has no ``handPara`` of shape (3, 21, N).
    """
    import scipy.io

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"STB label file not found: {path}")
    mat = scipy.io.loadmat(str(path))
    if _MAT_KEY not in mat:
        raise ValueError(f"{path}: no variable {_MAT_KEY!r} (found {sorted(mat)})")
    para = np.asarray(mat[_MAT_KEY], dtype=np.float64)
    if para.ndim != 3 or para.shape[:2] != (3, 21):
        raise ValueError(f"{path}: {_MAT_KEY} must have shape (3, 21, N), got {para.shape}")
    return para.transpose(2, 1, 0) / MM_PER_M


def load_stb_labels(path: str | Path) -> np.ndarray:
    """Read one ``<SEQ>_BB.mat`` as canonical joints ``(N, 21, 3)`` float32 metres.

    Joint 0 is the wrist estimated from the palm centre (see the module doc). Raises like
    :func:`load_stb_raw`.
    """
    return stb_to_canonical(load_stb_raw(path)).astype(np.float32)


def _read_rgb(path: Path) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"cannot decode image {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _load_camera(config: StbConfig) -> StereoCamera:
    if config.camera_yaml:
        return StereoCamera.from_yaml(config.camera_yaml)
    return STB_CAMERA


@dataclass(frozen=True)
class StbLabel:
    """One STB label frame (no images needed).

    Attributes:
        joints_m: (21, 3) float32, metres, left optical frame, canonical order (0 = the wrist
            estimated from the palm centre).
        palm_centre_m: (3,) float32, the labelled palm centre, metres, left optical frame.
        camera: the BB2Stereo camera.
        sequence: e.g. "B1Counting".
        frame: index in the sequence, 0..1499.
    """

    joints_m: np.ndarray
    palm_centre_m: np.ndarray
    camera: StereoCamera
    sequence: str
    frame: int


class _StbBase(torch.utils.data.Dataset):
    def __init__(self, root: str | Path, config: StbConfig | None = None,
                 sequences: tuple[str, ...] | None = None) -> None:
        self.config = StbConfig.resolve(config)
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"STB root is not a directory: {self.root}")
        if sequences is None:
            sequences = stb_sequences(self.config.split)
            explicit = False
        else:
            unknown = [s for s in sequences if s not in STB_SEQUENCES]
            if unknown:
                raise ValueError(f"unknown STB sequence(s) {unknown}; valid: "
                                 f"{list(STB_SEQUENCES)}")
            explicit = True
        self.camera = _load_camera(self.config)
        self.labels: dict[str, np.ndarray] = {}
        self.palm_centres: dict[str, np.ndarray] = {}
        self.missing_sequences: tuple[str, ...] = ()
        missing = []
        for seq in sequences:
            path = self.root / "labels" / f"{seq}_BB.mat"
            if not path.is_file():
                missing.append(seq)
                continue
            raw = load_stb_raw(path)
            self.labels[seq] = stb_to_canonical(raw).astype(np.float32)
            self.palm_centres[seq] = raw[:, 0].astype(np.float32)
        self.missing_sequences = tuple(missing)
        if missing and (explicit or self.config.require_all_sequences):
            raise FileNotFoundError(f"STB label files missing under {self.root / 'labels'}: "
                                    f"{[f'{s}_BB.mat' for s in missing]}")
        if not self.labels:
            raise FileNotFoundError(f"no STB label file of {list(sequences)} under "
                                    f"{self.root / 'labels'}")

    def all_joints_m(self) -> np.ndarray:
        """Every label frame of the loaded sequences, ``(N, 21, 3)`` float32 metres, canonical."""
        return np.concatenate([self.labels[s] for s in self.labels], axis=0)

    def all_palm_centres_m(self) -> np.ndarray:
        """The labelled palm centres of every frame, ``(N, 3)`` float32 metres."""
        return np.concatenate([self.palm_centres[s] for s in self.labels], axis=0)


class StbLabelDataset(_StbBase):
    """Every label frame of the selected sequences (images not needed): for statistics.

    Args:
        root: the STB root (with ``labels/``).
        config: reader settings (split, camera preset).
        sequences: explicit sequences instead of the split; missing ones raise.
    """

    def __init__(self, root: str | Path, config: StbConfig | None = None,
                 sequences: tuple[str, ...] | None = None) -> None:
        super().__init__(root, config, sequences)
        self.index = [(s, i) for s in self.labels for i in range(len(self.labels[s]))]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, idx: int) -> StbLabel:
        if not -len(self) <= idx < len(self):
            raise IndexError(f"index {idx} out of range for {len(self)} labels")
        seq, frame = self.index[idx]
        return StbLabel(self.labels[seq][frame], self.palm_centres[seq][frame], self.camera, seq,
                        frame)


class StbDataset(_StbBase):
    """STB stereo samples: the label frames whose left and right images both exist.

    Args:
        root: the STB root (with ``images/`` and ``labels/``).
        config: reader settings (split, camera preset).
        sequences: explicit sequences instead of the split; missing label files raise.

    Each item is a :class:`StereoSample` with RGB images, ``handedness="left"``, canonical
    joints in metres (joint 0 = estimated wrist, see the module doc),
    ``source="stb/<SEQ>/<frame>"`` and ``extras`` {"palm_centre_m", "sequence", "frame"}.
    """

    def __init__(self, root: str | Path, config: StbConfig | None = None,
                 sequences: tuple[str, ...] | None = None) -> None:
        super().__init__(root, config, sequences)
        self.index: list[tuple[str, int]] = []
        for seq, joints in self.labels.items():
            folder = self.root / "images" / seq
            for frame in range(len(joints)):
                if ((folder / f"BB_left_{frame}.png").is_file()
                        and (folder / f"BB_right_{frame}.png").is_file()):
                    self.index.append((seq, frame))

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, idx: int) -> StereoSample:
        if not -len(self) <= idx < len(self):
            raise IndexError(f"index {idx} out of range for {len(self)} samples")
        seq, frame = self.index[idx]
        folder = self.root / "images" / seq
        return StereoSample(
            left=_read_rgb(folder / f"BB_left_{frame}.png"),
            right=_read_rgb(folder / f"BB_right_{frame}.png"),
            camera=self.camera, handedness=STB_HANDEDNESS,
            joints_m=self.labels[seq][frame].copy(), source=f"stb/{seq}/{frame}",
            extras={"palm_centre_m": self.palm_centres[seq][frame].copy(), "sequence": seq,
                    "frame": frame})
