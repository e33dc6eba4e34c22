"""The ``hand-mesh`` command line.

Each subcommand lives in its own module of this package and exposes::

    NAME: str                                   # the subcommand, e.g. "hand"
    HELP: str                                   # one line for ``hand-mesh --help``
    def add_arguments(parser: argparse.ArgumentParser) -> None
    def run(args: argparse.Namespace) -> int    # exit code

Modules are discovered automatically. Errors that are the user's (bad arguments, missing files,
invalid configs) are raised as :class:`CliError` or ``ValueError``/``FileNotFoundError`` and turn
into one line on stderr with exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import Sequence

from hand_mesh_core.config.base import ConfigError

__all__ = ["main", "build_parser", "CliError", "EXIT_USAGE"]

#: Exit code for usage errors (argparse's convention).
EXIT_USAGE = 2


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def _subcommand_modules() -> list:
    import hand_mesh_core.cli as pkg

    mods = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if info.name.startswith("_") or info.name == "main":
            continue
        mod = importlib.import_module(f"hand_mesh_core.cli.{info.name}")
        if all(hasattr(mod, a) for a in ("NAME", "HELP", "add_arguments", "run")):
            mods.append(mod)
    return mods


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every discovered subcommand."""
    parser = _Parser(prog="hand-mesh",
                     description="Absolute 3D hand mesh recovery from rectified stereo images.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for mod in _subcommand_modules():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``hand-mesh``. Returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args._run(args) or 0)
    except (CliError, ConfigError, ValueError, FileNotFoundError, PermissionError) as exc:
        sys.stderr.write(f"hand-mesh {args.command}: error: {exc}\n")
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
