"""``hand-mesh synth``: render a synthetic stereo data set of one domain."""
from __future__ import annotations

import argparse
import os
import sys

from hand_mesh_core.cli.main import CliError

NAME = "synth"
HELP = "render a synthetic stereo hand data set (domain preset or YAML)"

#: Default number of samples shown by --preview.
PREVIEW_COUNT = 8
#: The module the writer's worker processes import (``writer._pool_context`` preloads it in
#: the fork server); named here so that the server can start before this process imports it.
WORKER_MODULE = "hand_mesh_core.data.synth.writer"


def _start_fork_server() -> None:
    """Start the fork server of the writer's workers now, so that its imports (torch, open3d,
    cv2: ~2.5 s of one core) run while this process does its own imports, instead of after
    them. ``write_dataset`` then finds the server running. No-op without "forkserver"."""
    import multiprocessing as mp

    if "forkserver" not in mp.get_all_start_methods():
        return
    from multiprocessing import forkserver

    mp.get_context("forkserver").set_forkserver_preload([WORKER_MODULE])
    forkserver.ensure_running()


def default_workers(count: int) -> int:
    """Worker processes when ``--workers`` is not given: one per CPU this process may run on
    (its affinity mask, e.g. a container's or ``taskset``'s limit), at most ``count``."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, count))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``hand-mesh synth``."""
    parser.add_argument("--domain", required=True,
                        help="domain preset name (config/domains/<name>.yaml) or a YAML path")
    parser.add_argument("--count", type=int, required=True, help="number of stereo pairs (> 0)")
    parser.add_argument("--seed", type=int, default=0, help="run seed (>= 0)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--workers", type=int, default=None,
                        help="processes (>= 1; default: the CPUs this process may use, at most "
                        "--count)")
    parser.add_argument("--split-test", type=float, default=0.2,
                        help="fraction of samples (the last ones) in the test split, [0, 1)")
    parser.add_argument("--camera-scale", type=float, default=1.0,
                        help="resize the domain's camera by this factor (e.g. 0.25 for tests)")
    parser.add_argument("--preview", default="", help="also save a contact sheet PNG here")
    parser.add_argument("--preview-count", type=int, default=PREVIEW_COUNT,
                        help="samples on the contact sheet")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    """Render and write; prints a one-line summary."""
    if args.count <= 0:
        raise CliError(f"--count must be > 0, got {args.count}")
    if args.seed < 0:
        raise CliError(f"--seed must be >= 0, got {args.seed}")
    if args.workers is not None and args.workers < 1:
        raise CliError(f"--workers must be >= 1, got {args.workers}")
    args.workers = default_workers(args.count) if args.workers is None else args.workers
    if not 0.0 <= args.split_test < 1.0:
        raise CliError(f"--split-test must be in [0, 1), got {args.split_test}")
    if not args.camera_scale > 0:
        raise CliError(f"--camera-scale must be > 0, got {args.camera_scale}")
    if args.preview_count < 1:
        raise CliError(f"--preview-count must be >= 1, got {args.preview_count}")
    if args.workers > 1:
        _start_fork_server()
    import torch

    from hand_mesh_core.data.synth.config import load_domain
    from hand_mesh_core.data.synth.dataset import SynthStereoDataset
    from hand_mesh_core.data.synth.preview import save_contact_sheet
    from hand_mesh_core.data.synth.writer import SPLITS, tune_malloc, write_dataset

    torch.set_num_threads(1)
    tune_malloc()  # this process renders too (workers == 1, or while the workers start)
    domain = load_domain(args.domain)
    if args.camera_scale != 1.0:
        domain = domain.with_camera(domain.camera.scaled(args.camera_scale))
    result = write_dataset(args.out, domain, args.count, seed=args.seed, workers=args.workers,
                           test_fraction=args.split_test, progress=not args.no_progress)
    print(f"wrote {args.count} pairs of {domain.name} to {result.out} "
          f"({result.counts}) in {result.seconds:.1f} s = {result.pairs_per_s:.2f} pairs/s "
          f"({result.steady_pairs_per_s:.2f} pairs/s after start-up) with {args.workers} "
          "worker(s)")
    if args.preview:
        samples = []
        for split in SPLITS:
            if result.counts[split]:
                ds = SynthStereoDataset(args.out, split)
                samples += [ds[i] for i in range(min(len(ds), args.preview_count - len(samples)))]
        path = save_contact_sheet(args.preview, samples, columns=2)
        print(f"preview: {path}", file=sys.stderr)
    return 0
