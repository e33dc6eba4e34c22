"""``hand-mesh eval``: evaluate a model on a labelled dataset folder (synthetic or STB).

Writes ``metrics.json``, ``pck.png``, ``per_joint.png`` and a few overlays to ``--out`` and prints
one summary line. Frames without a detected hand count as failures (excluded from mean errors,
misses in PCK). On STB (without ``--config``) the root-relative root is STB's palm centre.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
from pathlib import Path

from hand_mesh_core.cli.main import CliError

NAME = "eval"
HELP = "evaluate a model on a labelled dataset folder (synthetic or STB): metrics, PCK, plots"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True,
                        help="checkpoint (.safetensors) or 'default' for the shipped model")
    parser.add_argument("--data", required=True, type=Path,
                        help="dataset folder: synthetic (has metadata.json) or STB root "
                             "(has labels/*.mat)")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument("--config", type=Path, default=None,
                        help="EvalConfig YAML (metrics thresholds, root joints, overlays)")
    parser.add_argument("--split", default="test", choices=("test", "train", "all"),
                        help="split to evaluate (default: test; synthetic: train/test, STB: "
                             "the paper's test/train sequences or all)")
    parser.add_argument("--max-frames", type=int, default=None,
                        help="evaluate at most this many frames")
    parser.add_argument("--overlays", type=int, default=None,
                        help="number of frames drawn as mesh overlays")
    parser.add_argument("--handedness", default="auto", choices=("auto", "left", "right"),
                        help="hand the model reports; auto = that of the first sample "
                             "(STB: left)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _load_estimator(model: str, device: str, handedness: str):
    pipeline = importlib.import_module("hand_mesh_core.pipeline")
    load = getattr(pipeline, "load_estimator", None)
    if load is None:
        raise CliError("model loading is not available "
                       "(hand_mesh_core.pipeline.load_estimator is missing)")
    if model != "default" and not Path(model).is_file():
        raise FileNotFoundError(f"model checkpoint not found: {model} (or use 'default')")
    if "handedness" in inspect.signature(load).parameters:
        return load(model, device, handedness=handedness)
    return load(model, device)


def run(args: argparse.Namespace) -> int:
    from hand_mesh_core.eval.config import STB_PALM_ROOT, EvalConfig, MetricsConfig
    from hand_mesh_core.eval.evaluate import detect_dataset_kind, evaluate, open_dataset

    kind = detect_dataset_kind(args.data)  # fail on a bad folder before loading the model
    if args.config:
        config = EvalConfig.from_yaml(args.config)
    elif kind == "stb":  # STB protocol: root-relative errors w.r.t. the labelled palm centre
        config = EvalConfig(metrics=MetricsConfig(root_joints=STB_PALM_ROOT))
    else:
        config = EvalConfig()
    changes = {}
    if args.max_frames is not None:
        changes["max_frames"] = args.max_frames
    if args.overlays is not None:
        changes["n_overlays"] = args.overlays
    if args.no_progress:
        changes["progress"] = False
    config = config.replace(**changes) if changes else config
    samples = open_dataset(args.data, split=args.split)
    handedness = args.handedness
    if handedness == "auto":
        handedness = next(iter(samples)).handedness
    estimator = _load_estimator(args.model, args.device, handedness)
    report = evaluate(estimator, samples, args.out, config, model_name=str(args.model),
                      data_name=f"{kind}:{args.data}")
    print(report.summary_line())
    print(f"wrote {args.out / 'metrics.json'}")
    return 0
