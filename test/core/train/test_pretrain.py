"""Stage-1 losses, schedule, resumable state, a tiny training run and DDP on 2 CPU processes."""
from __future__ import annotations

import csv
import math
import pytest
import torch

from hand_mesh_core.geometry.projection import project
from hand_mesh_core.model.network import HandMeshNet, HandNetOutput
from hand_mesh_core.train.batch import CropJitter, CroppedDataset, collate_cropped
from hand_mesh_core.train.common import cosine_lr, load_training_state, resolve_device
from hand_mesh_core.train.config import PretrainConfig, PretrainLossWeights
from hand_mesh_core.train.pretrain import (edge_length_loss, laplacian_difference_loss,
                                           pretrain, pretrain_spawn_local,
                                           supervised_losses)


def _exact_output(batch, topology) -> HandNetOutput:
    """What a perfect network would output for ``batch``."""
    gt = batch.vertices_m
    off = torch.zeros_like(gt)
    off[..., 0] = batch.baseline_m[:, None]
    uv_l, uv_r = project(gt, batch.K), project(gt - off, batch.K)
    joints = torch.einsum("jv,bvc->bjc", topology.joint_regressor, gt)
    return HandNetOutput(gt, joints, gt - off, batch.crops.to_crop(uv_l, "left"), uv_l,
                         batch.crops.to_crop(uv_r, "right"), uv_r, gt[..., 2], None)


def test_supervised_losses_zero_at_truth_and_grow(topology, samples_factory):
    ds = CroppedDataset(samples_factory(3, topology), 32)
    batch = collate_cropped([ds[i] for i in range(3)])
    exact = _exact_output(batch, topology)
    w = PretrainLossWeights()
    loss0 = supervised_losses(exact, batch, w, topology.faces, 32)
    assert float(loss0.total) < 1e-5
    prev = float(loss0.total)
    for mm in (1.0, 5.0, 20.0):
        shifted = exact.vertices + torch.randn(exact.vertices.shape,
                                               generator=torch.Generator().manual_seed(0)) * mm
        shifted = shifted * 1e-3 + exact.vertices * (1 - 1e-3)
        out = HandNetOutput(shifted, exact.joints, exact.vertices_right, exact.uv_left_crop,
                            exact.uv_left, exact.uv_right_crop, exact.uv_right,
                            shifted[..., 2], None)
        val = float(supervised_losses(out, batch, w, topology.faces, 32).total)
        assert val > prev
        prev = val
    with pytest.raises(ValueError, match="vertex labels"):
        nolabel = batch.__class__(**{**batch.__dict__, "vertices_m": None})
        supervised_losses(exact, nolabel, w, topology.faces, 32)


def test_edge_and_laplacian_match_naive(topology):
    from hand_mesh_core.geometry.mesh import uniform_laplacian, unique_edges, vertex_neighbors

    g = torch.Generator().manual_seed(1)
    a = torch.randn(2, topology.num_vertices, 3, generator=g, dtype=torch.float64)
    b = torch.randn(2, topology.num_vertices, 3, generator=g, dtype=torch.float64)
    edges = unique_edges(topology.faces)
    naive = 0.0
    for k in range(2):
        for i, j in edges.tolist():
            naive += (float((a[k, i] - a[k, j]).norm()) - float((b[k, i] - b[k, j]).norm())) ** 2
    assert float(edge_length_loss(a, b, edges)) == pytest.approx(naive / 2)
    nbrs = vertex_neighbors(topology.faces, topology.num_vertices)
    total = 0.0
    for k in range(2):
        d = a[k] - b[k]
        for i, nb in enumerate(nbrs):
            total += float((d[i] - d[nb].mean(0)).abs().sum())
    lap = uniform_laplacian(topology.faces, topology.num_vertices, dtype=torch.float64)
    assert float(laplacian_difference_loss(a, b, lap)) == pytest.approx(
        total / (2 * topology.num_vertices * 3))
    a.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: edge_length_loss(x, b, edges), (a,))


