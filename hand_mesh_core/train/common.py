"""Shared training plumbing: devices, schedule, distributed set-up, safetensors training state."""
from __future__ import annotations

import contextlib
import csv
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import torch
import torch.distributed as dist

from hand_mesh_core.model.checkpoint import load_checkpoint, save_checkpoint
from hand_mesh_core.model.network import HandMeshNet
from hand_mesh_core.model.topology import HandTopology

__all__ = ["resolve_device", "cosine_lr", "freeze_batchnorm", "eval_mode", "reestimate_batchnorm",
           "DistInfo", "init_distributed", "CsvLogger", "save_training_state",
           "load_training_state", "TRAIN_STATE_NAME"]

#: File stem of the resumable state inside an output folder.
TRAIN_STATE_NAME = "last"


def resolve_device(device: str) -> torch.device:
    """"auto" -> cuda when available else cpu; "cuda" without CUDA is an error."""
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be one of ['auto', 'cpu', 'cuda'], got {device!r}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available")
    return torch.device(device)


def freeze_batchnorm(model: torch.nn.Module) -> None:
    """Put every batch-norm layer of ``model`` in eval mode: its running statistics stay as
    they are while the rest trains (fine-tuning with small batches)."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """``model`` in eval mode inside the block; every submodule's own mode is restored after
    (``model.train(was_training)`` would also switch frozen batch-norm layers back to train)."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training


def reestimate_batchnorm(model: torch.nn.Module, batches: Iterable[Any],
                         forward: Callable[[torch.nn.Module, Any], Any]) -> int:
    """Recompute every batch-norm layer's running statistics on new data (AdaBN).

    The statistics become the plain average over ``batches`` (``momentum=None``), without
    gradients; weights and biases are untouched. Li et al., "Adaptive Batch Normalization for
    practical domain adaptation", Pattern Recognition 80, 2018: the source-domain statistics
    are a large part of the domain gap.

    Args:
        model: the network (its mode is restored afterwards).
        batches: the target data, one item per forward pass.
        forward: ``forward(model, batch)`` runs the network on one item.

    Returns:
        The number of batch-norm layers updated (0: nothing to do).
    """
    layers = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not layers:
        return 0
    modes = [(m, m.training) for m in model.modules()]
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None
    model.eval()
    for m in layers:
        m.train()
    try:
        with torch.no_grad():
            for batch in batches:
                forward(model, batch)
    finally:
        for m, momentum in zip(layers, momenta):
            m.momentum = momentum
        for m, training in modes:
            m.training = training
    return len(layers)


def cosine_lr(step: int, total_steps: int, warmup_steps: int, min_frac: float) -> float:
    """Learning-rate factor: linear warm-up to 1, then cosine decay to ``min_frac``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(total_steps - warmup_steps, 1)
    t = min(max(step - warmup_steps, 0) / span, 1.0)
    return min_frac + (1.0 - min_frac) * 0.5 * (1.0 + math.cos(math.pi * t))


@dataclass(frozen=True)
class DistInfo:
    """Process group membership (world 1 when not distributed)."""

    rank: int
    world_size: int
    local_rank: int
    initialized_here: bool

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints and logs."""
        return self.rank == 0


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group described by torchrun's environment (RANK, WORLD_SIZE,
    MASTER_ADDR, MASTER_PORT); nccl on CUDA, gloo on CPU. World 1 when WORLD_SIZE is unset."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(0, 1, 0, False)
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    if dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), local, False)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistInfo(rank, world, local, True)


class CsvLogger:
    """Append rows of scalars to a CSV file (header from the first row)."""

    def __init__(self, path: str | Path, append: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fields: list[str] | None = None
        if append and self.path.is_file():
            with self.path.open() as f:
                header = f.readline().strip()
            self._fields = header.split(",") if header else None
        elif self.path.exists():
            self.path.unlink()

    def log(self, row: Mapping[str, Any]) -> None:
        """Write one row."""
        new = self._fields is None
        if new:
            self._fields = list(row)
        with self.path.open("a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self._fields, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


def save_training_state(out_dir: str | Path, model: HandMeshNet,
                        optimizer: torch.optim.Optimizer, step: int, *, training_data: str = "",
                        metrics: Mapping[str, float] | None = None,
                        extra: Mapping[str, Any] | None = None) -> Path:
    """Resumable state without pickle: weights checkpoint ``last.safetensors`` (+ sidecar) and
    optimiser tensors ``last_optim.safetensors`` + ``last_optim.json`` (param groups, step)."""
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    path = save_checkpoint(out_dir / f"{TRAIN_STATE_NAME}.safetensors", model,
                           training_data=training_data, metrics=metrics,
                           extra={**dict(extra or {}), "step": int(step)})
    sd = optimizer.state_dict()
    tensors = {f"state.{i}.{k}": (v if torch.is_tensor(v) else torch.tensor(v)).detach().cpu()
               .contiguous() for i, st in sd["state"].items() for k, v in st.items()}
    save_file(tensors, str(out_dir / f"{TRAIN_STATE_NAME}_optim.safetensors"))
    (out_dir / f"{TRAIN_STATE_NAME}_optim.json").write_text(
        json.dumps({"param_groups": sd["param_groups"], "step": int(step)}))
    return path


def load_training_state(out_dir: str | Path, topology: HandTopology,
                        optimizer_factory: Any, device: torch.device
                        ) -> tuple[HandMeshNet, torch.optim.Optimizer, int]:
    """Inverse of :func:`save_training_state`: ``(model, optimizer, step)``.

    ``optimizer_factory(model) -> Optimizer`` builds a fresh optimiser to load into.
    """
    from safetensors.torch import load_file

    out_dir = Path(out_dir)
    model, info = load_checkpoint(out_dir / f"{TRAIN_STATE_NAME}.safetensors", topology,
                                  device=device)
    model.train()
    optimizer = optimizer_factory(model)
    meta_path = out_dir / f"{TRAIN_STATE_NAME}_optim.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"optimiser state not found: {meta_path}")
    meta = json.loads(meta_path.read_text())
    flat = load_file(str(out_dir / f"{TRAIN_STATE_NAME}_optim.safetensors"))
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, t in flat.items():
        _, i, name = key.split(".", 2)
        state.setdefault(int(i), {})[name] = t  # load_state_dict moves it to the param device
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return model, optimizer, int(info.extra.get("step", meta["step"]))
