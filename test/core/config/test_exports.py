"""Every re-exported settings class resolves, is a ConfigBase, and loads its own defaults."""
import pytest

import hand_mesh_core.config as config
from hand_mesh_core.config.base import ConfigBase


@pytest.mark.parametrize("name", sorted(config._EXPORTS))
def test_export_is_a_round_tripping_config(name):
    cls = getattr(config, name)
    assert issubclass(cls, ConfigBase)
    default = cls()
    assert cls.from_dict(default.to_dict()) == default


def test_unknown_attribute():
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        config.Nope
