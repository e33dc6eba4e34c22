"""``hand-mesh adapt``: stage-2 self-supervised adaptation on unlabelled target stereo pairs."""
from __future__ import annotations

import argparse
import itertools
from pathlib import Path
from typing import Any

from hand_mesh_core.cli.main import CliError

NAME = "adapt"
HELP = "stage 2: self-supervised adaptation of a pretrained network on unlabelled stereo pairs"

#: rosbag2 single-file endings.
_BAG_SUFFIXES = (".mcap", ".db3")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="default",
                        help="pretrained .safetensors checkpoint, or 'default' (shipped)")
    parser.add_argument("--data", type=Path, required=True,
                        help="target pairs: a synthetic dataset folder (metadata.json), an STB "
                        "folder (labels/*.mat; labels are NOT used), or a rosbag2 bag (folder "
                        "with metadata.yaml, or a .mcap/.db3 file)")
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder: adapted.safetensors + .json, adapt_log.csv")
    parser.add_argument("--config", type=Path, help="AdaptConfig YAML (unknown keys refused)")
    parser.add_argument("--frames", type=int,
                        help="test-time mode: adapt on the first N pairs (count)")
    parser.add_argument("--max-pairs", type=int, default=2000,
                        help="read at most this many pairs from a bag (count)")
    parser.add_argument("--steps", type=int, help="optimiser steps (count)")
    parser.add_argument("--lr", type=float, help="learning rate (1/step)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], help="device")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def load_target(path: Path, max_pairs: int) -> tuple[Any, str]:
    """Target pairs from a synthetic folder, an STB folder or a rosbag2 bag."""
    if not path.exists():
        raise FileNotFoundError(f"target data not found: {path}")
    if path.suffix in _BAG_SUFFIXES or (path / "metadata.yaml").is_file():
        from hand_mesh_core.data.rosbag_reader import RosbagStereoReader

        return list(itertools.islice(iter(RosbagStereoReader(path)), max_pairs)), "rosbag2"
    if (path / "metadata.json").is_file():
        from hand_mesh_core.cli.pretrain import load_labelled_folder

        return load_labelled_folder(path, "train"), "synthetic"
    if list(path.glob("labels/*.mat")):
        from hand_mesh_core.data.stb import StbDataset

        return StbDataset(path), "stb"
    raise CliError(f"{path}: not a synthetic dataset (metadata.json), an STB folder "
                   "(labels/*.mat) or a rosbag2 bag (metadata.yaml, .mcap, .db3)")


def run(args: argparse.Namespace) -> int:
    from hand_mesh_core.model.checkpoint import load_checkpoint
    from hand_mesh_core.pipeline import default_model_path
    from hand_mesh_core.train.adapt import adapt
    from hand_mesh_core.train.config import AdaptConfig

    cfg = AdaptConfig.from_yaml(args.config) if args.config else AdaptConfig()
    changes = {k: v for k, v in (("steps", args.steps), ("lr", args.lr),
                                 ("device", args.device)) if v is not None}
    if args.steps is not None:  # a short run still gets its guard evaluations
        changes["eval_every"] = min(cfg.eval_every, args.steps)
    if changes:
        cfg = cfg.replace(**changes)
    if args.frames is not None and args.frames < 1:
        raise CliError(f"--frames must be >= 1, got {args.frames}")
    model_path = default_model_path() if args.model == "default" else Path(args.model)
    model, _ = load_checkpoint(model_path)
    samples, kind = load_target(args.data, args.max_pairs)
    res = adapt(cfg, model, samples, args.out, frames=args.frames,
                training_data=f"adapted from {model_path} on {kind} {args.data}",
                progress=not args.no_progress)
    print(res.message)
    return 0
