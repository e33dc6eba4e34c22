"""The evaluation runner: an estimator over labelled stereo samples -> metrics, JSON and PNGs.

Failures: a frame where the estimator returns None (or non-finite joints) is a failure. It is
counted (``EvalReport.metrics.n_failed``), excluded from the mean/median/per-joint errors, and
counted as a miss at every PCK threshold (see :mod:`hand_mesh_core.eval.metrics`).

Outputs written to ``out_dir`` (when given):

* ``metrics.json``: :meth:`EvalReport.to_dict` (metrics of the three alignments, PCK curves and
  AUCs, per-joint errors, failure count, per-frame errors and timings);
* ``pck.png``: the absolute, root-relative and Procrustes PCK curves;
* ``per_joint.png``: per-joint mean errors of the three alignments;
* ``overlay_<k>.png``: the predicted mesh and joints over the left image, with the ground truth,
  for the first ``n_overlays`` successful frames.
"""
from __future__ import annotations

import itertools
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sized

import numpy as np
from tqdm import tqdm

from hand_mesh_core.data.types import StereoSample
from hand_mesh_core.eval.config import EvalConfig
from hand_mesh_core.eval.metrics import ALIGNMENTS, MM_PER_M, JointMetrics, compute_joint_metrics
from hand_mesh_core.eval.plots import (
    OverlayPanel, plot_mesh_overlays, plot_pck_curves, plot_per_joint_errors,
)
from hand_mesh_core.pipeline import HandMeshEstimator, HandMeshResult

__all__ = ["FrameResult", "EvalReport", "evaluate", "METRICS_FILE", "ALIGNMENT_LABELS",
           "DATASET_KINDS", "detect_dataset_kind", "open_dataset"]

#: Name of the JSON report in the output folder.
METRICS_FILE = "metrics.json"
#: Human-readable names of the alignments (plots and tables).
#: Folder layouts :func:`open_dataset` understands.
DATASET_KINDS = ("synthetic", "stb")
#: A synthetic dataset folder is recognised by this file (written by the generator).
SYNTH_METADATA_FILE = "metadata.json"
ALIGNMENT_LABELS = {"absolute": "absolute (camera)", "root_relative": "root-relative",
                    "procrustes": "Procrustes-aligned"}


@dataclass(frozen=True)
class FrameResult:
    """One evaluated frame.

    Attributes:
        index: position in the evaluated sequence.
        source: the sample's provenance (``StereoSample.source``).
        success: False when the estimator returned None or non-finite joints.
        absolute_mm: mean absolute joint error of the frame, mm (NaN on failure).
        confidence: the estimator's confidence (NaN on failure).
        time_s: wall-clock time of ``predict``, seconds.
    """

    index: int
    source: str
    success: bool
    absolute_mm: float
    confidence: float
    time_s: float

    def to_dict(self) -> dict[str, Any]:
        def clean(x: float) -> float | None:
            return None if math.isnan(x) else x
        return {"index": self.index, "source": self.source, "success": self.success,
                "absolute_mm": clean(self.absolute_mm), "confidence": clean(self.confidence),
                "time_s": self.time_s}


@dataclass(frozen=True)
class EvalReport:
    """The result of :func:`evaluate`.

    Attributes:
        metrics: the joint metrics (failures: excluded from means, misses in PCK).
        frames: per-frame results, in input order.
        model: name of the evaluated model (free text, e.g. a checkpoint path).
        data: name of the data (free text, e.g. the dataset folder).
        mean_time_s: mean ``predict`` time per frame, seconds.
        files: paths written to the output folder (empty when none was given).
    """

    metrics: JointMetrics
    frames: tuple[FrameResult, ...]
    model: str
    data: str
    mean_time_s: float
    files: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "data": self.data, "mean_time_s": self.mean_time_s,
                "failure_policy": "failed frames are excluded from mean/median/per-joint "
                                  "errors and count as misses at every PCK threshold",
                "metrics": self.metrics.to_dict(),
                "frames": [f.to_dict() for f in self.frames]}

    def summary_line(self) -> str:
        """One line for the console."""
        m = self.metrics
        return (f"{m.n_frames} frames, {m.n_failed} failed | absolute {m.absolute.mean_mm:.1f} mm"
                f" (AUC {m.absolute.pck.auc:.3f}) | root-relative "
                f"{m.root_relative.mean_mm:.1f} mm | Procrustes {m.procrustes.mean_mm:.1f} mm")


