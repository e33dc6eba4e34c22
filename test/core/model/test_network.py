"""Shapes, template prior, weight sharing, z-head, joints and input validation of HandMeshNet."""
from __future__ import annotations

import pytest
import torch

from hand_mesh_core.config.base import ConfigError
from hand_mesh_core.model.backbone import normalize_images
from hand_mesh_core.model.config import NetworkConfig
from hand_mesh_core.model.decode import CropBatch
from hand_mesh_core.model.network import HandMeshNet, template_uv_prior


def _perturb(net: HandMeshNet) -> HandMeshNet:
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for head in (net.uv_head, net.z_head):
            if head is not None:
                head.weight.copy_(torch.randn(head.weight.shape, generator=g) * 0.05)
                head.bias.copy_(torch.randn(head.bias.shape, generator=g) * 0.05)
    return net.eval()


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(5)
    return (torch.randint(0, 256, (2, 3, 32, 32), generator=g, dtype=torch.uint8),
            torch.randint(0, 256, (2, 3, 32, 32), generator=g, dtype=torch.uint8))


@pytest.mark.parametrize("mode", ["stereo", "mono"])
def test_output_shapes(mode, tiny_config, topology, crops_factory, camera, images):
    net = HandMeshNet(tiny_config.replace(depth_mode=mode), topology).eval()
    cb = CropBatch.from_crops(crops_factory(2, 32))
    out = net(*images, cb, camera.K_tensor(), camera.baseline_m)
    v = topology.num_vertices
    assert out.vertices.shape == (2, v, 3) and out.vertices_right.shape == (2, v, 3)
    assert out.joints.shape == (2, 21, 3)
    for t in (out.uv_left_crop, out.uv_left, out.uv_right_crop, out.uv_right):
        assert t.shape == (2, v, 2)
    assert out.depth_m.shape == (2, v)
    assert out.confidence.shape == (2,)
    assert torch.all((out.confidence > 0) & (out.confidence < 1))
    assert torch.isfinite(out.vertices).all()


def test_untrained_network_outputs_template_prior(tiny_config, topology, crops_factory, camera,
                                                  images):
    net = HandMeshNet(tiny_config, topology).eval()
    out = net(*images, CropBatch.from_crops(crops_factory(2, 32)), camera.K_tensor(),
              camera.baseline_m)
    prior = template_uv_prior(topology.template_vertices, 32, tiny_config.template_fill)
    torch.testing.assert_close(out.uv_left_crop, prior.expand(2, -1, -1))
    # Template prior: centred, larger side = fill * size.
    extent = prior.max(0).values - prior.min(0).values
    assert float(extent.max()) == pytest.approx(tiny_config.template_fill * 32, rel=1e-5)
    centre = (prior.max(0).values + prior.min(0).values) / 2
    torch.testing.assert_close(centre, torch.full((2,), 15.5))


def test_branches_share_weights(tiny_config, topology, crops_factory, camera, images):
    net = _perturb(HandMeshNet(tiny_config, topology))
    cb = CropBatch.from_crops(crops_factory(2, 32))
    a = net(images[0], images[1], cb, camera.K_tensor(), camera.baseline_m)
    b = net(images[1], images[0], cb, camera.K_tensor(), camera.baseline_m)
    torch.testing.assert_close(a.uv_left_crop, b.uv_right_crop)
    torch.testing.assert_close(a.uv_right_crop, b.uv_left_crop)
    torch.testing.assert_close(a.uv_left_crop, net.branch(images[0]).uv_crop)


def test_joints_are_regressed_from_vertices(tiny_config, topology, crops_factory, camera, images):
    net = _perturb(HandMeshNet(tiny_config, topology))
    out = net(*images, CropBatch.from_crops(crops_factory(2, 32)), camera.K_tensor(),
              camera.baseline_m)
    reg = topology.joint_regressor
    for b in range(2):
        for j in range(21):
            expected = sum(reg[j, v] * out.vertices[b, v] for v in range(topology.num_vertices))
            torch.testing.assert_close(out.joints[b, j], expected, atol=1e-6, rtol=1e-5)


