"""Record synchronised stereo pairs (left/right images + camera infos) into a rosbag2.

Subscribes (relative, remappable): ``left/image_rect``, ``left/camera_info``,
``right/image_rect``, ``right/camera_info``. Each synchronised set is written with the pair's
header stamp as log time, under the resolved topic names; with ``compression`` png or jpeg the
images go to ``<image topic>/compressed`` as ``sensor_msgs/CompressedImage`` (format string as
compressed_image_transport: ``"rgb8; png compressed bgr8"``). Bags: ``<output_dir>/stereo_<UTC
time>``, mcap by default.

Threads: the subscription callback only queues the set; a pool encodes images (OpenCV releases
the GIL), one writer thread writes in arrival order. A full queue drops the set and counts it.

Services: ``~/start``, ``~/stop`` (std_srvs/Trigger). SIGINT/SIGTERM close the bag cleanly;
after ``kill -9`` run ``python -m hand_mesh_ros.recorder_node --repair <bag>``.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import queue
import signal
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
import rclpy
from rclpy.node import Node

from hand_mesh_ros.bag import BagWriteError, StereoBagWriter, repair_bag
from hand_mesh_ros.common import ImageRefused, image_to_rgb8, make_stereo_sync, stamp_ns
from hand_mesh_ros.compat import CvBridge
from hand_mesh_ros.config import RecorderConfig
from hand_mesh_ros.params import ConfigParameterBinding, declare_config

__all__ = ["RecorderNode", "main", "has_hand", "encode_image", "NODE_NAME"]

NODE_NAME = "stereo_recorder"
#: Longest side of the copy of the left image used by the hand check (speed; a hand at
#: arm's length is still >= 20 px wide at this size).
HAND_CHECK_MAX_SIDE_PX = 320
_NS_PER_S = 1_000_000_000
_BRIDGE = CvBridge()


def has_hand(rgb: np.ndarray, min_fraction: float) -> bool:
    """True when the skin mask covers at least ``min_fraction`` of the image.

    Uses ``hand_mesh_core.data.skin.skin_mask`` (YCrCb box of Chai & Ngan 1999 + clean-up) on
    a copy downscaled to :data:`HAND_CHECK_MAX_SIDE_PX`.
    """
    from hand_mesh_core.data.config import SkinConfig
    from hand_mesh_core.data.skin import skin_mask

    h, w = rgb.shape[:2]
    f = min(1.0, HAND_CHECK_MAX_SIDE_PX / max(h, w))
    small = cv2.resize(rgb, (max(1, round(w * f)), max(1, round(h * f))),
                       interpolation=cv2.INTER_AREA) if f < 1.0 else rgb
    area_scale = f * f
    cfg = SkinConfig()
    cfg = cfg.replace(min_area_px=int(cfg.min_area_px * area_scale))
    mask = skin_mask(np.ascontiguousarray(small), cfg)
    return float(mask.mean()) >= min_fraction


def encode_image(msg: Any, compression: str, png_level: int = 1,
                 jpeg_quality: int = 95) -> Any:
    """``sensor_msgs/Image`` -> ``sensor_msgs/CompressedImage`` (same header).

    Colour images are encoded as BGR (OpenCV's order), mono8/mono16 as they are; the format
    string follows compressed_image_transport (``"<encoding>; <png|jpeg> compressed <stored>"``).

    Raises:
        ValueError: unknown compression, or jpeg of a 16-bit image.
        ImageRefused: the image cannot be decoded.
    """
    from sensor_msgs.msg import CompressedImage

    if compression not in ("png", "jpeg"):
        raise ValueError(f"compression must be one of ['png', 'jpeg'], got {compression!r}")
    try:
        img = _BRIDGE.imgmsg_to_cv2(msg, "passthrough")
    except (TypeError, ValueError) as exc:
        raise ImageRefused(f"bad image data: {exc}") from exc
    enc = msg.encoding
    if enc == "rgb8":
        img, stored = cv2.cvtColor(img, cv2.COLOR_RGB2BGR), "bgr8"
    elif enc in ("bgr8", "mono8", "mono16", "16UC1", "8UC1", "8UC3"):
        stored = enc
    else:  # pragma: no cover - imgmsg_to_cv2 refuses other encodings first
        raise ImageRefused(f"unsupported encoding {enc!r}")
    if compression == "jpeg":
        if img.dtype != np.uint8:
            raise ValueError(f"jpeg cannot store 16-bit {enc}; use png")
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
    else:
        ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, int(png_level)])
    if not ok:  # pragma: no cover - OpenCV failure
        raise ValueError(f"OpenCV could not encode {enc} as {compression}")
    out = CompressedImage(header=msg.header, format=f"{enc}; {compression} compressed {stored}")
    import array

    out.data = array.array("B", buf.tobytes())
    return out


class _Command:
    """A function to run on the writer thread, with its outcome."""

    def __init__(self, fn: Any) -> None:
        self.fn, self.result, self.error = fn, None, None
        self.done = threading.Event()

    def run(self) -> None:
        try:
            self.result = self.fn()
        except Exception as exc:  # noqa: BLE001 - handed back to the caller
            self.error = exc
        finally:
            self.done.set()


class RecorderNode(Node):
    """Stereo recorder (see the module docstring).

    Args:
        node_name: ROS node name.
        **kwargs: passed to ``rclpy.node.Node`` (e.g. ``context``, ``parameter_overrides``).
    """

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        from std_srvs.srv import Trigger

        declare_config(self, RecorderConfig)
        self._binding = ConfigParameterBinding(self, RecorderConfig, self._on_param_change)
        cfg = self.config
        self._subs, self._sync = make_stereo_sync(
            self, self._on_set, approximate=cfg.approximate_sync, slop_s=cfg.slop_s,
            queue_size=cfg.queue_size, qos_kind=cfg.image_qos)
        self._topics = [s.sub.topic_name for s in self._subs]
        self._lock = threading.RLock()
        self._pool = cf.ThreadPoolExecutor(cfg.encode_threads, thread_name_prefix="encode")
        self._pending: queue.Queue = queue.Queue(maxsize=cfg.max_pending)
        self._bag: StereoBagWriter | None = None
        self._accepting = False
        self._last_kept_ns: int | None = None
        self.counts = {"received": 0, "written": 0, "dropped_queue": 0, "skipped_rate": 0,
                       "skipped_no_hand": 0, "refused": 0, "failed": 0}
        self.last_error = ""
        self.last_bag: Path | None = None
        self._stop_thread = threading.Event()
        self._writer = threading.Thread(target=self._write_loop, name="bag_writer", daemon=True)
        self._writer.start()
        self.create_service(Trigger, "~/start", self._srv_start)
        self.create_service(Trigger, "~/stop", self._srv_stop)
        self._progress_timer = self.create_timer(cfg.progress_period_s, self._log_progress)
        self._progress_ref = (time.monotonic(), 0)
        if cfg.autostart:
            try:
                self.start_recording()
            except BagWriteError as exc:
                self.get_logger().error(str(exc))

    # ------------------------------------------------------------------ config
    @property
    def config(self) -> RecorderConfig:
        """The current, validated settings."""
        return self._binding.config

    def _on_param_change(self, old: RecorderConfig, new: RecorderConfig) -> None:
        fixed = ("approximate_sync", "slop_s", "queue_size", "image_qos", "encode_threads",
                 "max_pending", "progress_period_s")
        changed = [k for k in fixed if getattr(old, k) != getattr(new, k)]
        if changed:
            raise ValueError(f"{changed} can only be set at start-up")

    # ------------------------------------------------------------------ recording
    @property
    def recording(self) -> bool:
        """True while a bag is open."""
        return self._bag is not None

    def _run_in_writer(self, fn: Any, timeout_s: float = 30.0) -> Any:
        """Run ``fn()`` on the writer thread after everything queued before it (sqlite3
        connections may only be used by the thread that opened them)."""
        cmd = _Command(fn)
        self._pending.put(cmd, timeout=timeout_s)
        if not cmd.done.wait(timeout_s):
            raise BagWriteError(f"the bag writer did not answer within {timeout_s} s")
        if cmd.error is not None:
            raise cmd.error
        return cmd.result

    def start_recording(self) -> Path:
        """Open a new bag and accept pairs. Returns its folder.

        Raises:
            BagWriteError: already recording, or the bag cannot be created.
        """
        with self._lock:
            if self._bag is not None:
                raise BagWriteError(f"already recording to {self._bag.path}")
            cfg = self.config
            name = "stereo_" + datetime.now(timezone.utc).strftime("%Y%m%d_%H%M%S_%f")
            path = Path(cfg.output_dir).expanduser() / name
            self._bag = self._run_in_writer(
                lambda: StereoBagWriter(path, cfg.storage, cfg.flush_period_s))
            self._bag_started = time.monotonic()
            self._last_kept_ns = None
            self._accepting = True
            self.last_bag = path
        self.get_logger().info(f"recording to {path} ({cfg.storage}, images {cfg.compression})")
        return path

    def stop_recording(self, timeout_s: float = 30.0) -> Path | None:
        """Stop accepting pairs, write the queued ones, close the bag. Returns its folder."""
        with self._lock:
            self._accepting = False
            bag = self._bag
            if bag is None:
                return None
            try:
                stats = self._run_in_writer(bag.close, timeout_s)
                self.get_logger().info(f"closed {bag.path}: {stats.pairs} pairs, "
                                       f"{stats.messages} messages, "
                                       f"{stats.bytes_written / 1e6:.1f} MB")
            except BagWriteError as exc:
                self.last_error = str(exc)
                self.get_logger().error(str(exc))
            finally:
                self._bag = None
        return bag.path

    # ------------------------------------------------------------------ callbacks
    def _on_set(self, left: Any, left_info: Any, right: Any, right_info: Any) -> None:
        self.counts["received"] += 1
        if not self._accepting:
            return
        cfg = self.config
        t = stamp_ns(left.header.stamp)
        if cfg.rate_hz > 0 and self._last_kept_ns is not None \
                and t - self._last_kept_ns < _NS_PER_S / cfg.rate_hz:
            self.counts["skipped_rate"] += 1
            return
        if self._pending.full():
            self.counts["dropped_queue"] += 1
            return
        self._last_kept_ns = t
        fut = self._pool.submit(self._prepare, (left, left_info, right, right_info), cfg)
        self._pending.put_nowait(fut)

    def _prepare(self, msgs: tuple, cfg: RecorderConfig) -> list | str:
        """Encode + serialise one set (pool thread). Returns records or a skip reason."""
        from rclpy.serialization import serialize_message

        left, left_info, right, right_info = msgs
        if cfg.only_with_hand:
            try:
                if not has_hand(image_to_rgb8(left), cfg.min_skin_fraction):
                    return "no_hand"
            except ImageRefused as exc:
                return f"refused: {exc}"
        t = stamp_ns(left.header.stamp)
        records = []
        for topic, msg in zip(self._topics, msgs):
            if msg.__class__.__name__ == "Image" and cfg.compression != "none":
                try:
                    msg = encode_image(msg, cfg.compression, cfg.png_level, cfg.jpeg_quality)
                except (ImageRefused, ValueError) as exc:
                    return f"refused: {exc}"
                topic = topic.rstrip("/") + "/compressed"
            mtype = "sensor_msgs/msg/" + msg.__class__.__name__
            records.append((topic, mtype, t, serialize_message(msg)))
        return records

    def _write_loop(self) -> None:
        while not self._stop_thread.is_set():
            try:
                item = self._pending.get(timeout=0.05)
            except queue.Empty:
                bag = self._bag
                if bag is not None:
                    try:
                        bag.flush_if_due()
                    except Exception as exc:  # noqa: BLE001 - reported like a write error
                        self.last_error = str(exc)
                        self.get_logger().error(f"flush failed: {exc}")
                continue
            try:
                if isinstance(item, _Command):
                    item.run()
                else:
                    self._write(item.result())
            except Exception as exc:  # noqa: BLE001 - keep the writer alive, report
                self.counts["refused"] += 1
                self.last_error = str(exc)
                self.get_logger().error(f"recording failed: {exc}")
            finally:
                self._pending.task_done()

    def _write(self, result: list | str) -> None:
        if isinstance(result, str):
            key = "skipped_no_hand" if result == "no_hand" else "refused"
            self.counts[key] += 1
            if key == "refused":
                self.get_logger().warning(result, throttle_duration_sec=5.0)
            return
        bag = self._bag
        if bag is None or bag.closed:
            return
        try:
            for rec in result:
                bag.write(*rec)
        except BagWriteError as exc:
            self.counts["failed"] += 1
            self.last_error = str(exc)
            self.get_logger().error(str(exc))
            self._accepting = False
            self._bag = None
            return
        bag.stats.pairs += 1
        self.counts["written"] += 1
        cfg = self.config
        over_time = cfg.max_duration_s > 0 and \
            time.monotonic() - self._bag_started >= cfg.max_duration_s
        over_size = cfg.max_bytes > 0 and bag.stats.bytes_written >= cfg.max_bytes
        if (over_time or over_size) and self._accepting:
            self._accepting = False
            why = "max_duration_s" if over_time else "max_bytes"
            self.get_logger().info(f"{why} reached")
            threading.Thread(target=self.stop_recording, daemon=True).start()

    def _log_progress(self) -> None:
        t0, n0 = self._progress_ref
        now, n = time.monotonic(), self.counts["written"]
        self._progress_ref = (now, n)
        if not self.recording and n == n0:
            return
        bag = self._bag
        mb = bag.stats.bytes_written / 1e6 if bag else 0.0
        self.get_logger().info(
            f"{'recording' if bag else 'idle'}: {n} pairs written ({(n - n0) / (now - t0):.1f} "
            f"pairs/s), {mb:.1f} MB, dropped {self.counts['dropped_queue']}, skipped "
            f"{self.counts['skipped_rate']} (rate) {self.counts['skipped_no_hand']} (no hand), "
            f"refused {self.counts['refused']}")

    def _srv_start(self, request: Any, response: Any) -> Any:
        try:
            path = self.start_recording()
            response.success, response.message = True, f"recording to {path}"
        except BagWriteError as exc:
            response.success, response.message = False, str(exc)
        return response

    def _srv_stop(self, request: Any, response: Any) -> Any:
        path = self.stop_recording()
        response.success = path is not None
        response.message = f"closed {path}" if path else "not recording"
        return response

    def destroy_node(self) -> None:
        """Close the bag (writing what is queued), stop the threads."""
        self.stop_recording()
        self._stop_thread.set()
        self._writer.join(timeout=5.0)
        self._pool.shutdown(wait=True)
        super().destroy_node()


def _parse_repair(argv: Sequence[str]) -> argparse.Namespace | None:
    if "--repair" not in argv:
        return None
    p = argparse.ArgumentParser(prog="recorder_node")
    p.add_argument("--repair", metavar="BAG", required=True,
                   help="make a bag left by a killed recorder readable")
    return p.parse_args(list(argv))


def main(args: Sequence[str] | None = None) -> int:
    """Entry point (``ros2 run hand_mesh_ros recorder_node``). Returns the exit code."""
    argv = list(sys.argv[1:] if args is None else args)
    rep = _parse_repair(argv)
    if rep is not None:
        n = repair_bag(rep.repair)
        print(f"{rep.repair}: {n} messages readable")
        return 0
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    rclpy.init(args=["recorder_node", *argv], signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    node = RecorderNode()
    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(node)
    try:
        while not stop.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
    finally:
        node.destroy_node()
        executor.shutdown()
        if rclpy.ok():
            rclpy.shutdown()
    return 1 if node.last_error else 0


if __name__ == "__main__":
    raise SystemExit(main())
