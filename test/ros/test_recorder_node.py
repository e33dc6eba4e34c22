"""RecorderNode in-process on loopback DDS: what it writes, what it skips, how it fails."""
from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rosbags.rosbag2 import Reader  # noqa: E402
from rosbags.typesys import Stores, get_typestore  # noqa: E402

from hand_mesh_core.geometry.camera import StereoCamera  # noqa: E402
from hand_mesh_ros.bag import repair_bag  # noqa: E402
from hand_mesh_ros.recorder_node import RecorderNode, encode_image, has_hand  # noqa: E402
from hand_mesh_ros.testing import (StereoPublisher, make_camera_infos, make_image,  # noqa: E402
                                   skin_image, spin_until, stamp_msg)

CAM = StereoCamera(fx=100.0, fy=100.0, cx=31.5, cy=23.5, baseline_m=0.1, width=64, height=48)
TS = get_typestore(Stores.LATEST)
REPO = Path(__file__).resolve().parents[2]


def _set(i: int, with_hand: bool = True, t0_ns: int = 10**18, period_ns: int = 10**8):
    stamp = stamp_msg(t0_ns + i * period_ns)
    li, ri = make_camera_infos(CAM, stamp)
    left = make_image(skin_image(64, 48, with_hand, seed=i), stamp)
    right = make_image(skin_image(64, 48, with_hand, seed=1000 + i), stamp, "right_optical")
    return left, li, right, ri


def _read(bag: Path):
    out = {}
    with Reader(bag) as r:
        for conn, t, raw in r.messages():
            out.setdefault(conn.topic, []).append((t, TS.deserialize_cdr(raw, conn.msgtype)))
    return out


@pytest.fixture
def rig(ros_context, tmp_path):
    """Recorder + publisher nodes on one executor; yields a factory taking overrides."""
    made = []

    def make(**overrides):
        params = {"output_dir": str(tmp_path), "flush_period_s": 0.05, "image_qos": "reliable",
                  **overrides}
        rec = RecorderNode(context=ros_context, parameter_overrides=[
            Parameter(k, value=v) for k, v in params.items()])
        pub_node = rclpy.create_node("test_stereo_pub", context=ros_context)
        pub = StereoPublisher(pub_node)
        ex = SingleThreadedExecutor(context=ros_context)
        ex.add_node(rec)
        ex.add_node(pub_node)
        made.append((rec, pub_node, ex))
        assert spin_until(ex, lambda: pub.wait_for_subscribers(0.0), 5.0)
        return rec, pub, ex

    yield make
    for rec, pub_node, ex in made:
        ex.shutdown()
        rec.destroy_node()
        pub_node.destroy_node()


def _publish_and_wait(rec, pub, ex, sets, key="written", expect=None):
    for s in sets:
        pub.publish(*s)
        ex.spin_once(timeout_sec=0.0)
    expect = len(sets) if expect is None else expect
    total = lambda: sum(rec.counts[k] for k in ("written", "skipped_no_hand",  # noqa: E731
                                                "skipped_rate", "refused", "dropped_queue",
                                                "failed"))
    assert spin_until(ex, lambda: total() >= expect and not rec._pending.unfinished_tasks,
                      10.0), rec.counts


