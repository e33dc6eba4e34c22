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
    src.add_argument("--crop-cache", type=Path, help="crop cache folder (cache.npz + "
                     "meta.json) written with --write-crop-cache; needs no open3d")
    parser.add_argument("--split", default="train", choices=["train", "test"],
                        help="split of the --data folder")
    parser.add_argument("--count", type=int, default=256,
                        help="pairs to generate with --synth-domain (count)")
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder: pretrained.safetensors + .json, last.*, log.csv "
                        "(with --write-crop-cache: the crop cache folder; no training)")
    parser.add_argument("--write-crop-cache", action="store_true",
                        help="write the labelled pairs as a crop cache to --out and stop")
    parser.add_argument("--start", type=int, default=0,
                        help="first sample index with --synth-domain (index)")
    parser.add_argument("--config", type=Path, help="PretrainConfig YAML (unknown keys are "
                        "refused); the options below override it")
    parser.add_argument("--steps", type=int, help="optimiser steps (count)")
    parser.add_argument("--batch-size", type=int, help="pairs per step (count)")
    parser.add_argument("--lr", type=float, help="peak learning rate (1/step)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], help="device")
    parser.add_argument("--seed", type=int, help="random seed (integer)")
    parser.add_argument("--workers", type=int, help="DataLoader worker processes (count)")
    parser.add_argument("--max-time-s", type=float, help="wall-time budget; the schedule "
                        "decays within it (s, 0 = off)")
    parser.add_argument("--init", type=Path, help="start from this checkpoint's weights "
                        "(.safetensors, same network config; fresh optimiser)")
    parser.add_argument("--photometric", action="store_true", default=None,
                        help="colour jitter + blur per pair (overrides the config)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from OUT/last.safetensors")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _config(args: argparse.Namespace) -> Any:
    from hand_mesh_core.train.config import PretrainConfig

    cfg = PretrainConfig.from_yaml(args.config) if args.config else PretrainConfig()
    changes = {k: v for k, v in (("steps", args.steps), ("batch_size", args.batch_size),
                                 ("lr", args.lr), ("device", args.device),
                                 ("seed", args.seed), ("workers", args.workers),
                                 ("max_time_s", args.max_time_s),
                                 ("photometric", args.photometric)) if v is not None}
    return cfg.replace(**changes) if changes else cfg


class _SynthSamples:
    """``count`` generated pairs of ``domain`` from index ``start`` (rendered on access)."""

    def __init__(self, domain: str, count: int, seed: int, start: int = 0) -> None:
        from hand_mesh_core.data.synth.config import load_domain
        from hand_mesh_core.data.synth.generator import SynthGenerator

        if count <= 0:
            raise CliError(f"--count must be > 0, got {count}")
        if start < 0:
            raise CliError(f"--start must be >= 0, got {start}")
        self.domain, self.count, self.seed, self.start = domain, count, seed, start
        self.gen = SynthGenerator(load_domain(domain))

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> Any:
        if not 0 <= i < self.count:
            raise IndexError(i)
        return self.gen.generate(self.start + i, self.seed).to_stereo_sample(
            f"synth/{self.domain}")


def _synth_samples(domain: str, count: int, seed: int, start: int = 0) -> list:
    src = _SynthSamples(domain, count, seed, start)
    return [src[i] for i in range(count)]


def load_labelled_folder(path: Path, split: str = "train") -> Any:
    """The labelled dataset in ``path`` (the synthetic layout of ``hand-mesh synth``)."""
    if not path.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {path}")
    if not (path / "metadata.json").is_file():
        raise CliError(f"{path}: not a synthetic dataset folder (no metadata.json); "
                       "pretraining needs vertex labels")
    from hand_mesh_core.data.synth.dataset import SynthStereoDataset

    return SynthStereoDataset(path, split=split)


def _write_cache(args: argparse.Namespace, cfg: Any) -> int:
    from hand_mesh_core.model.topology import HandTopology
    from hand_mesh_core.train.crop_cache import CropCacheSpec, write_crop_cache

    if args.synth_domain is None:
        raise CliError("--write-crop-cache needs --synth-domain (the pairs to cache)")
    src = _SynthSamples(args.synth_domain, args.count, cfg.seed, args.start)
    spec = CropCacheSpec(margin_frac=cfg.margin_frac)
    write_crop_cache((src[i] for i in range(len(src))), args.out, spec,
                     provenance=f"synth domain {args.synth_domain}, {args.count} pairs from "
                     f"index {args.start}, seed {cfg.seed}",
                     topology_hash=HandTopology.default().topology_hash)
    print(f"wrote a crop cache of {args.count} pairs to {args.out}")
    return 0


def run(args: argparse.Namespace) -> int:
    from hand_mesh_core.train.pretrain import pretrain

    cfg = _config(args)
    if args.write_crop_cache:
        return _write_cache(args, cfg)
    if args.crop_cache is not None:
        from hand_mesh_core.train.crop_cache import CropCache

        samples = CropCache(args.crop_cache)
        origin = f"crop cache {args.crop_cache} ({samples.provenance})"
    elif args.data is not None:
        samples = load_labelled_folder(args.data, args.split)
        origin = f"{args.data} ({args.split} split)"
    else:
        samples = _synth_samples(args.synth_domain, args.count, cfg.seed, args.start)
        origin = (f"synth domain {args.synth_domain}, {args.count} pairs from index "
                  f"{args.start}, seed {cfg.seed}")
    init = f"; initialised from {args.init}" if args.init else ""
    budget = f" (or {cfg.max_time_s:g} s)" if cfg.max_time_s > 0 else ""
    res = pretrain(cfg, samples, args.out, resume=args.resume, init_weights=args.init,
                   training_data=f"{origin}; up to {cfg.steps} steps{budget}{init}",
                   progress=not args.no_progress)
    print(f"pretrained {res.steps} steps in {res.seconds:.1f} s; final loss "
          f"{res.final_loss:.4f}; checkpoint {res.checkpoint}")
    return 0
