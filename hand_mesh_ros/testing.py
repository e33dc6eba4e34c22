"""Test and benchmark helpers: synthetic stereo messages, a stereo publisher, spin helpers.

Used by ``test/ros`` and ``test/bench``; not needed at run time.
"""
from __future__ import annotations

import array
import threading
import time
from typing import Any, Callable

import numpy as np

from hand_mesh_core.geometry.camera import StereoCamera

__all__ = ["make_camera_infos", "make_image", "skin_image", "StereoPublisher", "spin_until",
           "BackgroundSpinner", "SKIN_RGB", "BACKGROUND_RGB"]

#: A skin tone inside the Chai & Ngan YCrCb box (Y 160, Cr 150, Cb 105).
SKIN_RGB = (224, 158, 128)
#: A blue background, far outside the skin box.
BACKGROUND_RGB = (40, 60, 160)


def make_camera_infos(camera: StereoCamera, stamp: Any, frame_id: str = "left_optical",
                      right_frame_id: str = "right_optical") -> tuple[Any, Any]:
    """Left and right ``sensor_msgs/CameraInfo`` of a rectified pair (P from the camera)."""
    from sensor_msgs.msg import CameraInfo

    out = []
    for view, fid in (("left", frame_id), ("right", right_frame_id)):
        ci = CameraInfo()
        ci.header.stamp, ci.header.frame_id = stamp, fid
        ci.width, ci.height = camera.width, camera.height
        ci.distortion_model = "plumb_bob"
        ci.d = [0.0] * 5
        ci.k = camera.K.ravel().tolist()
        ci.r = np.eye(3).ravel().tolist()
        ci.p = camera.P(view).ravel().tolist()
        out.append(ci)
    return out[0], out[1]


def make_image(rgb: np.ndarray, stamp: Any, frame_id: str = "left_optical",
               encoding: str = "rgb8") -> Any:
    """``sensor_msgs/Image`` from an (H, W, 3) uint8 RGB array (encoding rgb8, bgr8 or
    mono8)."""
    from sensor_msgs.msg import Image

    if encoding == "bgr8":
        data = np.ascontiguousarray(rgb[..., ::-1])
    elif encoding == "mono8":
        data = np.ascontiguousarray(rgb[..., 0])
    elif encoding == "rgb8":
        data = np.ascontiguousarray(rgb)
    else:
        raise ValueError(f"encoding must be one of ['rgb8', 'bgr8', 'mono8'], got {encoding!r}")
    msg = Image()
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    msg.height, msg.width = rgb.shape[:2]
    msg.encoding = encoding
    msg.step = data.strides[0]
    msg.data = array.array("B", data.tobytes())
    return msg


def skin_image(width: int, height: int, with_hand: bool = True, seed: int = 0) -> np.ndarray:
    """(H, W, 3) uint8: blue background with mild noise and, optionally, a skin ellipse."""
    import cv2

    rng = np.random.default_rng(seed)
    img = np.empty((height, width, 3), np.uint8)
    img[:] = BACKGROUND_RGB
    img = np.clip(img.astype(np.int16) + rng.integers(-6, 7, img.shape), 0, 255).astype(np.uint8)
    if with_hand:
        cv2.ellipse(img, (width // 2, height // 2), (width // 6, height // 4), 0, 0, 360,
                    SKIN_RGB, -1)
    return img


def stamp_msg(ns: int) -> Any:
    """``builtin_interfaces/Time`` from ns."""
    from builtin_interfaces.msg import Time

    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


class StereoPublisher:
    """Publishes left/right images and camera infos on the nodes' relative topics.

    Args:
        node: the node that owns the publishers.
        reliable: reliable QoS for images (default: reliable; sensor-data subscribers match).
        depth: history depth.
    """

    def __init__(self, node: Any, reliable: bool = True, depth: int = 10,
                 namespace: str = "") -> None:
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, Image

        ns = namespace.rstrip("/") + "/" if namespace else ""
        img_qos = QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE if reliable
                             else ReliabilityPolicy.BEST_EFFORT)
        info_qos = QoSProfile(depth=depth)
        self.node = node
        self.left = node.create_publisher(Image, f"{ns}left/image_rect", img_qos)
        self.left_info = node.create_publisher(CameraInfo, f"{ns}left/camera_info", info_qos)
        self.right = node.create_publisher(Image, f"{ns}right/image_rect", img_qos)
        self.right_info = node.create_publisher(CameraInfo, f"{ns}right/camera_info", info_qos)

    def publish(self, left: Any, left_info: Any, right: Any, right_info: Any) -> None:
        """Publish one set (each message is sent as given: stamps are the caller's)."""
        self.left.publish(left)
        self.left_info.publish(left_info)
        self.right.publish(right)
        self.right_info.publish(right_info)

    def wait_for_subscribers(self, timeout_s: float = 5.0, count: int = 1) -> bool:
        """Wait until each publisher has ``count`` matched subscriptions."""
        deadline = time.monotonic() + timeout_s
        pubs = (self.left, self.left_info, self.right, self.right_info)
        while True:
            if all(p.get_subscription_count() >= count for p in pubs):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)


def spin_until(executor: Any, predicate: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    """Spin ``executor`` until ``predicate()`` is true or the timeout passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        executor.spin_once(timeout_sec=0.01)
    return predicate()


class BackgroundSpinner:
    """Spin an executor in a daemon thread (context manager)."""

    def __init__(self, executor: Any) -> None:
        self.executor = executor
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.executor.spin_once(timeout_sec=0.02)
            except Exception:  # noqa: BLE001 - context shut down under us
                if self._stop.is_set():
                    return
                raise

    def __enter__(self) -> "BackgroundSpinner":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
