"""Fixtures for ROS tests: loopback-only DDS and an initialised rclpy context."""
from __future__ import annotations

import os

import pytest

from hand_mesh_ros.loopback import configure_loopback_env

# Before any rclpy.init in this test process: loopback profile, fastrtps, per-run domain id.
configure_loopback_env()


@pytest.fixture(scope="module")
def ros_context():
    """An rclpy context on the loopback domain, shut down after the module."""
    rclpy = pytest.importorskip("rclpy")
    assert os.environ["ROS_DOMAIN_ID"]
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx)
    yield ctx
    if ctx.ok():
        rclpy.shutdown(context=ctx)
