"""The cv_bridge fallback against hand-made sensor_msgs/Image messages."""
from __future__ import annotations

import sys

import numpy as np
import pytest
from sensor_msgs.msg import Image

from hand_mesh_ros.compat.cv_bridge import CvBridge, CvBridgeError


def _img_msg(arr: np.ndarray, encoding: str, pad: int = 0, bigendian: bool = False) -> Image:
    """Hand-made message: rows of width*C*itemsize bytes plus ``pad`` garbage bytes."""
    h, w = arr.shape[:2]
    a = arr.astype(arr.dtype.newbyteorder(">" if bigendian else "<"))
    rows = a.reshape(h, -1).view(np.uint8).reshape(h, -1)
    padded = np.concatenate([rows, np.full((h, pad), 0xAB, np.uint8)], axis=1)
    return Image(height=h, width=w, encoding=encoding, is_bigendian=bigendian,
                 step=padded.shape[1], data=padded.tobytes())


@pytest.fixture
def rgb():
    return np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)


@pytest.mark.parametrize("pad", [0, 3])
def test_rgb8_roundtrip_with_row_padding(rgb, pad):
    msg = _img_msg(rgb, "rgb8", pad=pad)
    out = CvBridge().imgmsg_to_cv2(msg)
    np.testing.assert_array_equal(out, rgb)
    assert out.flags.writeable and out.flags.c_contiguous


def test_rgb_bgr_conversions(rgb):
    b = CvBridge()
    np.testing.assert_array_equal(b.imgmsg_to_cv2(_img_msg(rgb, "rgb8"), "bgr8"), rgb[..., ::-1])
    np.testing.assert_array_equal(b.imgmsg_to_cv2(_img_msg(rgb, "bgr8"), "rgb8"), rgb[..., ::-1])


def test_color_to_mono8_matches_bt601(rgb):
    gray = CvBridge().imgmsg_to_cv2(_img_msg(rgb, "rgb8"), "mono8")
    ref = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    assert gray.shape == rgb.shape[:2] and gray.dtype == np.uint8
    assert np.abs(gray.astype(float) - ref).max() <= 1.0


def test_mono8_to_rgb8_replicates():
    g = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = CvBridge().imgmsg_to_cv2(_img_msg(g, "mono8"), "rgb8")
    np.testing.assert_array_equal(out, np.repeat(g[..., None], 3, axis=2))


@pytest.mark.parametrize("bigendian", [False, True])
def test_mono16_endianness_and_scaling(bigendian):
    v = np.array([[0, 257, 65535], [128, 32768, 1000]], dtype=np.uint16)
    msg = _img_msg(v, "mono16", pad=2, bigendian=bigendian)
    b = CvBridge()
    out = b.imgmsg_to_cv2(msg)
    native = "<" if sys.byteorder == "little" else ">"
    assert out.dtype == np.uint16 and out.dtype.byteorder in ("=", native)
    np.testing.assert_array_equal(out, v)
    m8 = b.imgmsg_to_cv2(msg, "mono8")
    np.testing.assert_array_equal(m8, np.clip(np.rint(v * 255.0 / 65535.0), 0, 255))
    up = b.imgmsg_to_cv2(_img_msg(np.array([[0, 1, 255]], np.uint8), "mono8"), "mono16")
    np.testing.assert_array_equal(up, [[0, 257, 65535]])


def test_16uc1_passthrough_and_refused_conversion():
    v = np.array([[1, 2], [3, 60000]], dtype=np.uint16)
    b = CvBridge()
    np.testing.assert_array_equal(b.imgmsg_to_cv2(_img_msg(v, "16UC1")), v)
    np.testing.assert_array_equal(b.imgmsg_to_cv2(_img_msg(v, "16UC1"), "16UC1"), v)
    with pytest.raises(CvBridgeError, match="not a colour format"):
        b.imgmsg_to_cv2(_img_msg(v, "16UC1"), "mono8")


def test_bad_messages_raise():
    b = CvBridge()
    good = _img_msg(np.zeros((4, 4, 3), np.uint8), "rgb8")
    with pytest.raises(CvBridgeError, match="unsupported encoding"):
        b.imgmsg_to_cv2(Image(height=1, width=1, encoding="yuv422", step=2, data=b"\0\0"))
    truncated = Image(height=4, width=4, encoding="rgb8", step=12, data=bytes(good.data)[:40])
    with pytest.raises(CvBridgeError, match="expected step x height"):
        b.imgmsg_to_cv2(truncated)
    short_step = Image(height=4, width=4, encoding="rgb8", step=11, data=bytes(48))
    with pytest.raises(CvBridgeError, match="smaller than one row"):
        b.imgmsg_to_cv2(short_step)
    odd_step = Image(height=1, width=1, encoding="mono16", step=3, data=bytes(3))
    with pytest.raises(CvBridgeError, match="multiple"):
        b.imgmsg_to_cv2(odd_step)
    with pytest.raises(CvBridgeError, match="desired_encoding"):
        b.imgmsg_to_cv2(good, "yuv422")


def test_cv2_to_imgmsg(rgb):
    b = CvBridge()
    msg = b.cv2_to_imgmsg(rgb, "rgb8")
    assert (msg.height, msg.width, msg.step, msg.encoding) == (5, 7, 21, "rgb8")
    assert bytes(msg.data) == rgb.tobytes() and msg.is_bigendian is False
    assert b.cv2_to_imgmsg(rgb).encoding == "8UC3"
    m16 = b.cv2_to_imgmsg(np.array([[1, 2]], dtype=">u2"), "mono16")
    assert m16.is_bigendian is True and m16.step == 4
    np.testing.assert_array_equal(b.imgmsg_to_cv2(m16), [[1, 2]])
    with pytest.raises(CvBridgeError, match="incompatible type"):
        b.cv2_to_imgmsg(rgb, "mono8")
    with pytest.raises(CvBridgeError, match="unsupported encoding"):
        b.cv2_to_imgmsg(rgb, "yuv422")
    with pytest.raises(CvBridgeError, match="unsupported array dtype"):
        b.cv2_to_imgmsg(np.zeros((2, 2), np.complex64))
    with pytest.raises(CvBridgeError, match=r"\(H, W\)"):
        b.cv2_to_imgmsg(np.zeros(3, np.uint8))
    with pytest.raises(TypeError, match="numpy array"):
        b.cv2_to_imgmsg([[1]])
