"""HandMeshNode mechanics in-process on loopback DDS, with a deterministic test estimator.

The estimator returns a fixed 21-joint skeleton placed at the depth that a 20 px disparity
gives for the camera it is handed, so the tests check the messages, frames, stamps, counts,
drops, diagnostics and refusals of the node, not the model's accuracy.
"""
from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from geometry_msgs.msg import PoseArray  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import PointCloud2  # noqa: E402
from std_msgs.msg import Float32  # noqa: E402
from visualization_msgs.msg import Marker, MarkerArray  # noqa: E402

from hand_mesh_core.data.roi import HandRoi  # noqa: E402
from hand_mesh_core.geometry.camera import StereoCamera  # noqa: E402
from hand_mesh_core.hand.joints import BONES  # noqa: E402
from hand_mesh_core.pipeline import HandMeshResult  # noqa: E402
from hand_mesh_ros.compat import point_cloud2  # noqa: E402
from hand_mesh_ros.stereo_node import (HandMeshNode, confidence_color,  # noqa: E402
                                       downscale_pair, track_box)
from hand_mesh_ros.testing import (StereoPublisher, make_camera_infos, make_image,  # noqa: E402
                                   skin_image, spin_until, stamp_msg)

CAM = StereoCamera(fx=100.0, fy=100.0, cx=31.5, cy=23.5, baseline_m=0.1, width=64, height=48)
DISPARITY_PX = 20.0
REPO = Path(__file__).resolve().parents[2]


class SkeletonEstimator:
    """Known hand: wrist on the optical axis at z = fx * B / 20 px, fingers fanned in x-y."""

    def __init__(self, confidence: float = 0.9, delay_s: float = 0.0) -> None:
        self.confidence, self.delay_s = confidence, delay_s
        self.calls = []

    def predict(self, left, right, camera, roi=None):
        self.calls.append((left.copy(), camera))
        if self.delay_s:
            time.sleep(self.delay_s)
        if left.max() < 5:  # black: no hand
            return None
        z = camera.fx * camera.baseline_m / DISPARITY_PX
        joints = [(0.0, 0.0, z)]
        for f in range(5):
            ang = math.radians(-60 + 30 * f)
            for s in range(1, 5):
                r = 0.02 * s + 0.03
                joints.append((r * math.sin(ang), -r * math.cos(ang), z))
        joints = np.array(joints, np.float32)
        faces = np.array([(0, 1 + 4 * f, 5 + 4 * f) for f in range(4)], np.int32)
        uv = np.stack([camera.fx * joints[:, 0] / z + camera.cx,
                       camera.fy * joints[:, 1] / z + camera.cy], 1).astype(np.float32)
        return HandMeshResult(vertices_m=joints, joints_m=joints, faces=faces,
                              confidence=self.confidence, handedness="right", uv_left=uv,
                              roi_left=(0.0, 0.0, 64.0, 48.0))


def _set(i, *, t0=2 * 10**18, rgb=None, encoding="rgb8", cam=CAM, right_stamp_offset_ns=0):
    stamp = stamp_msg(t0 + i * 10**8)
    li, ri = make_camera_infos(cam, stamp)
    rgb = skin_image(64, 48, True, seed=i) if rgb is None else rgb
    left = make_image(rgb, stamp, encoding=encoding)
    rstamp = stamp_msg(t0 + i * 10**8 + right_stamp_offset_ns)
    right = make_image(rgb, rstamp, "right_optical", encoding=encoding)
    ri.header.stamp = rstamp
    return left, li, right, ri


