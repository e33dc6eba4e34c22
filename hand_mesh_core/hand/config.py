"""Settings of the hand model (:class:`~hand_mesh_core.hand.model.HandModel`)."""
from __future__ import annotations

from dataclasses import dataclass

from hand_mesh_core.config.base import ConfigBase, ConfigError, setting

__all__ = ["HandModelConfig", "NUM_SHAPE_PROCEDURAL", "MANO_FINGERTIP_VERTICES"]

#: Length of the procedural shape vector: (overall scale, finger length, finger width).
NUM_SHAPE_PROCEDURAL = 3
#: MANO vertex ids of the thumb, index, middle, ring and little fingertips: the convention of
#: the FreiHAND / MANO-21 joint sets (Zimmermann et al., ICCV 2019).
MANO_FINGERTIP_VERTICES = (745, 317, 444, 556, 673)


@dataclass(frozen=True)
class HandModelConfig(ConfigBase):
    """Which hand model to build and how.

    The procedural template is generated deterministically from these settings (and cached in
    memory per distinct config); the defaults give the shipped topology.
    """

    kind: str = setting("procedural", "hand model: procedural template or user-supplied MANO",
                        choices=("procedural", "mano"))
    mano_path: str = setting("", "path of MANO_RIGHT.pkl (kind=mano only)")
    mano_fingertip_vertices: tuple[int, ...] = setting(
        MANO_FINGERTIP_VERTICES, "MANO vertex ids of the thumb..little fingertips", ge=0)
    grid_spacing_m: float = setting(0.002, "sampling step of the implicit surface before "
                                    "decimation", unit="m", ge=0.001, le=0.004)
    target_vertices: int = setting(850, "vertex count the procedural mesh is decimated to "
                                   "(approximate)", ge=300, le=3000)
    skin_blend_m: float = setting(0.007, "width of the skinning-weight blend across a joint",
                                  unit="m", gt=0.0, le=0.03)
    regressor_neighbours: int = setting(48, "vertices near a joint used by its row of the "
                                        "joint regressor", ge=4, le=256)
    default_shape: tuple[float, ...] = setting(
        (0.0, 0.0, 0.0), "procedural shape used when forward() gets none: (scale, finger "
        "length, finger width), each in steps of SHAPE_STEP (10 %)", ge=-5.0, le=5.0)

    def validate(self) -> None:
        if self.kind == "mano" and not self.mano_path:
            raise ConfigError("HandModelConfig.mano_path: required when kind='mano'")
        if len(self.mano_fingertip_vertices) != 5:
            raise ConfigError("HandModelConfig.mano_fingertip_vertices: expected 5 vertex ids "
                              f"(thumb..little), got {len(self.mano_fingertip_vertices)}")
        if len(self.default_shape) != NUM_SHAPE_PROCEDURAL:
            raise ConfigError(f"HandModelConfig.default_shape: expected {NUM_SHAPE_PROCEDURAL} "
                              f"values, got {len(self.default_shape)}")
