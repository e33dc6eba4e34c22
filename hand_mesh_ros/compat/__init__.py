"""ROS 2 helper packages: the real ones when importable, tested fallbacks otherwise.

``message_filters``, ``cv_bridge`` and ``sensor_msgs_py`` are not on PyPI. Import them from
here so the nodes run both inside a sourced ROS 2 install and from the pip wheels::

    from hand_mesh_ros.compat import message_filters, CvBridge, point_cloud2

``USING_FALLBACK`` tells which fallback is active (for diagnostics and tests).
"""
from __future__ import annotations

__all__ = ["message_filters", "CvBridge", "CvBridgeError", "point_cloud2", "USING_FALLBACK"]

USING_FALLBACK: dict[str, bool] = {}

try:
    import message_filters  # type: ignore[no-redef]
    USING_FALLBACK["message_filters"] = False
except ImportError:
    from hand_mesh_ros.compat import message_filters  # type: ignore[no-redef]
    USING_FALLBACK["message_filters"] = True

try:
    from cv_bridge import CvBridge, CvBridgeError  # type: ignore[no-redef]
    USING_FALLBACK["cv_bridge"] = False
except ImportError:
    from hand_mesh_ros.compat.cv_bridge import CvBridge, CvBridgeError  # type: ignore
    USING_FALLBACK["cv_bridge"] = True

try:
    from sensor_msgs_py import point_cloud2  # type: ignore[no-redef]
    USING_FALLBACK["point_cloud2"] = False
except ImportError:
    from hand_mesh_ros.compat import point_cloud2  # type: ignore[no-redef]
    USING_FALLBACK["point_cloud2"] = True
