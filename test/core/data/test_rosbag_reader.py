"""rosbag2 stereo reader on bags written here with rosbags, in mcap and sqlite3."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from hand_mesh_core.data.config import RosbagConfig
from hand_mesh_core.data.rosbag_reader import (
    RosbagStereoReader, decode_image, match_topic, pair_stamps,
)
from hand_mesh_core.geometry.camera import StereoCamera

TS = get_typestore(Stores.ROS2_HUMBLE)
Image = TS.types["sensor_msgs/msg/Image"]
CompressedImage = TS.types["sensor_msgs/msg/CompressedImage"]
CameraInfo = TS.types["sensor_msgs/msg/CameraInfo"]
Header = TS.types["std_msgs/msg/Header"]
Time = TS.types["builtin_interfaces/msg/Time"]
RegionOfInterest = TS.types["sensor_msgs/msg/RegionOfInterest"]
CAM = StereoCamera(fx=200.0, fy=200.0, cx=15.5, cy=11.5, baseline_m=0.12, width=32, height=24)
T0_NS = 1_700_000_000_123_000_000
PERIOD_NS = 33_000_000


def _header(t_ns, frame="cam_left"):
    return Header(stamp=Time(sec=t_ns // 10**9, nanosec=t_ns % 10**9), frame_id=frame)


def _frame(k, side):
    """A deterministic RGB test image per frame and side."""
    rng = np.random.default_rng(100 * k + (side == "right"))
    return rng.integers(0, 256, size=(CAM.height, CAM.width, 3), dtype=np.uint8)


def _raw(img, t_ns, encoding):
    if encoding == "bgr8":
        data = img[..., ::-1]
    elif encoding == "mono8":
        data = img[..., :1]
    elif encoding == "rgb8":
        data = img
    else:                                         # 16UC1 etc.: any bytes
        data = np.zeros((img.shape[0], img.shape[1], 2), np.uint8)
    ch = data.shape[2]
    step = img.shape[1] * ch + 3                  # padded rows
    buf = np.zeros((img.shape[0], step), np.uint8)
    buf[:, :img.shape[1] * ch] = data.reshape(img.shape[0], -1)
    return Image(header=_header(t_ns), height=img.shape[0], width=img.shape[1],
                 encoding=encoding, is_bigendian=0, step=step, data=buf.ravel())


def _compressed(img, t_ns, fmt):
    ext = ".png" if "png" in fmt else ".jpg"
    ok, enc = cv2.imencode(ext, np.ascontiguousarray(img[..., ::-1]))
    assert ok
    return CompressedImage(header=_header(t_ns), format=fmt, data=enc.ravel())


def _info(view, t_ns):
    return CameraInfo(header=_header(t_ns), height=CAM.height, width=CAM.width,
                      distortion_model="plumb_bob", d=np.zeros(5), k=CAM.K.ravel(),
                      r=np.eye(3).ravel(), p=CAM.P(view).ravel(), binning_x=0, binning_y=0,
                      roi=RegionOfInterest(x_offset=0, y_offset=0, height=0, width=0,
                                           do_rectify=False))


def _write_bag(path, storage, n=4, encodings=("rgb8", "bgr8"), compressed=None, ns="/stereo",
               right_offset_ns=1_000_000, extra_left=True, infos=True):
    """n stereo frames (+1 unpaired left frame); right stamps offset by right_offset_ns."""
    msgtype = "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image"
    suffix = "/compressed" if compressed else ""
    with Writer(path, version=9, storage_plugin=storage) as w:
        cl = w.add_connection(f"{ns}/left/image_rect{suffix}", msgtype, typestore=TS)
        cr = w.add_connection(f"{ns}/right/image_rect{suffix}", msgtype, typestore=TS)
        il = w.add_connection(f"{ns}/left/camera_info", "sensor_msgs/msg/CameraInfo",
                              typestore=TS)
        ir = w.add_connection(f"{ns}/right/camera_info", "sensor_msgs/msg/CameraInfo",
                              typestore=TS)
        frames = n + (1 if extra_left else 0)
        for k in range(frames):
            t = T0_NS + k * PERIOD_NS
            if infos:
                for conn, view in ((il, "left"), (ir, "right")):
                    w.write(conn, t, TS.serialize_cdr(_info(view, t), CameraInfo.__msgtype__))
            for conn, side, enc, dt in ((cl, "left", encodings[0], 0),
                                        (cr, "right", encodings[1], right_offset_ns)):
                if side == "right" and k >= n:
                    continue
                img = _frame(k, side)
                msg = _compressed(img, t + dt, compressed) if compressed \
                    else _raw(img, t + dt, enc)
                w.write(conn, t + dt + 5_000_000, TS.serialize_cdr(msg, msg.__msgtype__))
    return path


@pytest.mark.parametrize("storage", [StoragePlugin.MCAP, StoragePlugin.SQLITE3])
def test_raw_bag_pairs_and_pixels(tmp_path, storage):
    bag = _write_bag(tmp_path / "bag", storage)
    reader = RosbagStereoReader(bag, handedness="left")
    assert reader.left_topic == "/stereo/left/image_rect"
    assert reader.num_left == 5 and reader.num_right == 4 and len(reader) == 4
    assert reader.camera == CAM
    samples = list(reader)
    assert len(samples) == 4
    for k, s in enumerate(samples):
        np.testing.assert_array_equal(s.left, _frame(k, "left"))       # rgb8
        np.testing.assert_array_equal(s.right, _frame(k, "right"))     # bgr8 -> RGB
        assert s.stamp_ns == T0_NS + k * PERIOD_NS and s.extras["dt_ns"] == 1_000_000
        assert s.handedness == "left"
    # Record-time pairing: same offsets (bag time = stamp + 5 ms on both sides).
    by_bag_time = RosbagStereoReader(bag, RosbagConfig(use_header_stamp=False))
    assert [p.stamp_ns for p in by_bag_time.pairs] == \
        [T0_NS + k * PERIOD_NS + 5_000_000 for k in range(4)]
    # Tighter slop than the 1 ms offset: nothing pairs.
    assert len(RosbagStereoReader(bag, RosbagConfig(slop_s=0.0005))) == 0


@pytest.mark.parametrize("storage", [StoragePlugin.MCAP, StoragePlugin.SQLITE3])
def test_compressed_png_and_jpeg(tmp_path, storage):
    bag = _write_bag(tmp_path / "png", storage, n=2, compressed="bgr8; png compressed bgr8")
    reader = RosbagStereoReader(bag)
    assert reader.left_type == "sensor_msgs/msg/CompressedImage"
    for k, s in enumerate(reader):
        np.testing.assert_array_equal(s.left, _frame(k, "left"))       # lossless
    bag = _write_bag(tmp_path / "jpg", storage, n=2, compressed="jpeg")
    s = next(iter(RosbagStereoReader(bag)))
    err = np.abs(s.left.astype(int) - _frame(0, "left").astype(int)).mean()
    assert err < 60                                   # random noise compresses badly, but RGB
    bgr_err = np.abs(s.left[..., ::-1].astype(int) - _frame(0, "left").astype(int)).mean()
    assert err < bgr_err


def test_mono8_and_unsupported_encodings(tmp_path):
    bag = _write_bag(tmp_path / "mono", StoragePlugin.MCAP, n=1, encodings=("mono8", "rgb8"))
    s = next(iter(RosbagStereoReader(bag)))
    np.testing.assert_array_equal(s.left, np.repeat(_frame(0, "left")[..., :1], 3, axis=2))
    bag = _write_bag(tmp_path / "u16", StoragePlugin.MCAP, n=1, encodings=("16UC1", "rgb8"))
    with pytest.raises(ValueError, match=r"unsupported image encoding '16UC1'.*rgb8"):
        next(iter(RosbagStereoReader(bag)))
    msg = CompressedImage(header=_header(0), format="tiff", data=np.zeros(4, np.uint8))
    from hand_mesh_core.data.rosbag_reader import decode_compressed_image
    with pytest.raises(ValueError, match="unsupported compressed format"):
        decode_compressed_image(msg)
    msg = CompressedImage(header=_header(0), format="png", data=np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match="cannot decode"):
        decode_compressed_image(msg)
    short = _raw(_frame(0, "left"), 0, "rgb8")
    short.data = short.data[:10]
    with pytest.raises(ValueError, match="too short"):
        decode_image(short)


def test_topics_camera_and_errors(tmp_path):
    bag = _write_bag(tmp_path / "noinfo", StoragePlugin.SQLITE3, n=2, ns="", infos=False)
    with pytest.raises(ValueError, match="no CameraInfo"):
        RosbagStereoReader(bag)
    reader = RosbagStereoReader(bag, camera=CAM)
    assert reader.left_topic == "/left/image_rect" and len(reader) == 2
    with pytest.raises(ValueError, match=r"no left image topic.*bag topics"):
        RosbagStereoReader(bag, RosbagConfig(left_image_topic="cam0/image",
                                             left_compressed_topic="cam0/image/compressed"),
                           camera=CAM)
    with pytest.raises(FileNotFoundError):
        RosbagStereoReader(tmp_path / "nope")
    with pytest.raises(TypeError, match="RosbagConfig"):
        RosbagStereoReader(bag, config={"slop_s": 0.1})
    with pytest.raises(ValueError, match="handedness"):
        RosbagStereoReader(bag, camera=CAM, handedness="both")


def test_match_topic_and_pairing():
    topics = ["/a/left/image_rect", "/left/image_rect_color", "/b/left/image_rect", "/x"]
    assert match_topic("left/image_rect", topics) == ["/a/left/image_rect",
                                                      "/b/left/image_rect"]
    assert match_topic("/x", topics) == ["/x"]
    left = np.array([0, 100, 200, 300])
    right = np.array([205, 2, 98, 104, 1000])
    pairs = pair_stamps(left, right, 10)
    # 0-2, 100-98 (closer than 104), 200-205; 300 unpaired.
    assert pairs == [(0, 1), (1, 2), (2, 0)]
    # Naive reference: every accepted pair is within the slop and one-to-one.
    assert len({i for i, _ in pairs}) == len({j for _, j in pairs}) == len(pairs)
    assert all(abs(left[i] - right[j]) <= 10 for i, j in pairs)
