"""End to end: the stereo node as a separate process with the shipped model, fed rendered pairs.

The node runs the way ``ros2 run hand_mesh_ros stereo_node`` runs it (``python -m
hand_mesh_ros.stereo_node --ros-args ...``) in namespace ``/e2e`` with its inputs remapped to
``/e2e_cam/...``, on loopback DDS. Rendered ``target_lab`` pairs with known ground truth are
published; the test checks the frame id and stamp of the outputs, the vertex and joint counts,
that the node's result equals the pipeline's run in this process (same model, same pair, same
tracking sequence), the
ABSOLUTE joint error against the rendered truth, and the diagnostics under a bad camera_info.

Skipped, with the reason, when the shipped default checkpoint is not installed. For development,
``HAND_MESH_E2E_MODEL=<ckpt>`` runs it with another checkpoint (the error bound below was
measured for the shipped one).
"""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402

from hand_mesh_core.hand.joints import NUM_JOINTS  # noqa: E402
from hand_mesh_core.hand.model import HandModel  # noqa: E402
from hand_mesh_core.pipeline import default_model_path, load_estimator  # noqa: E402
from hand_mesh_ros.common import stamp_ns  # noqa: E402
from hand_mesh_ros.testing import (NodeProcess, ResultCollector, StereoPublisher,  # noqa: E402
                                   publish_until, spin_until, stamp_msg, stereo_messages,
                                   stereo_node_command)

NAMESPACE = "/e2e"
INPUT_PREFIX = "/e2e_cam"
FRAME_ID = "e2e_left_optical"
#: Rendered frames: the first NUM_FRAMES right-hand target_lab frames of SEED in which the
#: pipeline finds a hand; the node runs with handedness right and min_confidence 0 (the shipped
#: model's confidence is not yet a reliable filter on target_lab, so every hand is published).
SEED = 0
NUM_FRAMES = 6
MAX_CANDIDATES = 16
MIN_CONFIDENCE = 0.0
#: Bound on the MEDIAN over the frames of the mean absolute joint error (left optical frame),
#: mm. Measured with the pipeline directly on these six frames (shipped default of 2026-11-26
#: 01:48, pretrained on source_studio only (22 mm there); target_lab is the unseen domain):
#: per-frame 538, 40, 110, 131, 90, 138 mm, median MEASURED_MEDIAN_ERROR_MM (the node's tracked
#: sequence, see _tracked_direct: 538, 40, 63, 131, 98, 148 mm, median 114). The first frame is a
#: skin-ROI failure (wrong blob); the median ignores one such failure; the 1.5x margin lets a
#: retrained default of similar quality pass, while a broken scale, frame or baseline (errors of
#: hundreds of mm on every frame) fails.
MEASURED_MEDIAN_ERROR_MM = 120.0
MAX_MEDIAN_JOINT_ERROR_MM = 1.5 * MEASURED_MEDIAN_ERROR_MM
#: The node's result must equal the in-process pipeline's: same weights and pair, only thread
#: count and summation order differ (float32), so 1 mm is generous yet catches any real change.
NODE_VS_PIPELINE_TOL_M = 1e-3
#: Time limits, s: node start-up (torch import + model load on a shared 2-core machine), one
#: result, and a diagnostics update (published at 1 Hz).
START_TIMEOUT_S = 60.0
RESULT_TIMEOUT_S = 20.0
DIAG_TIMEOUT_S = 5.0
_T0_NS = 1_700_000_000 * 10**9
_MM_PER_M = 1000.0


def _model_path() -> str:
    override = os.environ.get("HAND_MESH_E2E_MODEL", "")
    if override:
        return override
    path = default_model_path()
    if not path.is_file():
        pytest.skip(f"the shipped default checkpoint {path} is not installed (train it with "
                    "`hand-mesh pretrain`/`adapt` and copy it there, or set "
                    "HAND_MESH_E2E_MODEL)")
    return str(path)


@pytest.fixture(scope="module")
def frames():
    """[(sample, direct pipeline result)] for NUM_FRAMES right-hand frames with a hand."""
    from hand_mesh_core.data.synth.config import load_domain
    from hand_mesh_core.data.synth.generator import SynthGenerator

    model = _model_path()
    est = load_estimator(model, "cpu", "right")
    gen = SynthGenerator(load_domain("target_lab"))
    out = []
    for i in range(MAX_CANDIDATES):
        s = gen.generate(i, SEED).to_stereo_sample()
        if s.handedness != "right":
            continue
        r = est.predict(s.left, s.right, s.camera)
        if r is not None:
            out.append((s, r))
        if len(out) == NUM_FRAMES:
            break
    assert len(out) == NUM_FRAMES, f"only {len(out)} frames with a hand in {MAX_CANDIDATES}"
    return model, out


def _tracked_direct(model: str, samples: list) -> list:
    """The pipeline run in this process the way the node runs it with ``track_roi`` (default):
    the first pair searches the whole image, each next one the window around the previous
    ROI (with its disparity), falling back to the whole image when the window has no hand."""
    from hand_mesh_core.train.batch import roi_stereo_crop

    est = load_estimator(model, "cpu", "right")
    prev, out = None, []
    for s, _ in samples:
        hand = est.find_roi(s.left, s.right, s.camera,
                            prior=None if prev is None else prev.left,
                            prior_disparity_px=None if prev is None or not prev.stereo_matched
                            else prev.disparity_px)
        crop = roi_stereo_crop(hand.left, hand.disparity_px, est.model.config.input_size)
        out.append(est.predict_crop(s.left, s.right, s.camera, crop))
        prev = hand
    return out


