"""Stage 1: supervised pretraining on labelled stereo pairs (the synthetic source domain).

Losses (:func:`supervised_losses`): L1 of vertex ``(u, v)`` in both crops and of vertex depth,
L1 of joint ``(u, v)`` (left crop) and depth, squared edge-length differences and the L1 of the
Laplacian-coordinate difference to the label mesh (uniform Laplacian of
:mod:`hand_mesh_core.geometry.mesh`). AdamW with linear warm-up and cosine decay, mixed precision
on CUDA, gradient clipping, resumable safetensors state, CSV log, tqdm, and DDP when launched by
``torchrun`` (nccl on GPU, gloo on CPU).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from hand_mesh_core.data.augment import (PhotometricParams, augment_stereo_photometric,
                                         sample_photometric_params)
from hand_mesh_core.geometry.mesh import uniform_laplacian, unique_edges
from hand_mesh_core.geometry.projection import project
from hand_mesh_core.model.checkpoint import load_checkpoint, save_checkpoint
from hand_mesh_core.model.network import HandMeshNet, HandNetOutput
from hand_mesh_core.model.topology import HandTopology
from hand_mesh_core.train.batch import CropJitter, CroppedDataset, TrainBatch, collate_cropped
from hand_mesh_core.train.common import (CsvLogger, cosine_lr, freeze_batchnorm,
                                         init_distributed,
                                         load_training_state, resolve_device,
                                         save_training_state, TRAIN_STATE_NAME)
from hand_mesh_core.train.config import PretrainConfig, PretrainLossWeights
from hand_mesh_core.train.crop_cache import CropCache, CropCacheDataset

__all__ = ["SupervisedLosses", "supervised_losses", "edge_length_loss", "photometric_batch",
           "laplacian_difference_loss", "PretrainResult", "pretrain", "pretrain_spawn_local",
           "FINAL_NAME", "LOCAL_ADDR"]

#: File stem of the final pretrained checkpoint in the output folder.
FINAL_NAME = "pretrained"
#: Rendezvous address of :func:`pretrain_spawn_local` (loopback only).
LOCAL_ADDR = "127.0.0.1"


@dataclass(frozen=True)
class SupervisedLosses:
    """Every supervised term (weighted) and the total, for logging."""

    vertex_uv: torch.Tensor
    vertex_depth: torch.Tensor
    joint_uv: torch.Tensor
    joint_depth: torch.Tensor
    edge: torch.Tensor
    laplacian: torch.Tensor
    total: torch.Tensor

    def scalars(self) -> dict[str, float]:
        """name -> float."""
        return {k: float(getattr(self, k).detach()) for k in
                ("total", "vertex_uv", "vertex_depth", "joint_uv", "joint_depth", "edge",
                 "laplacian")}


def edge_length_loss(vertices: torch.Tensor, target: torch.Tensor, edges: torch.Tensor
                     ) -> torch.Tensor:
    """Mean over the batch of ``sum_e (|e| - |e~|)^2`` (m^2); vertices/target (B, V, 3)."""
    def lengths(v: torch.Tensor) -> torch.Tensor:
        return (v[:, edges[:, 0]] - v[:, edges[:, 1]]).norm(dim=-1)
    return ((lengths(vertices) - lengths(target)) ** 2).sum(dim=1).mean()


def laplacian_difference_loss(vertices: torch.Tensor, target: torch.Tensor,
                              laplacian: torch.Tensor) -> torch.Tensor:
    """Mean L1 (m) between uniform Laplacian coordinates of two (B, V, 3) meshes."""
    b, v, _ = vertices.shape
    d = (vertices - target).permute(1, 0, 2).reshape(v, b * 3)
    return torch.sparse.mm(laplacian, d).abs().mean()


def supervised_losses(out: HandNetOutput, batch: TrainBatch, weights: PretrainLossWeights,
                      faces: torch.Tensor, input_size: int) -> SupervisedLosses:
    """The stage-1 loss of one batch.

    Args:
        out: network output on ``batch``.
        batch: labelled batch (``vertices_m`` required; ``joints_m`` optional: without it the
            label joints are regressed from the label vertices by the caller's network).
        weights: term weights.
        faces: (F, 3) int64 mesh faces.
        input_size: crop side, px (normalises the uv terms).

    Raises:
        ValueError: the batch has no vertex labels.
    """
    if batch.vertices_m is None:
        raise ValueError("supervised_losses needs vertex labels (batch.vertices_m is None)")
    gt = batch.vertices_m.to(out.vertices)
    K = batch.K.to(out.vertices)
    bl = batch.baseline_m.to(out.vertices)
    offset = torch.zeros_like(gt)
    offset[..., 0] = bl[:, None]
    gt_uv_l = batch.crops.to_crop(project(gt, K), "left")
    gt_uv_r = batch.crops.to_crop(project(gt - offset, K), "right")
    zero = out.vertices.new_zeros(())
    v_uv = ((out.uv_left_crop - gt_uv_l).abs().mean()
            + (out.uv_right_crop - gt_uv_r).abs().mean()) / (2 * input_size)
    v_z = (out.depth_m - gt[..., 2]).abs().mean()
    gt_j = batch.joints_m.to(gt) if batch.joints_m is not None else None
    j_uv = j_z = zero
    if gt_j is not None:
        j_uv = (batch.crops.to_crop(project(out.joints, K), "left")
                - batch.crops.to_crop(project(gt_j, K), "left")).abs().mean() / input_size
        j_z = (out.joints[..., 2] - gt_j[..., 2]).abs().mean()
    edge = lap = zero
    if weights.edge > 0:
        edges = unique_edges(faces).to(gt.device)
        edge = edge_length_loss(out.vertices, gt, edges)
    if weights.laplacian > 0:
        lap = laplacian_difference_loss(out.vertices, gt, uniform_laplacian(
            faces, gt.shape[1], dtype=gt.dtype, device=gt.device))
    terms = dict(vertex_uv=weights.vertex_uv * v_uv, vertex_depth=weights.vertex_depth * v_z,
                 joint_uv=weights.joint_uv * j_uv, joint_depth=weights.joint_depth * j_z,
                 edge=weights.edge * edge, laplacian=weights.laplacian * lap)
    return SupervisedLosses(**terms, total=sum(terms.values()))


@dataclass(frozen=True)
class PretrainResult:
    """Outcome of :func:`pretrain`.

    Attributes:
        checkpoint: the final checkpoint (rank 0), or None on other ranks.
        steps: steps done in total (including resumed ones).
        final_loss: mean total loss over the last logging window.
        first_loss: total loss of the first step run in this call.
        seconds: wall time of this call.
        model: the trained network (unwrapped from DDP).
    """

    checkpoint: Path | None
    steps: int
    final_loss: float
    first_loss: float
    seconds: float
    model: HandMeshNet


def _loader(dataset: Any, config: PretrainConfig, dist_info: Any, generator: torch.Generator
            ) -> torch.utils.data.DataLoader:
    sampler = None
    if dist_info.world_size > 1:
        sampler = torch.utils.data.distributed.DistributedSampler(
            dataset, num_replicas=dist_info.world_size, rank=dist_info.rank, shuffle=True,
            seed=config.seed, drop_last=True)
    return torch.utils.data.DataLoader(
        dataset, batch_size=config.batch_size, shuffle=sampler is None, sampler=sampler,
        num_workers=config.workers, collate_fn=collate_cropped, drop_last=len(dataset) >=
        config.batch_size * dist_info.world_size, generator=generator,
        persistent_workers=config.workers > 0)  # the datasets share their epoch with workers


def photometric_batch(left: torch.Tensor, right: torch.Tensor, config: PretrainConfig,
                      generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 crops (B, 3, S, S) -> float [0, 1] crops with the same colour jitter and blur on
    both views of each pair (parameters drawn on the CPU with ``generator``)."""
    params = sample_photometric_params(left.shape[0], config.augment, generator=generator)
    params = PhotometricParams(*(getattr(params, f.name).to(left.device)
                                 for f in fields(PhotometricParams)))
    return augment_stereo_photometric(left.float() / 255.0, right.float() / 255.0, params)


def pretrain(config: PretrainConfig, samples: Any, out_dir: str | Path,
             topology: HandTopology | None = None, *, resume: bool = False,
             training_data: str = "", progress: bool = True,
             init_weights: str | Path | None = None) -> PretrainResult:
    """Supervised pretraining.

    Args:
        config: settings.
        samples: indexable dataset of labelled :class:`~hand_mesh_core.data.types.StereoSample`
            (``vertices_m`` in the topology of ``topology``), or a
            :class:`~hand_mesh_core.train.crop_cache.CropCache` (crops cut from its context
            windows, same jitter).
        out_dir: folder for ``last.*`` (resumable), ``pretrained.safetensors`` and ``log.csv``.
        topology: hand model topology (default: the procedural hand model).
        resume: continue from ``out_dir/last.safetensors``.
        training_data: provenance text stored in the checkpoint.
        progress: show a tqdm bar (rank 0).
        init_weights: start from this checkpoint's weights (same network config; fresh
            optimiser and schedule; ignored when resuming).

    Returns:
        :class:`PretrainResult`.
    """
    from tqdm import tqdm

    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    device = resolve_device(config.device)
    dist_info = init_distributed(device)
    if device.type == "cuda" and dist_info.world_size > 1:
        device = torch.device("cuda", dist_info.local_rank)
        torch.cuda.set_device(device)
    torch.manual_seed(config.seed)
    if topology is None:
        topology = HandTopology.default()
    if len(samples) == 0:
        raise ValueError("pretrain needs at least one labelled sample")
    if config.max_time_s > 0 and dist_info.world_size > 1:
        raise ValueError("max_time_s must be 0 under DDP (ranks would stop at different steps)")

    def make_opt(m: torch.nn.Module) -> torch.optim.Optimizer:
        return torch.optim.AdamW(m.parameters(), lr=config.lr, weight_decay=config.weight_decay)

    start_step = 0
    if resume and (out_dir / f"{TRAIN_STATE_NAME}.safetensors").is_file():
        model, optimizer, start_step = load_training_state(out_dir, topology, make_opt, device)
        if model.config != config.network:
            raise ValueError("cannot resume: the network config differs from the saved one")
    else:
        model = HandMeshNet(config.network, topology).to(device)
        if init_weights is not None:
            init, _ = load_checkpoint(init_weights, topology, expected_config=config.network)
            model.load_state_dict(init.state_dict())
            model.train()
        optimizer = make_opt(model)
    model.train()
    if config.freeze_bn:
        freeze_batchnorm(model)
    net: torch.nn.Module = model
    if dist_info.world_size > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)

    def set_lr(step: int) -> bool:
        """Set the learning rate of ``step``; False once the time budget is spent."""
        progress = step
        if config.max_time_s > 0:
            frac = (time.perf_counter() - t_start) / config.max_time_s
            if frac >= 1.0:
                return False
            progress = max(step, int(frac * config.steps))
        for group in optimizer.param_groups:
            group["lr"] = config.lr * cosine_lr(progress, config.steps, config.warmup_steps,
                                                config.min_lr_frac)
        return True
    use_amp = config.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    jitter = CropJitter(config.jitter_center_frac, config.jitter_scale_frac,
                        config.jitter_shift_frac)
    dataset: Any
    if isinstance(samples, CropCache):
        dataset = CropCacheDataset(samples, config.network.input_size, config.margin_frac,
                                   jitter, seed=config.seed + dist_info.rank)
    else:
        dataset = CroppedDataset(samples, config.network.input_size,
                                 margin_frac=config.margin_frac, jitter=jitter,
                                 seed=config.seed + dist_info.rank)
    gen = torch.Generator().manual_seed(config.seed)
    aug_gen = torch.Generator().manual_seed(config.seed + 1 + dist_info.rank)
    loader = _loader(dataset, config, dist_info, gen)
    log = CsvLogger(out_dir / "log.csv", append=resume) if dist_info.is_main else None
    faces = model.faces
    bar = tqdm(total=config.steps, initial=start_step, desc="pretrain", unit="step",
               disable=not (progress and dist_info.is_main))
    step, epoch = start_step, 0
    window: list[float] = []
    first_loss = float("nan")
    out_of_time = False
    while step < config.steps and not out_of_time:
        dataset.set_epoch(epoch)
        if hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        for batch in loader:
            if step >= config.steps or not set_lr(step):
                out_of_time = step < config.steps
                break
            batch = batch.to(device)
            left, right = batch.left, batch.right
            if config.photometric:
                left, right = photometric_batch(left, right, config, aug_gen)
            with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
                out = net(left, right, batch.crops, batch.K, batch.baseline_m)
            losses = supervised_losses(out, batch, config.losses, faces,
                                       config.network.input_size)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(losses.total).backward()
            if config.grad_clip > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            step += 1
            value = float(losses.total.detach())
            if first_loss != first_loss:
                first_loss = value
            window.append(value)
            bar.update(1)
            if log is not None and (step % config.log_every == 0 or step == config.steps):
                log.log({"step": step, "lr": optimizer.param_groups[0]["lr"],
                         **losses.scalars(), "time_s": time.perf_counter() - t_start})
                bar.set_postfix(loss=f"{sum(window) / len(window):.4f}")
                window = window[-config.log_every:]
            if dist_info.is_main and (step % config.checkpoint_every == 0
                                      or step == config.steps):
                save_training_state(out_dir, model, optimizer, step,
                                    training_data=training_data,
                                    extra={"stage": "pretrain"})
        epoch += 1
    bar.close()
    if out_of_time and dist_info.is_main:
        save_training_state(out_dir, model, optimizer, step, training_data=training_data,
                            extra={"stage": "pretrain"})
    if dist_info.world_size > 1:
        # DDP keeps parameters in sync; batch-norm running statistics are only broadcast from
        # rank 0 at each forward, so align them once more after the last step.
        for buf in model.buffers():
            dist.broadcast(buf.data, src=0)
    final_loss = sum(window[-config.log_every:]) / max(len(window[-config.log_every:]), 1)
    ckpt = None
    if dist_info.is_main:
        ckpt = save_checkpoint(out_dir / f"{FINAL_NAME}.safetensors", model,
                               training_data=training_data,
                               metrics={"train_loss": final_loss},
                               extra={"stage": "pretrain", "steps": step,
                                      "world_size": dist_info.world_size,
                                      "pretrain_config": config.to_dict()})
    if dist_info.initialized_here:
        dist.barrier()
        dist.destroy_process_group()
    return PretrainResult(ckpt, step, final_loss, first_loss, time.perf_counter() - t_start,
                          model)


