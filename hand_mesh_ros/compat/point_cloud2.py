"""Fallback for ``sensor_msgs_py.point_cloud2``: build and read ``sensor_msgs/PointCloud2``.

Used only when the real package is not importable (see :mod:`hand_mesh_ros.compat`). Same
API and semantics as ros2/common_interfaces ``sensor_msgs_py/sensor_msgs_py/point_cloud2.py``:

* ``dtype_from_fields`` maps PointFields to a numpy structured dtype (fields with
  ``count > 1`` become ``name_0 .. name_{count-1}``, unnamed fields ``unnamed_field_<i>``);
* ``read_points`` returns a structured array (optionally a subset of fields, NaN points
  removed when ``skip_nans`` and the cloud is not dense, selected ``uvs`` (u, v) pixels of an
  organised cloud, or reshaped to (height, width));
* ``read_points_numpy`` returns an (N, F) array and requires all fields of one datatype;
* ``create_cloud`` makes an unorganised cloud (height 1, ``is_dense`` False, native byte
  order) from a structured array, an (N, F) array or an iterable of tuples;
* ``create_cloud_xyz32`` uses x, y, z float32 fields at offsets 0, 4, 8.
"""
from __future__ import annotations

import sys
from typing import Any, Iterable, Sequence

import numpy as np
from numpy.lib.recfunctions import structured_to_unstructured, unstructured_to_structured

__all__ = ["dtype_from_fields", "read_points", "read_points_numpy", "read_points_list",
           "create_cloud", "create_cloud_xyz32", "DUMMY_FIELD_PREFIX"]

#: Name prefix given to PointFields with an empty name (as upstream).
DUMMY_FIELD_PREFIX = "unnamed_field"

#: sensor_msgs/PointField datatype constants -> numpy dtype (PointField.msg).
_DATATYPES = {1: np.dtype(np.int8), 2: np.dtype(np.uint8), 3: np.dtype(np.int16),
              4: np.dtype(np.uint16), 5: np.dtype(np.int32), 6: np.dtype(np.uint32),
              7: np.dtype(np.float32), 8: np.dtype(np.float64)}


def dtype_from_fields(fields: Sequence[Any], point_step: int | None = None) -> np.dtype:
    """Structured numpy dtype of a list of ``sensor_msgs/PointField``.

    Raises:
        ValueError: unknown datatype or ``count < 1``.
    """
    names, formats, offsets = [], [], []
    for i, field in enumerate(fields):
        if field.datatype not in _DATATYPES:
            raise ValueError(f"PointField {field.name!r}: unknown datatype {field.datatype}; "
                             f"allowed: {sorted(_DATATYPES)}")
        if field.count < 1:
            raise ValueError(f"PointField {field.name!r}: count must be >= 1, got {field.count}")
        base = _DATATYPES[field.datatype]
        name = field.name if field.name else f"{DUMMY_FIELD_PREFIX}_{i}"
        if field.count == 1:
            names.append(name)
            formats.append(base)
            offsets.append(field.offset)
        else:
            for a in range(field.count):
                names.append(f"{name}_{a}")
                formats.append(base)
                offsets.append(field.offset + a * base.itemsize)
    spec: dict[str, Any] = {"names": names, "formats": formats, "offsets": offsets}
    if point_step is not None:
        spec["itemsize"] = point_step
    return np.dtype(spec)