def _check_result(result: Any, index: int) -> HandMeshResult | None:
    if result is None:
        return None
    if not isinstance(result, HandMeshResult):
        raise TypeError(f"frame {index}: predict() must return a HandMeshResult or None, got "
                        f"{type(result).__name__}")
    if np.shape(result.joints_m) != (21, 3):
        raise ValueError(f"frame {index}: predicted joints_m must be (21, 3), got "
                         f"{np.shape(result.joints_m)}")
    return result


def evaluate(estimator: HandMeshEstimator, samples: Iterable[StereoSample],
             out_dir: str | Path | None = None, config: EvalConfig | None = None,
             model_name: str = "", data_name: str = "") -> EvalReport:
    """Run ``estimator`` over labelled samples and compute every metric.

    Args:
        estimator: anything with ``predict(left, right, camera, roi=None)`` returning a
            :class:`~hand_mesh_core.pipeline.HandMeshResult` or None (a failure).
        samples: stereo samples with ``joints_m`` (21, 3), metres, left optical frame,
            canonical order. A ``torch.utils.data.Dataset`` or any iterable.
        out_dir: folder for ``metrics.json`` and the PNGs; None writes nothing.
        config: runner settings (metrics, number of overlays, frame limit, progress bar).
        model_name: recorded in the report.
        data_name: recorded in the report.

    Returns:
        The typed report.

    Raises:
        TypeError: the estimator has no ``predict``, or it returned something else than a
            HandMeshResult/None, or a sample is not a StereoSample.
        ValueError: a sample has no ``joints_m``, or there are no samples.
    """
    config = config or EvalConfig()
    if not isinstance(estimator, HandMeshEstimator):
        raise TypeError(f"estimator must implement HandMeshEstimator.predict, got "
                        f"{type(estimator).__name__}")
    total = len(samples) if isinstance(samples, Sized) else None
    if config.max_frames and total is not None:
        total = min(total, config.max_frames)
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)

    preds, gts, valid, frames, files = [], [], [], [], []
    overlays_left = config.n_overlays if out is not None else 0
    bar = tqdm(itertools.islice(iter(samples), config.max_frames or None), total=total,
               desc="evaluate", unit="frame", disable=not config.progress)
    for index, sample in enumerate(bar):
        if not isinstance(sample, StereoSample):
            raise TypeError(f"frame {index}: samples must be StereoSample, got "
                            f"{type(sample).__name__}")
        if sample.joints_m is None:
            raise ValueError(f"frame {index} ({sample.source or 'no source'}) has no joints_m: "
                             "evaluation needs labelled samples")
        gt = np.asarray(sample.joints_m, dtype=np.float64)
        start = time.perf_counter()
        result = _check_result(estimator.predict(sample.left, sample.right, sample.camera),
                               index)
        elapsed = time.perf_counter() - start
        pred = (np.asarray(result.joints_m, dtype=np.float64) if result is not None
                else np.full((21, 3), np.nan))
        ok = bool(np.isfinite(pred).all())  # None or non-finite joints: a failure
        err = float(np.linalg.norm(pred - gt, axis=-1).mean() * MM_PER_M) if ok else math.nan
        conf = math.nan if not ok or result.confidence is None else float(result.confidence)
        frames.append(FrameResult(index, sample.source, ok, err, conf, elapsed))
        preds.append(pred)
        gts.append(gt)
        valid.append(ok)
        if ok and overlays_left > 0:
            path = out / f"overlay_{index:05d}.png"
            plot_mesh_overlays(sample.left, [OverlayPanel("prediction", result.vertices_m,
                                                          result.joints_m)],
                               np.asarray(result.faces), sample.camera, path, gt_joints_m=gt,
                               title=sample.source, config=config.plots)
            files.append(str(path))
            overlays_left -= 1
        if ok:
            bar.set_postfix(abs_mm=f"{err:.1f}")
    if not frames:
        raise ValueError("no samples to evaluate")

    metrics = compute_joint_metrics(np.stack(preds), np.stack(gts), np.array(valid),
                                    config.metrics)
    report = EvalReport(metrics=metrics, frames=tuple(frames), model=model_name, data=data_name,
                        mean_time_s=float(np.mean([f.time_s for f in frames])))
    if out is None:
        return report
    if config.write_plots:
        files.append(str(plot_pck_curves(
            {ALIGNMENT_LABELS[a]: metrics.summary(a).pck for a in ALIGNMENTS}, out / "pck.png",
            title=f"3D PCK: {data_name or 'evaluation'}", config=config.plots)))
        files.append(str(plot_per_joint_errors(
            {ALIGNMENT_LABELS[a]: metrics.summary(a).per_joint_mm for a in ALIGNMENTS},
            out / "per_joint.png", title=f"Mean error per joint: {data_name or 'evaluation'}",
            config=config.plots)))
    metrics_path = out / METRICS_FILE
    files.append(str(metrics_path))
    report = EvalReport(metrics=metrics, frames=report.frames, model=model_name, data=data_name,
                        mean_time_s=report.mean_time_s, files=tuple(files))
    metrics_path.write_text(json.dumps({**report.to_dict(), "files": list(report.files)},
                                       indent=2, allow_nan=False))
    return report


