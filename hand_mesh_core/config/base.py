"""Typed, frozen, YAML-backed settings.

Every group of settings in hand_mesh is a frozen dataclass deriving from :class:`ConfigBase`.
Fields are declared with :func:`setting`, which records a description, a unit and the allowed
values or range. Construction validates every field, so an invalid config can never exist:

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Example(ConfigBase):
...     baseline_m: float = setting(0.12, "stereo baseline", unit="m", gt=0.0)
>>> Example.from_dict({"baseline_m": -1.0})
Traceback (most recent call last):
...
hand_mesh_core.config.base.ConfigError: Example.baseline_m = -1.0: must be > 0.0

Loading rejects unknown keys with the list of valid keys, wrong types with the field name and
the bad value, and out-of-range values with the allowed range. ``to_dict``/``from_dict`` and
``to_yaml``/``from_yaml`` round-trip exactly.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, Mapping, Sequence, TypeVar

import yaml

__all__ = ["ConfigBase", "ConfigError", "setting", "load_yaml_mapping"]

C = TypeVar("C", bound="ConfigBase")


class ConfigError(ValueError):
    """A setting is unknown, of the wrong type, or out of its allowed range."""


def setting(
    default: Any = dataclasses.MISSING,
    doc: str = "",
    *,
    unit: str = "",
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
    choices: Sequence[Any] | None = None,
    default_factory: Any = dataclasses.MISSING,
) -> Any:
    """Declare a config field with its documentation and constraints.

    Args:
        default: default value (immutable: use tuples, not lists).
        doc: one-line description, shown in errors and docs.
        unit: physical unit ("m", "px", "Hz", ...), empty for unitless values.
        gt, ge, lt, le: numeric bounds (strictly greater, greater-or-equal, ...).
        choices: the allowed values, for enumerations.
        default_factory: factory for nested config defaults.

    Returns:
        A ``dataclasses.field`` carrying the metadata.
    """
    meta = {"doc": doc, "unit": unit, "gt": gt, "ge": ge, "lt": lt, "le": le,
            "choices": tuple(choices) if choices is not None else None}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def load_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """Read a YAML file whose top level is a mapping.

    Raises:
        FileNotFoundError: the file does not exist.
        ConfigError: the YAML is malformed or its top level is not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(owner: str, name: str, tp: Any, value: Any) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert lossless cases."""
    where = f"{owner}.{name}"
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(owner, name, arg, value)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{where} = {value!r}: expected {_type_name(tp)}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where} = {value!r}: must be one of {list(args)}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} = {value!r}: expected a sequence")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(owner, f"{name}[{i}]", args[0], v) for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(f"{where} = {value!r}: expected {len(args)} values")
        return tuple(_coerce(owner, f"{name}[{i}]", a, v)
                     for i, (a, v) in enumerate(zip(args, value)))
    if isinstance(tp, type) and issubclass(tp, ConfigBase):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} = {value!r}: expected a mapping for {tp.__name__}")
        return tp.from_dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} = {value!r}: expected bool (true/false)")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} = {value!r}: expected int")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} = {value!r}: expected float")
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"{where}: must be a finite number")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} = {value!r}: expected str")
        return value
    if tp is Any:
        return value
    raise ConfigError(f"{where}: unsupported annotation {_type_name(tp)}")  # pragma: no cover


def _check_bounds(owner: str, f: dataclasses.Field, value: Any) -> None:
    meta = f.metadata
    where = f"{owner}.{f.name} = {value!r}"
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise ConfigError(f"{where}: must be one of {list(choices)}")
    values = value if isinstance(value, tuple) else (value,)
    for v in values:
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            continue
        if meta.get("gt") is not None and not v > meta["gt"]:
            raise ConfigError(f"{where}: must be > {meta['gt']}")
        if meta.get("ge") is not None and not v >= meta["ge"]:
            raise ConfigError(f"{where}: must be >= {meta['ge']}")
        if meta.get("lt") is not None and not v < meta["lt"]:
            raise ConfigError(f"{where}: must be < {meta['lt']}")
        if meta.get("le") is not None and not v <= meta["le"]:
            raise ConfigError(f"{where}: must be <= {meta['le']}")


@dataclasses.dataclass(frozen=True)
class ConfigBase:
    """Base class of all settings: typed, frozen, validated, YAML round-trip."""

    def __post_init__(self) -> None:
        owner = type(self).__name__
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = _coerce(owner, f.name, hints[f.name], getattr(self, f.name))
            object.__setattr__(self, f.name, value)
            _check_bounds(owner, f, value)
        self.validate()

    def validate(self) -> None:
        """Cross-field checks; override and raise :class:`ConfigError`."""

    @classmethod
    def resolve(cls: type[C], config: Any, name: str = "config") -> C:
        """``config`` itself, or the defaults when it is None.

        Raises:
            TypeError: ``config`` is neither None nor a ``cls`` (names the expected class).
        """
        if config is None:
            return cls()
        if not isinstance(config, cls):
            raise TypeError(f"{name} must be a {cls.__name__}, got {type(config).__name__}")
        return config

    @classmethod
    def field_names(cls) -> list[str]:
        """The valid keys, in declaration order."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
        """Build from a mapping, rejecting unknown keys.

        Raises:
            ConfigError: unknown key (the message lists the valid keys), wrong type or range.
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"{cls.__name__}: expected a mapping, got {type(data).__name__}")
        valid = cls.field_names()
        unknown = sorted(set(data) - set(valid))
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown key(s) {unknown}; valid keys: {valid}")
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form (tuples become lists), the inverse of :meth:`from_dict`."""
        def plain(v: Any) -> Any:
            if isinstance(v, ConfigBase):
                return v.to_dict()
            if isinstance(v, tuple):
                return [plain(x) for x in v]
            return v
        return {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_yaml(cls: type[C], path: str | Path) -> C:
        """Load from a YAML file (see :meth:`from_dict` for the checks)."""
        try:
            return cls.from_dict(load_yaml_mapping(path))
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from exc

    def to_yaml(self, path: str | Path | None = None) -> str:
        """Dump as YAML; also write it to ``path`` when given. Returns the text."""
        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    def replace(self: C, **changes: Any) -> C:
        """A validated copy with some fields changed."""
        return self.from_dict({**self.to_dict(), **changes})

    @classmethod
    def describe(cls) -> dict[str, dict[str, Any]]:
        """Field name -> {doc, unit, default}: for docs, CLI help and ROS descriptors."""
        out = {}
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else None
            out[f.name] = {"doc": f.metadata.get("doc", ""), "unit": f.metadata.get("unit", ""),
                           "default": default}
        return out
