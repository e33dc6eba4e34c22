"""ROS 2 node: rectified stereo pair in, absolute hand mesh out (left optical frame, metres).

Subscribes (relative, remappable): ``left/image_rect``, ``left/camera_info``,
``right/image_rect``, ``right/camera_info`` (exact or approximate sync; images with sensor-data
QoS by default). Publishes, with the stamp of the input pair and the left optical frame id
(reliable QoS): ``hand_mesh/markers`` (MarkerArray: mesh TRIANGLE_LIST coloured by confidence,
joints, bones; DELETEALL when the hand is lost), ``hand_mesh/points`` (PointCloud2 x, y, z
float32), ``hand_mesh/joints`` (PoseArray, 21 joints, canonical order), ``hand_mesh/confidence``
(Float32) and ``/diagnostics``.

Model: ``model_path`` ("" = the shipped default) is loaded at start-up with
``hand_mesh_core.pipeline.load_estimator(path, device, handedness)``; "auto" handedness means
right until a handedness classifier exists; ``input_size`` 0 takes the checkpoint's, any other
value must equal it. A load failure keeps the node up and is reported as an ERROR in
/diagnostics; ``~/reload_model`` and parameter changes load through the same path and keep the
current model when the new one fails.

Real time: the subscription callback only stores the newest pair; one worker thread runs the
estimator (with ``cpu_threads`` torch/OpenCV threads, default 1). With ``track_roi`` (default)
and the model pipeline (an estimator with ``find_roi`` and ``predict_crop``), the hand is
searched in a window around the last hand's ROI (``hand_mesh_core.data.roi.track_hand_roi``,
a few ms) instead of the whole image (50-100 ms at 640x480); the whole image is searched at
once when the window holds no hand, and in a background thread every ``redetect_every``
tracked pairs (its result replaces the track when it arrives), so the periodic full search is
off the critical path. With ``quick_acquire`` (default) a lost hand is not searched with the
full search on the critical path either: the fast path runs over the whole image (~5 ms, less
accurate) and a background full search is started at once to confirm or correct it (and
every ``redetect_every`` pairs while none is found). Other estimators get the last hand's box
(its projected mesh, grown) as ``roi`` for up to ``redetect_every`` pairs. A pair replaced
before the worker took it is dropped and counted.
Bad input never stops the node: the pair is refused with a reason (throttled warning +
diagnostics) and the node resumes with the next good pair.
"""
from __future__ import annotations

import gc
import math
import os
import sys
import threading
import time
from collections import Counter, deque
from typing import Any, Sequence

import numpy as np
import rclpy
from rclpy.node import Node

from hand_mesh_core.geometry.camera import StereoCamera
from hand_mesh_core.pipeline import HandMeshEstimator, HandMeshResult
from hand_mesh_ros.common import ImageRefused, image_to_rgb8, make_stereo_sync
from hand_mesh_ros.compat import point_cloud2
from hand_mesh_ros.config import (AUTO_HANDEDNESS, HANDEDNESS_CHOICES,
                                  INPUT_SIZE_FROM_CHECKPOINT, StereoNodeConfig)
from hand_mesh_ros.params import ConfigParameterBinding, declare_config

__all__ = ["HandMeshNode", "main", "NODE_NAME", "result_to_markers", "confidence_color",
           "load_model", "resolve_handedness", "checkpoint_input_size", "set_cpu_threads",
           "track_box", "downscale_pair", "MODEL_KEYS"]

NODE_NAME = "hand_mesh"
#: Marker sizes (m): joint sphere diameter and bone line width, about a finger's thickness
#: (adult finger width ~15-20 mm, Greiner 1991 "Hand anthropometry of U.S. army personnel").
JOINT_DIAMETER_M = 0.012
BONE_WIDTH_M = 0.005
#: Period of /diagnostics (ROS convention: 1 Hz, diagnostic_updater default).
DIAGNOSTICS_PERIOD_S = 1.0
#: Window of the rate / latency statistics.
STATS_WINDOW = 30
_NS_PER_S = 1_000_000_000
#: Nice value of the background whole-image search thread: on a busy machine the worker
#: (nice 0) gets the CPU first (CFS weight 1024 against 110 at nice 10, Linux sched docs).
BACKGROUND_NICE = 10
#: Disparity of the blank warm-up crop, px (any positive value).
WARM_UP_DISPARITY_PX = 10.0
#: Parameters that select the model: changing one reloads it.
MODEL_KEYS = ("model_path", "device", "handedness", "input_size")


