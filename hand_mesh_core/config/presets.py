"""Find the shipped YAML presets (``config/<kind>/<name>.yaml``).

Looked up, in order: the source checkout (editable installs and running from the repo), then the
installed ROS share folder ``<prefix>/share/hand_mesh_ros/config`` (colcon or pip installs).
"""
from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["config_dirs", "preset_path", "list_presets"]

#: The ROS 2 package name, whose share folder holds the installed presets.
PACKAGE_NAME = "hand_mesh_ros"


def config_dirs() -> list[Path]:
    """Existing candidate ``config`` folders, most specific first."""
    candidates = [Path(__file__).resolve().parents[2] / "config",
                  Path(sys.prefix) / "share" / PACKAGE_NAME / "config"]
    return [c for c in candidates if c.is_dir()]


def list_presets(kind: str) -> list[str]:
    """Names of the presets of ``kind`` (e.g. "cameras", "domains")."""
    names: set[str] = set()
    for d in config_dirs():
        names.update(p.stem for p in (d / kind).glob("*.yaml"))
    return sorted(names)


def preset_path(kind: str, name_or_path: str | Path) -> Path:
    """Resolve a preset name (or an explicit path to a YAML file) to a file.

    Args:
        kind: preset folder, e.g. "cameras" or "domains".
        name_or_path: a preset name like "stb_bumblebee", or a path to a YAML file.

    Raises:
        FileNotFoundError: neither a file nor a known preset; the message lists the presets.
    """
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") and p.is_file():
        return p
    for d in config_dirs():
        candidate = d / kind / f"{name_or_path}.yaml"
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"no {kind} preset or YAML file {str(name_or_path)!r}; presets: {list_presets(kind)}")