def test_cosine_schedule():
    assert cosine_lr(0, 100, 10, 0.1) == pytest.approx(0.1)
    assert cosine_lr(9, 100, 10, 0.1) == pytest.approx(1.0)
    assert cosine_lr(10, 100, 10, 0.1) == pytest.approx(1.0)
    assert cosine_lr(55, 100, 10, 0.1) == pytest.approx(0.1 + 0.9 * 0.5)
    assert cosine_lr(100, 100, 10, 0.1) == pytest.approx(0.1)
    assert cosine_lr(5, 10, 0, 0.0) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(ValueError, match="must be one of"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


def test_tiny_pretrain_lowers_loss_and_resumes(tmp_path, topology, samples_factory,
                                               tiny_network):
    samples = samples_factory(8, topology)
    cfg = PretrainConfig(network=tiny_network, steps=60, batch_size=4, lr=1e-2, warmup_steps=2,
                         jitter_center_frac=0.2, log_every=5, checkpoint_every=30, device="cpu")
    res = pretrain(cfg, samples, tmp_path, topology, progress=False, training_data="toy")
    assert res.steps == 60 and res.checkpoint.is_file()
    # On jittered (off-centre) crops of the training pairs, the (u, v) and 3D errors fall well
    # below those of the untrained network (the template prior).
    ds = CroppedDataset(samples, 32, jitter=CropJitter(0.2, 0.1, 0.05), seed=123)
    batch = collate_cropped([ds[i] for i in range(8)])
    gt = _exact_output(batch, topology)

    def errors(net: HandMeshNet) -> tuple[float, float]:
        with torch.no_grad():
            out = net.eval()(batch.left, batch.right, batch.crops, batch.K, batch.baseline_m)
        return (float((out.uv_left_crop - gt.uv_left_crop).norm(dim=-1).mean()),
                float((out.vertices - gt.vertices).norm(dim=-1).mean()))
    before, after = errors(HandMeshNet(tiny_network, topology)), errors(res.model)
    assert after[0] < 0.75 * before[0] and after[1] < 0.75 * before[1], (before, after)
    rows = list(csv.DictReader((tmp_path / "log.csv").open()))
    assert [int(r["step"]) for r in rows] == list(range(5, 61, 5))
    assert {"total", "vertex_uv", "edge", "lr"} <= set(rows[0])
    # Resume: continue from last.* (step 60) to 64 with the optimiser state.
    model, opt, step = load_training_state(
        tmp_path, topology, lambda m: torch.optim.AdamW(m.parameters()), torch.device("cpu"))
    assert step == 60 and len(opt.state) == len(list(model.parameters()))
    res2 = pretrain(cfg.replace(steps=64), samples, tmp_path, topology, resume=True,
                    progress=False)
    assert res2.steps == 64
    rows = list(csv.DictReader((tmp_path / "log.csv").open()))
    assert int(rows[-1]["step"]) == 64 and int(rows[0]["step"]) == 5


def test_ddp_two_cpu_processes_end_identical(tmp_path, topology, samples_factory,
                                             tiny_network):
    from safetensors.torch import load_file

    cfg = PretrainConfig(network=tiny_network, steps=2, batch_size=2, device="cpu",
                         warmup_steps=0)
    paths = pretrain_spawn_local(cfg, samples_factory(8, topology), tmp_path, 2, topology)
    a, b = load_file(str(paths[0])), load_file(str(paths[1]))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
    # The weights moved (two steps were taken) and rank 0 wrote the checkpoint.
    fresh = HandMeshNet(tiny_network, topology).state_dict()
    assert not torch.equal(fresh["uv_head.weight"], a["uv_head.weight"])
    assert (tmp_path / "pretrained.safetensors").is_file()
    with pytest.raises(ValueError, match="world_size must be >= 1"):
        pretrain_spawn_local(cfg, [], tmp_path, 0, topology)