class Rig:
    def __init__(self, ctx, estimator, **params):
        self.est = estimator
        self.node = HandMeshNode(estimator=estimator, context=ctx, parameter_overrides=[
            Parameter(k, value=v) for k, v in {"image_qos": "reliable", **params}.items()])
        self.io = rclpy.create_node("test_io", context=ctx)
        self.pub = StereoPublisher(self.io)
        self.got = {"markers": [], "points": [], "joints": [], "conf": [], "diag": []}
        for key, typ, topic in (("markers", MarkerArray, "hand_mesh/markers"),
                                ("points", PointCloud2, "hand_mesh/points"),
                                ("joints", PoseArray, "hand_mesh/joints"),
                                ("conf", Float32, "hand_mesh/confidence"),
                                ("diag", DiagnosticArray, "/diagnostics")):
            self.io.create_subscription(typ, topic, self.got[key].append, 10)
        self.ex = SingleThreadedExecutor(context=ctx)
        self.ex.add_node(self.node)
        self.ex.add_node(self.io)
        assert spin_until(self.ex, lambda: self.pub.wait_for_subscribers(0.0))
        assert spin_until(self.ex, lambda: self.node._pub_markers.get_subscription_count())

    def send(self, s):
        self.pub.publish(*s)

    def wait(self, pred, timeout=5.0):
        return spin_until(self.ex, pred, timeout)

    def close(self):
        self.ex.shutdown()
        self.node.destroy_node()
        self.io.destroy_node()


@pytest.fixture
def rig(ros_context):
    made = []

    def make(estimator=None, **params):
        r = Rig(ros_context, estimator or SkeletonEstimator(), **params)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


def test_publishes_all_outputs_with_stamp_and_frame(rig):
    r = rig()
    s = _set(3)
    r.send(s)
    assert r.wait(lambda: r.got["conf"] and r.got["points"] and r.got["joints"]
                  and r.got["markers"])
    stamp = s[0].header.stamp
    z = CAM.fx * CAM.baseline_m / DISPARITY_PX
    for key in ("markers", "points", "joints"):
        msg = r.got[key][0]
        hdr = msg.markers[0].header if key == "markers" else msg.header
        assert hdr.frame_id == "left_optical" and hdr.stamp == stamp
    mesh, joints, bones = r.got["markers"][0].markers
    assert mesh.type == Marker.TRIANGLE_LIST and len(mesh.points) == 4 * 3
    assert mesh.points[0].z == pytest.approx(z)
    rgba = (mesh.color.r, mesh.color.g, mesh.color.b, mesh.color.a)
    assert rgba == pytest.approx(confidence_color(0.9))
    assert joints.type == Marker.SPHERE_LIST and len(joints.points) == 21
    assert bones.type == Marker.LINE_LIST and len(bones.points) == 2 * len(BONES)
    pts = point_cloud2.read_points_numpy(r.got["points"][0])
    est = r.est.predict(skin_image(64, 48), None, CAM)
    np.testing.assert_allclose(pts, est.vertices_m)
    assert len(r.got["joints"][0].poses) == 21
    assert r.got["joints"][0].poses[5].position.x == pytest.approx(float(est.joints_m[5, 0]))
    assert r.got["conf"][0].data == pytest.approx(0.9)
    img, cam = r.est.calls[0]
    np.testing.assert_array_equal(img, skin_image(64, 48, True, seed=3))
    assert cam.baseline_m == pytest.approx(0.1) and cam.size == (64, 48)


def test_confidence_color_endpoints():
    assert confidence_color(0.0) == (1.0, 0.0, 0.0, 0.8)
    assert confidence_color(1.0) == (0.0, 1.0, 0.0, 0.8)
    assert confidence_color(0.5) == (1.0, 1.0, 0.0, 0.8)
    assert confidence_color(7.0) == confidence_color(1.0)


def test_hand_lost_sends_deleteall_once_and_low_confidence_counts_as_lost(rig):
    r = rig(SkeletonEstimator(confidence=0.9), min_confidence=0.5)
    r.send(_set(0))
    assert r.wait(lambda: len(r.got["markers"]) == 1)
    r.send(_set(1, rgb=np.zeros((48, 64, 3), np.uint8)))
    assert r.wait(lambda: r.node.counts["no_hand"] == 1)
    r.send(_set(2, rgb=np.zeros((48, 64, 3), np.uint8)))
    assert r.wait(lambda: r.node.counts["no_hand"] == 2)
    assert r.wait(lambda: len(r.got["markers"]) == 2)
    time.sleep(0.1)
    r.ex.spin_once(timeout_sec=0.05)
    assert len(r.got["markers"]) == 2  # one DELETEALL, not one per empty frame
    assert r.got["markers"][1].markers[0].action == Marker.DELETEALL
    r.est.confidence = 0.2
    r.send(_set(3))
    assert r.wait(lambda: r.node.counts["low_confidence"] == 1)
    assert len(r.got["conf"]) == 1