def detect_dataset_kind(path: str | Path) -> str:
    """What a dataset folder holds: ``"synthetic"`` (``metadata.json``) or ``"stb"``
    (``labels/*.mat``).

    Raises:
        FileNotFoundError: ``path`` is not a directory.
        ValueError: neither layout is recognised.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {path}")
    if (path / SYNTH_METADATA_FILE).is_file():
        return "synthetic"
    if any((path / "labels").glob("*.mat")):
        return "stb"
    raise ValueError(f"unrecognised dataset folder {path}: expected {SYNTH_METADATA_FILE} "
                     "(a synthetic dataset written by the generator) or labels/*.mat (STB: "
                     "labels/<SEQ>_BB.mat and images/<SEQ>/BB_left_<i>.png); known kinds: "
                     f"{list(DATASET_KINDS)}")


def open_dataset(path: str | Path, split: str = "test") -> Iterable[StereoSample]:
    """Open a labelled dataset folder for :func:`evaluate` (dispatch on its layout).

    Args:
        path: a synthetic dataset folder (``hand-mesh synth --out``) or an STB root.
        split: synthetic: ``"train"`` or ``"test"``; STB: ``"test"`` (B1Counting, B1Random),
            ``"train"`` or ``"all"`` (missing sequences are skipped).

    Returns:
        An indexable dataset of :class:`StereoSample` with ``joints_m``.
    """
    kind = detect_dataset_kind(path)
    if kind == "stb":
        from hand_mesh_core.data.config import StbConfig
        from hand_mesh_core.data.stb import StbDataset

        dataset = StbDataset(path, StbConfig(split=split))
        if len(dataset) == 0:
            raise ValueError(f"STB folder {path}: no frame of split {split!r} has both "
                             "images (images/<SEQ>/BB_left_<i>.png, BB_right_<i>.png)")
        return dataset
    from hand_mesh_core.data.synth.dataset import SynthStereoDataset

    dataset = SynthStereoDataset(path, split=split)
    if len(dataset) == 0:
        raise ValueError(f"synthetic dataset {path}: split {split!r} is empty")
    return dataset
