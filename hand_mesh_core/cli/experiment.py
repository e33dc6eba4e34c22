"""``hand-mesh experiment table1|table2``: reproduce the paper's tables on synthetic domains.

Pretrains on the source domain (or starts from ``pretrained_checkpoint``), trains each row's
model on the target domain (table1: none, binocular self-supervised, monocular z-head
self-supervised, supervised oracle; table2: binocular with one loss dropped per row) and evaluates
every row on a held-out target test split; writes ``<table>.json``, ``<table>.md`` (ready for
docs/results.md) and a PCK plot to ``--out``.
"""
from __future__ import annotations

import argparse
import platform
import shlex
from datetime import datetime, timezone
from pathlib import Path

from hand_mesh_core.cli.main import CliError

NAME = "experiment"
HELP = "reproduce the paper's Table 1 (transfer) or Table 2 (loss ablation) on synthetic data"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("table", choices=("table1", "table2"), help="which table")
    preset = parser.add_mutually_exclusive_group()
    preset.add_argument("--quick", action="store_true",
                        help="CPU preset (ExperimentConfig.preset('quick', table)): the "
                        "shipped checkpoint, small target sets; < 15 min on 2 cores")
    preset.add_argument("--config", type=Path, default=None, help="ExperimentConfig YAML")
    parser.add_argument("--out", type=Path, default=Path("runs/experiments"),
                        help="output folder (default: runs/experiments)")
    parser.add_argument("--device", default=None, help="torch device (overrides the config)")
    parser.add_argument("--rows", default=None,
                        help="comma-separated row keys to run (default: every row); table1: "
                             "test_directly, self_supervised_binocular, "
                             "self_supervised_monocular (z-head, tested on the left image "
                             "only), supervised_oracle (fine-tuned on target labels); table2: "
                             "self_supervised_binocular, without_<loss>")
    parser.add_argument("--merge", type=Path, nargs="+", default=None, metavar="DIR",
                        help="merge the <table>.json of runs that each made some rows (same "
                             "config apart from --rows) into --out/<table>; trains nothing")
    parser.add_argument("--print-config", action="store_true",
                        help="print the resolved configuration as YAML and exit")


def run(args: argparse.Namespace) -> int:
    from hand_mesh_core.eval.experiments import (
        BackendUnavailable, ExperimentConfig, default_backend, render_markdown, run_table,
    )

    if args.merge:
        return _merge(args)

    if args.config is not None:
        config = ExperimentConfig.from_yaml(args.config)
    else:
        config = ExperimentConfig.preset("quick" if args.quick else "full", args.table)
    if args.device is not None:
        config = config.replace(device=args.device)
    if args.rows is not None:
        config = config.replace(rows=[r.strip() for r in args.rows.split(",") if r.strip()])
    if args.print_config:
        print(config.to_yaml(), end="")
        return 0
    command = ["hand-mesh", "experiment", args.table]
    for flag, value in (("--quick", args.quick), ("--config", args.config),
                        ("--device", args.device), ("--rows", args.rows)):
        if value:
            command += [flag] if value is True else [flag, str(value)]
    notes = (f"Command: `{shlex.join(command)}`; {platform.machine()} "
             f"{platform.system()}, device {config.device}, "
             f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.")
    try:
        result = run_table(args.table, config, default_backend(), args.out / args.table,
                           notes=notes, progress=True)
    except BackendUnavailable as exc:
        raise CliError(str(exc)) from exc
    print(render_markdown(result), end="")
    print(f"wrote {args.out / args.table / (args.table + '.json')}")
    return 0


def _merge(args: argparse.Namespace) -> int:
    import json

    from hand_mesh_core.eval.experiments import TableResult, merge_tables, render_markdown

    parts = []
    for folder in args.merge:
        path = folder / f"{args.table}.json"
        if not path.is_file():
            raise CliError(f"--merge: no {path}")
        try:
            parts.append(TableResult.from_dict(json.loads(path.read_text())))
        except (ValueError, KeyError, TypeError) as exc:
            raise CliError(f"--merge: {path} is not a {args.table} result: {exc}") from exc
    try:
        result = merge_tables(parts, notes="Merged with `hand-mesh experiment "
                              f"{args.table} --merge {' '.join(str(f) for f in args.merge)}`.")
    except ValueError as exc:
        raise CliError(f"--merge: {exc}") from exc
    js, _ = result.write(args.out / args.table)
    print(render_markdown(result), end="")
    print(f"wrote {js}")
    return 0
