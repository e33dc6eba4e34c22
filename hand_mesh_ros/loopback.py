"""Keep ROS 2 traffic of tests, benchmarks and demos on this machine (127.0.0.1 + shm).

Call :func:`configure_loopback_env` before ``rclpy.init``: it points Fast DDS at the shipped
profile ``config/fastdds_loopback.xml`` (shared memory + UDPv4 on 127.0.0.1, no multicast),
selects ``rmw_fastrtps_cpp`` and picks a ROS domain id per process so parallel test runs do not
see each other.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["configure_loopback_env", "loopback_profile_path", "default_domain_id",
           "DOMAIN_ID_MIN", "DOMAIN_ID_MAX", "PROFILE_NAME", "RMW"]

#: Domain ids used for loopback runs. ROS 2 allows 0..101 with the default port mapping on
#: Linux (docs.ros.org "The ROS_DOMAIN_ID"); 0 is left to the user's real system.
DOMAIN_ID_MIN = 1
DOMAIN_ID_MAX = 101
#: File name of the loopback Fast DDS profile.
PROFILE_NAME = "fastdds_loopback.xml"
#: The RMW the profile is written for.
RMW = "rmw_fastrtps_cpp"
#: The ROS 2 package name, whose share folder holds the installed config.
_PACKAGE = "hand_mesh_ros"


def loopback_profile_path() -> Path:
    """The loopback profile: from the source checkout, else the installed share folder.

    Raises:
        FileNotFoundError: neither location has the file.
    """
    candidates = [Path(__file__).resolve().parents[1] / "config" / PROFILE_NAME,
                  Path(sys.prefix) / "share" / _PACKAGE / "config" / PROFILE_NAME]
    for c in candidates:
        if c.is_file():
            return c
    raise FileNotFoundError(f"{PROFILE_NAME} not found; looked in {[str(c) for c in candidates]}")


def default_domain_id(pid: int | None = None) -> int:
    """A domain id in [DOMAIN_ID_MIN, DOMAIN_ID_MAX] derived from the process id."""
    pid = os.getpid() if pid is None else pid
    return DOMAIN_ID_MIN + pid % (DOMAIN_ID_MAX - DOMAIN_ID_MIN + 1)


def configure_loopback_env(domain_id: int | None = None,
                           env: dict[str, str] | None = None) -> dict[str, str]:
    """Set the environment variables that keep DDS on loopback.

    Args:
        domain_id: ROS_DOMAIN_ID to use, in [1, 101]; default from the process id.
        env: mapping to update (default ``os.environ``), e.g. a copy for a subprocess.

    Returns:
        The variables that were set.

    Raises:
        ValueError: ``domain_id`` out of range.
        FileNotFoundError: the profile file is missing.
    """
    if domain_id is None:
        domain_id = default_domain_id()
    if isinstance(domain_id, bool) or not isinstance(domain_id, int) \
            or not DOMAIN_ID_MIN <= domain_id <= DOMAIN_ID_MAX:
        raise ValueError(f"domain_id must be an int in [{DOMAIN_ID_MIN}, {DOMAIN_ID_MAX}], "
                         f"got {domain_id!r}")
    values = {
        "FASTDDS_DEFAULT_PROFILES_FILE": str(loopback_profile_path()),
        "RMW_IMPLEMENTATION": RMW,
        "ROS_DOMAIN_ID": str(domain_id),
        # ROS 2 Iron+: restrict discovery to localhost as well (belt and braces).
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
    }
    target = os.environ if env is None else env
    target.update(values)
    return values
