"""Shared validation and reduction for the losses."""
from __future__ import annotations

import torch

__all__ = ["REDUCTIONS", "check_reduction", "reduce", "check_tensor"]

#: Allowed values of every ``reduction`` argument (kornia / torch convention).
REDUCTIONS = ("mean", "sum", "none")


def check_reduction(reduction: str) -> None:
    """Raise ValueError unless ``reduction`` is one of :data:`REDUCTIONS`."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {list(REDUCTIONS)}, got {reduction!r}")


def reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    """Apply ``reduction`` over all elements (``"none"`` returns ``values``)."""
    check_reduction(reduction)
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    return values


def check_tensor(x: object, name: str, ndim: int | tuple[int, ...], last: int | None = None
                 ) -> torch.Tensor:
    """Check a floating tensor's rank (and last dimension); returns it.

    Raises:
        TypeError: not a floating-point tensor.
        ValueError: wrong rank or last dimension.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be floating point, got {x.dtype}")
    dims = (ndim,) if isinstance(ndim, int) else ndim
    if x.dim() not in dims or (last is not None and x.shape[-1] != last):
        want = " or ".join(f"{d}-D" for d in dims)
        tail = f" with last dimension {last}" if last is not None else ""
        raise ValueError(f"{name} must be {want}{tail}, got shape {tuple(x.shape)}")
    return x