@pytest.mark.parametrize("encoding", ["bgr8", "mono8"])
def test_other_encodings_arrive_as_rgb(rig, encoding):
    r = rig()
    rgb = skin_image(64, 48, True, seed=1)
    r.send(_set(0, rgb=rgb, encoding=encoding))
    assert r.wait(lambda: r.est.calls)
    expect = rgb if encoding == "bgr8" else np.repeat(rgb[..., :1], 3, axis=2)
    np.testing.assert_array_equal(r.est.calls[0][0], expect)


def _mono16(s, values):
    for img in (s[0], s[2]):
        img.encoding, img.step = "mono16", 128
        img.data = np.asarray(values, "<u2").tobytes()
    return s


def test_mono16_is_normalised(rig):
    r = rig()
    vals = np.linspace(1000, 3000, 48 * 64).reshape(48, 64).astype(np.uint16)
    r.send(_mono16(_set(0), vals))
    assert r.wait(lambda: r.est.calls)
    got = r.est.calls[0][0]
    assert got[0, 0, 0] == 0 and got[-1, -1, 0] == 255 and (got[..., 0] == got[..., 2]).all()


def _bad_inputs():
    def size_lr(s):
        big = make_image(skin_image(80, 48), s[2].header.stamp, "right_optical")
        return s[0], s[1], big, s[3]

    def size_info(s):
        s[1].width = 640
        return s

    def p_edit(i, v):
        def f(s):
            p = list(s[3].p)
            p[i] = v
            s[3].p = p
            return s
        return f

    def nan_focal(s):
        p = list(s[1].p)
        p[0] = float("nan")
        s[1].p = p
        return s

    def truncated(s):
        s[0].data = s[0].data[:100]
        return s

    def encoding(s):
        s[0].encoding = "yuv422"
        return s

    def empty(s):
        s[0].width = s[2].width = s[1].width = s[3].width = 0
        s[0].step = s[2].step = 0
        return s

    return {"size_lr": (size_lr, "size", "differ"),
            "size_info": (size_info, "size", "camera_info says"),
            "zero_baseline": (p_edit(3, 0.0), "camera", "baseline"),
            "negative_baseline": (p_edit(3, 5.0), "camera", "baseline"),
            "nan_focal": (nan_focal, "camera", "NaN"),
            "unrectified": (p_edit(6, 30.0), "camera", "not a rectified pair"),
            "truncated": (truncated, "image", "expected step x height"),
            "encoding": (encoding, "image", "unsupported encoding"),
            "empty": (empty, "image", "empty image")}


@pytest.mark.parametrize("case", sorted(_bad_inputs()))
def test_bad_input_refused_then_recovers(rig, case):
    edit, key, text = _bad_inputs()[case]
    r = rig(warn_period_s=60.0)
    r.node._on_set(*edit(_set(0)))  # straight into the node: the sync is tested elsewhere
    assert r.wait(lambda: r.node.counts["refused"] == 1), r.node.counts
    assert r.node.refusals[key] == 1 and text in r.node.last_refusal, r.node.last_refusal
    assert not r.est.calls
    st = r.node.diagnostic_status()
    values = {kv.key: kv.value for kv in st.values}
    assert values["refused"] == "1" and text in values["last_refusal"]
    r.send(_set(1))  # good input again, through DDS
    assert r.wait(lambda: r.got["conf"]), "node did not resume"


def test_oversized_image_refused(rig):
    r = rig(max_image_pixels=1000)
    r.node._on_set(*_set(0))
    assert r.wait(lambda: r.node.counts["refused"] == 1)
    assert "exceeds 1000 px" in r.node.last_refusal


