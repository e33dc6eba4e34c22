"""Make a pretrained checkpoint the shipped default: held-out metrics, confidence, sidecar.

``python -m hand_mesh_core.train.ship CKPT --out hand_mesh_core/assets/hand_mesh_default
.safetensors`` evaluates ``CKPT`` on held-out synthetic pairs of the SOURCE domain (the one it
was trained on) and, separately, of the TARGET domain (never seen: the "test directly" number of
the paper), fits the left-right-consistency confidence on another held-out source set, and
writes the checkpoint with every number in its sidecar. Pairs are rendered here (needs open3d)
and cropped around their labels (the network alone, no ROI finder).
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from hand_mesh_core.model.checkpoint import load_checkpoint, save_checkpoint
from hand_mesh_core.model.topology import HandTopology
from hand_mesh_core.train.calibrate import DEFAULT_THRESHOLD_MM, calibrate_confidence
from hand_mesh_core.train.heldout import evaluate_heldout

__all__ = ["ShipSets", "synth_sets", "ship_checkpoint", "main", "HELDOUT_SEED"]

#: Seed of the held-out pairs: training caches use seed 0, so seed 1000 never overlaps.
HELDOUT_SEED = 1000


@dataclass(frozen=True)
class ShipSets:
    """The held-out sets used to ship a checkpoint.

    Attributes:
        calibration: labelled source pairs for the confidence fit.
        source: labelled source pairs for the source metrics (disjoint from ``calibration``).
        target: labelled target-domain pairs (test-directly metrics).
        description: provenance text for the sidecar.
    """

    calibration: Sequence[Any]
    source: Sequence[Any]
    target: Sequence[Any]
    description: str


def synth_sets(source_domain: str, target_domain: str, count: int,
               seed: int = HELDOUT_SEED) -> ShipSets:
    """Render the held-out sets: source indices ``[0, count)`` (calibration) and
    ``[count, 2 count)`` (metrics), target indices ``[0, count)``, all with ``seed``."""
    from hand_mesh_core.data.synth.config import load_domain
    from hand_mesh_core.data.synth.generator import SynthGenerator

    if count < 2:
        raise ValueError(f"count must be >= 2, got {count}")
    src = SynthGenerator(load_domain(source_domain))
    tgt = SynthGenerator(load_domain(target_domain))
    cal = [src.generate(i, seed).to_stereo_sample(f"synth/{source_domain}")
           for i in range(count)]
    met = [src.generate(i, seed).to_stereo_sample(f"synth/{source_domain}")
           for i in range(count, 2 * count)]
    tg = [tgt.generate(i, seed).to_stereo_sample(f"synth/{target_domain}")
          for i in range(count)]
    text = (f"confidence calibrated on {count} held-out {source_domain} pairs (seed {seed}, "
            f"indices 0..{count - 1}); source metrics on {count} others (indices {count}.."
            f"{2 * count - 1}); target metrics on {count} {target_domain} pairs (seed {seed}, "
            f"indices 0..{count - 1}); ground-truth crops")
    return ShipSets(cal, met, tg, text)


def ship_checkpoint(checkpoint: str | Path, out: str | Path, sets: ShipSets,
                    threshold_mm: float = DEFAULT_THRESHOLD_MM, training_data: str = "",
                    topology: HandTopology | None = None) -> dict[str, float]:
    """Evaluate, calibrate and write ``checkpoint`` to ``out`` (+ sidecar).

    Args:
        checkpoint: the pretrained ``.safetensors``.
        out: destination ``.safetensors``.
        sets: held-out pairs.
        threshold_mm: "good hand" threshold of the confidence fit.
        training_data: provenance of the training run (default: the checkpoint's own).
        topology: the hand topology (default: the procedural hand model's).

    Returns:
        The metrics written to the sidecar.
    """
    model, info = load_checkpoint(checkpoint, topology)
    metrics: dict[str, float] = {}
    if "train_loss" in info.metrics:
        metrics["train_loss"] = float(info.metrics["train_loss"])
    metrics.update(evaluate_heldout(model, sets.source).to_dict("heldout_source_"))
    metrics.update(evaluate_heldout(model, sets.target).to_dict("heldout_target_"))
    fit = calibrate_confidence(model, sets.calibration, threshold_mm=threshold_mm)
    metrics.update(confidence_fit_accuracy=fit.accuracy,
                   confidence_positive_rate=fit.positive_rate)
    extra = dict(info.extra)
    extra["confidence_threshold_mm"] = float(threshold_mm)
    extra["heldout"] = sets.description
    save_checkpoint(out, model, training_data=training_data or info.training_data,
                    metrics=metrics, extra=extra)
    return metrics


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Command line: see the module docstring. Prints the metrics as JSON."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("checkpoint", type=Path, help="pretrained .safetensors")
    p.add_argument("--out", type=Path, required=True, help="destination .safetensors")
    p.add_argument("--source-domain", default="source_studio", help="training domain preset")
    p.add_argument("--target-domain", default="target_lab", help="unseen domain preset")
    p.add_argument("--count", type=int, default=48, help="pairs per held-out set (count)")
    p.add_argument("--threshold-mm", type=float, default=DEFAULT_THRESHOLD_MM,
                   help="confidence 'good hand' threshold (mm)")
    p.add_argument("--training-data", default="", help="provenance text (default: keep)")
    args = p.parse_args(argv)
    sets = synth_sets(args.source_domain, args.target_domain, args.count)
    metrics = ship_checkpoint(args.checkpoint, args.out, sets, args.threshold_mm,
                              args.training_data)
    print(json.dumps(metrics, indent=1))
    return metrics


if __name__ == "__main__":  # pragma: no cover
    main()
