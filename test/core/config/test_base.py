"""ConfigBase: typing, ranges, unknown keys, YAML round trip."""
from dataclasses import FrozenInstanceError, dataclass
from typing import Literal

import pytest

from hand_mesh_core.config.base import ConfigBase, ConfigError, load_yaml_mapping, setting


@dataclass(frozen=True)
class Inner(ConfigBase):
    gain: float = setting(1.0, "a gain", ge=0.0, le=10.0)


@dataclass(frozen=True)
class Outer(ConfigBase):
    name: str = setting("x", "a name")
    count: int = setting(3, "a count", gt=0)
    rate_hz: float = setting(30.0, "a rate", unit="Hz", gt=0.0, lt=1000.0)
    enabled: bool = setting(True, "a switch")
    mode: str = setting("fast", "a mode", choices=("fast", "slow"))
    kind: Literal["a", "b"] = setting("a", "a literal")
    size: tuple[int, int] = setting((128, 128), "a pair", unit="px", gt=0)
    weights: tuple[float, ...] = setting((1.0, 2.0), "any number of floats", ge=0.0)
    path: str | None = setting(None, "an optional path")
    inner: Inner = setting(default_factory=Inner)


def test_defaults_and_round_trip(tmp_path):
    cfg = Outer(count=5, size=(64, 32), inner=Inner(gain=2.5), path="/tmp/x")
    assert Outer.from_dict(cfg.to_dict()) == cfg
    text = cfg.to_yaml(tmp_path / "c.yaml")
    assert Outer.from_yaml(tmp_path / "c.yaml") == cfg
    assert "rate_hz: 30.0" in text


def test_int_promoted_to_float_and_lists_to_tuples():
    cfg = Outer.from_dict({"rate_hz": 10, "size": [3, 4], "weights": [0, 1, 2]})
    assert cfg.rate_hz == 10.0 and isinstance(cfg.rate_hz, float)
    assert cfg.size == (3, 4) and cfg.weights == (0.0, 1.0, 2.0)


def test_frozen():
    with pytest.raises(FrozenInstanceError):
        Outer().count = 4


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['bogus'\].*valid keys.*rate_hz"):
        Outer.from_dict({"bogus": 1})


@pytest.mark.parametrize("changes, pattern", [
    ({"count": 0}, r"Outer.count = 0: must be > 0"),
    ({"count": 1.5}, r"Outer.count = 1.5: expected int"),
    ({"count": True}, r"expected int"),
    ({"rate_hz": "fast"}, r"Outer.rate_hz = 'fast': expected float"),
    ({"rate_hz": float("nan")}, r"finite"),
    ({"rate_hz": float("inf")}, r"finite"),
    ({"rate_hz": 1000.0}, r"must be < 1000.0"),
    ({"enabled": 1}, r"expected bool"),
    ({"mode": "medium"}, r"must be one of \['fast', 'slow'\]"),
    ({"kind": "c"}, r"must be one of \['a', 'b'\]"),
    ({"size": (1, 2, 3)}, r"expected 2 values"),
    ({"size": 5}, r"expected a sequence"),
    ({"size": (0, 2)}, r"must be > 0"),
    ({"weights": (1.0, -1.0)}, r"must be >= 0.0"),
    ({"name": 3}, r"expected str"),
    ({"path": 3}, r"expected"),
    ({"inner": {"gain": 11.0}}, r"Inner.gain = 11.0: must be <= 10.0"),
    ({"inner": 5}, r"expected a mapping for Inner"),
])
def test_validation_branches(changes, pattern):
    with pytest.raises(ConfigError, match=pattern):
        Outer.from_dict(changes)


def test_from_dict_rejects_non_mapping():
    with pytest.raises(ConfigError, match="expected a mapping"):
        Outer.from_dict([1, 2])


def test_replace_validates():
    cfg = Outer()
    assert cfg.replace(count=7).count == 7
    with pytest.raises(ConfigError):
        cfg.replace(count=-1)


def test_describe_has_docs_and_units():
    d = Outer.describe()
    assert d["rate_hz"] == {"doc": "a rate", "unit": "Hz", "default": 30.0}


def test_cross_field_validate_hook():
    @dataclass(frozen=True)
    class Range(ConfigBase):
        lo: float = setting(0.0, "low")
        hi: float = setting(1.0, "high")

        def validate(self):
            if self.lo >= self.hi:
                raise ConfigError(f"lo ({self.lo}) must be < hi ({self.hi})")

    with pytest.raises(ConfigError, match="must be < hi"):
        Range(lo=2.0, hi=1.0)


def test_yaml_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_yaml_mapping(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml_mapping(bad)
    lst = tmp_path / "list.yaml"
    lst.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_yaml_mapping(lst)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert Outer.from_yaml(empty) == Outer()
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("nope: 1\n")
    with pytest.raises(ConfigError, match=r"unknown.yaml: Outer: unknown key"):
        Outer.from_yaml(unknown)


def test_resolve_defaults_identity_and_type_error():
    assert Outer.resolve(None) == Outer()
    cfg = Outer(count=9)
    assert Outer.resolve(cfg) is cfg
    with pytest.raises(TypeError, match="roi must be a Outer, got Inner"):
        Outer.resolve(Inner(), name="roi")
