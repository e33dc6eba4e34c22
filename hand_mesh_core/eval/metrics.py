"""3D hand joint metrics: absolute, root-relative and Procrustes-aligned errors, 3D PCK and AUC.

All inputs are joints in **metres** in the left optical frame, ``(..., N, 3)`` (N = 21 in the
canonical order of ``hand_mesh_core.hand.joints``); all errors are in **millimetres**, the unit
of the paper's tables (Chen et al., ICCV 2021: mean Euclidean distance of the 21 joints in the
camera frame, "absolute" error).

Three alignments:

* ``"absolute"``: no alignment, the camera-space error (the paper's metric).
* ``"root_relative"``: both hands translated so that their root is at the origin. The root is the
  mean of ``root_joints`` (canonical wrist ``(0,)`` by default; see
  :class:`~hand_mesh_core.eval.config.MetricsConfig` for STB's palm-centre root).
* ``"procrustes"``: the prediction is mapped onto the ground truth by the least-squares similarity
  transform (scale, proper rotation, translation; Umeyama 1991). Reflections are not allowed: a
  mirrored hand is an error, not a match.

Failed frames (the estimator returned no hand) are passed with ``valid=False``. They are
**excluded from the mean/median/per-joint errors** (which are over successful frames only and
come with the failure count), and **count as misses in the PCK curve** (every joint of a failed
frame is beyond every threshold), so PCK and AUC penalise failures.

The torch functions are batched and differentiable (usable as validation losses);
:func:`compute_joint_metrics` takes numpy or torch and returns a typed :class:`JointMetrics`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from hand_mesh_core.eval.config import MetricsConfig

__all__ = [
    "MM_PER_M", "ALIGNMENTS", "REDUCTIONS", "SimilarityTransform", "PCKCurve", "ErrorSummary",
    "JointMetrics", "joint_errors_mm", "root_relative", "umeyama", "procrustes_align",
    "aligned_joint_errors_mm", "pck_thresholds_mm", "pck_curve", "pck_auc", "joint_error",
    "JointError", "compute_joint_metrics",
]

#: Millimetres per metre: inputs are in metres (project convention), errors in mm (the paper's).
MM_PER_M = 1000.0
#: Allowed values of every ``alignment`` argument.
ALIGNMENTS = ("absolute", "root_relative", "procrustes")
#: Allowed values of every ``reduction`` argument (kornia convention).
REDUCTIONS = ("mean", "sum", "none")
#: Floor of the source variance in :func:`umeyama` (m^2): a prediction collapsed to one point
#: (variance 0) gets scale 0 instead of a division by zero. 1e-12 m^2 = (1 um)^2.
UMEYAMA_MIN_VARIANCE_M2 = 1e-12


def _check_points(name: str, x: Any) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 2 or x.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (..., N, 3), got {tuple(x.shape)}")


def _check_pair(pred: Any, gt: Any) -> None:
    _check_points("pred_m", pred)
    _check_points("gt_m", gt)
    if pred.shape != gt.shape:
        raise ValueError(f"pred_m {tuple(pred.shape)} and gt_m {tuple(gt.shape)} must have the "
                         "same shape")


def joint_errors_mm(pred_m: torch.Tensor, gt_m: torch.Tensor) -> torch.Tensor:
    """Euclidean distance of each joint, in millimetres.

    Args:
        pred_m: ``(..., N, 3)`` predicted joints, metres.
        gt_m: ``(..., N, 3)`` ground-truth joints, metres, same frame.

    Returns:
        ``(..., N)`` errors in mm.
    """
    _check_pair(pred_m, gt_m)
    return torch.linalg.vector_norm(pred_m - gt_m, dim=-1) * MM_PER_M


def root_relative(joints_m: torch.Tensor, root_joints: Sequence[int] = (0,)) -> torch.Tensor:
    """Joints translated so that the root (mean of ``root_joints``) is at the origin.

    Args:
        joints_m: ``(..., N, 3)`` joints, metres.
        root_joints: indices in ``[0, N)`` whose mean is the root; ``(0,)`` is the canonical
            wrist.

    Returns:
        ``(..., N, 3)`` root-relative joints, metres.
    """
    _check_points("joints_m", joints_m)
    n = joints_m.shape[-2]
    idx = list(root_joints)
    if not idx or any(isinstance(i, bool) or not isinstance(i, (int, np.integer)) for i in idx):
        raise TypeError(f"root_joints must be a non-empty sequence of ints, got {root_joints!r}")
    if any(not 0 <= i < n for i in idx):
        raise ValueError(f"root_joints {tuple(idx)} must be in [0, {n})")
    root = joints_m[..., idx, :].mean(dim=-2, keepdim=True)
    return joints_m - root


@dataclass(frozen=True)
class SimilarityTransform:
    """``y = scale * rotation @ x + translation``, batched.

    Attributes:
        scale: ``(...)`` unitless.
        rotation: ``(..., 3, 3)`` proper rotation (det +1) unless reflections were allowed.
        translation: ``(..., 3)`` metres.
    """

    scale: torch.Tensor
    rotation: torch.Tensor
    translation: torch.Tensor

    def apply(self, points: torch.Tensor) -> torch.Tensor:
        """Map ``(..., N, 3)`` points."""
        rotated = points @ self.rotation.transpose(-1, -2)
        return self.scale[..., None, None] * rotated + self.translation[..., None, :]


def umeyama(src: torch.Tensor, dst: torch.Tensor, allow_reflection: bool = False
            ) -> SimilarityTransform:
    """Least-squares similarity transform mapping ``src`` onto ``dst`` (Umeyama, PAMI 1991).

    Minimises ``sum_i || dst_i - (s R src_i + t) ||^2`` over scale ``s``, rotation ``R`` and
    translation ``t``.

    Args:
        src: ``(..., N, 3)`` source points (the prediction), N >= 1.
        dst: ``(..., N, 3)`` target points (the ground truth).
        allow_reflection: if True, ``R`` may be any orthogonal matrix (det -1 allowed), as in
            ``scipy.spatial.procrustes``; if False (default), ``R`` is a proper rotation.

    Returns:
        The transform, batched over the leading dims.
    """
    _check_points("src", src)
    _check_points("dst", dst)
    if src.shape != dst.shape:
        raise ValueError(f"src {tuple(src.shape)} and dst {tuple(dst.shape)} must have the same "
                         "shape")
    mu_src = src.mean(dim=-2)
    mu_dst = dst.mean(dim=-2)
    src_c = src - mu_src[..., None, :]
    dst_c = dst - mu_dst[..., None, :]
    n = src.shape[-2]
    var_src = (src_c ** 2).sum(dim=(-1, -2)) / n
    cov = dst_c.transpose(-1, -2) @ src_c / n  # (..., 3, 3)
    u, sigma, vh = torch.linalg.svd(cov)
    d = torch.ones_like(sigma)
    if not allow_reflection:
        with torch.no_grad():
            det = torch.linalg.det(u) * torch.linalg.det(vh)
        d[..., -1] = torch.where(det < 0, -1.0, 1.0).to(sigma)
    rotation = (u * d[..., None, :]) @ vh
    scale = (sigma * d).sum(dim=-1) / var_src.clamp_min(UMEYAMA_MIN_VARIANCE_M2)
    translation = mu_dst - scale[..., None] * (rotation @ mu_src[..., None])[..., 0]
    return SimilarityTransform(scale=scale, rotation=rotation, translation=translation)


def procrustes_align(pred_m: torch.Tensor, gt_m: torch.Tensor) -> torch.Tensor:
    """The prediction after its best similarity transform onto the ground truth.

    Args:
        pred_m: ``(..., N, 3)`` metres.
        gt_m: ``(..., N, 3)`` metres.

    Returns:
        ``(..., N, 3)`` aligned prediction, metres, in the ground truth's frame.
    """
    _check_pair(pred_m, gt_m)
    return umeyama(pred_m, gt_m).apply(pred_m)


def _check_alignment(alignment: str) -> None:
    if alignment not in ALIGNMENTS:
        raise ValueError(f"alignment must be one of {list(ALIGNMENTS)}, got {alignment!r}")


def aligned_joint_errors_mm(pred_m: torch.Tensor, gt_m: torch.Tensor,
                            alignment: str = "absolute",
                            root_joints: Sequence[int] = (0,)) -> torch.Tensor:
    """Per-joint errors after an alignment.

    Args:
        pred_m: ``(..., N, 3)`` predicted joints, metres, left optical frame.
        gt_m: ``(..., N, 3)`` ground-truth joints, metres, left optical frame.
        alignment: one of ``"absolute"``, ``"root_relative"``, ``"procrustes"``.
        root_joints: root of the root-relative alignment (see :func:`root_relative`).

    Returns:
        ``(..., N)`` errors in mm.
    """
    _check_alignment(alignment)
    _check_pair(pred_m, gt_m)
    if alignment == "root_relative":
        pred_m, gt_m = root_relative(pred_m, root_joints), root_relative(gt_m, root_joints)
    elif alignment == "procrustes":
        pred_m = procrustes_align(pred_m, gt_m)
    return joint_errors_mm(pred_m, gt_m)


def pck_thresholds_mm(config: MetricsConfig | None = None) -> np.ndarray:
    """The PCK thresholds ``(T,)`` in mm, evenly spaced over ``[pck_min_mm, pck_max_mm]``."""
    config = config or MetricsConfig()
    return np.linspace(config.pck_min_mm, config.pck_max_mm, config.pck_steps)


def pck_curve(errors_mm: torch.Tensor, thresholds_mm: torch.Tensor | np.ndarray,
              valid: torch.Tensor | None = None) -> torch.Tensor:
    """3D PCK: the fraction of joints whose error is <= each threshold.

    Args:
        errors_mm: ``(B, N)`` per-joint errors, mm.
        thresholds_mm: ``(T,)`` thresholds, mm.
        valid: ``(B,)`` bool; joints of invalid (failed) frames count as misses at every
            threshold. None means all frames are valid.

    Returns:
        ``(T,)`` fractions in [0, 1] (over all ``B * N`` joints, failures included).
    """
    if not isinstance(errors_mm, torch.Tensor):
        raise TypeError(f"errors_mm must be a torch.Tensor, got {type(errors_mm).__name__}")
    if errors_mm.dim() != 2 or errors_mm.shape[0] == 0:
        raise ValueError(f"errors_mm must have shape (B, N) with B >= 1, got "
                         f"{tuple(errors_mm.shape)}")
    thr = torch.as_tensor(thresholds_mm, dtype=errors_mm.dtype, device=errors_mm.device)
    if thr.dim() != 1 or thr.numel() == 0:
        raise ValueError(f"thresholds_mm must have shape (T,) with T >= 1, got {tuple(thr.shape)}")
    hit = errors_mm[None, :, :] <= thr[:, None, None]  # (T, B, N); NaN compares False
    if valid is not None:
        valid = _check_valid(valid, errors_mm.shape[0])
        hit = hit & valid.to(errors_mm.device)[None, :, None]
    return hit.to(errors_mm.dtype).mean(dim=(1, 2))


def pck_auc(thresholds_mm: torch.Tensor | np.ndarray, pck: torch.Tensor | np.ndarray) -> float:
    """Area under the PCK curve, normalised to [0, 1] by the threshold range (trapezoid rule).

    Args:
        thresholds_mm: ``(T,)`` increasing thresholds, T >= 2, mm.
        pck: ``(T,)`` PCK values in [0, 1].

    Returns:
        ``trapz(pck, thresholds) / (thresholds[-1] - thresholds[0])``.
    """
    thr = np.asarray(thresholds_mm, dtype=np.float64)
    p = np.asarray(pck.detach().cpu() if isinstance(pck, torch.Tensor) else pck,
                   dtype=np.float64)
    if thr.ndim != 1 or thr.shape != p.shape or thr.size < 2:
        raise ValueError(f"thresholds_mm and pck must both have shape (T,) with T >= 2, got "
                         f"{thr.shape} and {p.shape}")
    if not np.all(np.diff(thr) > 0):
        raise ValueError(f"thresholds_mm must be strictly increasing, got {thr.tolist()}")
    area = np.sum(0.5 * (p[1:] + p[:-1]) * np.diff(thr))  # trapezoid rule (numpy 1.x and 2.x)
    return float(area / (thr[-1] - thr[0]))


def _check_valid(valid: Any, batch: int) -> torch.Tensor:
    valid = torch.as_tensor(valid)
    if valid.dtype != torch.bool:
        raise TypeError(f"valid must be a bool mask, got dtype {valid.dtype}")
    if valid.shape != (batch,):
        raise ValueError(f"valid must have shape ({batch},), got {tuple(valid.shape)}")
    return valid


def joint_error(pred_m: torch.Tensor, gt_m: torch.Tensor, alignment: str = "absolute",
                reduction: str = "mean", root_joints: Sequence[int] = (0,)) -> torch.Tensor:
    """Mean per-joint position error in mm (differentiable; usable as a validation loss).

    Args:
        pred_m: ``(..., N, 3)`` metres.
        gt_m: ``(..., N, 3)`` metres.
        alignment: one of ``"absolute"``, ``"root_relative"``, ``"procrustes"``.
        reduction: ``"mean"`` (scalar over all joints), ``"sum"`` (scalar), or ``"none"``
            (``(..., N)`` per joint).
        root_joints: root of the root-relative alignment.

    Returns:
        Errors in mm, reduced as requested.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {list(REDUCTIONS)}, got {reduction!r}")
    err = aligned_joint_errors_mm(pred_m, gt_m, alignment, root_joints)
    if reduction == "mean":
        return err.mean()
    if reduction == "sum":
        return err.sum()
    return err


