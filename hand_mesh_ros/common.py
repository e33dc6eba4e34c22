"""Helpers shared by the nodes: QoS, stamps, synchronised stereo subscriptions, image decode."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from hand_mesh_ros.compat import CvBridge, CvBridgeError, message_filters

__all__ = ["image_qos", "stamp_ns", "make_stereo_sync", "image_to_rgb8", "ImageRefused",
           "ACCEPTED_ENCODINGS", "STEREO_TOPICS"]

#: Relative, remappable input topics, in the order the sync callback receives them.
STEREO_TOPICS = ("left/image_rect", "left/camera_info", "right/image_rect", "right/camera_info")
#: Image encodings the nodes accept (16-bit mono is normalised to its own range).
ACCEPTED_ENCODINGS = ("rgb8", "bgr8", "mono8", "mono16", "16UC1")
_NS_PER_S = 1_000_000_000


class ImageRefused(ValueError):
    """An input image cannot be used; the message says why."""


def stamp_ns(stamp: Any) -> int:
    """``builtin_interfaces/Time`` -> ns."""
    return int(stamp.sec) * _NS_PER_S + int(stamp.nanosec)


def image_qos(kind: str, depth: int) -> Any:
    """QoS profile for image subscriptions: "sensor_data" (best effort) or "reliable"."""
    from rclpy.qos import QoSProfile, qos_profile_sensor_data
    from rclpy.qos import ReliabilityPolicy, HistoryPolicy, DurabilityPolicy

    if kind == "sensor_data":
        return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                          reliability=qos_profile_sensor_data.reliability,
                          durability=qos_profile_sensor_data.durability)
    if kind == "reliable":
        return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                          reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.VOLATILE)
    raise ValueError(f"image QoS must be one of ['sensor_data', 'reliable'], got {kind!r}")


def make_stereo_sync(node: Any, callback: Callable[..., None], *, approximate: bool,
                     slop_s: float, queue_size: int, qos_kind: str,
                     callback_group: Any = None) -> tuple[list, Any]:
    """Subscribe to :data:`STEREO_TOPICS` and synchronise them.

    ``callback(left_image, left_info, right_image, right_info)`` is called per matched set.
    Camera infos use a reliable QoS with the same depth (they are small, and drivers publish
    them reliably).

    Returns:
        (subscribers, synchronizer).
    """
    from rclpy.qos import QoSProfile
    from sensor_msgs.msg import CameraInfo, Image

    img_qos = image_qos(qos_kind, queue_size)
    info_qos = QoSProfile(depth=queue_size)
    kw = {} if callback_group is None else {"callback_group": callback_group}
    subs = [message_filters.Subscriber(node, Image, STEREO_TOPICS[0], qos_profile=img_qos, **kw),
            message_filters.Subscriber(node, CameraInfo, STEREO_TOPICS[1], qos_profile=info_qos,
                                       **kw),
            message_filters.Subscriber(node, Image, STEREO_TOPICS[2], qos_profile=img_qos, **kw),
            message_filters.Subscriber(node, CameraInfo, STEREO_TOPICS[3], qos_profile=info_qos,
                                       **kw)]
    if approximate:
        sync = message_filters.ApproximateTimeSynchronizer(subs, queue_size, slop_s)
    else:
        sync = message_filters.TimeSynchronizer(subs, queue_size)
    sync.registerCallback(callback)
    return subs, sync


_BRIDGE = CvBridge()


def image_to_rgb8(msg: Any, max_pixels: int | None = None) -> np.ndarray:
    """``sensor_msgs/Image`` -> (H, W, 3) uint8 RGB.

    rgb8/bgr8/mono8 convert exactly; 16-bit mono (mono16, 16UC1) is normalised to its own
    min..max range (IR cameras use a fraction of the 16-bit range), then replicated to 3
    channels.

    Raises:
        ImageRefused: empty, oversized or truncated image, unknown encoding.
    """
    if msg.encoding not in ACCEPTED_ENCODINGS:
        raise ImageRefused(f"unsupported encoding {msg.encoding!r}; accepted: "
                           f"{list(ACCEPTED_ENCODINGS)}")
    if msg.width == 0 or msg.height == 0:
        raise ImageRefused(f"empty image ({msg.width}x{msg.height})")
    if max_pixels is not None and msg.width * msg.height > max_pixels:
        raise ImageRefused(f"image {msg.width}x{msg.height} exceeds {max_pixels} px")
    try:
        img = _BRIDGE.imgmsg_to_cv2(msg, "passthrough")
    except (CvBridgeError, TypeError, ValueError) as exc:
        raise ImageRefused(f"bad image data: {exc}") from exc
    if msg.encoding == "rgb8":
        return img
    if msg.encoding == "bgr8":
        return np.ascontiguousarray(img[..., ::-1])
    if msg.encoding == "mono8":
        return np.repeat(img[..., None], 3, axis=2)
    lo, hi = int(img.min()), int(img.max())
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    g = np.rint((img.astype(np.float32) - lo) * scale).astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=2)
