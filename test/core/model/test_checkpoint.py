"""Checkpoint round trip and every refusal branch."""
from __future__ import annotations

import json

import pytest
import torch

from hand_mesh_core.model.checkpoint import (PICKLE_SUFFIXES, CheckpointError, load_checkpoint,
                                             read_checkpoint_info, save_checkpoint, sidecar_path)
from hand_mesh_core.model.network import HandMeshNet


@pytest.fixture
def saved(tmp_path, tiny_config, topology):
    net = HandMeshNet(tiny_config, topology)
    with torch.no_grad():
        net.uv_head.bias.normal_()
    path = save_checkpoint(tmp_path / "net.safetensors", net, training_data="unit test",
                           metrics={"mpjpe_mm": 12.5}, extra={"step": 3})
    return path, net


def test_roundtrip(saved, topology, tiny_config):
    path, net = saved
    loaded, info = load_checkpoint(path, topology, expected_config=tiny_config)
    for k, v in net.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[k], v)
    assert info.metrics == {"mpjpe_mm": 12.5} and info.extra == {"step": 3}
    assert info.training_data == "unit test" and info.topology_hash == topology.topology_hash
    assert not loaded.training
    assert read_checkpoint_info(path).network == tiny_config
    assert not list(path.parent.glob("*.tmp"))


@pytest.mark.parametrize("suffix", PICKLE_SUFFIXES)
def test_pickle_refused(tmp_path, topology, suffix):
    p = tmp_path / f"model{suffix}"
    p.write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(CheckpointError, match="pickle checkpoints .* are refused"):
        load_checkpoint(p, topology)


def test_pickle_refused_on_save(tmp_path, tiny_config, topology):
    with pytest.raises(CheckpointError, match="refused"):
        save_checkpoint(tmp_path / "x.pt", HandMeshNet(tiny_config, topology))
    with pytest.raises(TypeError, match="HandMeshNet"):
        save_checkpoint(tmp_path / "x.safetensors", torch.nn.Linear(2, 2))


def test_unknown_suffix(tmp_path, topology):
    with pytest.raises(CheckpointError, match="expected a .safetensors file"):
        load_checkpoint(tmp_path / "model.onnx", topology)


def test_missing_files(saved, topology, tmp_path):
    path, _ = saved
    with pytest.raises(FileNotFoundError, match="not found"):
        load_checkpoint(tmp_path / "nope.safetensors", topology)
    sidecar_path(path).unlink()
    with pytest.raises(FileNotFoundError, match="net.json"):
        load_checkpoint(path, topology)


def _edit_sidecar(path, fn):
    side = sidecar_path(path)
    meta = json.loads(side.read_text())
    side.write_text(json.dumps(fn(meta)) if callable(fn) else fn)


@pytest.mark.parametrize("edit,match", [
    ("{not json", "not valid JSON"),
    (lambda m: {**m, "format": "other"}, "not a hand_mesh checkpoint"),
    (lambda m: {**m, "format_version": 99}, "format_version 99"),
    (lambda m: {k: v for k, v in m.items() if k != "topology_hash"}, "missing keys"),
    (lambda m: {**m, "network": {**m["network"], "depth_mode": "lidar"}},
     "invalid network config"),
    (lambda m: {**m, "network": {**m["network"], "feature_dim": 17}}, "tensor shapes"),
])
def test_bad_sidecar(saved, topology, edit, match):
    path, _ = saved
    _edit_sidecar(path, edit)
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(path, topology)


def test_modified_weights_are_corrupt(saved, topology):
    path, _ = saved
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt weights file"):
        load_checkpoint(path, topology)


def test_truncated_file_with_matching_hash_is_corrupt(saved, topology):
    import hashlib

    path, _ = saved
    path.write_bytes(path.read_bytes()[:100])
    _edit_sidecar(path, lambda m: {**m, "weights_sha256":
                                   hashlib.sha256(path.read_bytes()).hexdigest()})
    with pytest.raises(CheckpointError, match="corrupt safetensors file"):
        load_checkpoint(path, topology)


def test_topology_mismatch(saved, topology_factory):
    path, _ = saved
    with pytest.raises(CheckpointError, match="different hand model topology"):
        load_checkpoint(path, topology_factory(30, seed=1, tag="other"))


def test_config_mismatch(saved, topology, tiny_config):
    path, _ = saved
    with pytest.raises(CheckpointError, match=r"feature_dim.*\(16, 32\)"):
        load_checkpoint(path, topology, expected_config=tiny_config.replace(feature_dim=32))


def test_tensor_name_mismatch(saved, topology):
    from safetensors.torch import load_file, save_file

    path, _ = saved
    state = load_file(str(path))
    state["extra.weight"] = torch.zeros(1)
    save_file(state, str(path))
    import hashlib
    _edit_sidecar(path, lambda m: {**m, "weights_sha256":
                                   hashlib.sha256(path.read_bytes()).hexdigest()})
    with pytest.raises(CheckpointError, match=r"unexpected \['extra.weight'\]"):
        load_checkpoint(path, topology)
