"""``hand-mesh pretrain``: stage-1 supervised pretraining on labelled stereo pairs."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hand_mesh_core.cli.main import CliError

NAME = "pretrain"
HELP = "stage 1: supervised pretraining of the binocular hand mesh network"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, help="synthetic dataset folder (with metadata.json) "
                     "written by `hand-mesh synth`")
    src.add_argument("--synth-domain", help="generate the training pairs in memory from this "
                     "domain preset name or YAML path (e.g. source_studio)")
    parser.add_argument("--split", default="train", choices=["train", "test"],
                        help="split of the --data folder")
    parser.add_argument("--count", type=int, default=256,
                        help="pairs to generate with --synth-domain (count)")
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder: pretrained.safetensors + .json, last.*, log.csv")
    parser.add_argument("--config", type=Path, help="PretrainConfig YAML (unknown keys are "
                        "refused); the options below override it")
    parser.add_argument("--steps", type=int, help="optimiser steps (count)")
    parser.add_argument("--batch-size", type=int, help="pairs per step (count)")
    parser.add_argument("--lr", type=float, help="peak learning rate (1/step)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], help="device")
    parser.add_argument("--seed", type=int, help="random seed (integer)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from OUT/last.safetensors")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _config(args: argparse.Namespace) -> Any:
    from hand_mesh_core.train.config import PretrainConfig

    cfg = PretrainConfig.from_yaml(args.config) if args.config else PretrainConfig()
    changes = {k: v for k, v in (("steps", args.steps), ("batch_size", args.batch_size),
                                 ("lr", args.lr), ("device", args.device),
                                 ("seed", args.seed)) if v is not None}
    return cfg.replace(**changes) if changes else cfg


def _synth_samples(domain: str, count: int, seed: int) -> list:
    from hand_mesh_core.data.synth.config import load_domain
    from hand_mesh_core.data.synth.generator import SynthGenerator

    if count <= 0:
        raise CliError(f"--count must be > 0, got {count}")
    gen = SynthGenerator(load_domain(domain))
    return [gen.generate(i, seed).to_stereo_sample(f"synth/{domain}") for i in range(count)]


def load_labelled_folder(path: Path, split: str = "train") -> Any:
    """The labelled dataset in ``path`` (the synthetic layout of ``hand-mesh synth``)."""
    if not path.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {path}")
    if not (path / "metadata.json").is_file():
        raise CliError(f"{path}: not a synthetic dataset folder (no metadata.json); "
                       "pretraining needs vertex labels")
    from hand_mesh_core.data.synth.dataset import SynthStereoDataset

    return SynthStereoDataset(path, split=split)


def run(args: argparse.Namespace) -> int:
    from hand_mesh_core.train.pretrain import pretrain

    cfg = _config(args)
    if args.data is not None:
        samples = load_labelled_folder(args.data, args.split)
        origin = f"{args.data} ({args.split} split)"
    else:
        samples = _synth_samples(args.synth_domain, args.count, cfg.seed)
        origin = f"synth domain {args.synth_domain}, {args.count} pairs, seed {cfg.seed}"
    res = pretrain(cfg, samples, args.out, resume=args.resume,
                   training_data=f"{origin}; {cfg.steps} steps",
                   progress=not args.no_progress)
    print(f"pretrained {res.steps} steps in {res.seconds:.1f} s; final loss "
          f"{res.final_loss:.4f}; checkpoint {res.checkpoint}")
    return 0
