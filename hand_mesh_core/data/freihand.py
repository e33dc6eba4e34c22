"""FreiHAND reader (monocular, right hands), official layout.

Zimmermann et al., "FreiHAND: A Dataset for Markerless Capture of Hand Pose and Shape from
Single RGB Images", ICCV 2019. Layout of the released training set (``fh_utils.py`` of the
official repository)::

    <root>/training_K.json       N x 3 x 3 intrinsics
    <root>/training_xyz.json     N x 21 x 3 joints, metres, camera frame (canonical order)
    <root>/training_verts.json   N x 778 x 3 MANO vertices, metres, camera frame
    <root>/training_mano.json    N x 1 x 61 MANO parameters (48 pose, 10 shape, 3 transl)
    <root>/training/rgb/%08d.jpg 4 N images: index ``i + k * N`` for version k of sample i
                                 (k = 0 "gs" green screen, 1 "hom", 2 "sample", 3 "auto")
    <root>/training/mask/%08d.jpg N hand masks (of the gs images)

``N`` (32560 in the release) is the length of ``training_xyz.json``.

FreiHAND is monocular: items are :class:`~hand_mesh_core.data.mono.MonoSample` for the
monocular pretraining branch. Vertex labels (``FreiHandConfig.vertices``):

* ``"mano"``: the released MANO vertices (only meaningful when the network's hand model is
  MANO: same 778-vertex topology);
* ``"fit"``: the hand model (by default the procedural one) fitted to the 21 joints by a small
  Adam optimisation (:func:`fit_hand_to_joints`), cached on disk as npz keyed by sample index
  and the model's topology hash;
* ``"none"``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.utils.data

from hand_mesh_core.data.config import FreiHandConfig
from hand_mesh_core.data.mono import MonoSample
from hand_mesh_core.hand.joints import to_canonical

__all__ = ["FREIHAND_VERSIONS", "FREIHAND_HANDEDNESS", "HandFit", "fit_hand_to_joints",
           "FreiHandDataset", "PALM_JOINTS"]

#: Image versions in file order (fh_utils.sample_version): index offset k * N.
FREIHAND_VERSIONS = ("gs", "hom", "sample", "auto")
#: FreiHAND labels right hands only.
FREIHAND_HANDEDNESS = "right"
#: Joints used for the rigid initialisation of the fit (wrist and the five finger bases: they
#: barely move with the finger pose).
PALM_JOINTS = (0, 1, 5, 9, 13, 17)
#: Masks are stored as JPEG: values above this grey level are hand.
MASK_THRESHOLD = 127


@dataclass(frozen=True)
class HandFit:
    """Hand-model parameters fitted to joints.

    Attributes:
        pose: (B, 15, 3) radians. shape: (B, S). global_orient: (B, 3) radians.
        transl: (B, 3) metres.
        vertices: (B, V, 3) metres, same frame as the target joints.
        joints: (B, 21, 3) metres, the model's joints.
        error_m: (B,) mean joint distance to the target, metres.
    """

    pose: torch.Tensor
    shape: torch.Tensor
    global_orient: torch.Tensor
    transl: torch.Tensor
    vertices: torch.Tensor
    joints: torch.Tensor
    error_m: torch.Tensor


def _kabsch(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Rotation R (3, 3) minimising |R (src - mean) - (dst - mean)|."""
    a, b = src - src.mean(0), dst - dst.mean(0)
    u, _, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    return vt.T @ np.diag([1.0, 1.0, d]) @ u.T


