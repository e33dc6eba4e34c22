"""Fallback for ROS 2 ``cv_bridge`` (Python): numpy images <-> ``sensor_msgs/Image``.

Used only when the real package is not importable (see :mod:`hand_mesh_ros.compat`). Supports
the encodings hand_mesh needs: rgb8, bgr8, mono8, mono16 and 16UC1 (plus the OpenCV type names
8UC1, 8UC3, 16UC1 that ``cv2_to_imgmsg(..., "passthrough")`` produces).

Semantics follow ros2/vision_opencv ``cv_bridge/python/cv_bridge/core.py`` and
``cv_bridge/src/cv_bridge.cpp``:

* ``imgmsg_to_cv2`` reads rows of ``step`` bytes (padding after ``width`` pixels is dropped),
  honours ``is_bigendian`` (byte-swapped to native order), returns (H, W) for one channel and
  (H, W, C) otherwise, always a copy.
* ``desired_encoding="passthrough"`` returns the data as stored. Otherwise colour conversions
  use OpenCV (RGB<->BGR, colour->gray with ``cv2.COLOR_*2GRAY``, gray->colour), and a depth
  change between 8 and 16 bits scales by 65535/255 (up) or 255/65535 (down), rounded and
  saturated like ``cv::Mat::convertTo``. "16UC1" has no colour format: converting it to
  anything else raises :class:`CvBridgeError`, as upstream.
* ``cv2_to_imgmsg(img, encoding)`` checks that the array type matches the encoding, sets
  ``step = width * channels * itemsize`` and ``is_bigendian`` from the array's byte order.
"""
from __future__ import annotations

import array
import sys
from typing import Any

import cv2
import numpy as np

__all__ = ["CvBridge", "CvBridgeError", "ENCODINGS"]

#: encoding -> (numpy dtype, channels, colour format or None). "16UC1"/"8UC1"/"8UC3" are
#: OpenCV type names with no colour meaning (sensor_msgs/image_encodings.hpp).
ENCODINGS: dict[str, tuple[np.dtype, int, str | None]] = {
    "rgb8": (np.dtype(np.uint8), 3, "RGB"),
    "bgr8": (np.dtype(np.uint8), 3, "BGR"),
    "mono8": (np.dtype(np.uint8), 1, "GRAY"),
    "mono16": (np.dtype(np.uint16), 1, "GRAY"),
    "8UC1": (np.dtype(np.uint8), 1, None),
    "8UC3": (np.dtype(np.uint8), 3, None),
    "16UC1": (np.dtype(np.uint16), 1, None),
}

#: (source colour, destination colour) -> OpenCV conversion code; None: same channel layout.
_COLOR_CODES = {
    ("RGB", "BGR"): cv2.COLOR_RGB2BGR, ("BGR", "RGB"): cv2.COLOR_BGR2RGB,
    ("RGB", "GRAY"): cv2.COLOR_RGB2GRAY, ("BGR", "GRAY"): cv2.COLOR_BGR2GRAY,
    ("GRAY", "RGB"): cv2.COLOR_GRAY2RGB, ("GRAY", "BGR"): cv2.COLOR_GRAY2BGR,
}

#: Scale factors of cv_bridge's 8 <-> 16 bit conversion (cv_bridge.cpp, toCvCopyImpl).
_SCALE_8_TO_16 = 65535.0 / 255.0
_SCALE_16_TO_8 = 255.0 / 65535.0


class CvBridgeError(TypeError):
    """The image cannot be converted (unknown encoding, size mismatch, no such conversion)."""


def _cv_type_name(dtype: np.dtype, channels: int) -> str:
    names = {np.dtype(np.uint8): "8U", np.dtype(np.uint16): "16U", np.dtype(np.int8): "8S",
             np.dtype(np.int16): "16S", np.dtype(np.int32): "32S",
             np.dtype(np.float32): "32F", np.dtype(np.float64): "64F"}
    key = np.dtype(dtype).newbyteorder("=")
    if key not in names:
        raise CvBridgeError(f"unsupported array dtype {dtype}; allowed: uint8, uint16")
    return f"{names[key]}C{channels}"


