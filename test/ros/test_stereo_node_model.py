"""HandMeshNode wired to the real pipeline: checkpoint loading, handedness, input size checks.

A tiny randomly initialised HandMeshNet on the shipped procedural hand topology is saved as a
checkpoint, so these tests exercise ``hand_mesh_core.pipeline.load_estimator`` for real without
needing the trained default model (accuracy is tested in ``test_e2e.py``).
"""
from __future__ import annotations

import pytest
import torch

rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from hand_mesh_core.model.checkpoint import save_checkpoint  # noqa: E402
from hand_mesh_core.model.config import NetworkConfig  # noqa: E402
from hand_mesh_core.model.network import HandMeshNet  # noqa: E402
from hand_mesh_core.model.topology import HandTopology  # noqa: E402
from hand_mesh_core.pipeline import HandMeshPipeline  # noqa: E402
from hand_mesh_ros.config import AUTO_HANDEDNESS, StereoNodeConfig  # noqa: E402
from hand_mesh_ros.stereo_node import (HandMeshNode, checkpoint_input_size,  # noqa: E402
                                       load_model, resolve_handedness,
                                       set_cpu_threads)

#: Input side of the tiny test network, px (any value the backbone accepts).
TINY_INPUT_PX = 32


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    cfg = NetworkConfig(input_size=TINY_INPUT_PX, stem_width=4, stage_widths=(4, 8),
                        head_channels=4, feature_dim=16)
    net = HandMeshNet(cfg, HandTopology.default())
    return str(save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.safetensors", net,
                               training_data="ros unit test"))


def test_resolve_handedness():
    assert resolve_handedness("left") == "left"
    assert resolve_handedness("right") == "right"
    assert resolve_handedness("auto") == AUTO_HANDEDNESS == "right"
    with pytest.raises(ValueError, match=r"\['left', 'right', 'auto'\]"):
        resolve_handedness("both")


def test_checkpoint_input_size_of_other_estimators():
    class NoModel:
        pass

    class BadSize:
        class model:  # noqa: N801 - mimics estimator.model.config
            class config:  # noqa: N801
                input_size = True

    assert checkpoint_input_size(NoModel()) is None
    assert checkpoint_input_size(BadSize()) is None
    assert checkpoint_input_size(None) is None


@pytest.mark.parametrize("handedness, expect", [("auto", "right"), ("left", "left"),
                                                ("right", "right")])
def test_load_model_handedness_and_input_size_from_checkpoint(tiny_ckpt, handedness, expect):
    est = load_model(tiny_ckpt, "cpu", handedness)
    assert isinstance(est, HandMeshPipeline)
    assert est.handedness == expect
    assert checkpoint_input_size(est) == TINY_INPUT_PX
    assert load_model(tiny_ckpt, "cpu", handedness, TINY_INPUT_PX).handedness == expect


def test_left_hand_faces_are_the_right_hand_faces_reversed(tiny_ckpt):
    right = load_model(tiny_ckpt, "cpu", "right")
    left = load_model(tiny_ckpt, "cpu", "left")
    assert (left.faces == right.faces[:, ::-1]).all()


def test_load_model_refusals(tiny_ckpt, tmp_path):
    with pytest.raises(ValueError, match=f"trained at {TINY_INPUT_PX} px"):
        load_model(tiny_ckpt, "cpu", "auto", 2 * TINY_INPUT_PX)
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="input_size must be an int >= 0"):
            load_model(tiny_ckpt, "cpu", "auto", bad)
    with pytest.raises(ValueError, match="handedness must be one of"):
        load_model(tiny_ckpt, "cpu", "both")
    with pytest.raises(ValueError, match="cannot load model"):
        load_model(str(tmp_path / "missing.safetensors"), "cpu")
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot load model"):
        load_model(str(broken), "cpu")


def test_default_config_takes_the_input_size_from_the_checkpoint():
    assert StereoNodeConfig().input_size == 0
    assert StereoNodeConfig().handedness == "auto"


def _node(ctx, **params):
    return HandMeshNode(context=ctx, parameter_overrides=[
        Parameter(k, value=v) for k, v in {"image_qos": "reliable", **params}.items()])


def test_node_loads_the_checkpoint_at_start_up(ros_context, tiny_ckpt):
    n = _node(ros_context, model_path=tiny_ckpt, handedness="left")
    try:
        assert isinstance(n._estimator, HandMeshPipeline) and n._estimator.handedness == "left"
        values = {kv.key: kv.value for kv in n.diagnostic_status().values}
        assert values["model_loaded"] == "true" and values["handedness"] == "left"
        assert values["model_input_size_px"] == str(TINY_INPUT_PX)
        # runtime changes: a wrong input size is refused, the model stays
        res = n.set_parameters([Parameter("input_size", value=2 * TINY_INPUT_PX)])[0]
        assert not res.successful and f"trained at {TINY_INPUT_PX} px" in res.reason
        assert n.config.input_size == 0
        old = n._estimator
        assert n.set_parameters([Parameter("handedness", value="right")])[0].successful
        assert n._estimator is not old and n._estimator.handedness == "right"
        assert n.set_parameters([Parameter("input_size", value=TINY_INPUT_PX)])[0].successful
        ok, text = n.reload_model()
        assert ok and tiny_ckpt in text
        res = n.set_parameters([Parameter("model_path", value="/nonexistent.safetensors")])[0]
        assert not res.successful and "cannot load model" in res.reason
        assert n.config.model_path == tiny_ckpt
    finally:
        n.destroy_node()