def test_batch_equals_loop(tiny_config, topology, crops_factory, camera, images):
    net = _perturb(HandMeshNet(tiny_config.replace(depth_mode="mono"), topology))
    crops = crops_factory(2, 32)
    out = net(*images, CropBatch.from_crops(crops), camera.K_tensor(), camera.baseline_m)
    for i in range(2):
        one = net(images[0][i:i + 1], images[1][i:i + 1], CropBatch.from_crops(crops[i:i + 1]),
                  camera.K_tensor(), camera.baseline_m)
        torch.testing.assert_close(one.vertices[0], out.vertices[i], atol=1e-5, rtol=1e-5)


def test_mono_depth_follows_window_size(tiny_config, topology, crops_factory, camera, images):
    net = HandMeshNet(tiny_config.replace(depth_mode="mono"), topology).eval()
    crops = crops_factory(2, 32)
    cb = CropBatch.from_crops(crops)
    out = net.forward_mono(images[0], cb, camera.K_tensor())
    assert out.vertices_right is None and out.confidence is None
    # Untrained z-head: z = ref * fx / window_px for every vertex.
    for i, c in enumerate(crops):
        expected = tiny_config.mono_depth_ref_m * camera.fx / c.left.width
        torch.testing.assert_close(out.depth_m[i], torch.full((topology.num_vertices,),
                                                              expected))
    torch.testing.assert_close(out.vertices[..., 2], out.depth_m)
    # The binocular pass of the z-head model gives the same left mesh.
    both = net(*images, cb, camera.K_tensor(), camera.baseline_m)
    torch.testing.assert_close(both.vertices, out.vertices)


def test_confidence_prefers_consistent_predictions(tiny_config, topology, crops_factory, camera,
                                                   images):
    net = HandMeshNet(tiny_config, topology).eval()
    cb = CropBatch.from_crops(crops_factory(2, 32))
    same = net(images[0], images[0], cb, camera.K_tensor(), camera.baseline_m)
    diff = net(images[0], 255 - images[0], cb, camera.K_tensor(), camera.baseline_m)
    assert torch.all(same.confidence > diff.confidence)


def test_validation(tiny_config, topology, crops_factory, camera, images):
    net = HandMeshNet(tiny_config, topology)
    cb = CropBatch.from_crops(crops_factory(2, 32))
    K = camera.K_tensor()
    with pytest.raises(ValueError, match=r"left must have shape \(B, 3, 32, 32\)"):
        net(torch.zeros(2, 3, 16, 16), images[1], cb, K, 0.1)
    with pytest.raises(ValueError, match="expected 2"):
        net(images[0][:1], images[1][:1], cb, K, 0.1)
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        net(images[0].numpy(), images[1], cb, K, 0.1)
    with pytest.raises(ValueError, match="depth_mode='mono'"):
        net.forward_mono(images[0], cb, K)
    with pytest.raises(TypeError, match="NetworkConfig"):
        HandMeshNet({"input_size": 32}, topology)
    with pytest.raises(TypeError, match="HandTopology"):
        HandMeshNet(tiny_config, None)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        normalize_images(torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match="backbone input must be 32x32"):
        net.backbone(torch.zeros(1, 3, 16, 16))


def test_config_validation():
    with pytest.raises(ConfigError, match="must be one of"):
        NetworkConfig(depth_mode="lidar")
    with pytest.raises(ConfigError, match="at least one stage"):
        NetworkConfig(stage_widths=())
    with pytest.raises(ConfigError, match="must be >= 32"):
        NetworkConfig(input_size=8)
    cfg = NetworkConfig(stage_widths=(8, 16))
    assert NetworkConfig.from_dict(cfg.to_dict()) == cfg


def test_topology_validation(topology):
    from hand_mesh_core.model.topology import HandTopology

    t = topology
    with pytest.raises(ValueError, match=r"template_vertices must be \(V, 3\)"):
        HandTopology(t.faces, t.joint_regressor, t.template_vertices[:, :2], "h")
    with pytest.raises(ValueError, match="joint_regressor must be"):
        HandTopology(t.faces, t.joint_regressor[:20], t.template_vertices, "h")
    with pytest.raises(ValueError, match="int64"):
        HandTopology(t.faces.int(), t.joint_regressor, t.template_vertices, "h")
    with pytest.raises(ValueError, match="faces index outside"):
        HandTopology(t.faces + 100, t.joint_regressor, t.template_vertices, "h")
    with pytest.raises(TypeError, match="topology_hash"):
        HandTopology(t.faces, t.joint_regressor, t.template_vertices, "")
    with pytest.raises(ValueError, match="zero extent"):
        template_uv_prior(torch.zeros(5, 3), 32, 0.5)