class JointError(nn.Module):
    """Module form of :func:`joint_error`."""

    def __init__(self, alignment: str = "absolute", reduction: str = "mean",
                 root_joints: Sequence[int] = (0,)) -> None:
        super().__init__()
        _check_alignment(alignment)
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {list(REDUCTIONS)}, got {reduction!r}")
        self.alignment = alignment
        self.reduction = reduction
        self.root_joints = tuple(root_joints)

    def forward(self, pred_m: torch.Tensor, gt_m: torch.Tensor) -> torch.Tensor:
        return joint_error(pred_m, gt_m, self.alignment, self.reduction, self.root_joints)


# ---------------------------------------------------------------------------- typed summaries
def _nan_to_none(x: float) -> float | None:
    return None if math.isnan(x) else x


@dataclass(frozen=True)
class PCKCurve:
    """A 3D PCK curve.

    Attributes:
        thresholds_mm: ``(T,)`` thresholds, mm.
        pck: ``(T,)`` fraction of joints within each threshold (failures count as misses).
        auc: area under the curve over the threshold range, normalised to [0, 1].
    """

    thresholds_mm: np.ndarray
    pck: np.ndarray
    auc: float

    def to_dict(self) -> dict[str, Any]:
        return {"thresholds_mm": self.thresholds_mm.tolist(), "pck": self.pck.tolist(),
                "auc": self.auc}