def test_png_mcap_roundtrip_lossless(rig):
    rec, pub, ex = rig(compression="png")
    sets = [_set(i) for i in range(5)]
    _publish_and_wait(rec, pub, ex, sets)
    bag = rec.stop_recording()
    assert (bag / "metadata.yaml").is_file() and list(bag.glob("*.mcap"))
    msgs = _read(bag)
    assert sorted(msgs) == ["/left/camera_info", "/left/image_rect/compressed",
                            "/right/camera_info", "/right/image_rect/compressed"]
    for i, (t, m) in enumerate(msgs["/left/image_rect/compressed"]):
        assert m.format == "rgb8; png compressed bgr8"
        assert t == 10**18 + i * 10**8 and m.header.frame_id == "left_optical"
        dec = cv2.imdecode(np.frombuffer(m.data, np.uint8), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(dec[..., ::-1], skin_image(64, 48, True, seed=i))
    p = msgs["/right/camera_info"][0][1].p
    assert p[3] == pytest.approx(-CAM.fx * CAM.baseline_m)
    assert rec.counts["written"] == 5 and rec.counts["dropped_queue"] == 0


def test_raw_sqlite3_and_rate_subsampling(rig):
    rec, pub, ex = rig(compression="none", storage="sqlite3", rate_hz=4.0)
    sets = [_set(i, period_ns=10**8) for i in range(10)]  # 10 Hz in, 4 Hz kept
    _publish_and_wait(rec, pub, ex, sets)
    bag = rec.stop_recording()
    msgs = _read(bag)
    stamps = [t for t, _ in msgs["/left/image_rect"]]
    # keep when >= 0.25 s since the last kept: 0, 0.3, 0.6, 0.9 s
    assert stamps == [10**18 + k * 3 * 10**8 for k in range(4)]
    assert rec.counts["skipped_rate"] == 6
    img = msgs["/left/image_rect"][1][1]
    np.testing.assert_array_equal(np.asarray(img.data).reshape(48, 64, 3),
                                  skin_image(64, 48, True, seed=3))


def test_only_with_hand_skips_empty_frames(rig):
    rec, pub, ex = rig(only_with_hand=True, compression="jpeg", jpeg_quality=90)
    sets = [_set(i, with_hand=(i % 2 == 0)) for i in range(6)]
    _publish_and_wait(rec, pub, ex, sets)
    bag = rec.stop_recording()
    assert rec.counts["written"] == 3 and rec.counts["skipped_no_hand"] == 3
    msgs = _read(bag)
    assert [t for t, _ in msgs["/left/camera_info"]] == [10**18 + i * 10**8 for i in (0, 2, 4)]
    assert msgs["/left/image_rect/compressed"][0][1].format == "rgb8; jpeg compressed bgr8"


def test_has_hand_and_encode_helpers():
    assert has_hand(skin_image(640, 480, True), 0.002)
    assert not has_hand(skin_image(640, 480, False), 0.002)
    stamp = stamp_msg(5)
    mono16 = make_image(skin_image(8, 4), stamp)
    mono16.encoding, mono16.step = "mono16", 16
    mono16.data = mono16.data[:64]
    out = encode_image(mono16, "png")
    assert out.format == "mono16; png compressed mono16"
    dec = cv2.imdecode(np.frombuffer(out.data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert dec.dtype == np.uint16 and dec.shape == (4, 8)
    with pytest.raises(ValueError, match="16-bit"):
        encode_image(mono16, "jpeg")
    with pytest.raises(ValueError, match="compression must be one of"):
        encode_image(mono16, "bmp")


def test_parameters_validated_at_runtime(rig):
    rec, pub, ex = rig()
    res = rec.set_parameters([Parameter("storage", value="zip")])[0]
    assert not res.successful and "mcap" in res.reason
    res = rec.set_parameters([Parameter("queue_size", value=5)])[0]
    assert not res.successful and "start-up" in res.reason
    res = rec.set_parameters([Parameter("rate_hz", value=-1.0)])[0]
    assert not res.successful
    assert rec.set_parameters([Parameter("rate_hz", value=2.0)])[0].successful
    assert rec.config.rate_hz == 2.0
    desc = rec.describe_parameters(["rate_hz"])[0]
    assert "[Hz]" in desc.description and desc.floating_point_range[0].from_value == 0.0


def test_start_stop_services_and_unwritable_dir(rig, tmp_path):
    from std_srvs.srv import Trigger

    blocker = tmp_path / "not_a_dir"
    blocker.write_text("x")
    rec, pub, ex = rig(autostart=False, output_dir=str(blocker / "bags"))
    assert not rec.recording
    client_node = rclpy.create_node("test_client", context=rec.context)
    ex.add_node(client_node)
    try:
        start = client_node.create_client(Trigger, "/stereo_recorder/start")
        stop = client_node.create_client(Trigger, "/stereo_recorder/stop")
        assert spin_until(ex, lambda: start.service_is_ready() and stop.service_is_ready())

        def call(cli):
            fut = cli.call_async(Trigger.Request())
            assert spin_until(ex, fut.done, 5.0)
            return fut.result()

        r = call(start)
        assert not r.success and "not_a_dir" in r.message
        assert not rec.recording
        assert rec.set_parameters([Parameter("output_dir", value=str(tmp_path))])[0].successful
        r = call(start)
        assert r.success and rec.recording
        r2 = call(start)
        assert not r2.success and "already recording" in r2.message
        r = call(stop)
        assert r.success and not rec.recording
        assert not call(stop).success
    finally:
        client_node.destroy_node()


def test_disk_full_aborts_without_metadata_and_repairs(rig):
    rec, pub, ex = rig(compression="none")
    _publish_and_wait(rec, pub, ex, [_set(0), _set(1)])
    rec._bag.flush()
    bag = rec._bag.path

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    rec._bag._writer.write = full
    _publish_and_wait(rec, pub, ex, [_set(2)], expect=3)
    assert "disk full" in rec.last_error and not rec.recording
    assert not (bag / "metadata.yaml").exists()
    assert repair_bag(bag) == 8  # the two flushed sets
    assert len(_read(bag)["/left/image_rect"]) == 2


def _subprocess_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "SIGKILL"])
def test_recorder_process_signals(ros_context, tmp_path, how):
    cmd = [sys.executable, "-m", "hand_mesh_ros.recorder_node", "--ros-args",
           "-r", "__node:=rec_proc", "-p", f"output_dir:={tmp_path}", "-p",
           "flush_period_s:=0.05", "-p", "compression:=png", "-p", "image_qos:=reliable"]
    proc = subprocess.Popen(cmd, env=_subprocess_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    node = rclpy.create_node("test_proc_pub", context=ros_context)
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(node)
    try:
        pub = StereoPublisher(node)
        assert pub.wait_for_subscribers(15.0), "recorder process did not subscribe"
        for i in range(6):
            pub.publish(*_set(i))
            time.sleep(0.05)
        # > flush period, and > the recorder's delivery lag on a loaded 2-core machine: with
        # 1 s the last pairs were sometimes not yet received (3 of 15 runs recorded 3-5 of 6);
        # with 3 s, 0 of 30 runs missed any.
        time.sleep(3.0)
        proc.send_signal(getattr(signal, how))
        out, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
        ex.shutdown()
        node.destroy_node()
    bags = list(tmp_path.glob("stereo_*"))
    assert len(bags) == 1, out
    bag = bags[0]
    if how == "SIGKILL":
        assert not (bag / "metadata.yaml").exists()
        with pytest.raises(Exception):
            Reader(bag).open()
        assert repair_bag(bag) == 24
    else:
        assert proc.returncode == 0, out
        assert (bag / "metadata.yaml").is_file()
    msgs = _read(bag)
    stamps = [t for t, _ in msgs["/left/image_rect/compressed"]]
    assert len(stamps) == 6, (out, stamps)
    assert len(msgs["/right/camera_info"]) == 6