def confidence_color(confidence: float) -> tuple[float, float, float, float]:
    """RGBA in [0, 1]: red at confidence 0, yellow at 0.5, green at 1 (alpha 0.8)."""
    c = min(1.0, max(0.0, float(confidence)))
    return (min(1.0, 2.0 * (1.0 - c)), min(1.0, 2.0 * c), 0.0, 0.8)


def resolve_handedness(handedness: str) -> str:
    """The hand the estimator reports for the node's ``handedness`` parameter.

    "left" and "right" are kept; "auto" is :data:`AUTO_HANDEDNESS` ("right") until a
    handedness classifier exists.

    Raises:
        ValueError: ``handedness`` is not one of :data:`HANDEDNESS_CHOICES`.
    """
    if handedness not in HANDEDNESS_CHOICES:
        raise ValueError(f"handedness must be one of {list(HANDEDNESS_CHOICES)}, got "
                         f"{handedness!r}")
    return AUTO_HANDEDNESS if handedness == "auto" else handedness


def set_cpu_threads(threads: int) -> None:
    """Set the CPU thread pools of torch (intra-op) and OpenCV for this process.

    On a small, shared machine a pool wider than the free cores spins at its barriers: the
    stereo network measured 7 ms per pair with 1 torch thread and 0.3-1 s with 2 on a busy
    2-core machine. 0 keeps the libraries' defaults.

    Raises:
        ValueError: ``threads`` is not an int >= 0.
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise ValueError(f"threads must be an int >= 0 (0: library defaults), got {threads!r}")
    if threads == 0:
        return
    import cv2
    import torch

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)


def downscale_pair(left: np.ndarray, right: np.ndarray, camera: StereoCamera,
                   max_width_px: int) -> tuple[np.ndarray, np.ndarray, StereoCamera]:
    """Downscale a rectified pair wider than ``max_width_px`` (area filter) and scale the
    camera to match (``StereoCamera.scaled``: the pair stays rectified and metric depth is
    unchanged, since depth = fx * baseline / disparity and fx, disparity scale alike).

    Args:
        left, right: (H, W, 3) uint8 images of ``camera.size``.
        camera: the full-size pair.
        max_width_px: largest width kept, px; 0 never downscales.

    Returns:
        (left, right, camera), the inputs themselves when no downscale is needed.

    Raises:
        ValueError: ``max_width_px`` < 0.
    """
    if isinstance(max_width_px, bool) or not isinstance(max_width_px, int) or max_width_px < 0:
        raise ValueError(f"max_width_px must be an int >= 0 (0: never), got {max_width_px!r}")
    if max_width_px == 0 or camera.width <= max_width_px:
        return left, right, camera
    import cv2

    small = camera.scaled(max_width_px / camera.width)
    size = (small.width, small.height)
    return (cv2.resize(left, size, interpolation=cv2.INTER_AREA),
            cv2.resize(right, size, interpolation=cv2.INTER_AREA), small)


def track_box(uv_px: np.ndarray, image_size: tuple[int, int], margin_frac: float
              ) -> tuple[float, float, float, float] | None:
    """The hand box for the next pair: the bounding box of the projected mesh, grown by
    ``margin_frac`` of its long side on each side, made square, clipped to the image.

    Args:
        uv_px: (V, 2) vertex pixels in the left image (``HandMeshResult.uv_left``).
        image_size: (width, height) of the left image, px.
        margin_frac: growth on each side as a fraction of the long side, >= 0.

    Returns:
        (x0, y0, width, height) in px, or None when no finite vertex projects inside the image.

    Raises:
        ValueError: bad ``uv_px`` shape or negative ``margin_frac``.
    """
    uv = np.asarray(uv_px, dtype=np.float64)
    if uv.ndim != 2 or uv.shape[1] != 2:
        raise ValueError(f"uv_px must have shape (V, 2), got {uv.shape}")
    if not margin_frac >= 0.0:
        raise ValueError(f"margin_frac must be >= 0, got {margin_frac}")
    w, h = image_size
    uv = uv[np.isfinite(uv).all(axis=1)]
    if not len(uv):
        return None
    lo, hi = uv.min(axis=0), uv.max(axis=0)
    side = float((hi - lo).max()) * (1.0 + 2.0 * margin_frac)
    cx, cy = (lo + hi) / 2.0
    x0, y0 = max(cx - side / 2.0, 0.0), max(cy - side / 2.0, 0.0)
    x1, y1 = min(cx + side / 2.0, float(w)), min(cy + side / 2.0, float(h))
    if x1 - x0 < 1.0 or y1 - y0 < 1.0:
        return None
    return (float(x0), float(y0), float(x1 - x0), float(y1 - y0))


def checkpoint_input_size(estimator: Any) -> int | None:
    """The network input side (px) of an estimator built from a checkpoint, or None when the
    estimator does not expose one (``estimator.model.config.input_size``)."""
    size = getattr(getattr(getattr(estimator, "model", None), "config", None), "input_size",
                   None)
    return int(size) if isinstance(size, int) and not isinstance(size, bool) else None


def load_model(model_path: str, device: str, handedness: str = "auto",
               input_size: int = INPUT_SIZE_FROM_CHECKPOINT) -> HandMeshEstimator:
    """The estimator from a checkpoint via ``hand_mesh_core.pipeline.load_estimator``.

    Args:
        model_path: ``.safetensors`` checkpoint; "" loads the shipped default.
        device: "cpu" or "cuda".
        handedness: "left", "right" or "auto" (= right, see :func:`resolve_handedness`).
        input_size: expected network input side, px; 0 accepts the checkpoint's.

    Raises:
        ValueError: no loader available, the file cannot be loaded, or ``input_size``
            differs from the checkpoint's (the message says why).
    """
    hand = resolve_handedness(handedness)
    if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 0:
        raise ValueError(f"input_size must be an int >= 0 (0: from the checkpoint), got "
                         f"{input_size!r}")
    try:
        from hand_mesh_core.pipeline import load_estimator
    except ImportError as exc:
        raise ValueError("hand_mesh_core.pipeline.load_estimator is not available in this "
                         "build") from exc
    name = model_path or "<default>"
    try:
        est = load_estimator(model_path or None, device, hand)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
        raise ValueError(f"cannot load model {name!r}: {exc}") from exc
    if not isinstance(est, HandMeshEstimator):
        raise ValueError(f"{name!r} did not give a HandMeshEstimator")
    size = checkpoint_input_size(est)
    if input_size != INPUT_SIZE_FROM_CHECKPOINT and size != input_size:
        raise ValueError(f"input_size is {input_size} px but the checkpoint {name!r} was "
                         f"trained at {size} px; set input_size to {size} or to 0 (= the "
                         "checkpoint's)")
    return est


def result_to_markers(result: HandMeshResult, header: Any) -> Any:
    """MarkerArray of one hand: mesh (id 0), joints (id 1), bones (id 2)."""
    from geometry_msgs.msg import Point
    from std_msgs.msg import ColorRGBA
    from visualization_msgs.msg import Marker, MarkerArray

    from hand_mesh_core.hand.joints import BONES

    r, g, b, a = confidence_color(result.confidence)
    color = ColorRGBA(r=r, g=g, b=b, a=a)
    arr = MarkerArray()

    def marker(mid: int, ns: str, mtype: int) -> Any:
        m = Marker(header=header, ns=ns, id=mid, type=mtype, action=Marker.ADD)
        m.pose.orientation.w = 1.0
        m.scale.x = m.scale.y = m.scale.z = 1.0
        m.color = color
        return m

    v = np.asarray(result.vertices_m, dtype=np.float64)
    faces = np.asarray(result.faces, dtype=np.int64)
    mesh = marker(0, "hand_mesh", Marker.TRIANGLE_LIST)
    mesh.points = [Point(x=x, y=y, z=z) for x, y, z in v[faces.reshape(-1)].tolist()]
    joints = marker(1, "hand_joints", Marker.SPHERE_LIST)
    joints.scale.x = joints.scale.y = joints.scale.z = JOINT_DIAMETER_M
    j = np.asarray(result.joints_m, dtype=np.float64)
    joints.points = [Point(x=x, y=y, z=z) for x, y, z in j.tolist()]
    bones = marker(2, "hand_bones", Marker.LINE_LIST)
    bones.scale.x = BONE_WIDTH_M
    bones.points = [Point(x=x, y=y, z=z) for a, b in BONES for x, y, z in (j[a], j[b])]
    arr.markers = [mesh, joints, bones]
    return arr


class _Refused(Exception):
    """A pair that cannot be processed; ``key`` groups the reasons for counting."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(reason)
        self.key = key


