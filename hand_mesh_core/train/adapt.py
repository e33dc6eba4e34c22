"""Stage 2: self-supervised adaptation on unlabelled target stereo pairs (Chen et al., ICCV 2021).

Starting from a pretrained network, each step renders the left-branch mesh into the left crop and
the right-branch mesh (right optical frame) into the right crop with the differentiable renderer
(:mod:`hand_mesh_core.render`), and minimises the six self-supervised terms of
:mod:`hand_mesh_core.losses.total`: photo-consistency inside the skin mask, edge lengths against
the pseudo label of a FROZEN copy of the pretrained network, Laplacian smoothness, silhouette
vs skin mask, and the left-right Chamfer and normal terms.

Batch norm (``AdaptConfig.batchnorm``, default "target"): before any gradient step the
network's batch-norm statistics are re-estimated on the unlabelled target training pairs (AdaBN,
Li et al., Pattern Recognition 2018) and then kept fixed; the source statistics are a large part
of the gap (on 16 ``target_lab`` test pairs, label crops, this step alone took the shipped
checkpoint from 123 to 97 mm; see docs/results.md).

Guard: some pairs are held out; their photometric residual (the photo term alone, lower is
better) is measured before training and every ``eval_every`` steps. The best weights are kept,
training stops after ``patience`` evaluations without improvement, and a checkpoint is written
ONLY if the best held-out residual beats the starting one (otherwise :class:`AdaptResult` says
so and nothing is written). Test-time mode (``frames=N``): adapt on the first N pairs and guard
on the same pairs (there is nothing else to hold out).

Left hands: the network is a right-hand network, so a pair whose ``handedness`` is "left" is
mirrored first (:func:`hand_mesh_core.model.mirror.mirror_sample`: images flipped and swapped,
``cx' = W - 1 - cx``), exactly as :class:`hand_mesh_core.pipeline.HandMeshPipeline` does at
inference; the crop function then sees the mirrored (right-hand) pair.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from hand_mesh_core.data.types import StereoSample
from hand_mesh_core.geometry.crop import StereoCrop
from hand_mesh_core.losses.photo import (crop_disparity_offset, photometric_error,
                                         warp_horizontal)
from hand_mesh_core.losses.total import Branch, LossTerms, StereoWarp, self_supervised_loss
from hand_mesh_core.model.checkpoint import save_checkpoint
from hand_mesh_core.model.mirror import mirror_sample
from hand_mesh_core.model.network import HandMeshNet, HandNetOutput
from hand_mesh_core.render.renderer import render_mesh
from hand_mesh_core.train.batch import (CroppedDataset, TrainBatch, collate_cropped,
                                        gt_stereo_crop, roi_stereo_crop)
from hand_mesh_core.train.common import (CsvLogger, eval_mode, freeze_batchnorm,
                                         reestimate_batchnorm, resolve_device)
from hand_mesh_core.train.config import AdaptConfig

__all__ = ["AdaptResult", "adapt", "roi_crop_fn", "label_crop_fn", "adaptation_loss",
           "photometric_residual", "ADAPTED_NAME"]

#: File stem of the adapted checkpoint.
ADAPTED_NAME = "adapted"
#: The guard's residual when the rendered hand never meets the mask (the photometric error of
#: images in [0, 1] is at most about 1).
MAX_RESIDUAL = 1.0


@dataclass(frozen=True)
class AdaptResult:
    """Outcome of :func:`adapt`.

    Attributes:
        checkpoint: the written checkpoint, or None when the guard refused to write one.
        improved: the best held-out residual beat the starting one.
        start_residual: held-out photometric residual of the pretrained network.
        best_residual: the best held-out residual seen (= start when nothing improved).
        best_step: step of the best weights (0 = before any gradient step: the pretrained
            weights, with re-estimated batch-norm statistics when ``config.batchnorm`` is
            "target").
        steps: steps run.
        stopped_early: early stopping ended the run.
        num_train, num_holdout: pairs used for training / the guard.
        skipped: indices of pairs without a usable hand crop.
        message: one human-readable line.
        model: the best network (the pretrained one when nothing improved).
        history: (step, held-out residual) of every guard evaluation.
    """

    checkpoint: Path | None
    improved: bool
    start_residual: float
    best_residual: float
    best_step: int
    steps: int
    stopped_early: bool
    num_train: int
    num_holdout: int
    skipped: tuple[int, ...]
    message: str
    model: HandMeshNet
    history: tuple[tuple[int, float], ...] = field(default=())


def roi_crop_fn(out_size: int, roi_config: Any = None) -> Callable[..., StereoCrop | None]:
    """Crops from the skin/stereo hand ROI (``hand_mesh_core.data.roi``): unlabelled data."""
    from hand_mesh_core.data.roi import find_hand_roi

    def fn(sample: StereoSample, index: int, rng: np.random.Generator) -> StereoCrop | None:
        roi = find_hand_roi(sample.left, sample.right, sample.camera, roi_config)
        return None if roi is None else roi_stereo_crop(roi.left, roi.disparity_px, out_size)
    return fn


def label_crop_fn(out_size: int, margin_frac: float) -> Callable[..., StereoCrop | None]:
    """Crops around the labels (ablations / oracle ROI on synthetic data); the labels are used
    for the window only, never as a training signal."""
    def fn(sample: StereoSample, index: int, rng: np.random.Generator) -> StereoCrop | None:
        pts = sample.vertices_m if sample.vertices_m is not None else sample.joints_m
        return None if pts is None else gt_stereo_crop(pts, sample.camera, out_size,
                                                       margin_frac)
    return fn


def _skin_masked(sample: StereoSample) -> StereoSample:
    from hand_mesh_core.data.skin import skin_masks_stereo

    ml, mr = skin_masks_stereo(sample.left, sample.right)
    return StereoSample(sample.left, sample.right, sample.camera, sample.handedness,
                        None, None, ml, mr, sample.stamp_ns, sample.source)


def _unlabelled(sample: StereoSample) -> StereoSample:
    """Drop 3D labels so nothing downstream can use them."""
    return StereoSample(sample.left, sample.right, sample.camera, sample.handedness, None, None,
                        sample.mask_left, sample.mask_right, sample.stamp_ns, sample.source)


def _render_inputs(out: HandNetOutput, batch: TrainBatch, faces: torch.Tensor, size: int,
                   config: AdaptConfig, need_soft: bool) -> tuple[Any, Any]:
    render_cfg = config.render.replace(soft_mask=need_soft, normals=False)
    K_l = batch.crops.crop_K(batch.K, "left")
    K_r = batch.crops.crop_K(batch.K, "right")
    left = render_mesh(out.vertices, faces, K_l, (size, size), render_cfg)
    right = render_mesh(out.vertices_right, faces, K_r, (size, size), render_cfg)
    return left, right


def adaptation_loss(model: HandMeshNet, batch: TrainBatch, config: AdaptConfig,
                    pseudo: HandNetOutput | None = None, photo_only: bool = False
                    ) -> LossTerms:
    """The self-supervised objective of one batch (or only its photo term).

    Args:
        model: the network being adapted.
        batch: cropped pairs with hand masks (``mask_left``/``mask_right``).
        config: settings (loss weights, renderer).
        pseudo: the frozen pretrained network's output on the batch (edge pseudo labels).
        photo_only: compute just the photometric residual (the guard's metric).

    Raises:
        ValueError: the batch has no masks.
    """
    if batch.mask_left is None or batch.mask_right is None:
        raise ValueError("adaptation needs hand masks (skin masks) in the batch")
    size = model.config.input_size
    out = model(batch.left, batch.right, batch.crops, batch.K, batch.baseline_m)
    loss_cfg = config.losses
    if photo_only:
        weights = loss_cfg.weights.replace(edge=0.0, laplacian=0.0, mask=0.0, chamfer=0.0,
                                           normal=0.0, photo=1.0)
        loss_cfg = loss_cfg.replace(weights=weights.to_dict())
    w = loss_cfg.weights
    faces = model.faces
    rl, rr = _render_inputs(out, batch, faces, size, config, need_soft=w.mask > 0)
    img_l = batch.left.float() / 255.0
    img_r = batch.right.float() / 255.0
    pl = pr = None
    if w.edge > 0:
        if pseudo is None:
            raise ValueError("the edge term needs the pseudo labels (pseudo=None)")
        pl, pr = pseudo.vertices.detach(), pseudo.vertices_right.detach()
    left = Branch(out.vertices, img_l, batch.mask_left, rl.depth_m, rl.soft_mask, pl)
    right = Branch(out.vertices_right, img_r, batch.mask_right, rr.depth_m, rr.soft_mask, pr)
    warp = StereoWarp(batch.K[:, 0, 0], batch.baseline_m, batch.crops.shift_px,
                      batch.crops.scale_x)
    return self_supervised_loss(left, right, faces, warp, loss_cfg)


def _hand_pixel_error(model: HandMeshNet, batch: TrainBatch, config: AdaptConfig
                      ) -> tuple[float, int]:
    """Sum and count of the photometric error over rendered-hand & mask pixels, both views."""
    out = model(batch.left, batch.right, batch.crops, batch.K, batch.baseline_m)
    size = model.config.input_size
    rl, rr = _render_inputs(out, batch, model.faces, size, config, need_soft=False)
    images = {"left": batch.left.float() / 255.0, "right": batch.right.float() / 255.0}
    masks = {"left": batch.mask_left, "right": batch.mask_right}
    total, count = 0.0, 0
    for view, other, render in (("left", "right", rl), ("right", "left", rr)):
        offset, valid = crop_disparity_offset(
            render.depth_m, batch.K[:, 0, 0], batch.baseline_m, batch.crops.shift_px,
            batch.crops.scale_x, view)
        region = valid & (masks[view] > 0.5)
        if not bool(region.any()):
            continue
        warped = warp_horizontal(images[other], offset, valid)
        err = photometric_error(warped, images[view], region, config.losses.photo_alpha,
                                config.losses.ssim_window)
        total += float(err[region].sum())
        count += int(region.sum())
    return total, count


def photometric_residual(model: HandMeshNet, batches: Sequence[TrainBatch], config: AdaptConfig
                         ) -> float:
    """The guard's held-out photometric residual (lower is better), network in eval mode.

    ``config.guard_metric`` "hand_pixels": the mean photometric error (the photo term's
    ``alpha / 2 (1 - SSIM) + (1 - alpha) L1``) over every pixel, of both views of every pair,
    where the rendered hand and the hand mask overlap; 1.0 (the error's upper end) when they
    never overlap. "photo_loss": the photo term averaged over pairs.
    """
    total, n = 0.0, 0
    with eval_mode(model), torch.no_grad():
        for b in batches:
            if config.guard_metric == "hand_pixels":
                err, count = _hand_pixel_error(model, b, config)
                total, n = total + err, n + count
            else:
                total += float(adaptation_loss(model, b, config, photo_only=True).photo) * len(
                    b.index)
                n += len(b.index)
    if n == 0:
        return MAX_RESIDUAL
    return total / n


def _forward(model: HandMeshNet, batch: TrainBatch) -> HandNetOutput:
    return model(batch.left, batch.right, batch.crops, batch.K, batch.baseline_m)


def _better(residual: float, best: float, min_improvement: float) -> bool:
    """The guard's test: ``residual`` beats ``best`` by at least ``min_improvement`` (relative)."""
    return residual < best * (1.0 - min_improvement) and residual < best


def _warmup_factor(step: int, warmup_steps: int) -> float:
    """Learning-rate factor of 0-based ``step``: linear from 1 / warmup_steps to 1."""
    return 1.0 if step >= warmup_steps else (step + 1) / warmup_steps


def adapt(config: AdaptConfig, pretrained: HandMeshNet, samples: Sequence[StereoSample],
          out_dir: str | Path, *, crop_fn: Callable[..., StereoCrop | None] | None = None,
          frames: int | None = None, training_data: str = "", progress: bool = True
          ) -> AdaptResult:
    """Self-supervised adaptation with the held-out guard.

    Args:
        config: settings.
        pretrained: the stage-1 network (not modified).
        samples: target pairs; any labels are DROPPED before use. Left-hand pairs are
            mirrored into right-hand pairs (module docstring).
        out_dir: folder for ``adapted.safetensors`` (+ sidecar) and ``adapt_log.csv``.
        crop_fn: ``crop_fn(sample, index, rng) -> StereoCrop | None``; default: the hand ROI.
        frames: test-time mode: adapt on the first ``frames`` pairs and guard on them.
        training_data: provenance text for the checkpoint.
        progress: tqdm bar.

    Returns:
        :class:`AdaptResult`.

    Raises:
        ValueError: no pair with a usable crop, or ``frames`` < 1.
    """
    from tqdm import tqdm

    out_dir = Path(out_dir)
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    size = pretrained.config.input_size
    if frames is not None:
        if frames < 1:
            raise ValueError(f"frames must be >= 1, got {frames}")
    count = len(samples) if frames is None else min(frames, len(samples))
    crop_fn = crop_fn or roi_crop_fn(size)
    prepared: list = []
    skipped: list[int] = []
    for i in range(count):
        s = samples[i]
        if s.handedness == "left":
            s = mirror_sample(s)
        crop = crop_fn(s, i, rng)  # a label crop_fn may read the labels for the window
        s = _skin_masked(s) if config.mask_source == "skin" else _unlabelled(s)
        if crop is None:
            skipped.append(i)
            continue
        item = CroppedDataset([s], size, crop_fn=lambda *_a, c=crop: c)[0]
        prepared.append(dataclasses.replace(item, index=i))
    if not prepared:
        raise ValueError("no target pair has a usable hand crop (ROI not found in any pair)")
    order = rng.permutation(len(prepared))
    if frames is not None:
        train_idx = hold_idx = order
    else:
        n_hold = max(config.min_holdout, int(round(config.holdout_frac * len(prepared))))
        if n_hold >= len(prepared):
            raise ValueError(f"{len(prepared)} usable pairs cannot give {n_hold} held-out pairs "
                             "and a training set; add pairs or lower holdout_frac/min_holdout")
        hold_idx, train_idx = order[:n_hold], order[n_hold:]
    bs = config.batch_size
    holdout = [collate_cropped([prepared[j] for j in hold_idx[k:k + bs]]).to(device)
               for k in range(0, len(hold_idx), bs)]

    model = copy.deepcopy(pretrained).to(device)
    start = photometric_residual(model, holdout, config)
    history = [(0, start)]
    best, best_step = start, 0
    best_state = copy.deepcopy(model.state_dict())
    bn_note = ""
    if config.batchnorm == "target":
        train_batches = (collate_cropped([prepared[j] for j in train_idx[k:k + bs]]).to(device)
                         for k in range(0, len(train_idx), bs))
        if reestimate_batchnorm(model, train_batches, _forward):
            res = photometric_residual(model, holdout, config)
            history.append((0, res))
            bn_note = (f"; batch-norm statistics re-estimated on {len(train_idx)} target pairs "
                       f"(held-out residual {res:.5f})")
            if _better(res, best, config.min_improvement):
                best, best_state = res, copy.deepcopy(model.state_dict())
    # The edge term's pseudo labels: a frozen copy of the starting network (after the
    # batch-norm re-estimation, so the labels come from the better-normalised network).
    frozen = copy.deepcopy(model).eval()
    for p in frozen.parameters():
        p.requires_grad_(False)
    model.train()
    if config.batchnorm != "batch":
        freeze_batchnorm(model)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    log = CsvLogger(out_dir / "adapt_log.csv")
    bad_evals, step, stopped = 0, 0, False
    bar = tqdm(total=config.steps, desc="adapt", unit="step", disable=not progress)
    while step < config.steps and not stopped:
        perm = rng.permutation(train_idx)
        for k in range(0, len(perm), bs):
            if step >= config.steps:
                break
            batch = collate_cropped([prepared[j] for j in perm[k:k + bs]]).to(device)
            with torch.no_grad():
                pseudo = frozen(batch.left, batch.right, batch.crops, batch.K, batch.baseline_m)
            terms = adaptation_loss(model, batch, config, pseudo)
            opt.zero_grad(set_to_none=True)
            terms.total.backward()
            for group in opt.param_groups:
                group["lr"] = config.lr * _warmup_factor(step, config.warmup_steps)
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            opt.step()
            step += 1
            bar.update(1)
            row: dict[str, Any] = {"step": step, **terms.as_floats(), "holdout_photo": ""}
            if step % config.eval_every == 0 or step == config.steps:
                res = photometric_residual(model, holdout, config)
                history.append((step, res))
                row["holdout_photo"] = res
                if _better(res, best, config.min_improvement):
                    best, best_step, bad_evals = res, step, 0
                    best_state = copy.deepcopy(model.state_dict())
                else:
                    bad_evals += 1
                    if bad_evals >= config.patience:
                        stopped = True
                bar.set_postfix(holdout=f"{res:.4f}", best=f"{best:.4f}")
            log.log(row)
            if stopped:
                break
    bar.close()
    improved = best < start
    ckpt = None
    if improved:
        model.load_state_dict(best_state)
        model.eval()
        ckpt = save_checkpoint(
            out_dir / f"{ADAPTED_NAME}.safetensors", model, training_data=training_data,
            metrics={"holdout_photo_start": start, "holdout_photo_best": best},
            extra={"stage": "adapt", "best_step": best_step, "steps": step,
                   "frames": frames, "adapt_config": config.to_dict()})
        message = (f"adapted: held-out photometric residual {start:.5f} -> {best:.5f} "
                   f"(step {best_step}{bn_note}); wrote {ckpt}")
    else:
        model = copy.deepcopy(pretrained).eval()
        message = (f"NOT written: adaptation did not improve the held-out photometric residual "
                   f"(start {start:.5f}, best {best:.5f}); keeping the pretrained checkpoint")
    return AdaptResult(ckpt, improved, start, best, best_step if improved else 0, step, stopped,
                       len(train_idx), len(hold_idx), tuple(skipped), message, model,
                       tuple(history))