def read_points(cloud: Any, field_names: Sequence[str] | None = None, skip_nans: bool = False,
                uvs: Iterable[Sequence[int]] | np.ndarray | None = None,
                reshape_organized_cloud: bool = False) -> np.ndarray:
    """Points of a cloud as a structured array (N,) or (height, width).

    Args:
        cloud: ``sensor_msgs/PointCloud2``.
        field_names: fields to return (default all).
        skip_nans: drop points with a NaN in any returned field (only if not ``is_dense``).
        uvs: (u, v) pixel coordinates to select, u = column, v = row.
        reshape_organized_cloud: return (height, width) for organised clouds.

    Raises:
        ValueError: a requested field does not exist, or the data is shorter than
            ``row_step * height``.
    """
    dtype = dtype_from_fields(cloud.fields, point_step=cloud.point_step)
    n = cloud.width * cloud.height
    buf = memoryview(cloud.data).cast("B") if not isinstance(cloud.data, list) \
        else bytes(cloud.data)
    if len(buf) < n * cloud.point_step:
        raise ValueError(f"cloud data has {len(buf)} B, expected width x height x point_step = "
                         f"{n * cloud.point_step} B")
    points = np.ndarray(shape=(n,), dtype=dtype, buffer=buf)
    if field_names is not None:
        missing = [f for f in field_names if f not in points.dtype.names]
        if missing:
            raise ValueError(f"fields {missing} not in the cloud; fields: "
                             f"{list(points.dtype.names)}")
        points = points[list(field_names)]
    if bool(sys.byteorder != "little") != bool(cloud.is_bigendian):
        points = points.byteswap()  # native dtype, bytes swapped: values now correct
    else:
        points = points.copy()
    if skip_nans and not cloud.is_dense:
        keep = np.ones(len(points), dtype=bool)
        for name in points.dtype.names:
            if np.issubdtype(points.dtype[name], np.floating):
                keep &= ~np.isnan(points[name])
        points = points[keep]
    if uvs is not None:
        uv = np.asarray(list(uvs) if not isinstance(uvs, np.ndarray) else uvs, dtype=np.int64)
        uv = uv.reshape(-1, 2)
        points = points[uv[:, 1] * cloud.width + uv[:, 0]]
    if reshape_organized_cloud and cloud.height > 1:
        points = points.reshape(cloud.height, cloud.width)
    return points


def read_points_numpy(cloud: Any, field_names: Sequence[str] | None = None,
                      skip_nans: bool = False,
                      uvs: Iterable[Sequence[int]] | np.ndarray | None = None,
                      reshape_organized_cloud: bool = False) -> np.ndarray:
    """Points as a plain (N, F) array; all selected fields must share one datatype.

    Raises:
        ValueError: the selected fields have different datatypes.
    """
    selected = [f for f in cloud.fields if field_names is None or f.name in field_names]
    if len({f.datatype for f in selected}) > 1:
        raise ValueError("All fields need to have the same datatype. Use `read_points()` "
                         "otherwise.")
    return structured_to_unstructured(read_points(cloud, field_names, skip_nans, uvs,
                                                  reshape_organized_cloud))


def read_points_list(cloud: Any, field_names: Sequence[str] | None = None,
                     skip_nans: bool = False,
                     uvs: Iterable[Sequence[int]] | np.ndarray | None = None) -> list:
    """Points as a list of tuples (one per point)."""
    return read_points(cloud, field_names, skip_nans, uvs).tolist()


def create_cloud(header: Any, fields: Sequence[Any], points: Any) -> Any:
    """Unorganised ``sensor_msgs/PointCloud2`` (height 1) from points.

    Args:
        header: ``std_msgs/Header``.
        fields: the PointFields.
        points: structured array with the fields' dtype, (N, F) array of one datatype, or an
            iterable of tuples.

    Raises:
        ValueError: the points do not match the fields.
    """
    from sensor_msgs.msg import PointCloud2

    dtype = dtype_from_fields(fields)
    if isinstance(points, np.ndarray) and points.dtype.names is None:
        if len({f.datatype for f in fields}) > 1:
            raise ValueError("All fields need to have the same datatype to pass an "
                             "unstructured array; use a structured array otherwise.")
        arr = np.asarray(points)
        if arr.ndim != 2 or arr.shape[1] != len(dtype.names):
            raise ValueError(f"points must be (N, {len(dtype.names)}), got {arr.shape}")
        points = unstructured_to_structured(arr.astype(dtype[0], copy=False), dtype=dtype)
    elif not isinstance(points, np.ndarray):
        points = np.array([tuple(p) for p in points], dtype=dtype)
    if points.dtype != dtype:
        raise ValueError(f"points dtype {points.dtype} does not match the fields {dtype}")
    points = np.ascontiguousarray(points)
    cloud = PointCloud2(header=header, height=1, width=len(points), is_dense=False,
                        is_bigendian=sys.byteorder != "little", fields=list(fields),
                        point_step=points.dtype.itemsize,
                        row_step=points.dtype.itemsize * len(points))
    import array

    cloud.data = array.array("B", points.tobytes())
    return cloud


def create_cloud_xyz32(header: Any, points: Any) -> Any:
    """Cloud with x, y, z float32 fields from (N, 3) points (metres, ``header.frame_id``)."""
    from sensor_msgs.msg import PointField

    fields = [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1)
              for i, n in enumerate("xyz")]
    return create_cloud(header, fields, points)
