"""``hand-mesh bench TARGET``: micro-benchmarks, printed as JSON.

Targets are registered in :data:`TARGETS` as ``name -> module``; each module exposes
``run_benchmark(args: argparse.Namespace) -> dict``. To add one (e.g. "node", "hand"), write
the module and add a line to :data:`TARGETS`.
"""
from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path

__all__ = ["NAME", "HELP", "TARGETS", "add_arguments", "run"]

NAME = "bench"
HELP = "time a subsystem (render, ...) and print JSON"

#: Benchmark targets: name -> module with ``run_benchmark(args) -> dict``.
TARGETS = {
    "render": "hand_mesh_core.render.bench",
}
#: Default timed runs per measurement (median reported) and untimed warm-up runs.
DEFAULT_REPEATS = 20
DEFAULT_WARMUP = 3
DEVICES = ("auto", "cpu", "cuda")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the subcommand's arguments."""
    parser.add_argument("target", choices=sorted(TARGETS), help="what to benchmark")
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS,
                        help=f"timed runs per measurement (default {DEFAULT_REPEATS})")
    parser.add_argument("--warmup", type=int, default=DEFAULT_WARMUP,
                        help=f"untimed runs first (default {DEFAULT_WARMUP})")
    parser.add_argument("--device", choices=DEVICES, default="auto",
                        help="auto = CPU, plus CUDA when available")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: fastest on a shared machine; "
                             "0 keeps torch's default)")
    parser.add_argument("--output", type=Path, default=None, help="also write the JSON here")


def run(args: argparse.Namespace) -> int:
    """Run the chosen benchmark and print its JSON."""
    if args.repeats < 1 or args.warmup < 0 or args.threads < 0:
        raise ValueError(f"need --repeats >= 1, --warmup >= 0, --threads >= 0; got "
                         f"{args.repeats}, {args.warmup}, {args.threads}")
    module = importlib.import_module(TARGETS[args.target])
    result = {"target": args.target, **module.run_benchmark(args)}
    text = json.dumps(result, indent=2)
    print(text)
    if args.output is not None:
        args.output.write_text(text + "\n")
    return 0