def test_newest_pair_wins_and_drops_are_counted(rig):
    r = rig(SkeletonEstimator(delay_s=0.3))
    sets = [_set(i) for i in range(6)]
    r.node._on_set(*sets[0])
    assert r.wait(lambda: len(r.est.calls) == 1)
    for s in sets[1:]:
        r.node._on_set(*s)
    assert r.wait(lambda: r.node.counts["processed"] == 2, 5.0)
    assert r.node.counts["dropped"] == 4 and r.node.counts["received"] == 6
    np.testing.assert_array_equal(r.est.calls[1][0], skin_image(64, 48, True, seed=5))
    values = {kv.key: kv.value for kv in r.node.diagnostic_status().values}
    assert values["dropped"] == "4" and float(values["latency_ms_median"]) >= 250


def test_max_rate_limits_processing(rig):
    r = rig(max_rate_hz=5.0)
    t0 = time.monotonic()
    for i in range(3):
        r.node._on_set(*_set(i))
        assert r.wait(lambda i=i: r.node.counts["processed"] == i + 1, 3.0)
    assert time.monotonic() - t0 >= 2 * 0.2 - 0.02


def test_diagnostics_report_stall_and_mismatched_stamps(rig):
    r = rig(stall_timeout_s=0.3)
    assert r.wait(lambda: r.got["diag"], 3.0)
    assert r.got["diag"][-1].status[0].message == "no input yet"
    r.send(_set(0))
    assert r.wait(lambda: r.got["conf"])
    assert r.node.diagnostic_status().level == DiagnosticStatus.OK
    t_end = time.monotonic() + 0.6
    i = 1
    while time.monotonic() < t_end:  # right camera 1 ms late: exact sync never matches
        r.send(_set(i, right_stamp_offset_ns=10**6))
        i += 1
        r.wait(lambda: False, 0.05)
    st = r.node.diagnostic_status()
    assert st.level == DiagnosticStatus.WARN and "stamps do not match" in st.message
    t_end = time.monotonic() + 0.6
    while time.monotonic() < t_end:  # only the left camera publishes
        s = _set(i)
        r.pub.left.publish(s[0])
        r.pub.left_info.publish(s[1])
        i += 1
        r.wait(lambda: False, 0.05)
    st = r.node.diagnostic_status()
    assert st.level == DiagnosticStatus.WARN and st.message == "right camera stalled"


def test_approximate_sync_accepts_offset_stamps(rig):
    r = rig(approximate_sync=True, slop_s=0.005)
    r.send(_set(0, right_stamp_offset_ns=2 * 10**6))
    assert r.wait(lambda: r.got["conf"])


def test_parameter_changes_validated(rig):
    r = rig()
    n = r.node
    for name, value, text in (("min_confidence", 2.0, "1.0"),
                              ("handedness", "both", "auto"),
                              ("device", "tpu", "cuda"),
                              ("approximate_sync", True, "start-up")):
        res = n.set_parameters([Parameter(name, value=value)])[0]
        assert not res.successful and text in res.reason, (name, res.reason)
    assert n.set_parameters([Parameter("min_confidence", value=0.7)])[0].successful
    assert n.config.min_confidence == 0.7
    d = n.describe_parameters(["max_rate_hz"])[0]
    assert "[Hz]" in d.description and ">= 0.0" in d.additional_constraints


def test_reload_with_bad_model_keeps_the_old_one(rig, tmp_path):
    from std_srvs.srv import Trigger

    r = rig()
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"not a checkpoint")
    r.node._binding.config = r.node.config.replace(model_path=str(bad))
    cli = r.io.create_client(Trigger, "/hand_mesh/reload_model")
    assert r.wait(cli.service_is_ready)
    fut = cli.call_async(Trigger.Request())
    assert r.wait(fut.done)
    res = fut.result()
    assert not res.success and "keeping the previous model" in res.message
    r.send(_set(0))
    assert r.wait(lambda: r.got["conf"])  # the injected estimator still runs


def test_constructor_rejects_non_estimator(ros_context):
    with pytest.raises(TypeError, match="HandMeshEstimator"):
        HandMeshNode(estimator=object(), context=ros_context)


