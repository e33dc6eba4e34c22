"""Test, benchmark and demo helpers: synthetic stereo messages, a stereo publisher, spin
helpers, and an end-to-end harness (the stereo node as a process, its results collected).

Used by ``test/ros``, ``test/bench`` and ``hand_mesh_ros.demo``; the nodes do not need it.
"""
from __future__ import annotations

import array
import json
import threading
import time
from typing import Any, Callable

import numpy as np

from hand_mesh_core.geometry.camera import StereoCamera

__all__ = ["make_camera_infos", "make_image", "skin_image", "StereoPublisher", "spin_until",
           "BackgroundSpinner", "SKIN_RGB", "BACKGROUND_RGB", "stamp_msg", "stereo_messages",
           "stereo_node_command", "NodeProcess", "ResultCollector", "publish_until"]

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


# --------------------------------------------------------------------------- end-to-end harness
#: Relative input topics of the stereo node (same order as ``common.STEREO_TOPICS``).
_INPUTS = ("left/image_rect", "left/camera_info", "right/image_rect", "right/camera_info")
#: Seconds to wait for the node process to stop after SIGINT before it is killed.
STOP_TIMEOUT_S = 10.0


def stereo_messages(left_rgb: np.ndarray, right_rgb: np.ndarray, camera: StereoCamera,
                    stamp: Any, frame_id: str = "left_optical") -> tuple[Any, Any, Any, Any]:
    """(left image, left info, right image, right info) of one rectified pair, all with
    ``stamp``; images rgb8, the right frame id is ``frame_id`` with "left" -> "right"."""
    right_id = frame_id.replace("left", "right") if "left" in frame_id else frame_id + "_right"
    li, ri = make_camera_infos(camera, stamp, frame_id, right_id)
    return (make_image(left_rgb, stamp, frame_id), li, make_image(right_rgb, stamp, right_id), ri)


def stereo_node_command(namespace: str, input_prefix: str, params: dict[str, Any],
                        python: str | None = None) -> list[str]:
    """The command line that ``ros2 run hand_mesh_ros stereo_node`` amounts to.

    Args:
        namespace: node namespace (outputs appear under it), e.g. "/e2e".
        input_prefix: absolute prefix the four inputs are remapped to, e.g. "/e2e_cam".
        params: ``-p name:=value`` parameters (bool as true/false, str quoted).
        python: interpreter (default: this one).
    """
    import sys

    if not namespace.startswith("/") or not input_prefix.startswith("/"):
        raise ValueError(f"namespace and input_prefix must be absolute (start with '/'), got "
                         f"{namespace!r}, {input_prefix!r}")
    cmd = [python or sys.executable, "-m", "hand_mesh_ros.stereo_node", "--ros-args",
           "-r", f"__ns:={namespace}"]
    for topic in _INPUTS:
        cmd += ["-r", f"{topic}:={input_prefix.rstrip('/')}/{topic}"]
    for name, value in params.items():
        if isinstance(value, bool):
            text = str(value).lower()
        elif isinstance(value, str):  # a YAML string, so "" or "1" stay strings
            text = json.dumps(value)
        else:
            text = repr(value)
        cmd += ["-p", f"{name}:={text}"]
    return cmd