class HandMeshNode(Node):
    """The hand mesh node (see the module docstring).

    Args:
        node_name: ROS node name.
        estimator: an estimator to use instead of loading ``model_path`` (tests, embedding).
        **kwargs: passed to ``rclpy.node.Node``.
    """

    def __init__(self, node_name: str = NODE_NAME, estimator: HandMeshEstimator | None = None,
                 **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import PoseArray
        from sensor_msgs.msg import PointCloud2
        from std_msgs.msg import Float32
        from std_srvs.srv import Trigger
        from visualization_msgs.msg import MarkerArray

        if estimator is not None and not isinstance(estimator, HandMeshEstimator):
            raise TypeError(f"estimator must implement HandMeshEstimator.predict, got "
                            f"{type(estimator).__name__}")
        declare_config(self, StereoNodeConfig)
        self._binding = ConfigParameterBinding(self, StereoNodeConfig, self._on_param_change)
        cfg = self.config
        set_cpu_threads(cfg.cpu_threads)
        self._estimator = estimator
        self._injected = estimator is not None
        self._model_lock = threading.Lock()
        self.model_error = ""
        self._pub_markers = self.create_publisher(MarkerArray, "hand_mesh/markers", 10)
        self._pub_points = self.create_publisher(PointCloud2, "hand_mesh/points", 10)
        self._pub_joints = self.create_publisher(PoseArray, "hand_mesh/joints", 10)
        self._pub_conf = self.create_publisher(Float32, "hand_mesh/confidence", 10)
        self._pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._subs, self._sync = make_stereo_sync(
            self, self._on_set, approximate=cfg.approximate_sync, slop_s=cfg.slop_s,
            queue_size=cfg.queue_size, qos_kind=cfg.image_qos)
        self._last_arrival = [0.0] * 4
        for i, sub in enumerate(self._subs):
            sub.registerCallback(self._on_arrival, i)
        self._cond = threading.Condition()
        self._latest: tuple | None = None
        self._running = True
        self.counts: Counter = Counter()
        self.refusals: Counter = Counter()
        self.last_refusal = ""
        self._hand_visible = False
        self._track_box: tuple[float, float, float, float] | None = None
        self._track_size: tuple[int, int] = (0, 0)
        self._track_age = 0
        self._track_disparity_px: float | None = None
        self._redetect_lock = threading.Lock()
        self._redetect_busy = False
        self._redetected: tuple | None = None
        self._since_redetect = 0
        self._redetect_thread: threading.Thread | None = None
        self._last_sync = 0.0
        self._last_processed = 0.0
        self._arrivals: deque = deque(maxlen=STATS_WINDOW)
        self._done_times: deque = deque(maxlen=STATS_WINDOW)
        self._latencies_s: deque = deque(maxlen=STATS_WINDOW)
        self._last_warn: dict[str, float] = {}
        self.create_service(Trigger, "~/reload_model", self._srv_reload)
        if not self._injected:  # load now: errors show in /diagnostics before the first pair
            try:
                self._get_estimator()
            except _Refused as exc:
                self.get_logger().error(str(exc))
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics)
        self._worker = threading.Thread(target=self._work_loop, name="hand_mesh_worker",
                                        daemon=True)
        self._worker.start()

    # ------------------------------------------------------------------ config / model
    @property
    def config(self) -> StereoNodeConfig:
        """The current, validated settings."""
        return self._binding.config

    def _on_param_change(self, old: StereoNodeConfig, new: StereoNodeConfig) -> None:
        fixed = ("approximate_sync", "slop_s", "queue_size", "image_qos", "cpu_threads")
        changed = [k for k in fixed if getattr(old, k) != getattr(new, k)]
        if changed:
            raise ValueError(f"{changed} can only be set at start-up")
        if any(getattr(old, k) != getattr(new, k) for k in MODEL_KEYS) and not self._injected:
            self._swap_model(self._load(new))

    def _load(self, cfg: StereoNodeConfig) -> HandMeshEstimator:
        est = load_model(cfg.model_path, cfg.device, cfg.handedness, cfg.input_size)
        self._warm_up(est)
        self.get_logger().info(
            f"model {cfg.model_path or '<default>'} loaded on {cfg.device}: input "
            f"{checkpoint_input_size(est)} px, {resolve_handedness(cfg.handedness)} hand")
        return est

    def _warm_up(self, est: Any) -> None:
        """Run the ROI search and the network once on a blank pair, so that the first real
        pair does not pay for lazy imports, allocations and first-call set-up (it would
        otherwise take several frame periods and drop the pairs behind it)."""
        if not (hasattr(est, "find_roi") and hasattr(est, "predict_crop")):
            return
        from hand_mesh_core.train.batch import roi_stereo_crop

        camera = StereoCamera()   # the default preset's size
        blank = np.zeros((camera.height, camera.width, 3), np.uint8)
        try:
            est.find_roi(blank, blank, camera, fallback="quick")
            size = checkpoint_input_size(est) or camera.height
            est.predict_crop(blank, blank, camera, roi_stereo_crop(
                (0.0, 0.0, float(size), float(size)), WARM_UP_DISPARITY_PX, size))
        except Exception as exc:  # noqa: BLE001 - warming up is an optimisation only
            self.get_logger().warning(f"model warm-up failed: {type(exc).__name__}: {exc}")

    def _swap_model(self, est: HandMeshEstimator) -> None:
        with self._model_lock:
            self._estimator = est
            self.model_error = ""

    def reload_model(self) -> tuple[bool, str]:
        """Load ``model_path`` again (same device, handedness and input size checks as at
        start-up); on failure keep the current model. Returns (ok, text)."""
        cfg = self.config
        try:
            est = self._load(cfg)
        except ValueError as exc:
            return False, f"{exc}; keeping the previous model"
        self._swap_model(est)
        self._injected = False
        return True, f"loaded {cfg.model_path or '<default>'} on {cfg.device}"

    def _srv_reload(self, request: Any, response: Any) -> Any:
        response.success, response.message = self.reload_model()
        return response

    def _get_estimator(self) -> HandMeshEstimator:
        with self._model_lock:
            if self._estimator is None:
                cfg = self.config
                try:
                    self._estimator = self._load(cfg)
                except ValueError as exc:
                    self.model_error = str(exc)
                    raise _Refused("model", str(exc)) from exc
            return self._estimator

    # ------------------------------------------------------------------ input
    def _on_arrival(self, msg: Any, index: int) -> None:
        self._last_arrival[index] = time.monotonic()

    def _on_set(self, left: Any, left_info: Any, right: Any, right_info: Any) -> None:
        now = time.monotonic()
        self._last_sync = now
        self._arrivals.append(now)
        self.counts["received"] += 1
        with self._cond:
            if self._latest is not None:
                self.counts["dropped"] += 1
            self._latest = (left, left_info, right, right_info, now)
            self._cond.notify()

    def _refuse(self, key: str, reason: str) -> None:
        self.counts["refused"] += 1
        self.refusals[key] += 1
        self.last_refusal = reason
        now = time.monotonic()
        if now - self._last_warn.get(key, -math.inf) >= self.config.warn_period_s:
            self._last_warn[key] = now
            self.get_logger().warning(f"input refused ({key}): {reason}")

    @staticmethod
    def camera_from_infos(left: Any, left_info: Any, right: Any, right_info: Any
                          ) -> StereoCamera:
        """Check sizes and build the camera. Raises _Refused with the reason."""
        sizes = {"left image": (left.width, left.height), "right image": (right.width,
                                                                          right.height),
                 "left camera_info": (left_info.width, left_info.height),
                 "right camera_info": (right_info.width, right_info.height)}
        if sizes["left image"] != sizes["right image"]:
            raise _Refused("size", f"left and right images differ: {sizes['left image']} vs "
                           f"{sizes['right image']}")
        for side in ("left", "right"):
            if sizes[f"{side} image"] != sizes[f"{side} camera_info"] \
                    and sizes[f"{side} camera_info"] != (0, 0):
                raise _Refused("size", f"{side} image is {sizes[f'{side} image']} but its "
                               f"camera_info says {sizes[f'{side} camera_info']}")
        try:
            return StereoCamera.from_camera_info(list(left_info.p), list(right_info.p),
                                                 sizes["left image"], sizes["right image"])
        except ValueError as exc:  # includes RectificationError
            raise _Refused("camera", f"bad camera_info: {exc}") from exc

    # ------------------------------------------------------------------ worker
    def _work_loop(self) -> None:
        while True:
            with self._cond:
                while self._running and self._latest is None:
                    self._cond.wait(0.1)
                if not self._running:
                    return
                item, self._latest = self._latest, None
            cfg = self.config
            if cfg.max_rate_hz > 0:
                wait = self._last_processed + 1.0 / cfg.max_rate_hz - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                    with self._cond:  # a newer pair arrived meanwhile: it wins
                        if self._latest is not None:
                            self.counts["dropped"] += 1
                            item, self._latest = self._latest, None
            self._last_processed = time.monotonic()
            try:
                self._process(*item)
            except _Refused as exc:
                self._refuse(exc.key, str(exc))
            except Exception as exc:  # noqa: BLE001 - never let one pair kill the node
                self._refuse("error", f"{type(exc).__name__}: {exc}")

    def _process(self, left: Any, left_info: Any, right: Any, right_info: Any,
                 arrived: float) -> None:
        cfg = self.config
        try:
            img_l = image_to_rgb8(left, cfg.max_image_pixels)
            img_r = image_to_rgb8(right, cfg.max_image_pixels)
        except ImageRefused as exc:
            raise _Refused("image", str(exc)) from exc
        camera = self.camera_from_infos(left, left_info, right, right_info)
        img_l, img_r, camera = downscale_pair(img_l, img_r, camera, cfg.max_process_width_px)
        est = self._get_estimator()
        if hasattr(est, "find_roi") and hasattr(est, "predict_crop"):
            result = self._predict_tracked(est, img_l, img_r, camera, cfg)
        else:
            roi = None
            if cfg.track_roi and self._track_box is not None \
                    and camera.size == self._track_size and self._track_age < cfg.redetect_every:
                roi = self._track_box
            result = est.predict(img_l, img_r, camera, roi=roi)
            result = self._confident(result, cfg)
            self._update_track(result, camera, cfg, tracked=roi is not None)
        header = left.header
        if result is None:
            self.counts["no_hand"] += 1
            self.refusals["no_hand"] += 1
            if self._hand_visible:
                self._publish_lost(header)
            self._hand_visible = False
            self._finish(arrived)
            return
        self._publish(result, header)
        self._hand_visible = True
        self.counts["published"] += 1
        self._finish(arrived)

    def _confident(self, result: HandMeshResult | None, cfg: StereoNodeConfig
                   ) -> HandMeshResult | None:
        if result is not None and result.confidence < cfg.min_confidence:
            self.counts["low_confidence"] += 1
            return None
        return result

    def _predict_tracked(self, est: Any, left: np.ndarray, right: np.ndarray,
                         camera: StereoCamera, cfg: StereoNodeConfig) -> HandMeshResult | None:
        """ROI (tracking fast path when a track exists) -> crop -> network; updates the
        track. A background whole-image search is started every ``redetect_every`` tracked
        pairs; its result replaces the track on the next pair."""
        from hand_mesh_core.train.batch import roi_stereo_crop

        self._apply_redetection(camera)
        prior = disparity = None
        if cfg.track_roi and self._track_box is not None and camera.size == self._track_size:
            prior, disparity = self._track_box, self._track_disparity_px
        quick = cfg.track_roi and cfg.quick_acquire
        hand = est.find_roi(left, right, camera, prior=prior, prior_disparity_px=disparity,
                            fallback="quick" if quick else "full")
        tracked = hand is not None and hand.source == "track"
        self._since_redetect += 1
        # Background whole-image search: every redetect_every tracked pairs; at once to
        # confirm a quick acquisition; every redetect_every pairs while nothing is found.
        if (tracked and self._track_age + 1 >= cfg.redetect_every) \
                or (hand is not None and hand.source == "quick") \
                or (quick and hand is None and self._since_redetect >= cfg.redetect_every):
            self._request_redetection(est, left, right, camera)
        result = None
        if hand is not None:
            crop = roi_stereo_crop(hand.left, hand.disparity_px, est.model.config.input_size)
            result = self._confident(est.predict_crop(left, right, camera, crop), cfg)
        if not cfg.track_roi:
            return result
        if tracked:
            self.counts["tracked"] += 1
        if result is None:
            self._track_box = self._track_disparity_px = None
            self._track_age = 0
        else:
            self._track_box, self._track_size = hand.left, camera.size
            self._track_disparity_px = hand.disparity_px if hand.stereo_matched else None
            self._track_age = self._track_age + 1 if tracked else 0
        return result

    def _request_redetection(self, est: Any, left: np.ndarray, right: np.ndarray,
                             camera: StereoCamera) -> None:
        with self._redetect_lock:
            if self._redetect_busy:
                return
            self._redetect_busy = True
        self._since_redetect = 0
        # not a daemon: a thread still inside OpenCV/torch while the interpreter finalises
        # aborts the process; destroy_node joins it
        self._redetect_thread = threading.Thread(
            target=self._redetect, args=(est, left, right, camera), name="hand_mesh_redetect")
        self._redetect_thread.start()

    def _redetect(self, est: Any, left: np.ndarray, right: np.ndarray,
                  camera: StereoCamera) -> None:
        try:   # Linux: a thread is a task with its own nice value
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)
        except (AttributeError, OSError):   # other systems: same priority as the worker
            pass
        try:
            hand = est.find_roi(left, right, camera)
        except Exception as exc:  # noqa: BLE001 - a failed search only skips one correction
            self.get_logger().warning(f"background hand search failed: {exc}")
            hand = None
        with self._redetect_lock:
            self._redetected = (camera.size, hand)
            self._redetect_busy = False

    def _apply_redetection(self, camera: StereoCamera) -> None:
        with self._redetect_lock:
            done, self._redetected = self._redetected, None
        if done is None or done[0] != camera.size:
            return
        self.counts["redetected"] += 1
        hand = done[1]
        self._track_age = 0
        if hand is None:   # the whole image holds no hand: whatever was tracked is not one
            self._track_box = self._track_disparity_px = None
        else:
            self._track_box, self._track_size = hand.left, camera.size
            self._track_disparity_px = hand.disparity_px if hand.stereo_matched else None

    def _update_track(self, result: HandMeshResult | None, camera: StereoCamera,
                      cfg: StereoNodeConfig, tracked: bool) -> None:
        if not cfg.track_roi:
            return
        if tracked:
            self.counts["tracked"] += 1
        box = None if result is None else track_box(result.uv_left, camera.size,
                                                    cfg.track_margin_frac)
        self._track_box, self._track_size = box, camera.size
        self._track_age = self._track_age + 1 if tracked and box is not None else 0

    def _finish(self, arrived: float) -> None:
        now = time.monotonic()
        self._done_times.append(now)
        self._latencies_s.append(now - arrived)
        self.counts["processed"] += 1

    # ------------------------------------------------------------------ output
    def _publish_lost(self, header: Any) -> None:
        from visualization_msgs.msg import Marker, MarkerArray

        self._pub_markers.publish(MarkerArray(markers=[Marker(header=header,
                                                              action=Marker.DELETEALL)]))

    def _publish(self, result: HandMeshResult, header: Any) -> None:
        from geometry_msgs.msg import Pose, PoseArray
        from std_msgs.msg import Float32

        # the MarkerArray holds ~5000 Python Point objects (~5 ms): build it only when someone
        # (rviz) listens; the other outputs are cheap
        if self._pub_markers.get_subscription_count() > 0:
            self._pub_markers.publish(result_to_markers(result, header))
        self._pub_points.publish(point_cloud2.create_cloud_xyz32(
            header, np.asarray(result.vertices_m, dtype=np.float32)))
        poses = PoseArray(header=header)
        for x, y, z in np.asarray(result.joints_m, dtype=np.float64).tolist():
            p = Pose()
            p.position.x, p.position.y, p.position.z = x, y, z
            p.orientation.w = 1.0
            poses.poses.append(p)
        self._pub_joints.publish(poses)
        self._pub_conf.publish(Float32(data=float(result.confidence)))

    # ------------------------------------------------------------------ diagnostics
    @staticmethod
    def _rate(times: deque) -> float:
        if len(times) < 2 or times[-1] <= times[0]:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])

    def diagnostic_status(self) -> Any:
        """The node's ``diagnostic_msgs/DiagnosticStatus`` now."""
        from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

        now = time.monotonic()
        cfg = self.config
        level, message = DiagnosticStatus.OK, "ok"
        img_l, img_r = self._last_arrival[0], self._last_arrival[2]
        stale = cfg.stall_timeout_s
        if self.model_error:
            level, message = DiagnosticStatus.ERROR, self.model_error
        elif max(img_l, img_r) == 0.0:
            level, message = DiagnosticStatus.WARN, "no input yet"
        elif now - max(img_l, img_r) > stale:
            level, message = DiagnosticStatus.WARN, "no images for " \
                f"{now - max(img_l, img_r):.1f} s"
        elif now - min(img_l, img_r) > stale:
            side = "left" if img_l < img_r else "right"
            level, message = DiagnosticStatus.WARN, f"{side} camera stalled"
        elif now - self._last_sync > stale:
            level, message = DiagnosticStatus.WARN, \
                "images arrive but their stamps do not match (check approximate_sync / slop_s)"
        elif self.last_refusal and self.counts["refused"] and \
                now - max(self._last_warn.values(), default=-math.inf) < stale:
            level, message = DiagnosticStatus.WARN, f"input refused: {self.last_refusal}"
        lat = sorted(self._latencies_s)
        values = {
            "input_rate_hz": f"{self._rate(self._arrivals):.2f}",
            "processed_rate_hz": f"{self._rate(self._done_times):.2f}",
            "latency_ms_median": f"{1e3 * lat[len(lat) // 2]:.1f}" if lat else "nan",
            "latency_ms_max": f"{1e3 * lat[-1]:.1f}" if lat else "nan",
            "received": str(self.counts["received"]),
            "processed": str(self.counts["processed"]),
            "published": str(self.counts["published"]),
            "dropped": str(self.counts["dropped"]),
            "refused": str(self.counts["refused"]),
            "no_hand": str(self.counts["no_hand"]),
            "tracked": str(self.counts["tracked"]),
            "redetected": str(self.counts["redetected"]),
            "last_refusal": self.last_refusal,
            "model": cfg.model_path or "<default>",
            "model_loaded": str(self._estimator is not None).lower(),
            "model_input_size_px": str(checkpoint_input_size(self._estimator) or ""),
            "handedness": resolve_handedness(cfg.handedness),
        }
        values.update({f"refused_{k}": str(v) for k, v in self.refusals.items()})
        return DiagnosticStatus(level=level, name=f"{self.get_name()}: hand mesh",
                                message=message, hardware_id=self.get_fully_qualified_name(),
                                values=[KeyValue(key=k, value=v) for k, v in values.items()])

    def _publish_diagnostics(self) -> None:
        from diagnostic_msgs.msg import DiagnosticArray

        arr = DiagnosticArray(status=[self.diagnostic_status()])
        arr.header.stamp = self.get_clock().now().to_msg()
        self._pub_diag.publish(arr)

    def destroy_node(self) -> None:
        """Stop the worker, then destroy the node."""
        with self._cond:
            self._running = False
            self._cond.notify_all()
        self._worker.join(timeout=5.0)
        if self._redetect_thread is not None:
            self._redetect_thread.join(timeout=5.0)
        super().destroy_node()


def main(args: Sequence[str] | None = None) -> int:
    """Entry point (``ros2 run hand_mesh_ros stereo_node``). Returns the exit code."""
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    argv = list(sys.argv[1:] if args is None else args)
    rclpy.init(args=["stereo_node", *argv])
    node = HandMeshNode()
    # The model and libraries are loaded: move these long-lived objects out of the garbage
    # collector's generations, so a collection triggered by per-pair allocations (thousands of
    # marker points) does not rescan them (a 100+ ms pause every few pairs, measured).
    gc.freeze()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        executor.shutdown()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