def test_node_runs_as_a_process_with_remaps(ros_context):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "hand_mesh_ros.stereo_node", "--ros-args",
           "-r", "__node:=hm_proc", "-r", "left/image_rect:=/cam/left/image_rect",
           "-r", "right/image_rect:=/cam/right/image_rect",
           "-r", "left/camera_info:=/cam/left/camera_info",
           "-r", "right/camera_info:=/cam/right/camera_info",
           "-p", "image_qos:=reliable", "-p", "model_path:=/nonexistent.safetensors"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    node = rclpy.create_node("test_proc_io", context=ros_context)
    diags = []
    node.create_subscription(DiagnosticArray, "/diagnostics", diags.append, 10)
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(node)
    try:
        pub = StereoPublisher(node, namespace="/cam")
        assert spin_until(ex, lambda: pub.wait_for_subscribers(0.0), 20.0), "no subscription"
        pub.publish(*_set(0))

        def model_error_reported():
            return any(s.name.startswith("hm_proc") and s.level == DiagnosticStatus.ERROR
                       for d in diags for s in d.status)
        assert spin_until(ex, model_error_reported, 10.0)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
        assert proc.returncode == 0, out
        assert "Traceback" not in out, out
    finally:
        if proc.poll() is None:
            proc.kill()
        ex.shutdown()
        node.destroy_node()


def test_worker_thread_stops_on_destroy(ros_context):
    n = HandMeshNode(estimator=SkeletonEstimator(), context=ros_context)
    n.destroy_node()
    assert not n._worker.is_alive()
    assert threading.active_count() >= 1


# ------------------------------------------------------------------ ROI tracking
def test_track_box_closed_form():
    uv = np.array([[10.0, 20.0], [30.0, 30.0], [20.0, np.nan]])
    # long side 20 px, grown by 0.25 * 20 on each side -> 30 px square around (20, 25)
    assert track_box(uv, (640, 480), 0.25) == pytest.approx((5.0, 10.0, 30.0, 30.0))
    assert track_box(uv, (640, 480), 0.0) == pytest.approx((10.0, 15.0, 20.0, 20.0))
    # clipped to the image
    assert track_box(uv - 15.0, (640, 480), 0.25) == pytest.approx((0.0, 0.0, 20.0, 25.0))
    assert track_box(np.full((3, 2), np.nan), (64, 48), 0.1) is None
    assert track_box(uv + 1000.0, (64, 48), 0.1) is None  # entirely outside
    with pytest.raises(ValueError, match=r"shape \(V, 2\)"):
        track_box(np.zeros((3, 3)), (64, 48), 0.1)
    with pytest.raises(ValueError, match="margin_frac must be >= 0"):
        track_box(uv, (64, 48), -0.1)


class RoiRecorder(SkeletonEstimator):
    def __init__(self):
        super().__init__()
        self.rois = []

    def predict(self, left, right, camera, roi=None):
        self.rois.append(roi)
        return super().predict(left, right, camera, roi)


def _send_one(r, s, n):
    r.node._on_set(*s)
    assert r.wait(lambda: r.node.counts["processed"] == n)


def test_track_roi_reuses_the_box_and_redetects(rig):
    r = rig(RoiRecorder(), track_roi=True, redetect_every=3, track_margin_frac=0.1)
    for i in range(6):
        _send_one(r, _set(i), i + 1)
    rois = list(r.est.rois)
    uv = SkeletonEstimator().predict(skin_image(64, 48), None, CAM).uv_left
    box = track_box(uv, (64, 48), 0.1)
    assert box is not None
    assert rois == [None, box, box, box, None, box]
    assert r.node.counts["tracked"] == 4
    values = {kv.key: kv.value for kv in r.node.diagnostic_status().values}
    assert values["tracked"] == "4"
    # hand lost -> the next pair searches the whole image
    _send_one(r, _set(6, rgb=np.zeros((48, 64, 3), np.uint8)), 7)
    _send_one(r, _set(7), 8)
    assert r.est.rois[-2:-1] == [box] and r.est.rois[-1] is None


