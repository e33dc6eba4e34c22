"""The default backend's monocular (z-head) and supervised-oracle rows, for real, tiny.

A tiny untrained binocular network on the default hand model, six synthetic target_lab pairs
(index 4 is a left hand), two training steps: the numbers mean nothing, the wiring is tested.
"""
from __future__ import annotations

import csv
import dataclasses

import numpy as np
import pytest
import torch

import hand_mesh_core.train.adapt as adapt_module
import hand_mesh_core.train.pretrain as pretrain_module
from hand_mesh_core.eval.experiments import (Z_HEAD_START_NAME, ExperimentConfig,
                                             default_backend, run_table)
from hand_mesh_core.model.checkpoint import load_checkpoint, read_checkpoint_info, save_checkpoint
from hand_mesh_core.model.config import NetworkConfig
from hand_mesh_core.model.mirror import mirror_points
from hand_mesh_core.model.network import HandMeshNet
from hand_mesh_core.model.topology import HandTopology
from hand_mesh_core.pipeline import HandMeshPipeline

NET = NetworkConfig(input_size=32, stem_width=4, stage_widths=(4, 8), head_channels=4,
                    feature_dim=16)
CFG = ExperimentConfig(preset_name="tiny", n_source_train=1, n_target_train=6, n_target_test=2,
                       adapt_steps=2, batch_size=2, adapt_patience=1)
#: Label offset (m) of the perturbed copy of the target pairs.
LABEL_SHIFT_M = 0.03


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = HandMeshNet(NET, HandTopology.default()).eval()
    with torch.no_grad():  # a binocular network whose (u, v) is not just the template prior
        net.uv_head.weight.normal_(std=0.01, generator=torch.Generator().manual_seed(1))
    root = tmp_path_factory.mktemp("rows")
    ckpt = save_checkpoint(root / "pretrained.safetensors", net)
    backend = default_backend()
    data = list(backend.dataset(CFG.target_domain, "train", CFG.n_target_train, CFG.seed))
    assert [s.handedness for s in data] == ["right"] * 4 + ["left", "right"]
    shifted = [dataclasses.replace(s, joints_m=s.joints_m + LABEL_SHIFT_M,
                                   vertices_m=s.vertices_m + LABEL_SHIFT_M) for s in data]
    mono = backend.adapt(ckpt, data, "monocular", None, CFG, root / "a")
    yield backend, ckpt, data, shifted, mono, root
    torch.set_num_threads(n)


def _weights(path):
    model, info = load_checkpoint(path)
    return model.state_dict(), info


def _log(path):
    with open(path) as f:
        return list(csv.reader(f))


def test_monocular_row_converts_adapts_and_loads_monocular(setup):
    backend, ckpt, data, _, mono, root = setup
    run_dir = root / "a" / "adapt_monocular_all"
    start = run_dir / f"{Z_HEAD_START_NAME}.safetensors"
    # the converted start: every pretrained weight, a zero z-head
    pre, _ = _weights(ckpt)
    start_w, start_info = _weights(start)
    assert start_info.network == NET.replace(depth_mode="mono")
    assert start_info.extra["from_checkpoint"] == str(ckpt)
    for k, v in start_w.items():
        if k.startswith("z_head."):
            assert torch.count_nonzero(v) == 0
        else:
            torch.testing.assert_close(v, pre[k], rtol=0, atol=0)
    # the row's checkpoint: the adapted one, or the converted start when the guard refused
    assert mono in (start, run_dir / "adapted.safetensors")
    assert read_checkpoint_info(mono).network.depth_mode == "mono"
    assert (run_dir / "adapt_log.csv").is_file()
    est = backend.load(mono, "monocular", "cpu")
    assert isinstance(est, HandMeshPipeline) and est.monocular
    assert not backend.load(ckpt, "binocular", "cpu").monocular
    assert not backend.load(mono, "binocular", "cpu").monocular
    with pytest.raises(ValueError, match="monocular=True needs a z-head network"):
        backend.load(ckpt, "monocular", "cpu")


def test_monocular_row_never_reads_the_right_image(setup):
    backend, ckpt, data, _, mono, _ = setup
    sample = data[0]
    est = backend.load(mono, "monocular", "cpu")
    crop = est.crop_for(sample.left, sample.right, sample.camera)
    assert crop is not None
    real = est.predict_crop(sample.left, sample.right, sample.camera, crop)
    zeros = est.predict_crop(sample.left, np.zeros_like(sample.right), sample.camera, crop)
    np.testing.assert_array_equal(real.vertices_m, zeros.vertices_m)
    assert np.isnan(real.confidence)
    # the test can fail: the same z-head network run binocular reads the right crop
    bino = backend.load(mono, "binocular", "cpu")
    a = bino.predict_crop(sample.left, sample.right, sample.camera, crop)
    b = bino.predict_crop(sample.left, np.zeros_like(sample.right), sample.camera, crop)
    assert a.confidence != b.confidence


