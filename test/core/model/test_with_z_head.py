"""with_z_head: a binocular network turned into the z-head (monocular) variant, weights kept."""
from __future__ import annotations

import pytest
import torch

from hand_mesh_core.model.checkpoint import load_checkpoint, save_checkpoint
from hand_mesh_core.model.decode import CropBatch
from hand_mesh_core.model.network import HandMeshNet, with_z_head


def _trained_like(config, topology) -> HandMeshNet:
    """A stereo network with non-trivial weights everywhere (random backbone, random uv head,
    batch-norm statistics moved off their defaults)."""
    torch.manual_seed(0)
    net = HandMeshNet(config, topology)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        net.uv_head.weight.copy_(torch.randn(net.uv_head.weight.shape, generator=g) * 0.05)
        net.uv_head.bias.copy_(torch.randn(net.uv_head.bias.shape, generator=g) * 0.05)
    net.train()
    x = torch.randint(0, 256, (4, 3, config.input_size, config.input_size), generator=g,
                      dtype=torch.uint8)
    with torch.no_grad():
        net.branch(x)  # updates the running statistics
    return net.eval()


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(5)
    return (torch.randint(0, 256, (2, 3, 32, 32), generator=g, dtype=torch.uint8),
            torch.randint(0, 256, (2, 3, 32, 32), generator=g, dtype=torch.uint8))


def test_converted_network_keeps_uv_and_starts_at_the_depth_prior(tiny_config, topology,
                                                                  crops_factory, camera, images):
    net = _trained_like(tiny_config, topology)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    mono = with_z_head(net)
    assert mono is not net and mono.config == tiny_config.replace(depth_mode="mono")
    assert not mono.training
    # the original is untouched and shares no tensor with the copy
    assert net.z_head is None and net.config.depth_mode == "stereo"
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
        assert v.data_ptr() != mono.state_dict()[k].data_ptr()
    # every shared weight kept, z-head zero
    for k, v in mono.state_dict().items():
        if k.startswith("z_head."):
            assert torch.count_nonzero(v) == 0
        else:
            torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    crops = crops_factory(2, 32)
    cb = CropBatch.from_crops(crops)
    K = camera.K_tensor()
    ref = net(*images, cb, K, camera.baseline_m)
    out = mono(*images, cb, K, camera.baseline_m)
    for name in ("uv_left_crop", "uv_right_crop", "uv_left", "uv_right"):
        torch.testing.assert_close(getattr(out, name), getattr(ref, name), rtol=0, atol=1e-5)
    # depth: the z-head prior ref * fx / window_px (the stereo net triangulates instead)
    for i, c in enumerate(crops):
        prior = tiny_config.mono_depth_ref_m * camera.fx / c.left.width
        torch.testing.assert_close(out.depth_m[i], torch.full_like(out.depth_m[i], prior))
        assert (ref.depth_m[i] - prior).abs().max() > 1e-3  # the test can fail
    one = mono.forward_mono(images[0], cb, K)
    torch.testing.assert_close(one.uv_left_crop, ref.uv_left_crop, rtol=0, atol=1e-5)
    torch.testing.assert_close(one.vertices, out.vertices)


def test_converted_network_is_a_loadable_mono_checkpoint(tiny_config, topology, crops_factory,
                                                         camera, images, tmp_path):
    mono = with_z_head(_trained_like(tiny_config, topology))
    fresh = HandMeshNet(tiny_config.replace(depth_mode="mono"), topology)
    assert [(k, v.shape, v.dtype) for k, v in mono.state_dict().items()] == \
        [(k, v.shape, v.dtype) for k, v in fresh.state_dict().items()]
    path = save_checkpoint(tmp_path / "m.safetensors", mono)
    loaded, info = load_checkpoint(path, topology)
    assert info.network.depth_mode == "mono" and loaded.z_head is not None
    cb = CropBatch.from_crops(crops_factory(2, 32))
    torch.testing.assert_close(loaded.forward_mono(images[0], cb, camera.K_tensor()).vertices,
                               mono.forward_mono(images[0], cb, camera.K_tensor()).vertices)


def test_z_head_is_trainable_and_mode_kept(tiny_config, topology, crops_factory, camera, images):
    net = HandMeshNet(tiny_config, topology).train()
    mono = with_z_head(net)
    assert mono.training and mono.z_head.training
    assert all(p.requires_grad for p in mono.parameters())
    names = {n for n, _ in mono.named_parameters()}
    assert {"z_head.weight", "z_head.bias"} <= names
    out = mono(*images, CropBatch.from_crops(crops_factory(2, 32)), camera.K_tensor(),
               camera.baseline_m)
    (out.vertices[..., 2].sum() + out.vertices_right[..., 2].sum()).backward()
    assert mono.z_head.weight.grad.abs().sum() > 0 and mono.z_head.bias.grad.abs().sum() > 0


def test_float64_network_stays_float64(tiny_config, topology):
    mono = with_z_head(HandMeshNet(tiny_config, topology).double())
    assert mono.z_head.weight.dtype == torch.float64


def test_validation(tiny_config, topology):
    with pytest.raises(ValueError, match="needs a depth_mode='stereo' network; this one has "
                                         "depth_mode='mono'"):
        with_z_head(HandMeshNet(tiny_config.replace(depth_mode="mono"), topology))
    with pytest.raises(ValueError, match="already has a z-head"):
        with_z_head(with_z_head(HandMeshNet(tiny_config, topology)))
    with pytest.raises(TypeError, match="model must be a HandMeshNet, got Linear"):
        with_z_head(torch.nn.Linear(2, 2))