def test_track_roi_off_never_passes_a_box(rig):
    r = rig(RoiRecorder(), track_roi=False)
    for i in range(3):
        _send_one(r, _set(i), i + 1)
    assert r.est.rois == [None, None, None] and r.node.counts["tracked"] == 0


# ------------------------------------------------------------------ downscaling
def test_downscale_pair_keeps_metric_depth():
    cam = StereoCamera(fx=800.0, fy=800.0, cx=639.5, cy=359.5, baseline_m=0.12, width=1280,
                       height=720)
    img = np.arange(720 * 1280 * 3, dtype=np.uint64).reshape(720, 1280, 3).astype(np.uint8)
    left, right, small = downscale_pair(img, img, cam, 640)
    assert left.shape == right.shape == (360, 640, 3) and small.size == (640, 360)
    # a point at 0.5 m: its disparity halves with fx, so the depth stays 0.5 m
    x, z = 0.05, 0.5
    for c in (cam, small):
        u_l = c.fx * x / z + c.cx
        u_r = c.fx * (x - c.baseline_m) / z + c.cx
        assert c.fx * c.baseline_m / (u_l - u_r) == pytest.approx(z)
    # area filter: a 2x2 block average (pixel-centre convention)
    ref = img.reshape(360, 2, 640, 2, 3).astype(np.float64).mean(axis=(1, 3))
    assert np.abs(left.astype(np.float64) - ref).max() <= 1.0
    assert small.cx == pytest.approx((cam.cx + 0.5) / 2 - 0.5)


def test_downscale_pair_passthrough_and_validation():
    img = np.zeros((48, 64, 3), np.uint8)
    for width in (0, 64, 100):
        out = downscale_pair(img, img, CAM, width)
        assert out[0] is img and out[2] is CAM
    for bad in (-1, 2.0, True):
        with pytest.raises(ValueError, match="max_width_px must be an int >= 0"):
            downscale_pair(img, img, CAM, bad)


def test_node_downscales_wide_pairs(rig):
    r = rig(max_process_width_px=32)
    r.node._on_set(*_set(0))
    assert r.wait(lambda: r.est.calls)
    img, cam = r.est.calls[0]
    assert img.shape == (24, 32, 3) and cam.size == (32, 24)
    assert cam.fx == pytest.approx(CAM.fx / 2) and cam.baseline_m == CAM.baseline_m


# ------------------------------------------------------------------ ROI tracking, model pipeline
class PipelineDouble(SkeletonEstimator):
    """Duck-types HandMeshPipeline (find_roi, predict_crop, model.config.input_size): the whole
    image search finds FULL_BOX, the fast path finds the prior moved 1 px right."""

    FULL_BOX = (10.0, 8.0, 30.0, 30.0)
    QUICK_BOX = (20.0, 4.0, 36.0, 36.0)

    def __init__(self):
        super().__init__()
        self.model = SimpleNamespace(config=SimpleNamespace(input_size=32))
        self.finds = []   # (thread name, prior, prior_disparity_px)
        self.crops = []
        self.fallbacks = []

    def find_roi(self, left, right, camera, roi=None, prior=None, prior_disparity_px=None,
                 fallback="full"):
        self.finds.append((threading.current_thread().name, prior, prior_disparity_px))
        self.fallbacks.append(fallback)
        if left.max() < 5:
            return None
        depth = camera.fx_baseline / DISPARITY_PX
        if prior is None and fallback == "quick":
            return HandRoi(self.QUICK_BOX, DISPARITY_PX, depth, 5.0, "quick", True)
        if prior is None:
            return HandRoi(self.FULL_BOX, DISPARITY_PX, depth, 5.0, "skin", True)
        x0, y0, w, h = prior
        return HandRoi((x0 + 1.0, y0, w, h), DISPARITY_PX, depth, 5.0, "track", True)

    def predict_crop(self, left, right, camera, crop):
        self.crops.append(crop)
        return super().predict(left, right, camera)


def _worker_priors(est):
    return [p for name, p, _ in est.finds if name == "hand_mesh_worker"]


