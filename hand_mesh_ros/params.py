"""ROS 2 parameters from hand_mesh config dataclasses.

Every node setting is a field of a frozen :class:`~hand_mesh_core.config.base.ConfigBase`
dataclass. This module declares one ROS parameter per field, with a ``ParameterDescriptor``
built from the field's metadata (description, unit, range, allowed values), reads them back
into a validated config, and validates runtime changes (``ros2 param set``) through the same
dataclass, so a bad value is rejected with the dataclass's message and the node keeps running.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any, Callable, TypeVar

from hand_mesh_core.config.base import ConfigBase, ConfigError

__all__ = ["descriptor_for", "declare_config", "config_from_node", "ConfigParameterBinding"]

C = TypeVar("C", bound=ConfigBase)


def _range_text(meta: dict) -> str:
    parts = []
    for key, sym in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
        if meta.get(key) is not None:
            parts.append(f"{sym} {meta[key]}")
    if meta.get("choices") is not None:
        parts.append(f"one of {list(meta['choices'])}")
    return ", ".join(parts)


def descriptor_for(cls: type[ConfigBase], name: str) -> Any:
    """``rcl_interfaces/ParameterDescriptor`` of one config field.

    Description: ``"<doc> [<unit>]"``; ``additional_constraints``: the range/choices text;
    ``floating_point_range``/``integer_range`` set when the field has both a lower and an upper
    inclusive bound, or only one bound (the other side open: +-inf / int64 limits).
    """
    from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                    ParameterType)

    fields = {f.name: f for f in dataclasses.fields(cls)}
    if name not in fields:
        raise ValueError(f"{cls.__name__} has no field {name!r}; fields: {list(fields)}")
    f = fields[name]
    meta = dict(f.metadata)
    tp = typing.get_type_hints(cls)[name]
    unit = meta.get("unit") or ""
    desc = ParameterDescriptor(name=name, description=meta.get("doc", "")
                               + (f" [{unit}]" if unit else ""),
                               additional_constraints=_range_text(meta))
    lo = meta.get("ge") if meta.get("ge") is not None else meta.get("gt")
    hi = meta.get("le") if meta.get("le") is not None else meta.get("lt")
    if tp is float:
        desc.type = ParameterType.PARAMETER_DOUBLE
        if lo is not None or hi is not None:
            desc.floating_point_range = [FloatingPointRange(
                from_value=float(lo) if lo is not None else -math.inf,
                to_value=float(hi) if hi is not None else math.inf, step=0.0)]
    elif tp is int:
        desc.type = ParameterType.PARAMETER_INTEGER
        if lo is not None or hi is not None:
            # ROS ranges are inclusive: turn a strict bound into the next integer
            lo_i = int(lo) + (1 if meta.get("ge") is None and lo is not None else 0) \
                if lo is not None else -(2 ** 63)
            hi_i = int(hi) - (1 if meta.get("le") is None and hi is not None else 0) \
                if hi is not None else 2 ** 63 - 1
            desc.integer_range = [IntegerRange(from_value=lo_i, to_value=hi_i, step=1)]
    elif tp is bool:
        desc.type = ParameterType.PARAMETER_BOOL
    elif tp is str:
        desc.type = ParameterType.PARAMETER_STRING
    return desc


def declare_config(node: Any, cls: type[C], defaults: C | None = None) -> None:
    """Declare one parameter per field of ``cls`` on ``node`` (overrides come from the
    command line / params file as usual)."""
    defaults = defaults if defaults is not None else cls()
    for f in dataclasses.fields(cls):
        node.declare_parameter(f.name, getattr(defaults, f.name), descriptor_for(cls, f.name))


def config_from_node(node: Any, cls: type[C]) -> C:
    """Read the declared parameters back into a validated config.

    Raises:
        ConfigError: a value is out of range or of the wrong type (the message names it).
    """
    values = {f.name: node.get_parameter(f.name).value for f in dataclasses.fields(cls)}
    return cls.from_dict(values)


class ConfigParameterBinding:
    """Keeps ``config`` in sync with the node's parameters; rejects invalid changes.

    Args:
        node: the rclpy node (parameters already declared with :func:`declare_config`).
        cls: the config dataclass.
        on_change: called with (old, new) after an accepted change; raising
            ``ValueError`` there rejects the change with that reason.
    """

    def __init__(self, node: Any, cls: type[C],
                 on_change: Callable[[C, C], None] | None = None) -> None:
        self.cls = cls
        self.config = config_from_node(node, cls)
        self._on_change = on_change
        node.add_on_set_parameters_callback(self._callback)

    def _callback(self, params: list) -> Any:
        from rcl_interfaces.msg import SetParametersResult

        changes = {p.name: p.value for p in params if p.name in self.cls.field_names()}
        if not changes:
            return SetParametersResult(successful=True)
        try:
            new = self.config.replace(**changes)
            if self._on_change is not None:
                self._on_change(self.config, new)
        except (ConfigError, ValueError, TypeError) as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        self.config = new
        return SetParametersResult(successful=True)
