"""Settings of the hand mesh network (backbone width/depth, heads, input size)."""
from __future__ import annotations

from dataclasses import dataclass

from hand_mesh_core.config.base import ConfigBase, ConfigError, setting

__all__ = ["NetworkConfig", "DEPTH_MODES"]

#: How the network gets vertex depth: "stereo" triangulates the two branches' (u, v);
#: "mono" is the paper's z-head variant (each branch also regresses depth).
DEPTH_MODES = ("stereo", "mono")


@dataclass(frozen=True)
class NetworkConfig(ConfigBase):
    """The binocular hand mesh network: a small ResNet per view (shared weights) + a mesh head.

    The default (128 px crops, widths 16-32-64-128, one block per stage) runs one stereo pair in
    well under 25 ms on 2 CPU cores (see ``hand_mesh_core.model.bench``).
    """

    input_size: int = setting(128, "side of the square crop fed to each branch", unit="px",
                              ge=32, le=512)
    stem_width: int = setting(16, "channels of the stride-2 stem convolution", gt=0)
    stage_widths: tuple[int, ...] = setting((16, 32, 64, 128), "channels of each ResNet stage",
                                            gt=0)
    blocks_per_stage: int = setting(1, "basic residual blocks per stage", ge=1, le=8)
    head_channels: int = setting(32, "channels of the last map after a 1x1 reduction; the map "
                                 "is flattened into the feature layer", gt=0)
    feature_dim: int = setting(256, "width of the global feature before the mesh head", gt=0)
    depth_mode: str = setting("stereo", "vertex depth source", choices=DEPTH_MODES)
    uv_range_px: float = setting(64.0, "scale of the regressed (u, v) offsets from the "
                                 "template prior", unit="crop px", gt=0.0)
    rel_depth_scale_m: float = setting(0.05, "scale of the z-head's per-vertex depth offsets "
                                       "from the root depth", unit="m", gt=0.0)
    mono_depth_ref_m: float = setting(
        0.25, "z-head root depth prior: z = ref * fx / window_px * exp(s); about the hand length "
        "(0.19 m) times the crop margin", unit="m", gt=0.0)
    max_depth_from_median_m: float = setting(
        0.12, "stereo mode: per-vertex depth is clamped to the hand's median depth +- this; a "
        "hand's vertices lie at most 0.113 m from their median depth (99th percentile 0.104 m; "
        "labels of `hand-mesh synth --domain target_lab --count 400 --seed 1`); 0 = no bound",
        unit="m", ge=0.0)
    template_fill: float = setting(0.6, "fraction of the crop side covered by the template "
                                   "prior", gt=0.0, le=1.0)

    def validate(self) -> None:
        if len(self.stage_widths) < 1:
            raise ConfigError("NetworkConfig.stage_widths: needs at least one stage")