def test_pipeline_tracking_fast_path_and_background_redetection(rig):
    from hand_mesh_core.train.batch import roi_stereo_crop

    r = rig(PipelineDouble(), redetect_every=3, quick_acquire=False)
    for i in range(4):
        _send_one(r, _set(i), i + 1)
    full = PipelineDouble.FULL_BOX
    moved = [(full[0] + k, *full[1:]) for k in range(4)]
    # first pair: whole image; then the last ROI is the prior, with its disparity
    assert _worker_priors(r.est) == [None, moved[0], moved[1], moved[2]]
    assert [d for name, _, d in r.est.finds if name == "hand_mesh_worker"] == \
        [None] + [DISPARITY_PX] * 3
    assert r.est.crops[-1] == roi_stereo_crop(moved[3], DISPARITY_PX, 32)
    assert r.node.counts["tracked"] == 3 and r.node.counts["published"] == 4
    # the 3rd tracked pair started a whole-image search in the background thread ...
    assert r.wait(lambda: not r.node._redetect_busy and r.node._redetected is not None)
    assert ("hand_mesh_redetect", None, None) in r.est.finds
    # ... whose result replaces the track on the next pair
    _send_one(r, _set(4), 5)
    assert _worker_priors(r.est)[-1] == full and r.node.counts["redetected"] == 1
    values = {kv.key: kv.value for kv in r.node.diagnostic_status().values}
    assert values["redetected"] == "1" and values["tracked"] == "4"
    # lost (no hand anywhere): the next pair searches the whole image again
    _send_one(r, _set(5, rgb=np.zeros((48, 64, 3), np.uint8)), 6)
    _send_one(r, _set(6), 7)
    assert _worker_priors(r.est)[-2:] == [moved[1], None]
    assert r.node.counts["no_hand"] == 1 and set(r.est.fallbacks) == {"full"}


def test_pipeline_quick_acquisition_is_confirmed_in_the_background(rig):
    r = rig(PipelineDouble(), redetect_every=3)   # quick_acquire: default
    _send_one(r, _set(0), 1)
    # no track: the quick whole-image search, published at once ...
    assert r.est.finds[0] == ("hand_mesh_worker", None, None)
    assert r.est.fallbacks[0] == "quick" and r.node.counts["published"] == 1
    # ... and a full search started in the background right away
    assert r.wait(lambda: not r.node._redetect_busy and r.node._redetected is not None)
    assert ("hand_mesh_redetect", None, None) in r.est.finds
    _send_one(r, _set(1), 2)
    full = PipelineDouble.FULL_BOX
    assert _worker_priors(r.est) == [None, full] and r.node.counts["redetected"] == 1
    _send_one(r, _set(2), 3)   # tracked from the confirmed box
    assert _worker_priors(r.est)[-1] == (full[0] + 1, *full[1:])
    # nothing anywhere: quick searches only; a background search every redetect_every pairs
    dark = np.zeros((48, 64, 3), np.uint8)
    for i in range(3, 9):
        _send_one(r, _set(i, rgb=dark), i + 1)
    assert r.wait(lambda: not r.node._redetect_busy)
    background = [f for f in r.est.finds if f[0] == "hand_mesh_redetect"]
    assert len(background) == 3   # the confirmation, then after 3 and 6 pairs
    assert r.node.counts["no_hand"] == 6 and r.node.counts["published"] == 3


def test_pipeline_tracking_off_and_low_confidence_drop_the_track(rig):
    r = rig(PipelineDouble(), track_roi=False)
    for i in range(3):
        _send_one(r, _set(i), i + 1)
    assert _worker_priors(r.est) == [None, None, None] and r.node.counts["tracked"] == 0
    est = PipelineDouble()
    est.confidence = 0.1
    r2 = rig(est, min_confidence=0.5, quick_acquire=False)
    for i in range(3):
        _send_one(r2, _set(i), i + 1)
    # every result is refused as low confidence: no track is kept from it
    assert _worker_priors(est) == [None, None, None]
    assert r2.node.counts["low_confidence"] == 3 and r2.node.counts["published"] == 0