def fit_hand_to_joints(model: torch.nn.Module, joints_m: torch.Tensor,
                       handedness: str = "right", iterations: int = 150, lr: float = 0.03,
                       pose_reg: float = 1e-6) -> HandFit:
    """Fit a hand model's pose, shape, orientation and translation to 21 joints.

    Initialisation: zero pose and shape, translation at the target wrist, orientation from a
    Kabsch alignment of the palm joints (:data:`PALM_JOINTS`). Then Adam on the mean squared
    joint distance plus ``pose_reg * |pose|^2``.

    Args:
        model: a ``HandModel`` (``forward(pose, shape, global_orient, transl, handedness)``
            returning ``.vertices``, ``.joints``; ``num_shape``).
        joints_m: (B, 21, 3) target joints, metres, canonical order.
        handedness: "right" or "left".
        iterations: Adam steps (> 0).
        lr: Adam learning rate (> 0).
        pose_reg: pose regulariser weight (>= 0).

    Returns:
        :class:`HandFit` (detached tensors, float32).
    """
    from scipy.spatial.transform import Rotation

    if not isinstance(joints_m, torch.Tensor) or joints_m.dim() != 3 \
            or tuple(joints_m.shape[1:]) != (21, 3):
        raise ValueError(f"joints_m must be a (B, 21, 3) tensor, got "
                         f"{tuple(getattr(joints_m, 'shape', ()))}")
    if iterations < 1 or not lr > 0 or pose_reg < 0:
        raise ValueError(f"need iterations >= 1, lr > 0, pose_reg >= 0; got {iterations}, {lr}, "
                         f"{pose_reg}")
    target = joints_m.detach().to(torch.float32)
    b = target.shape[0]
    with torch.no_grad():
        rest = model(torch.zeros(b, 15, 3), handedness=handedness).joints
    palm = list(PALM_JOINTS)
    rotvecs = [Rotation.from_matrix(_kabsch(rest[i, palm].double().numpy(),
                                            target[i, palm].double().numpy())).as_rotvec()
               for i in range(b)]
    orient = torch.tensor(np.array(rotvecs), dtype=torch.float32).requires_grad_()
    # Wrist position after rotating the rest wrist about its own position (it is the origin).
    transl = (target[:, 0] - rest[:, 0]).clone().requires_grad_()
    pose = torch.zeros(b, 15, 3, requires_grad=True)
    shape = torch.zeros(b, model.num_shape, requires_grad=True)
    opt = torch.optim.Adam([pose, shape, orient, transl], lr=lr)
    for _ in range(iterations):
        opt.zero_grad()
        out = model(pose, shape, orient, transl, handedness=handedness)
        loss = ((out.joints - target) ** 2).sum(-1).mean() + pose_reg * (pose ** 2).sum() / b
        loss.backward()
        opt.step()
    with torch.no_grad():
        out = model(pose, shape, orient, transl, handedness=handedness)
        err = (out.joints - target).norm(dim=-1).mean(-1)
    return HandFit(pose.detach(), shape.detach(), orient.detach(), transl.detach(),
                   out.vertices.detach(), out.joints.detach(), err)


def _load_json(path: Path) -> list:
    if not path.is_file():
        raise FileNotFoundError(f"FreiHAND file not found: {path}")
    with open(path) as f:
        return json.load(f)