def test_monocular_guard_refusal_falls_back_to_the_converted_start(setup, monkeypatch, tmp_path):
    backend, ckpt, data, _, _, _ = setup
    real = adapt_module.adapt

    def refusing(config, *args, **kwargs):  # no run this short lowers the residual by 99 %
        return real(config.replace(min_improvement=0.99), *args, **kwargs)
    monkeypatch.setattr(adapt_module, "adapt", refusing)
    out = backend.adapt(ckpt, data[:3], "monocular", None, CFG, tmp_path)
    assert out == tmp_path / "adapt_monocular_all" / f"{Z_HEAD_START_NAME}.safetensors"
    assert read_checkpoint_info(out).network.depth_mode == "mono"
    # the binocular row falls back to the pretrained checkpoint itself
    assert backend.adapt(ckpt, data[:3], "binocular", None, CFG, tmp_path) == ckpt


def test_self_supervised_rows_ignore_target_labels(setup):
    backend, ckpt, _, shifted, mono, root = setup
    other = backend.adapt(ckpt, shifted, "monocular", None, CFG, root / "b")
    assert other.name == mono.name
    assert read_checkpoint_info(other).weights_sha256 == read_checkpoint_info(mono).weights_sha256
    log = "adapt_monocular_all/adapt_log.csv"
    assert _log(root / "b" / log) == _log(root / "a" / log)


def test_oracle_fine_tunes_on_mirrored_target_labels(setup, monkeypatch, tmp_path):
    backend, ckpt, data, shifted, _, _ = setup
    calls = []
    real = pretrain_module.pretrain

    def recording(config, samples, out_dir, *args, **kwargs):
        calls.append((config, [samples[i] for i in range(len(samples))], kwargs))
        return real(config, samples, out_dir, *args, **kwargs)
    monkeypatch.setattr(pretrain_module, "pretrain", recording)
    out = backend.adapt(ckpt, data, "supervised", None, CFG, tmp_path / "a")
    config, seen, kwargs = calls[0]
    assert config.steps == CFG.adapt_steps and config.batch_size == CFG.batch_size
    assert config.network == NET and config.warmup_steps == 0
    assert kwargs["init_weights"] == ckpt
    # left hands mirrored (labels too) into right hands; right hands as they are
    assert [s.handedness for s in seen] == ["right"] * 6
    b = data[4].camera.baseline_m
    np.testing.assert_allclose(seen[4].vertices_m, mirror_points(data[4].vertices_m, b))
    np.testing.assert_array_equal(seen[0].vertices_m, data[0].vertices_m)
    tuned, info = _weights(out)
    assert info.network == NET and info.extra["stage"] == "pretrain"
    pre, _ = _weights(ckpt)
    assert any(not torch.equal(tuned[k], pre[k]) for k in pre)
    # it learns from the labels: other labels, other weights
    other = backend.adapt(ckpt, shifted, "supervised", None, CFG, tmp_path / "b")
    assert read_checkpoint_info(other).weights_sha256 != info.weights_sha256


def test_adapt_validation(setup, tmp_path):
    backend, ckpt, data, _, _, _ = setup
    with pytest.raises(ValueError, match="drop_loss must be None for the supervised mode"):
        backend.adapt(ckpt, data, "supervised", "photo", CFG, tmp_path)
    with pytest.raises(ValueError, match=r"mode must be one of \['binocular', 'monocular', "
                                         r"'supervised'\], got 'none'"):
        backend.adapt(ckpt, data, "none", None, CFG, tmp_path)


def test_table1_monocular_and_oracle_rows_end_to_end(setup, tmp_path):
    _, ckpt, _, _, _, _ = setup
    cfg = CFG.replace(pretrained_checkpoint=str(ckpt),
                      rows=["self_supervised_monocular", "supervised_oracle"])
    result = run_table("table1", cfg, default_backend(), tmp_path, row_plots=False)
    assert [r.key for r in result.rows] == ["self_supervised_monocular", "supervised_oracle"]
    assert all(r.n_frames == 2 for r in result.rows)
    assert (tmp_path / "checkpoints" / "adapt_monocular_all" /
            f"{Z_HEAD_START_NAME}.safetensors").is_file()
    assert (tmp_path / "checkpoints" / "adapt_supervised" / "pretrained.safetensors").is_file()
    md = (tmp_path / "table1.md").read_text()
    assert "| Self-supervised, monocular (z-head) |" in md
    assert "| Supervised on target (oracle) |" in md