def test_node_process_end_to_end(ros_context, frames):
    model, samples = frames
    # The node tracks the hand (track_roi, default): pair k is searched near pair k-1's hand
    # (whole image when that window is empty). These are unrelated renders, so that changes
    # some ROIs: compare with the same sequence.
    expected = _tracked_direct(model, samples)
    cmd = stereo_node_command(NAMESPACE, INPUT_PREFIX, {
        "model_path": model, "handedness": "right", "image_qos": "reliable",
        "min_confidence": MIN_CONFIDENCE,
        # quick acquisition confirms in a background thread: timing-dependent ROIs
        "quick_acquire": False})
    io = rclpy.create_node("e2e_io", context=ros_context)
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(io)
    pub = StereoPublisher(io, namespace=INPUT_PREFIX)
    res = ResultCollector(io, NAMESPACE)
    with NodeProcess(cmd) as proc:
        try:
            started = spin_until(ex, lambda: not proc.alive() or (
                pub.wait_for_subscribers(0.0) and (res.last_diagnostic() or {}).get(
                    "model_loaded") == "true"), START_TIMEOUT_S)
            assert started and proc.alive(), proc.output()
            # ---- good frames: one at a time, each must give a result
            stamps = []
            for k, (s, _) in enumerate(samples):
                stamp = stamp_msg(_T0_NS + k * 10**8)
                stamps.append(stamp_ns(stamp))
                msgs = stereo_messages(s.left, s.right, s.camera, stamp, FRAME_ID)
                assert publish_until(ex, pub, msgs, lambda: stamps[-1] in res.joints
                                     and stamps[-1] in res.points and res.confidences,
                                     RESULT_TIMEOUT_S), proc.output()
            errors_mm = []
            for key, (s, _), direct in zip(stamps, samples, expected):
                assert res.frames[key] == FRAME_ID
                joints = res.joints[key][1]
                verts = res.points[key][1]
                assert joints.shape == (NUM_JOINTS, 3)
                assert verts.shape == (HandModel.procedural().num_vertices, 3)
                np.testing.assert_allclose(joints, direct.joints_m, atol=NODE_VS_PIPELINE_TOL_M)
                np.testing.assert_allclose(verts, direct.vertices_m, atol=NODE_VS_PIPELINE_TOL_M)
                errors_mm.append(np.linalg.norm(joints - s.joints_m, axis=1).mean() * _MM_PER_M)
            spin_until(ex, lambda: len(res.confidences) >= NUM_FRAMES, DIAG_TIMEOUT_S)
            for d in expected:  # Float32 has no stamp; a resent set may repeat one
                assert np.abs(np.array(res.confidences) - d.confidence).min() < 1e-3
            median_err = float(np.median(errors_mm))
            print(f"e2e absolute mean joint error per frame (mm): "
                  f"{[round(float(e), 1) for e in errors_mm]}, median {median_err:.1f}")
            assert median_err < MAX_MEDIAN_JOINT_ERROR_MM, errors_mm
            # ---- bad input: zero baseline in the right camera_info -> refused, WARN, resumes
            s = samples[0][0]
            bad = stereo_messages(s.left, s.right, s.camera, stamp_msg(_T0_NS + 10**9), FRAME_ID)
            p = list(bad[3].p)
            p[3] = 0.0
            bad[3].p = p
            pub.publish(*bad)

            def refused() -> bool:
                d = res.last_diagnostic() or {}
                return d.get("refused_camera") == "1" and "baseline" in d.get("message", "")
            assert spin_until(ex, refused, DIAG_TIMEOUT_S), res.last_diagnostic()
            d = res.last_diagnostic()
            assert d["level"] == "1" and d["message"].startswith("input refused")  # WARN
            assert d["model_loaded"] == "true" and d["published"] == str(NUM_FRAMES)
            good = stamp_msg(_T0_NS + 2 * 10**9)
            assert publish_until(ex, pub, stereo_messages(s.left, s.right, s.camera, good,
                                                          FRAME_ID),
                                 lambda: stamp_ns(good) in res.joints, RESULT_TIMEOUT_S), \
                "node did not resume after the bad pair"
            assert proc.alive()
        finally:
            code = proc.stop()
            ex.shutdown()
            io.destroy_node()
    out = proc.output()
    assert code == 0 and "Traceback" not in out, out


def test_node_process_fails_clearly_without_a_model(ros_context, tmp_path):
    """A missing checkpoint: the node stays up and says so in /diagnostics (ERROR)."""
    missing = str(tmp_path / "missing.safetensors")
    cmd = stereo_node_command(NAMESPACE + "_missing", INPUT_PREFIX + "_missing",
                              {"model_path": missing})
    io = rclpy.create_node("e2e_io_missing", context=ros_context)
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(io)
    res = ResultCollector(io, NAMESPACE + "_missing")
    t0 = time.monotonic()
    with NodeProcess(cmd) as proc:
        try:
            assert spin_until(ex, lambda: res.last_diagnostic() is not None, START_TIMEOUT_S), \
                proc.output()
            d = res.last_diagnostic()
            assert d["level"] == "2" and "cannot load model" in d["message"] \
                and missing in d["message"] and d["model_loaded"] == "false", d
        finally:
            proc.stop()
            ex.shutdown()
            io.destroy_node()
    assert time.monotonic() - t0 < START_TIMEOUT_S + 15