class FreiHandDataset(torch.utils.data.Dataset):
    """FreiHAND training samples as :class:`MonoSample` (right hands).

    Args:
        root: the FreiHAND root (with ``training_*.json`` and ``training/``).
        config: image version, vertex source, fit and cache settings.
        hand_model: the model fitted for ``vertices="fit"`` (default: the procedural hand,
            built on first use).

    Raises:
        FileNotFoundError: a required file is missing.
        ValueError: the label files disagree in length or shape.
    """

    def __init__(self, root: str | Path, config: FreiHandConfig | None = None,
                 hand_model: torch.nn.Module | None = None) -> None:
        self.config = FreiHandConfig.resolve(config)
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"FreiHAND root is not a directory: {self.root}")
        self.K = np.asarray(_load_json(self.root / "training_K.json"), dtype=np.float64)
        xyz = np.asarray(_load_json(self.root / "training_xyz.json"), dtype=np.float32)
        if xyz.ndim != 3 or xyz.shape[1:] != (21, 3):
            raise ValueError(f"training_xyz.json must be N x 21 x 3, got {xyz.shape}")
        if self.K.shape != (len(xyz), 3, 3):
            raise ValueError(f"training_K.json must be {len(xyz)} x 3 x 3, got {self.K.shape}")
        self.joints_m = np.asarray(to_canonical(xyz, source="freihand"), dtype=np.float32)
        self.db_size = len(xyz)
        self.version_offset = FREIHAND_VERSIONS.index(self.config.version)
        self.mano: np.ndarray | None = None
        mano_path = self.root / "training_mano.json"
        if mano_path.is_file():
            self.mano = np.asarray(_load_json(mano_path), dtype=np.float32).reshape(
                self.db_size, -1)
        self.vertices_m: np.ndarray | None = None
        if self.config.vertices == "mano":
            verts = np.asarray(_load_json(self.root / "training_verts.json"), dtype=np.float32)
            if verts.ndim != 3 or verts.shape[0] != self.db_size or verts.shape[2] != 3:
                raise ValueError(f"training_verts.json must be {self.db_size} x V x 3, got "
                                 f"{verts.shape}")
            self.vertices_m = verts
        self._hand_model = hand_model

    @property
    def hand_model(self) -> torch.nn.Module:
        """The model used for fitted vertices (built on first use)."""
        if self._hand_model is None:
            from hand_mesh_core.hand.model import HandModel

            self._hand_model = HandModel.procedural()
        return self._hand_model

    def __len__(self) -> int:
        return self.db_size

    def image_path(self, idx: int) -> Path:
        """Path of sample ``idx``'s image in the configured version."""
        file_index = idx + self.version_offset * self.db_size
        return self.root / "training" / "rgb" / f"{file_index:08d}.jpg"

    def mask_path(self, idx: int) -> Path:
        """Path of sample ``idx``'s mask (released for the gs images)."""
        return self.root / "training" / "mask" / f"{idx:08d}.jpg"

    def fitted_vertices(self, idx: int) -> tuple[np.ndarray, float]:
        """The fitted hand's vertices ``(V, 3)`` (m, camera frame) and mean joint error (m).

        Cached as ``<cache_dir>/freihand_<idx>_<topology hash>.npz`` when ``cache_dir`` is set;
        a cache entry whose stored joints differ from the labels is refitted.
        """
        model = self.hand_model
        target = self.joints_m[idx]
        cache = None
        if self.config.cache_dir:
            cache_dir = Path(self.config.cache_dir)
            cache_dir.mkdir(parents=True, exist_ok=True)
            cache = cache_dir / f"freihand_{idx:08d}_{model.topology_hash()[:16]}.npz"
            if cache.is_file():
                with np.load(cache) as data:
                    if np.array_equal(data["target_joints_m"], target):
                        return data["vertices_m"], float(data["error_m"])
        fit = fit_hand_to_joints(model, torch.from_numpy(target)[None], FREIHAND_HANDEDNESS,
                                 self.config.fit_iterations, self.config.fit_lr,
                                 self.config.fit_pose_reg)
        verts = fit.vertices[0].numpy().astype(np.float32)
        err = float(fit.error_m[0])
        if cache is not None:
            np.savez(cache, vertices_m=verts, error_m=err, target_joints_m=target,
                     pose=fit.pose[0].numpy(), shape=fit.shape[0].numpy(),
                     global_orient=fit.global_orient[0].numpy(), transl=fit.transl[0].numpy())
        return verts, err

    def __getitem__(self, idx: int) -> MonoSample:
        import cv2

        if not -len(self) <= idx < len(self):
            raise IndexError(f"index {idx} out of range for {len(self)} samples")
        idx = idx % len(self)
        path = self.image_path(idx)
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise FileNotFoundError(f"FreiHAND image missing or unreadable: {path}")
        mask = None
        if self.mask_path(idx).is_file():
            m = cv2.imread(str(self.mask_path(idx)), cv2.IMREAD_GRAYSCALE)
            if m is not None:
                mask = m > MASK_THRESHOLD
        extras: dict = {"index": idx, "version": self.config.version}
        if self.mano is not None:
            extras["mano"] = self.mano[idx].copy()
        vertices = None
        if self.config.vertices == "mano":
            vertices = self.vertices_m[idx].copy()
        elif self.config.vertices == "fit":
            vertices, err = self.fitted_vertices(idx)
            extras["fit_error_m"] = err
        return MonoSample(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), self.K[idx].copy(),
                          FREIHAND_HANDEDNESS, self.joints_m[idx].copy(), vertices, mask,
                          f"freihand/training/{self.config.version}/{idx}", extras)