def _spawn_worker(rank: int, world_size: int, port: int, config: dict, samples: Any,
                  out_dir: str, topology: HandTopology | None, threads: int) -> None:
    import os

    from safetensors.torch import save_file

    os.environ.update(MASTER_ADDR=LOCAL_ADDR, MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    torch.set_num_threads(threads)
    res = pretrain(PretrainConfig.from_dict(config), samples, out_dir, topology, progress=False)
    save_file({k: v.detach().cpu().contiguous() for k, v in res.model.state_dict().items()},
              str(Path(out_dir) / f"rank{rank}_final.safetensors"))


def pretrain_spawn_local(config: PretrainConfig, samples: Any, out_dir: str | Path,
                         world_size: int = 2, topology: HandTopology | None = None,
                         threads_per_process: int = 1) -> list[Path]:
    """Run :func:`pretrain` as ``world_size`` DDP processes on this machine (CPU/gloo or one
    GPU each), rendezvous on 127.0.0.1 (a free port). For tests and single-node runs without
    torchrun.

    Returns:
        The final weights of every rank, ``out_dir/rank{r}_final.safetensors`` (rank 0 also
        writes the usual checkpoint).
    """
    import socket

    import torch.multiprocessing as mp

    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    with socket.socket() as sock:
        sock.bind((LOCAL_ADDR, 0))
        port = sock.getsockname()[1]
    mp.spawn(_spawn_worker, args=(world_size, port, config.to_dict(), samples, str(out_dir),
                                  topology, threads_per_process), nprocs=world_size, join=True)
    return [Path(out_dir) / f"rank{r}_final.safetensors" for r in range(world_size)]
