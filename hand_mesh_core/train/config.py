"""Settings of stage 1 (supervised pretraining) and stage 2 (self-supervised adaptation)."""
from __future__ import annotations

from dataclasses import dataclass

from hand_mesh_core.config.base import ConfigBase, ConfigError, setting
from hand_mesh_core.data.config import AugmentConfig
from hand_mesh_core.losses.total import LossConfig, LossWeights
from hand_mesh_core.model.config import NetworkConfig
from hand_mesh_core.render.config import RenderConfig

__all__ = ["PretrainConfig", "PretrainLossWeights", "AdaptConfig", "DEVICE_CHOICES",
           "MASK_SOURCES", "BATCHNORM_MODES", "GUARD_METRICS",
           "ADAPT_LOSS_WEIGHTS"]

#: Where adaptation takes the hand masks from: the skin detector (unlabelled data, the paper's
#: setting) or the dataset's own masks (synthetic ablations).
MASK_SOURCES = ("skin", "labels")
#: Adaptation's default loss weights: the paper's (``LossWeights()``: photo 100, edge 1,
#: Laplacian 10, mask 0.1, Chamfer 0.001, normal 0.001) with the Laplacian raised to 1000 and the
#: mask term to 20. Our terms are means over vertices / pixels, and with the paper's weights
#: they barely act: the Laplacian read ~0.01 m (x10 = 0.1) and the mask ~0.3 (x0.1 = 0.03)
#: against photo ~0.2 (x100 = 20). Measured from the shipped checkpoint on 32 unlabelled
#: ``target_lab`` pairs (ROI crops, skin masks, AdaBN), 150 steps, error on 16 test pairs with
#: label crops (docs/results.md, "Adaptation recipe"): paper weights 123 -> 89 mm (lr 1e-4),
#: these weights 123 -> 53 mm (lr 3e-4).
ADAPT_LOSS_WEIGHTS = LossWeights(laplacian=1000.0, mask=20.0)
#: The guard's held-out photometric residual (:attr:`AdaptConfig.guard_metric`).
GUARD_METRICS = ("hand_pixels", "photo_loss")
#: Batch-norm statistics during adaptation (:attr:`AdaptConfig.batchnorm`).
BATCHNORM_MODES = ("target", "source", "batch")
#: Accepted ``device`` values: "auto" picks CUDA when available.
DEVICE_CHOICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class PretrainLossWeights(ConfigBase):
    """Weights of the supervised terms (uv terms in crop-side fractions, depth/3D in metres)."""

    vertex_uv: float = setting(10.0, "L1 of vertex (u, v), both branches, / crop side", ge=0.0)
    vertex_depth: float = setting(10.0, "L1 of vertex depth", unit="1/m", ge=0.0)
    joint_uv: float = setting(10.0, "L1 of joint (u, v) in the left crop, / crop side", ge=0.0)
    joint_depth: float = setting(10.0, "L1 of joint depth", unit="1/m", ge=0.0)
    # 1.0, not 100: edge lengths depend on the triangulated depth, i.e. on small differences of
    # the two branches' u, and at 100 this term's gradient norm (22 at init, 127 after 20 steps,
    # vs 0.2-2 for each (u, v)/depth term; 16 source_studio pairs) dominated the clipped
    # (grad_clip 5) update, so the (u, v) terms barely trained: overfitting those 16 pairs for
    # 60 steps left 28 px / 47 mm train error at 100, 2.1 px / 2.6 mm at 1.0.
    edge: float = setting(1.0, "squared edge-length difference to the label mesh (sum over "
                          "edges)", unit="1/m^2", ge=0.0)
    laplacian: float = setting(10.0, "L1 of the Laplacian-coordinate difference to the label "
                               "mesh", unit="1/m", ge=0.0)


