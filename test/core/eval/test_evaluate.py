"""Tests of the evaluation runner with a test-double estimator on small synthetic samples."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from hand_mesh_core.data.types import StereoSample
from hand_mesh_core.eval.config import EvalConfig
from hand_mesh_core.eval.evaluate import METRICS_FILE, evaluate
from hand_mesh_core.geometry.camera import StereoCamera
from hand_mesh_core.geometry.mesh import uv_sphere
from hand_mesh_core.pipeline import HandMeshResult

CAMERA = StereoCamera(fx=100.0, fy=100.0, cx=31.5, cy=23.5, baseline_m=0.1, width=64, height=48)
OFFSET_M = np.array([0.003, 0.0, 0.004])  # a 3-4-5 offset: 5 mm on every joint


def _joints(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(scale=0.03, size=(21, 3)) + [0.0, 0.0, 0.5]).astype(np.float32)


def _samples(n: int) -> list[StereoSample]:
    out = []
    for i in range(n):
        left = np.zeros((48, 64, 3), np.uint8)
        left[0, 0, 0] = i  # the test double reads the frame index from here
        out.append(StereoSample(left=left, right=left.copy(), camera=CAMERA,
                                joints_m=_joints(i), source=f"test/{i}"))
    return out


class _Double:
    """Returns the ground truth + OFFSET_M, or None on the frames listed in ``fail``."""

    def __init__(self, fail: tuple[int, ...] = ()) -> None:
        self.fail = fail
        self.calls = 0
        self.verts, faces = uv_sphere(0.03, 4, 6, (0.0, 0.0, 0.5))
        self.faces = faces.numpy().astype(np.int32)

    def predict(self, left, right, camera, roi=None):
        self.calls += 1
        i = int(left[0, 0, 0])
        if i in self.fail:
            return None
        joints = (_joints(i) + OFFSET_M).astype(np.float32)
        return HandMeshResult(vertices_m=self.verts.numpy(), joints_m=joints, faces=self.faces,
                              confidence=0.5 + 0.01 * i, handedness="right",
                              uv_left=np.zeros((len(self.verts), 2), np.float32),
                              roi_left=(0.0, 0.0, 64.0, 48.0))


QUIET = EvalConfig(progress=False)


def test_metrics_and_failures_without_output():
    report = evaluate(_Double(fail=(1, 3)), _samples(5), config=QUIET, model_name="double")
    m = report.metrics
    assert (m.n_frames, m.n_failed) == (5, 2)
    assert m.absolute.mean_mm == pytest.approx(5.0, rel=1e-5)  # failures excluded
    assert m.root_relative.mean_mm == pytest.approx(0.0, abs=1e-4)
    np.testing.assert_allclose(m.absolute.pck.pck, np.full(31, 3 / 5))  # failures = misses
    assert [f.success for f in report.frames] == [True, False, True, False, True]
    assert math.isnan(report.frames[1].absolute_mm)
    assert report.frames[2].absolute_mm == pytest.approx(5.0, rel=1e-5)
    assert report.frames[4].confidence == pytest.approx(0.54)
    assert report.files == () and report.model == "double"
    assert "5 frames, 2 failed" in report.summary_line()


def test_writes_json_and_pngs(tmp_path):
    cfg = EvalConfig(progress=False, n_overlays=1)
    report = evaluate(_Double(fail=(0,)), _samples(3), tmp_path / "out", cfg, data_name="tiny")
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == [METRICS_FILE, "overlay_00001.png", "pck.png", "per_joint.png"]
    for name in names[1:]:
        assert (tmp_path / "out" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((tmp_path / "out" / METRICS_FILE).read_text())
    assert data["data"] == "tiny"
    assert data["metrics"]["n_failed"] == 1
    assert data["metrics"]["absolute"]["mean_mm"] == pytest.approx(5.0, rel=1e-5)
    assert data["frames"][0] == {"index": 0, "source": "test/0", "success": False,
                                 "absolute_mm": None, "confidence": None,
                                 "time_s": data["frames"][0]["time_s"]}
    assert len(data["files"]) == 4 and len(report.files) == 4


def test_nan_prediction_is_a_failure():
    class NanDouble(_Double):
        def predict(self, left, right, camera, roi=None):
            r = super().predict(left, right, camera, roi)
            if int(left[0, 0, 0]) != 2:
                return r
            return HandMeshResult(r.vertices_m, np.full((21, 3), np.nan, np.float32), r.faces,
                                  r.confidence, r.handedness, r.uv_left, r.roi_left)

    report = evaluate(NanDouble(), _samples(3), config=QUIET)
    assert report.metrics.n_failed == 1 and not report.frames[2].success
    assert math.isnan(report.frames[2].confidence)
    assert report.metrics.absolute.mean_mm == pytest.approx(5.0, rel=1e-5)


def test_max_frames_and_iterables():
    double = _Double()
    cfg = EvalConfig(progress=False, max_frames=2)
    report = evaluate(double, iter(_samples(6)), config=cfg)
    assert report.metrics.n_frames == 2 and double.calls == 2


def test_validation():
    with pytest.raises(TypeError, match="HandMeshEstimator"):
        evaluate(object(), _samples(1), config=QUIET)
    with pytest.raises(ValueError, match="no samples"):
        evaluate(_Double(), [], config=QUIET)
    with pytest.raises(TypeError, match="StereoSample"):
        evaluate(_Double(), [{"left": None}], config=QUIET)
    unlabelled = _samples(1)[0]
    unlabelled.joints_m = None
    with pytest.raises(ValueError, match="has no joints_m"):
        evaluate(_Double(), [unlabelled], config=QUIET)

    class Bad:
        def predict(self, left, right, camera, roi=None):
            return {"joints_m": np.zeros((21, 3))}

    with pytest.raises(TypeError, match="HandMeshResult or None"):
        evaluate(Bad(), _samples(1), config=QUIET)

    class Short(_Double):
        def predict(self, left, right, camera, roi=None):
            r = super().predict(left, right, camera, roi)
            return HandMeshResult(r.vertices_m, r.joints_m[:20], r.faces, r.confidence,
                                  r.handedness, r.uv_left, r.roi_left)

    with pytest.raises(ValueError, match=r"\(21, 3\)"):
        evaluate(Short(), _samples(1), config=QUIET)
