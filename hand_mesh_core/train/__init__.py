"""Stage 1 (supervised pretraining) and stage 2 (self-supervised adaptation)."""
from hand_mesh_core.train.config import AdaptConfig, PretrainConfig, PretrainLossWeights

__all__ = ["AdaptConfig", "PretrainConfig", "PretrainLossWeights"]