class CvBridge:
    """Convert between ``sensor_msgs/Image`` and numpy arrays (OpenCV layout)."""

    def imgmsg_to_cv2(self, img_msg: Any, desired_encoding: str = "passthrough") -> np.ndarray:
        """Image message -> array.

        Args:
            img_msg: a ``sensor_msgs/Image``.
            desired_encoding: "passthrough" or one of :data:`ENCODINGS`.

        Returns:
            (H, W) or (H, W, C) array, native byte order, a copy.

        Raises:
            CvBridgeError: unknown encoding, data shorter than ``step * height``, ``step``
                smaller than a row, or an impossible conversion.
        """
        enc = img_msg.encoding
        if enc not in ENCODINGS:
            raise CvBridgeError(f"unsupported encoding {enc!r}; allowed: {sorted(ENCODINGS)}")
        dtype, channels, _ = ENCODINGS[enc]
        height, width, step = int(img_msg.height), int(img_msg.width), int(img_msg.step)
        row_bytes = width * channels * dtype.itemsize
        if step < row_bytes:
            raise CvBridgeError(f"step {step} B is smaller than one row ({width} px x "
                                f"{channels} ch x {dtype.itemsize} B = {row_bytes} B)")
        if step % dtype.itemsize:
            raise CvBridgeError(f"step {step} B is not a multiple of {dtype.itemsize} B")
        buf = memoryview(img_msg.data).cast("B") if not isinstance(img_msg.data, list) \
            else bytes(img_msg.data)
        if len(buf) < step * height:
            raise CvBridgeError(f"image data has {len(buf)} B, expected step x height = "
                                f"{step} x {height} = {step * height} B")
        order = ">" if img_msg.is_bigendian else "<"
        raw = np.frombuffer(buf, dtype=dtype.newbyteorder(order), count=step * height
                            // dtype.itemsize)
        rows = raw.reshape(height, step // dtype.itemsize)[:, :width * channels]
        img = rows.astype(dtype.newbyteorder("="), copy=True)
        img = img.reshape(height, width) if channels == 1 else img.reshape(height, width, channels)
        if desired_encoding == "passthrough" or desired_encoding == enc:
            return img
        return self._convert(img, enc, desired_encoding)

    def cv2_to_imgmsg(self, cvim: np.ndarray, encoding: str = "passthrough",
                      header: Any = None) -> Any:
        """Array -> ``sensor_msgs/Image``.

        Args:
            cvim: (H, W) or (H, W, C) array.
            encoding: "passthrough" (the OpenCV type name, e.g. "8UC3") or one of
                :data:`ENCODINGS` matching the array's dtype and channels.
            header: optional ``std_msgs/Header``.

        Raises:
            TypeError: ``cvim`` is not a numpy array.
            CvBridgeError: the encoding does not match the array.
        """
        from sensor_msgs.msg import Image

        if not isinstance(cvim, np.ndarray):
            raise TypeError(f"Your input type is not a numpy array: {type(cvim).__name__}")
        if cvim.ndim not in (2, 3):
            raise CvBridgeError(f"expected a (H, W) or (H, W, C) array, got shape {cvim.shape}")
        channels = 1 if cvim.ndim == 2 else cvim.shape[2]
        cv_type = _cv_type_name(cvim.dtype, channels)
        msg = Image()
        if header is not None:
            msg.header = header
        msg.height, msg.width = int(cvim.shape[0]), int(cvim.shape[1])
        if encoding == "passthrough":
            msg.encoding = cv_type
        else:
            if encoding not in ENCODINGS:
                raise CvBridgeError(f"unsupported encoding {encoding!r}; allowed: "
                                    f"{['passthrough'] + sorted(ENCODINGS)}")
            dtype, ch, _ = ENCODINGS[encoding]
            if _cv_type_name(dtype, ch) != cv_type:
                raise CvBridgeError(f"encoding specified as {encoding}, but image has "
                                    f"incompatible type {cv_type}")
            msg.encoding = encoding
        byteorder = cvim.dtype.byteorder
        msg.is_bigendian = byteorder == ">" or (byteorder == "=" and sys.byteorder == "big")
        data = np.ascontiguousarray(cvim)
        msg.step = msg.width * channels * cvim.dtype.itemsize
        # an array.array is taken as is by the generated setter (no per-element check)
        msg.data = array.array("B", data.tobytes())
        return msg

    @staticmethod
    def _convert(img: np.ndarray, src: str, dst: str) -> np.ndarray:
        if dst not in ENCODINGS:
            raise CvBridgeError(f"unsupported desired_encoding {dst!r}; allowed: "
                                f"{['passthrough'] + sorted(ENCODINGS)}")
        src_dtype, _, src_fmt = ENCODINGS[src]
        dst_dtype, _, dst_fmt = ENCODINGS[dst]
        if src_fmt is None or dst_fmt is None:
            raise CvBridgeError(f"Unsupported conversion from [{src}] to [{dst}]: "
                                f"[{src if src_fmt is None else dst}] is not a colour format")
        out = img
        if src_fmt != dst_fmt:
            out = cv2.cvtColor(out, _COLOR_CODES[(src_fmt, dst_fmt)])
        if src_dtype != dst_dtype:
            scale = _SCALE_8_TO_16 if dst_dtype == np.uint16 else _SCALE_16_TO_8
            info = np.iinfo(dst_dtype)
            out = np.clip(np.rint(out.astype(np.float64) * scale), info.min, info.max)
            out = out.astype(dst_dtype)
        return out