@dataclass(frozen=True)
class ErrorSummary:
    """Errors of one alignment over a data set.

    Attributes:
        alignment: ``"absolute"``, ``"root_relative"`` or ``"procrustes"``.
        mean_mm: mean over joints of successful frames (NaN if none succeeded).
        median_mm: median over joints of successful frames (NaN if none succeeded).
        per_joint_mm: ``(N,)`` mean error of each joint over successful frames.
        pck: the PCK curve (failed frames count as misses).
    """

    alignment: str
    mean_mm: float
    median_mm: float
    per_joint_mm: np.ndarray
    pck: PCKCurve

    def to_dict(self) -> dict[str, Any]:
        return {"alignment": self.alignment, "mean_mm": _nan_to_none(self.mean_mm),
                "median_mm": _nan_to_none(self.median_mm),
                "per_joint_mm": [_nan_to_none(float(v)) for v in self.per_joint_mm],
                "pck": self.pck.to_dict()}


@dataclass(frozen=True)
class JointMetrics:
    """All joint metrics of a data set.

    Attributes:
        n_frames: frames evaluated, failures included.
        n_failed: frames without a prediction (excluded from means, misses in PCK).
        absolute: camera-space errors (the paper's metric).
        root_relative: errors after subtracting the root.
        procrustes: errors after the similarity alignment.
        root_joints: the root used by ``root_relative``.
    """

    n_frames: int
    n_failed: int
    absolute: ErrorSummary
    root_relative: ErrorSummary
    procrustes: ErrorSummary
    root_joints: tuple[int, ...]

    @property
    def failure_rate(self) -> float:
        """``n_failed / n_frames``."""
        return self.n_failed / self.n_frames

    def summary(self, alignment: str) -> ErrorSummary:
        """The :class:`ErrorSummary` of ``alignment`` (one of :data:`ALIGNMENTS`)."""
        _check_alignment(alignment)
        return getattr(self, alignment)

    def to_dict(self) -> dict[str, Any]:
        return {"n_frames": self.n_frames, "n_failed": self.n_failed,
                "failure_rate": self.failure_rate, "root_joints": list(self.root_joints),
                **{a: self.summary(a).to_dict() for a in ALIGNMENTS}}