class NodeProcess:
    """A node started as a separate process (context manager); its output goes to a file.

    Args:
        cmd: the command line.
        env: environment (default: this process's, with the repository on PYTHONPATH).
        log_path: where stdout and stderr go (default: a temporary file).
    """

    def __init__(self, cmd: list[str], env: dict[str, str] | None = None,
                 log_path: str | None = None) -> None:
        import os
        import subprocess
        import tempfile
        from pathlib import Path

        if env is None:
            env = dict(os.environ)
            repo = str(Path(__file__).resolve().parents[1])
            env["PYTHONPATH"] = repo + os.pathsep + env.get("PYTHONPATH", "")
        if log_path is None:
            fd, log_path = tempfile.mkstemp(prefix="hand_mesh_node_", suffix=".log")
            os.close(fd)
        self.log_path = log_path
        self._log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     text=True)

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc.poll() is None

    def output(self) -> str:
        """Everything the process wrote so far."""
        if not self._log.closed:
            self._log.flush()
        with open(self.log_path) as f:
            return f.read()

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """SIGINT, wait, kill if needed. Returns the exit code."""
        import signal
        import subprocess

        if self.alive():
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self._log.closed:
            self._log.close()
        return self.proc.returncode

    def __enter__(self) -> "NodeProcess":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class ResultCollector:
    """Subscribes to a stereo node's outputs and keeps them with their receipt times.

    Attributes:
        joints: stamp ns -> (receipt monotonic s, (21, 3) float64 joints, m).
        points: stamp ns -> (receipt monotonic s, (V, 3) float32 vertices, m).
        frames: stamp ns -> frame id of the joints message.
        confidences: confidence values in arrival order (Float32 has no header).
        diagnostics: the node's DiagnosticStatus messages in arrival order.
    """

    def __init__(self, node: Any, namespace: str) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import PoseArray
        from sensor_msgs.msg import PointCloud2
        from std_msgs.msg import Float32

        ns = namespace.rstrip("/")
        self.namespace = ns
        self.joints: dict[int, tuple[float, np.ndarray]] = {}
        self.points: dict[int, tuple[float, np.ndarray]] = {}
        self.frames: dict[int, str] = {}
        self.confidences: list[float] = []
        self.diagnostics: list[Any] = []
        node.create_subscription(PoseArray, f"{ns}/hand_mesh/joints", self._on_joints, 10)
        node.create_subscription(PointCloud2, f"{ns}/hand_mesh/points", self._on_points, 10)
        node.create_subscription(Float32, f"{ns}/hand_mesh/confidence",
                                 lambda m: self.confidences.append(float(m.data)), 10)
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)

    def _on_joints(self, msg: Any) -> None:
        from hand_mesh_ros.common import stamp_ns

        j = np.array([(p.position.x, p.position.y, p.position.z) for p in msg.poses])
        key = stamp_ns(msg.header.stamp)
        self.joints[key] = (time.monotonic(), j)
        self.frames[key] = msg.header.frame_id

    def _on_points(self, msg: Any) -> None:
        from hand_mesh_ros.common import stamp_ns
        from hand_mesh_ros.compat import point_cloud2

        self.points[stamp_ns(msg.header.stamp)] = (time.monotonic(),
                                                   point_cloud2.read_points_numpy(msg))

    def _on_diag(self, msg: Any) -> None:
        for st in msg.status:
            if st.hardware_id.startswith(self.namespace + "/"):
                self.diagnostics.append(st)

    def last_diagnostic(self) -> dict[str, str] | None:
        """The newest status of the node as {"level", "message", <key>: <value>...}."""
        if not self.diagnostics:
            return None
        st = self.diagnostics[-1]
        out = {"level": str(int.from_bytes(st.level, "little") if isinstance(st.level, bytes)
                            else int(st.level)), "message": st.message}
        out.update({kv.key: kv.value for kv in st.values})
        return out


def publish_until(executor: Any, publisher: StereoPublisher, messages: tuple[Any, Any, Any, Any],
                  predicate: Callable[[], bool], timeout_s: float,
                  resend_s: float = 2.0) -> bool:
    """Publish a stereo set and spin until ``predicate()``; resend it every ``resend_s``.

    Right after discovery a reader may not yet know a writer whose side already matched, so
    the first samples can be lost even with reliable QoS; resending the same stamped set is
    harmless (the synchroniser completes or replaces the set with the same stamp).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        publisher.publish(*messages)
        wait = min(resend_s, deadline - time.monotonic())
        if spin_until(executor, predicate, max(wait, 0.0)):
            return True
        if time.monotonic() >= deadline:
            return False
