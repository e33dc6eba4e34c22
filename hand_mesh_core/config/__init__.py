"""All settings of hand_mesh, in one namespace.

Each subsystem keeps its settings next to its code; this package re-exports them lazily (so that
importing ``hand_mesh_core.config`` stays cheap and free of import cycles):

>>> from hand_mesh_core.config import LossWeights, StereoCamera   # doctest: +SKIP
"""
from __future__ import annotations

import importlib
from typing import Any

from hand_mesh_core.config.base import ConfigBase, ConfigError, load_yaml_mapping, setting

#: Public name -> defining module.
_EXPORTS = {
    "StereoCamera": "hand_mesh_core.geometry.camera",
    "HandModelConfig": "hand_mesh_core.hand.config",
    "RenderConfig": "hand_mesh_core.render.config",
    "LossWeights": "hand_mesh_core.losses.total",
    "LossConfig": "hand_mesh_core.losses.total",
    "NetworkConfig": "hand_mesh_core.model.config",
    "PretrainLossWeights": "hand_mesh_core.train.config",
    "PretrainConfig": "hand_mesh_core.train.config",
    "AdaptConfig": "hand_mesh_core.train.config",
    "StbConfig": "hand_mesh_core.data.config",
    "FreiHandConfig": "hand_mesh_core.data.config",
    "RosbagConfig": "hand_mesh_core.data.config",
    "SkinConfig": "hand_mesh_core.data.config",
    "RoiConfig": "hand_mesh_core.data.config",
    "StereoCropConfig": "hand_mesh_core.data.config",
    "AugmentConfig": "hand_mesh_core.data.config",
    "DomainConfig": "hand_mesh_core.data.synth.config",
    "MetricsConfig": "hand_mesh_core.eval.config",
    "PlotConfig": "hand_mesh_core.eval.config",
    "EvalConfig": "hand_mesh_core.eval.config",
    "ExperimentConfig": "hand_mesh_core.eval.experiments",
}

__all__ = ["ConfigBase", "ConfigError", "load_yaml_mapping", "setting", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