def test_node_with_mismatched_input_size_reports_an_error(ros_context, tiny_ckpt):
    n = _node(ros_context, model_path=tiny_ckpt, input_size=2 * TINY_INPUT_PX)
    try:
        assert n._estimator is None
        st = n.diagnostic_status()
        assert st.level == DiagnosticStatus.ERROR
        assert f"trained at {TINY_INPUT_PX} px" in st.message
        values = {kv.key: kv.value for kv in st.values}
        assert values["model_loaded"] == "false"
    finally:
        n.destroy_node()


def test_set_cpu_threads():
    import cv2

    before = (torch.get_num_threads(), cv2.getNumThreads())
    try:
        set_cpu_threads(1)
        assert torch.get_num_threads() == 1 and cv2.getNumThreads() == 1
        set_cpu_threads(0)  # keeps the current values
        assert torch.get_num_threads() == 1 and cv2.getNumThreads() == 1
        for bad in (-1, 1.0, True):
            with pytest.raises(ValueError, match="threads must be an int >= 0"):
                set_cpu_threads(bad)
    finally:
        torch.set_num_threads(before[0])
        cv2.setNumThreads(before[1])


def test_cpu_threads_is_a_start_up_setting(ros_context, tiny_ckpt):
    n = _node(ros_context, model_path=tiny_ckpt, cpu_threads=0)
    try:
        res = n.set_parameters([Parameter("cpu_threads", value=2)])[0]
        assert not res.successful and "start-up" in res.reason
    finally:
        n.destroy_node()


def test_pipeline_find_roi_tracks_and_falls_back(tiny_ckpt):
    """HandMeshPipeline.find_roi/crop_for, the calls the node's tracking makes (ROI only: the
    tiny network's output is not used)."""
    import numpy as np

    from hand_mesh_core.data.roi import find_hand_roi, quick_hand_roi, track_hand_roi
    from hand_mesh_core.geometry.camera import StereoCamera
    from hand_mesh_core.pipeline import ROI_FALLBACKS, load_estimator
    from hand_mesh_core.train.batch import roi_stereo_crop

    cam = StereoCamera(fx=400.0, fy=400.0, cx=319.5, cy=119.5, baseline_m=0.1, width=640,
                       height=240)
    left = np.full((240, 640, 3), 20, np.uint8)
    right = left.copy()
    left[60:180, 400:480] = (224, 172, 140)    # a 0.15 m block at d = 80 px (0.5 m)
    right[60:180, 320:400] = (224, 172, 140)
    est = load_estimator(tiny_ckpt, "cpu", "right")
    here = (395.0, 55.0, 90.0, 130.0)
    away = (20.0, 40.0, 60.0, 60.0)            # a window without the hand
    tracked = est.find_roi(left, right, cam, prior=here, prior_disparity_px=80.0)
    assert tracked.source == "track"
    assert tracked == track_hand_roi(left, right, cam, here, prior_disparity_px=80.0)
    assert est.find_roi(left, right, cam, prior=away).source == "skin"       # "full"
    assert est.find_roi(left, right, cam, prior=away) == find_hand_roi(left, right, cam,
                                                                       prior=away)
    assert est.find_roi(left, right, cam, prior=away, fallback="quick") == \
        quick_hand_roi(left, right, cam)
    assert est.find_roi(left, right, cam, fallback="quick").source == "quick"
    assert est.find_roi(left, right, cam, prior=away, fallback="none") is None
    assert est.find_roi(left, right, cam, roi=away, prior=here).source == "external"
    crop = est.crop_for(left, right, cam, prior=here, prior_disparity_px=80.0)
    assert crop == roi_stereo_crop(tracked.left, tracked.disparity_px, TINY_INPUT_PX)
    assert crop.shift_px == pytest.approx(80.0, abs=1.0)
    assert set(ROI_FALLBACKS) == {"full", "quick", "none"}
    with pytest.raises(ValueError, match="fallback must be one of"):
        est.find_roi(left, right, cam, fallback="fast")


def test_loading_warms_the_model_up(ros_context, tiny_ckpt, monkeypatch):
    calls = []
    real = HandMeshPipeline.predict_crop

    def counting(self, left, right, camera, crop):
        calls.append((left.shape, crop.left.out_width))
        return real(self, left, right, camera, crop)

    monkeypatch.setattr(HandMeshPipeline, "predict_crop", counting)
    n = _node(ros_context, model_path=tiny_ckpt)
    try:   # one blank pair through the network at load, at the checkpoint's input size
        assert len(calls) == 1 and calls[0][1] == TINY_INPUT_PX
        ok, _ = n.reload_model()
        assert ok and len(calls) == 2   # a reload warms the new model up too
    finally:
        n.destroy_node()
    # a failing warm-up is only a warning: the model is still loaded
    monkeypatch.setattr(HandMeshPipeline, "predict_crop",
                        lambda *a: (_ for _ in ()).throw(RuntimeError("boom")))
    n = _node(ros_context, model_path=tiny_ckpt)
    try:
        assert isinstance(n._estimator, HandMeshPipeline) and not n.model_error
    finally:
        n.destroy_node()
