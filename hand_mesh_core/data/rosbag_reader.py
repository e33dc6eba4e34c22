"""Read rectified stereo pairs from rosbag2 bags (sqlite3 or mcap) without ROS, via ``rosbags``.

Topics (configurable, :class:`RosbagConfig`): left/right rectified images, raw
(``sensor_msgs/msg/Image``: rgb8, bgr8, mono8) or compressed
(``sensor_msgs/msg/CompressedImage``: png, jpeg), and the two ``sensor_msgs/msg/CameraInfo``.
A configured name matches a bag topic that equals it, equals it with a leading ``/``, or ends
with ``/<name>`` (a namespace), so ``left/image_rect`` finds ``/stereo/left/image_rect``.

Left and right frames are paired by stamp (``header.stamp``, or the bag's record time) within
``slop_s``; unpaired frames are dropped. The camera comes from the first CameraInfo of each
side (``StereoCamera.from_camera_info``), unless one is given.

Two passes: the first reads only stamps (the CDR header stamp is at a fixed offset, so no image
is decoded), the second decodes the paired frames as they are iterated.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch.utils.data

from hand_mesh_core.data.config import RosbagConfig
from hand_mesh_core.data.types import HANDEDNESS_CHOICES, StereoSample
from hand_mesh_core.geometry.camera import StereoCamera

__all__ = ["RosbagStereoReader", "BagPair", "decode_image", "decode_compressed_image",
           "match_topic", "pair_stamps", "RAW_ENCODINGS", "COMPRESSED_FORMATS", "IMAGE_TYPE",
           "COMPRESSED_TYPE", "CAMERA_INFO_TYPE"]

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"
#: Raw encodings accepted (sensor_msgs/image_encodings.hpp names).
RAW_ENCODINGS = ("rgb8", "bgr8", "mono8")
#: Compressed formats accepted (image_transport's compressed plugin: "png", "jpeg", or e.g.
#: "bgr8; jpeg compressed bgr8").
COMPRESSED_FORMATS = ("png", "jpeg")
NS_PER_S = 1_000_000_000
# CDR: 4-byte encapsulation header (byte 1: 0 = big, 1 = little endian), then the message; a
# message starting with std_msgs/Header starts with stamp.sec (int32), stamp.nanosec (uint32).
_CDR_HEADER_BYTES = 4
_CDR_LITTLE_ENDIAN = 1


def match_topic(wanted: str, topics: list[str]) -> list[str]:
    """Bag topics that match a configured name (exact, with a leading '/', or as a suffix)."""
    name = wanted.strip("/")
    return [t for t in topics if t.strip("/") == name or t.endswith("/" + name)]


def _stamp_ns_from_cdr(raw: bytes | memoryview) -> int:
    raw = bytes(raw[:_CDR_HEADER_BYTES + 8])
    if len(raw) < _CDR_HEADER_BYTES + 8:
        raise ValueError("message too short for a std_msgs/Header")
    fmt = "<iI" if raw[1] == _CDR_LITTLE_ENDIAN else ">iI"
    sec, nsec = struct.unpack(fmt, raw[_CDR_HEADER_BYTES:_CDR_HEADER_BYTES + 8])
    return sec * NS_PER_S + nsec


def pair_stamps(left_ns: np.ndarray, right_ns: np.ndarray, slop_ns: int
                ) -> list[tuple[int, int]]:
    """Pair two stamp lists one-to-one within ``slop_ns`` (greedy in time order).

    Args:
        left_ns, right_ns: stamps in ns (any order).
        slop_ns: largest accepted difference, ns.

    Returns:
        ``(i_left, i_right)`` index pairs into the inputs, in time order.
    """
    lo = np.argsort(left_ns, kind="stable")
    ro = np.argsort(right_ns, kind="stable")
    pairs = []
    i = j = 0
    while i < len(lo) and j < len(ro):
        tl, tr = int(left_ns[lo[i]]), int(right_ns[ro[j]])
        if abs(tl - tr) <= slop_ns:
            # Prefer the closer of this right frame and the next one for this left frame.
            if j + 1 < len(ro) and abs(int(right_ns[ro[j + 1]]) - tl) < abs(tr - tl):
                j += 1
                continue
            pairs.append((int(lo[i]), int(ro[j])))
            i += 1
            j += 1
        elif tl < tr:
            i += 1
        else:
            j += 1
    return pairs


def decode_image(msg: object) -> np.ndarray:
    """A ``sensor_msgs/msg/Image`` (rgb8, bgr8, mono8) -> (H, W, 3) uint8 RGB."""
    enc = msg.encoding
    if enc not in RAW_ENCODINGS:
        raise ValueError(f"unsupported image encoding {enc!r}; supported: {list(RAW_ENCODINGS)}")
    channels = 1 if enc == "mono8" else 3
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    data = np.asarray(msg.data, dtype=np.uint8)
    if step < w * channels or data.size < h * step:
        raise ValueError(f"image data too short: {data.size} bytes for {w}x{h} {enc} with "
                         f"step {step}")
    img = data[:h * step].reshape(h, step)[:, :w * channels].reshape(h, w, channels)
    if enc == "mono8":
        return np.repeat(img, 3, axis=2)
    if enc == "bgr8":
        return np.ascontiguousarray(img[..., ::-1])
    return img.copy()


def decode_compressed_image(msg: object) -> np.ndarray:
    """A ``sensor_msgs/msg/CompressedImage`` (png, jpeg) -> (H, W, 3) uint8 RGB."""
    import cv2

    fmt = str(msg.format).lower()
    if not any(f in fmt for f in COMPRESSED_FORMATS + ("jpg",)):
        raise ValueError(f"unsupported compressed format {msg.format!r}; supported: "
                         f"{list(COMPRESSED_FORMATS)}")
    img = cv2.imdecode(np.asarray(msg.data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"cannot decode {msg.format!r} image data")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


@dataclass(frozen=True)
class BagPair:
    """One paired frame: the bag indices of its two images and its stamp.

    Attributes:
        left_index, right_index: positions among the left / right image messages.
        stamp_ns: the left stamp, ns.
        dt_ns: right minus left stamp, ns.
    """

    left_index: int
    right_index: int
    stamp_ns: int
    dt_ns: int


class RosbagStereoReader(torch.utils.data.IterableDataset):
    """Stereo samples from a rosbag2 bag, paired by stamp.

    Args:
        path: the bag directory (with metadata.yaml) or a single .mcap/.db3 file.
        config: topics and pairing.
        camera: use this camera instead of the bag's CameraInfo.
        handedness: recorded in every sample ("left" or "right").

    Raises:
        FileNotFoundError: no bag at ``path``.
        ValueError: image topics missing or ambiguous, or no CameraInfo and no camera.
    """

    def __init__(self, path: str | Path, config: RosbagConfig | None = None,
                 camera: StereoCamera | None = None, handedness: str = "right") -> None:
        from rosbags.rosbag2 import Reader
        from rosbags.typesys import Stores, get_typestore

        self.config = RosbagConfig.resolve(config)
        if handedness not in HANDEDNESS_CHOICES:
            raise ValueError(f"handedness must be one of {list(HANDEDNESS_CHOICES)}, "
                             f"got {handedness!r}")
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"no rosbag2 bag at {self.path}")
        self.handedness = handedness
        self._reader_cls = Reader
        self.typestore = get_typestore(Stores.ROS2_HUMBLE)
        with Reader(self.path) as reader:
            conns = {c.topic: c for c in reader.connections}
            self.left_topic, self.left_type = self._pick(conns, "left")
            self.right_topic, self.right_type = self._pick(conns, "right")
            stamps = {self.left_topic: [], self.right_topic: []}
            infos: dict[str, object] = {}
            info_topics = {
                side: self._find(conns, getattr(self.config, f"{side}_info_topic"),
                                 CAMERA_INFO_TYPE)
                for side in ("left", "right")}
            wanted = [conns[self.left_topic], conns[self.right_topic]] + [
                conns[t] for t in info_topics.values() if t is not None]
            for conn, t_ns, raw in reader.messages(connections=wanted):
                if conn.topic in stamps:
                    stamp = (_stamp_ns_from_cdr(raw) if self.config.use_header_stamp
                             else int(t_ns))
                    stamps[conn.topic].append(stamp)
                elif conn.topic not in infos:
                    infos[conn.topic] = self.typestore.deserialize_cdr(raw, conn.msgtype)
        self.camera = camera if camera is not None else self._camera(info_topics, infos)
        left_ns = np.asarray(stamps[self.left_topic], dtype=np.int64)
        right_ns = np.asarray(stamps[self.right_topic], dtype=np.int64)
        slop_ns = int(round(self.config.slop_s * NS_PER_S))
        self.pairs = [BagPair(i, j, int(left_ns[i]), int(right_ns[j] - left_ns[i]))
                      for i, j in pair_stamps(left_ns, right_ns, slop_ns)]
        self.num_left, self.num_right = len(left_ns), len(right_ns)

    # ------------------------------------------------------------------ topics and camera
    def _find(self, conns: dict, name: str, msgtype: str) -> str | None:
        matches = [t for t in match_topic(name, list(conns)) if conns[t].msgtype == msgtype]
        if len(matches) > 1:
            raise ValueError(f"topic {name!r} is ambiguous in {self.path}: {sorted(matches)}")
        return matches[0] if matches else None

    def _pick(self, conns: dict, side: str) -> tuple[str, str]:
        raw = self._find(conns, getattr(self.config, f"{side}_image_topic"), IMAGE_TYPE)
        if raw is not None:
            return raw, IMAGE_TYPE
        comp = self._find(conns, getattr(self.config, f"{side}_compressed_topic"),
                          COMPRESSED_TYPE)
        if comp is not None:
            return comp, COMPRESSED_TYPE
        listing = sorted(f"{t} [{c.msgtype}]" for t, c in conns.items())
        raise ValueError(
            f"no {side} image topic in {self.path}: looked for "
            f"{getattr(self.config, f'{side}_image_topic')!r} ({IMAGE_TYPE}) and "
            f"{getattr(self.config, f'{side}_compressed_topic')!r} ({COMPRESSED_TYPE}); "
            f"bag topics: {listing}")

    def _camera(self, info_topics: dict, infos: dict) -> StereoCamera:
        missing = [s for s, t in info_topics.items() if t is None or t not in infos]
        if missing:
            raise ValueError(
                f"no CameraInfo for {missing} in {self.path} (topics "
                f"{self.config.left_info_topic!r}, {self.config.right_info_topic!r}); pass "
                "camera=StereoCamera(...) instead")
        left, right = infos[info_topics["left"]], infos[info_topics["right"]]
        return StereoCamera.from_camera_info(
            np.asarray(left.p, dtype=np.float64), np.asarray(right.p, dtype=np.float64),
            (int(left.width), int(left.height)), (int(right.width), int(right.height)))

    # ------------------------------------------------------------------ samples
    def __len__(self) -> int:
        return len(self.pairs)

    def _decode(self, raw: bytes | memoryview, msgtype: str) -> np.ndarray:
        msg = self.typestore.deserialize_cdr(raw, msgtype)
        if msgtype == IMAGE_TYPE:
            return decode_image(msg)
        return decode_compressed_image(msg)

    def __iter__(self) -> Iterator[StereoSample]:
        want_left = {p.left_index: k for k, p in enumerate(self.pairs)}
        want_right = {p.right_index: k for k, p in enumerate(self.pairs)}
        pending: dict[int, dict[str, np.ndarray]] = {}
        next_out = 0
        counters = {self.left_topic: 0, self.right_topic: 0}
        with self._reader_cls(self.path) as reader:
            conns = [c for c in reader.connections
                     if c.topic in (self.left_topic, self.right_topic)]
            for conn, _, raw in reader.messages(connections=conns):
                idx = counters[conn.topic]
                counters[conn.topic] += 1
                side = "left" if conn.topic == self.left_topic else "right"
                k = (want_left if side == "left" else want_right).get(idx)
                if k is None:
                    continue
                pending.setdefault(k, {})[side] = self._decode(raw, conn.msgtype)
                while next_out in pending and len(pending[next_out]) == 2:
                    images = pending.pop(next_out)
                    yield self._sample(next_out, images)
                    next_out += 1
        for k in sorted(pending):  # pragma: no cover - pairs are in time order
            if len(pending[k]) == 2:
                yield self._sample(k, pending[k])

    def _sample(self, k: int, images: dict[str, np.ndarray]) -> StereoSample:
        pair = self.pairs[k]
        return StereoSample(images["left"], images["right"], self.camera, self.handedness,
                            stamp_ns=pair.stamp_ns, source=f"bag/{self.path.name}/{k}",
                            extras={"dt_ns": pair.dt_ns})