def _as_tensor(name: str, x: Any) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float64)
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.asarray(x, dtype=np.float64))
    raise TypeError(f"{name} must be a numpy array or torch.Tensor, got {type(x).__name__}")


def compute_joint_metrics(pred_m: np.ndarray | torch.Tensor, gt_m: np.ndarray | torch.Tensor,
                          valid: np.ndarray | torch.Tensor | None = None,
                          config: MetricsConfig | None = None) -> JointMetrics:
    """Every metric of a batch of frames.

    Args:
        pred_m: ``(B, N, 3)`` predicted joints, metres, left optical frame. Rows of failed
            frames are ignored (may hold NaN).
        gt_m: ``(B, N, 3)`` ground-truth joints, metres, left optical frame.
        valid: ``(B,)`` bool, False for failed frames; None = all succeeded.
        config: thresholds and root; defaults to the STB protocol (20-50 mm, wrist root).

    Returns:
        The metrics, computed in float64.
    """
    config = config or MetricsConfig()
    pred = _as_tensor("pred_m", pred_m)
    gt = _as_tensor("gt_m", gt_m)
    _check_pair(pred, gt)
    if pred.dim() != 3 or pred.shape[0] == 0:
        raise ValueError(f"pred_m and gt_m must have shape (B, N, 3) with B >= 1, got "
                         f"{tuple(pred.shape)}")
    b, n = pred.shape[:2]
    if any(r >= n for r in config.root_joints):
        raise ValueError(f"root_joints {config.root_joints} must be in [0, {n})")
    valid_t = (torch.ones(b, dtype=torch.bool) if valid is None
               else _check_valid(valid if isinstance(valid, torch.Tensor)
                                 else torch.from_numpy(np.asarray(valid)), b))
    if not torch.isfinite(gt).all():
        raise ValueError("gt_m contains NaN or inf")
    # Failed frames: replace the prediction by the ground truth (finite, keeps the SVD happy);
    # their errors are then masked out below.
    pred = torch.where(valid_t[:, None, None], pred, gt)
    if not torch.isfinite(pred).all():
        raise ValueError("pred_m contains NaN or inf in a frame marked valid")
    thr = pck_thresholds_mm(config)
    summaries = {}
    for alignment in ALIGNMENTS:
        err = aligned_joint_errors_mm(pred, gt, alignment, config.root_joints)
        curve = pck_curve(err, thr, valid_t).numpy()
        ok = err[valid_t]
        if ok.numel():
            mean, median = float(ok.mean()), float(np.median(ok.numpy()))
            per_joint = ok.mean(dim=0).numpy()
        else:
            mean = median = math.nan
            per_joint = np.full(n, np.nan)
        summaries[alignment] = ErrorSummary(
            alignment=alignment, mean_mm=mean, median_mm=median, per_joint_mm=per_joint,
            pck=PCKCurve(thresholds_mm=thr, pck=curve, auc=pck_auc(thr, curve)))
    return JointMetrics(n_frames=b, n_failed=int((~valid_t).sum()), root_joints=config.root_joints,
                        **summaries)
