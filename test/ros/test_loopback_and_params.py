"""loopback.configure_loopback_env and params.descriptor_for / ConfigParameterBinding."""
from __future__ import annotations

import math
import os

import pytest

from hand_mesh_ros.config import RecorderConfig, StereoNodeConfig
from hand_mesh_ros.loopback import (DOMAIN_ID_MAX, DOMAIN_ID_MIN, configure_loopback_env,
                                    default_domain_id, loopback_profile_path)
from hand_mesh_ros.params import descriptor_for


def test_env_is_loopback_for_this_test_process():
    # set by conftest before any rclpy.init
    assert os.environ["RMW_IMPLEMENTATION"] == "rmw_fastrtps_cpp"
    assert os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] == str(loopback_profile_path())
    assert DOMAIN_ID_MIN <= int(os.environ["ROS_DOMAIN_ID"]) <= DOMAIN_ID_MAX
    text = loopback_profile_path().read_text()
    assert "127.0.0.1" in text and "<useBuiltinTransports>false" in text


def test_configure_into_a_copy_and_validation():
    env = {}
    got = configure_loopback_env(7, env=env)
    assert env == got and env["ROS_DOMAIN_ID"] == "7"
    assert loopback_profile_path().name == "fastdds_loopback.xml"
    for bad in (0, 102, -1, True, "5", 3.0):
        with pytest.raises(ValueError, match=r"\[1, 101\]"):
            configure_loopback_env(bad, env={})


def test_default_domain_id_covers_the_range():
    ids = {default_domain_id(pid) for pid in range(1000)}
    assert ids == set(range(DOMAIN_ID_MIN, DOMAIN_ID_MAX + 1))
    assert default_domain_id(100) == 1 + 100 % 101


def test_descriptors_from_config_metadata():
    from rcl_interfaces.msg import ParameterType

    d = descriptor_for(StereoNodeConfig, "min_confidence")
    assert d.type == ParameterType.PARAMETER_DOUBLE
    assert (d.floating_point_range[0].from_value, d.floating_point_range[0].to_value) == (0, 1)
    d = descriptor_for(RecorderConfig, "max_bytes")
    assert d.type == ParameterType.PARAMETER_INTEGER and "[B]" in d.description
    assert (d.integer_range[0].from_value, d.integer_range[0].to_value) == (0, 2 ** 63 - 1)
    d = descriptor_for(StereoNodeConfig, "slop_s")  # gt 0: open below, inclusive above
    assert d.floating_point_range[0].to_value == 1.0 and "> 0.0" in d.additional_constraints
    d = descriptor_for(StereoNodeConfig, "max_image_pixels")  # gt 0 on an int: from 1
    assert d.integer_range[0].from_value == 1
    d = descriptor_for(RecorderConfig, "storage")
    assert d.type == ParameterType.PARAMETER_STRING and "sqlite3" in d.additional_constraints
    assert descriptor_for(StereoNodeConfig, "approximate_sync").type == \
        ParameterType.PARAMETER_BOOL
    assert math.isinf(descriptor_for(RecorderConfig, "rate_hz").floating_point_range[0]
                      .to_value)
    with pytest.raises(ValueError, match="no field"):
        descriptor_for(StereoNodeConfig, "nope")
