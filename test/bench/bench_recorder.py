"""Benchmark: recorder throughput at 1280x720 to png mcap, no drops allowed.

Starts the recorder as a separate process (like ``ros2 run``), publishes synchronised
1280x720 rgb8 pairs + CameraInfos at ``--rate`` Hz for ``--seconds`` over loopback DDS, stops the
recorder with SIGINT and counts the pairs in the bag. Prints one JSON object.

    python test/bench/bench_recorder.py --rate 12 --seconds 10
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from hand_mesh_ros.loopback import configure_loopback_env  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=12.0, help="published pairs per second")
    ap.add_argument("--seconds", type=float, default=10.0, help="publishing time")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--compression", default="png", choices=["none", "png", "jpeg"])
    ap.add_argument("--storage", default="mcap", choices=["mcap", "sqlite3"])
    ap.add_argument("--encode-threads", type=int, default=2)
    a = ap.parse_args()
    configure_loopback_env()
    import rclpy
    from rosbags.rosbag2 import Reader

    from hand_mesh_core.geometry.camera import StereoCamera
    from hand_mesh_ros.testing import StereoPublisher, make_camera_infos, make_image, \
        skin_image, stamp_msg

    out_dir = Path(tempfile.mkdtemp(prefix="bench_rec_"))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-m", "hand_mesh_ros.recorder_node", "--ros-args",
         "-p", f"output_dir:={out_dir}", "-p", f"compression:={a.compression}",
         "-p", f"storage:={a.storage}", "-p", "image_qos:=reliable",
         "-p", f"encode_threads:={a.encode_threads}", "-p", "progress_period_s:=2.0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rclpy.init()
    node = rclpy.create_node("bench_pub")
    pub = StereoPublisher(node, reliable=True, depth=50)
    if not pub.wait_for_subscribers(30.0):
        proc.kill()
        print(json.dumps({"error": "recorder did not subscribe", "log": proc.stdout.read()}))
        return 1
    cam = StereoCamera(width=a.width, height=a.height, cx=a.width / 2 - 0.5,
                       cy=a.height / 2 - 0.5)
    # realistic, compressible-but-not-trivial content: noisy background with a skin blob
    frames = [skin_image(a.width, a.height, True, seed=s) for s in range(4)]
    n = int(a.rate * a.seconds)
    t0 = time.monotonic()
    stamp0 = time.time_ns()
    for i in range(n):
        target = t0 + i / a.rate
        while time.monotonic() < target:
            time.sleep(0.001)
        st = stamp_msg(stamp0 + int(i * 1e9 / a.rate))
        li, ri = make_camera_infos(cam, st)
        pub.publish(make_image(frames[i % 4], st), li,
                    make_image(frames[(i + 1) % 4], st, "right_optical"), ri)
    pub_s = time.monotonic() - t0
    time.sleep(1.0)
    t_stop = time.monotonic()
    proc.send_signal(signal.SIGINT)
    log, _ = proc.communicate(timeout=120)
    drain_s = time.monotonic() - t_stop
    bag = next(out_dir.glob("stereo_*"))
    with Reader(bag) as r:
        counts = {c.topic: c.msgcount for c in r.connections}
    pairs = min(counts.values()) if counts else 0
    size_mb = sum(f.stat().st_size for f in bag.iterdir()) / 1e6
    print(json.dumps({
        "published_pairs": n, "written_pairs": pairs, "dropped_pairs": n - pairs,
        "publish_rate_hz": round(n / pub_s, 2), "image": f"{a.width}x{a.height} rgb8",
        "compression": a.compression, "storage": a.storage,
        "encode_threads": a.encode_threads, "bag_mb": round(size_mb, 1),
        "mb_per_pair": round(size_mb / max(pairs, 1), 2),
        "stop_drain_s": round(drain_s, 2), "recorder_exit": proc.returncode,
        "recorder_last_progress": ([ln for ln in log.splitlines() if "pairs written" in ln]
                                   or [""])[-1][-160:],
        "note": "shared 2-core CPU machine, other jobs running; publisher in the same machine",
    }, indent=1))
    node.destroy_node()
    rclpy.shutdown()
    return 0 if pairs == n else 1


if __name__ == "__main__":
    raise SystemExit(main())
