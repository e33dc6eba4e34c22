"""The sensor_msgs_py.point_cloud2 fallback against hand-made PointCloud2 messages."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import Header

from hand_mesh_ros.compat import point_cloud2 as pc2


def _fields_xyzi():
    return [PointField(name="x", offset=0, datatype=PointField.FLOAT32, count=1),
            PointField(name="y", offset=4, datatype=PointField.FLOAT32, count=1),
            PointField(name="z", offset=8, datatype=PointField.FLOAT32, count=1),
            PointField(name="i", offset=12, datatype=PointField.UINT16, count=1)]


def _hand_made(points, big=False, point_step=16, height=1):
    """Pack with struct (a reference independent of numpy structured dtypes)."""
    fmt = (">" if big else "<") + "fffH" + "x" * (point_step - 14)
    data = b"".join(struct.pack(fmt, *p) for p in points)
    return PointCloud2(header=Header(frame_id="f"), height=height,
                       width=len(points) // height, fields=_fields_xyzi(), is_bigendian=big,
                       point_step=point_step, row_step=point_step * len(points) // height,
                       data=data, is_dense=False)


PTS = [(1.0, 2.0, 3.0, 7), (-1.5, float("nan"), 0.25, 9), (4.0, 5.0, 6.0, 65535),
       (0.0, 0.0, 1.0, 0)]


@pytest.mark.parametrize("big", [False, True])
def test_read_points_hand_made(big):
    pts = pc2.read_points(_hand_made(PTS, big=big))
    assert pts.dtype.names == ("x", "y", "z", "i")
    np.testing.assert_array_equal(pts["x"], [1.0, -1.5, 4.0, 0.0])
    np.testing.assert_array_equal(pts["i"], [7, 9, 65535, 0])
    kept = pc2.read_points(_hand_made(PTS, big=big), field_names=["x", "y"], skip_nans=True)
    assert len(kept) == 3 and kept.dtype.names == ("x", "y")


def test_read_points_uvs_and_organised():
    cloud = _hand_made(PTS, height=2)
    sel = pc2.read_points(cloud, uvs=[(1, 0), (0, 1)])
    np.testing.assert_array_equal(sel["i"], [9, 65535])
    assert pc2.read_points(cloud, reshape_organized_cloud=True).shape == (2, 2)


def test_read_points_numpy_and_list():
    arr = pc2.read_points_numpy(_hand_made(PTS), field_names=["x", "y", "z"], skip_nans=True)
    assert arr.shape == (3, 3) and arr.dtype == np.float32
    with pytest.raises(ValueError, match="same datatype"):
        pc2.read_points_numpy(_hand_made(PTS))
    assert pc2.read_points_list(_hand_made(PTS), field_names=["i"]) == [(7,), (9,), (65535,),
                                                                        (0,)]


def test_read_points_errors():
    with pytest.raises(ValueError, match="not in the cloud"):
        pc2.read_points(_hand_made(PTS), field_names=["rgb"])
    cloud = _hand_made(PTS)
    cloud.data = bytes(cloud.data)[:20]
    with pytest.raises(ValueError, match="expected width x height x point_step"):
        pc2.read_points(cloud)
    bad = [PointField(name="x", offset=0, datatype=99, count=1)]
    with pytest.raises(ValueError, match="unknown datatype"):
        pc2.dtype_from_fields(bad)
    with pytest.raises(ValueError, match="count"):
        pc2.dtype_from_fields([PointField(name="x", offset=0, datatype=7, count=0)])


def test_dtype_from_fields_count_and_unnamed():
    fields = [PointField(name="n", offset=0, datatype=PointField.FLOAT32, count=3),
              PointField(name="", offset=12, datatype=PointField.UINT8, count=1)]
    dt = pc2.dtype_from_fields(fields, point_step=16)
    assert dt.names == ("n_0", "n_1", "n_2", "unnamed_field_1")
    assert dt.fields["n_2"][1] == 8 and dt.itemsize == 16


def test_create_cloud_xyz32_bytes_match_struct():
    xyz = np.array([[1, 2, 3], [4.5, -5, 6]], dtype=np.float32)
    cloud = pc2.create_cloud_xyz32(Header(frame_id="cam"), xyz)
    assert (cloud.height, cloud.width, cloud.point_step, cloud.row_step) == (1, 2, 12, 24)
    assert cloud.is_dense is False and cloud.header.frame_id == "cam"
    assert bytes(cloud.data) == struct.pack("<6f", *xyz.ravel())
    np.testing.assert_array_equal(pc2.read_points_numpy(cloud), xyz)


def test_create_cloud_structured_tuples_and_errors():
    fields = _fields_xyzi()
    pts = [(1.0, 2.0, 3.0, 4), (5.0, 6.0, 7.0, 8)]
    c1 = pc2.create_cloud(Header(), fields, pts)
    structured = np.array(pts, dtype=pc2.dtype_from_fields(fields))
    c2 = pc2.create_cloud(Header(), fields, structured)
    assert bytes(c1.data) == bytes(c2.data)
    assert pc2.read_points_list(c1) == pts
    with pytest.raises(ValueError, match="same datatype"):
        pc2.create_cloud(Header(), fields, np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        pc2.create_cloud_xyz32(Header(), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="does not match"):
        pc2.create_cloud(Header(), fields, np.zeros(2, dtype=[("a", "f4")]))