@dataclass(frozen=True)
class PretrainConfig(ConfigBase):
    """Stage 1: supervised training on labelled (synthetic source) stereo pairs."""

    network: NetworkConfig = setting(default_factory=NetworkConfig, doc="the network")
    losses: PretrainLossWeights = setting(default_factory=PretrainLossWeights,
                                          doc="loss weights")
    steps: int = setting(2000, "optimiser steps", gt=0)
    batch_size: int = setting(16, "pairs per step (per process under DDP)", gt=0)
    lr: float = setting(1e-3, "peak AdamW learning rate", gt=0.0)
    weight_decay: float = setting(1e-4, "AdamW weight decay", ge=0.0)
    warmup_steps: int = setting(50, "linear warm-up before the cosine decay", ge=0)
    min_lr_frac: float = setting(0.02, "final learning rate as a fraction of lr", ge=0.0,
                                 le=1.0)
    grad_clip: float = setting(5.0, "max gradient norm (0 = off)", ge=0.0)
    margin_frac: float = setting(0.15, "crop margin on each side, fraction of the hand extent",
                                 ge=0.0)
    jitter_center_frac: float = setting(0.08, "crop centre jitter, fraction of the side",
                                        ge=0.0)
    jitter_scale_frac: float = setting(0.1, "crop size jitter (+-)", ge=0.0, lt=1.0)
    jitter_shift_frac: float = setting(0.05, "right-window shift jitter, fraction of the side",
                                       ge=0.0)
    photometric: bool = setting(False, "colour jitter and blur, drawn once per pair and "
                                "applied to both views (hand_mesh_core.data.augment), on every "
                                "batch; helps on unseen domains")
    augment: AugmentConfig = setting(default_factory=AugmentConfig,
                                     doc="photometric ranges (rotation is not used: stereo)")
    freeze_bn: bool = setting(False, "keep batch-norm statistics frozen (fine-tuning a "
                              "checkpoint with small batches, e.g. the oracle row)")
    workers: int = setting(0, "DataLoader worker processes", ge=0)
    device: str = setting("auto", "device", choices=DEVICE_CHOICES)
    amp: bool = setting(True, "mixed precision on CUDA (ignored on CPU)")
    seed: int = setting(0, "random seed")
    max_time_s: float = setting(0.0, "wall-time budget of the run (0 = off): training stops at "
                                "``steps`` or at this time, whichever comes first, and the "
                                "learning-rate schedule follows the larger of the two progress "
                                "fractions (so it decays fully within the budget)", unit="s",
                                ge=0.0)
    log_every: int = setting(10, "steps between CSV log rows", gt=0)
    checkpoint_every: int = setting(500, "steps between resumable checkpoints", gt=0)


@dataclass(frozen=True)
class AdaptConfig(ConfigBase):
    """Stage 2: self-supervised adaptation on unlabelled target stereo pairs."""

    losses: LossConfig = setting(
        default_factory=lambda: LossConfig(weights=ADAPT_LOSS_WEIGHTS),
        doc="the six self-supervised terms (ADAPT_LOSS_WEIGHTS: the paper's with a stronger "
        "Laplacian and mask term; set weights to the paper's with LossWeights())")
    render: RenderConfig = setting(default_factory=RenderConfig, doc="the renderer")
    steps: int = setting(500, "optimiser steps", gt=0)
    batch_size: int = setting(8, "pairs per step", gt=0)
    lr: float = setting(3e-4, "AdamW learning rate (constant after the warm-up)", gt=0.0)
    warmup_steps: int = setting(
        0, "linear learning-rate warm-up from lr / warmup_steps to lr: Adam's first, "
        "bias-corrected steps move every weight by about lr at once", ge=0)
    weight_decay: float = setting(1e-4, "AdamW weight decay", ge=0.0)
    grad_clip: float = setting(5.0, "max gradient norm (0 = off)", ge=0.0)
    holdout_frac: float = setting(0.2, "fraction of target pairs held out for the guard",
                                  ge=0.0, lt=1.0)
    min_holdout: int = setting(1, "at least this many held-out pairs", ge=1)
    eval_every: int = setting(25, "steps between guard evaluations", gt=0)
    patience: int = setting(4, "guard evaluations without improvement before stopping", ge=1)
    guard_metric: str = setting(
        "photo_loss", "the held-out photometric residual: \"photo_loss\" = the photo term "
        "itself (it also charges mask pixels the mesh does not cover); \"hand_pixels\" = the "
        "mean photometric error over the pixels where the rendered hand and the hand mask "
        "overlap (both views)", choices=GUARD_METRICS)
    min_improvement: float = setting(0.0, "relative improvement of the held-out photometric "
                                     "residual needed to count as better", ge=0.0)
    batchnorm: str = setting(
        "target", "batch-norm statistics during adaptation: \"target\" re-estimates them on the "
        "unlabelled target training pairs first (AdaBN) and keeps them fixed; \"source\" keeps "
        "the pretrained ones; \"batch\" normalises with each batch and updates them as it goes",
        choices=BATCHNORM_MODES)
    margin_frac: float = setting(0.15, "crop margin when a label/ROI box is used", ge=0.0)
    mask_source: str = setting("skin", "hand masks for the photo/mask terms",
                               choices=MASK_SOURCES)
    device: str = setting("auto", "device", choices=DEVICE_CHOICES)
    seed: int = setting(0, "random seed")

    def validate(self) -> None:
        if self.eval_every > self.steps:
            raise ConfigError(f"AdaptConfig.eval_every = {self.eval_every}: must be <= steps "
                              f"({self.steps})")
