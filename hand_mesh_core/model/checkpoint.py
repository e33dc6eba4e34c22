"""Checkpoints: safetensors weights + a JSON sidecar. Pickle files are refused.

A checkpoint ``name.safetensors`` comes with ``name.json`` holding::

    {"format": "hand_mesh_checkpoint", "format_version": 1,
     "network": {...NetworkConfig...}, "topology_hash": "...", "num_vertices": V,
     "weights_sha256": "...", "training_data": "...", "metrics": {...}, "extra": {...}}

Loading checks, in order: the file type (pickle suffixes are refused outright, they can run code
when loaded), that both files exist, the sidecar (valid JSON, right format, valid config), the
weights hash (a truncated or edited file is reported as corrupt), the topology hash against the
hand model in use, an optional expected config, and the tensor names and shapes.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from hand_mesh_core.config.base import ConfigError
from hand_mesh_core.model.config import NetworkConfig
from hand_mesh_core.model.network import HandMeshNet
from hand_mesh_core.model.topology import HandTopology

__all__ = ["CheckpointError", "CheckpointInfo", "save_checkpoint", "load_checkpoint",
           "read_checkpoint_info", "sidecar_path", "PICKLE_SUFFIXES", "WEIGHTS_SUFFIX",
           "FORMAT_NAME", "FORMAT_VERSION"]

#: File endings of pickle-based checkpoints (torch.save, joblib, ...): never loaded.
PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin", ".tar")
#: The only accepted weights format.
WEIGHTS_SUFFIX = ".safetensors"
#: Sidecar identification.
FORMAT_NAME = "hand_mesh_checkpoint"
FORMAT_VERSION = 1
_HASH_CHUNK = 1 << 20
#: Checkpoints are data, readable by all (safetensors writes 0600 files).
_FILE_MODE = 0o644


class CheckpointError(ValueError):
    """A checkpoint is refused: wrong format, corrupt, or made for another hand/network."""


@dataclass(frozen=True)
class CheckpointInfo:
    """The sidecar of a checkpoint.

    Attributes:
        network: the network settings.
        topology_hash: the hand model topology it was trained for.
        num_vertices: V.
        training_data: free text (dataset folders, domains, steps).
        metrics: name -> value (e.g. held-out errors in mm).
        extra: anything else JSON-serialisable (e.g. optimiser step, stage).
        weights_sha256: hash of the weights file.
    """

    network: NetworkConfig
    topology_hash: str
    num_vertices: int
    training_data: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    weights_sha256: str = ""


def sidecar_path(path: str | Path) -> Path:
    """``name.safetensors`` -> ``name.json``."""
    return Path(path).with_suffix(".json")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(_HASH_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_suffix(path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        raise CheckpointError(
            f"{path}: pickle checkpoints ({', '.join(PICKLE_SUFFIXES)}) are refused because "
            f"loading them can run arbitrary code; use a {WEIGHTS_SUFFIX} file with its JSON "
            "sidecar")
    if suffix != WEIGHTS_SUFFIX:
        raise CheckpointError(f"{path}: expected a {WEIGHTS_SUFFIX} file, got {suffix!r}")


def save_checkpoint(path: str | Path, model: HandMeshNet, *, training_data: str = "",
                    metrics: Mapping[str, float] | None = None,
                    extra: Mapping[str, Any] | None = None) -> Path:
    """Write ``path`` (.safetensors) and its JSON sidecar atomically (temp file + rename).

    Args:
        path: destination ending in ``.safetensors``.
        model: the network (a DDP wrapper is unwrapped).
        training_data: provenance text.
        metrics: scalar metrics to record.
        extra: other JSON-serialisable information.

    Returns:
        The weights path.
    """
    from safetensors.torch import save_file

    path = Path(path)
    _check_suffix(path)
    model = getattr(model, "module", model)
    if not isinstance(model, HandMeshNet):
        raise TypeError(f"model must be a HandMeshNet, got {type(model).__name__}")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp))
    tmp.chmod(_FILE_MODE)
    meta = {
        "format": FORMAT_NAME, "format_version": FORMAT_VERSION,
        "network": model.config.to_dict(), "topology_hash": model.topology_hash,
        "num_vertices": model.num_vertices, "weights_sha256": _sha256(tmp),
        "training_data": training_data,
        "metrics": {k: float(v) for k, v in (metrics or {}).items()},
        "extra": dict(extra or {}),
    }
    side = sidecar_path(path)
    side_tmp = side.with_name(side.name + ".tmp")
    side_tmp.write_text(json.dumps(meta, indent=2, sort_keys=True))
    tmp.replace(path)
    side_tmp.replace(side)
    return path


def read_checkpoint_info(path: str | Path) -> CheckpointInfo:
    """Read and validate the sidecar of ``path`` (does not read the weights).

    Raises:
        CheckpointError: pickle or unknown suffix, malformed sidecar, invalid config.
        FileNotFoundError: weights or sidecar missing.
    """
    path = Path(path)
    _check_suffix(path)
    side = sidecar_path(path)
    for p in (path, side):
        if not p.is_file():
            raise FileNotFoundError(f"checkpoint file not found: {p}")
    try:
        meta = json.loads(side.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{side}: corrupt sidecar, not valid JSON: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{side}: not a hand_mesh checkpoint sidecar "
                              f"(expected format {FORMAT_NAME!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{side}: format_version {meta.get('format_version')!r} is not "
                              f"supported (expected {FORMAT_VERSION})")
    missing = [k for k in ("network", "topology_hash", "num_vertices", "weights_sha256")
               if k not in meta]
    if missing:
        raise CheckpointError(f"{side}: corrupt sidecar, missing keys {missing}")
    try:
        network = NetworkConfig.from_dict(meta["network"])
    except ConfigError as exc:
        raise CheckpointError(f"{side}: invalid network config: {exc}") from exc
    return CheckpointInfo(network=network, topology_hash=str(meta["topology_hash"]),
                          num_vertices=int(meta["num_vertices"]),
                          training_data=str(meta.get("training_data", "")),
                          metrics=dict(meta.get("metrics", {})), extra=dict(meta.get("extra", {})),
                          weights_sha256=str(meta["weights_sha256"]))


def load_checkpoint(path: str | Path, topology: HandTopology | None = None,
                    expected_config: NetworkConfig | None = None,
                    device: torch.device | str = "cpu") -> tuple[HandMeshNet, CheckpointInfo]:
    """Load a network from a safetensors checkpoint, with every safety check.

    Args:
        path: the ``.safetensors`` file (its ``.json`` sidecar beside it).
        topology: the hand model topology in use; its hash must match the checkpoint's. When
            None, the default procedural hand model's topology is used.
        expected_config: when given, the stored NetworkConfig must equal it.
        device: where to put the network.

    Returns:
        ``(network in eval mode, info)``.

    Raises:
        CheckpointError: refused file type, corrupt files, topology or config mismatch.
        FileNotFoundError: a file is missing.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    info = read_checkpoint_info(path)
    if _sha256(path) != info.weights_sha256:
        raise CheckpointError(f"{path}: corrupt weights file (sha256 differs from the sidecar; "
                              "truncated or modified?)")
    if topology is None:
        topology = HandTopology.default()
    if info.topology_hash != topology.topology_hash or info.num_vertices != \
            topology.num_vertices:
        raise CheckpointError(
            f"{path}: made for a different hand model topology (checkpoint "
            f"{info.topology_hash[:12]}..., V={info.num_vertices}; current "
            f"{topology.topology_hash[:12]}..., V={topology.num_vertices}); retrain or use the "
            "matching hand model")
    if expected_config is not None and expected_config != info.network:
        want, got = expected_config.to_dict(), info.network.to_dict()
        diff = {k: (got[k], want[k]) for k in want if want[k] != got[k]}
        raise CheckpointError(f"{path}: network config differs from the expected one "
                              f"(field: (checkpoint, expected)): {diff}")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: corrupt safetensors file: {exc}") from exc
    model = HandMeshNet(info.network, topology)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{path}: tensors do not match the network: missing {missing}, "
                              f"unexpected {unexpected}")
    bad = [k for k in expected if tuple(expected[k].shape) != tuple(state[k].shape)]
    if bad:
        raise CheckpointError(f"{path}: tensor shapes do not match the network: {bad}")
    model.load_state_dict(state)
    return model.to(device).eval(), info
