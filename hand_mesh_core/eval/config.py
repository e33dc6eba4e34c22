"""Settings of the evaluation subsystem: metrics and the evaluation runner."""
from __future__ import annotations

from dataclasses import dataclass

from hand_mesh_core.config.base import ConfigBase, ConfigError, setting
from hand_mesh_core.hand.joints import FINGER_JOINTS, WRIST

__all__ = [
    "MetricsConfig", "EvalConfig", "STB_AUC_MIN_MM", "STB_AUC_MAX_MM", "STB_PCK_STEPS",
    "WRIST_ROOT", "STB_PALM_ROOT", "PlotConfig",
]

#: The usual STB protocol: 3D PCK thresholds from 20 mm to 50 mm, AUC over that range
#: (Zimmermann & Brox, "Learning to Estimate 3D Hand Pose from Single RGB Images", ICCV 2017,
#: followed by Chen et al. ICCV 2021, Table 3/Fig. 5).
STB_AUC_MIN_MM = 20.0
STB_AUC_MAX_MM = 50.0
#: 1 mm steps over [20, 50] mm: 31 thresholds (the trapezoid AUC is then exact for a PCK that is
#: piecewise linear between integer millimetres).
STB_PCK_STEPS = 31
#: Canonical joint 0 is the wrist (``hand_mesh_core.hand.joints``).
WRIST_ROOT = (WRIST,)
#: STB's palm centre from canonical joints: the midpoint of the wrist and the ring MCP, the
#: convention ``hand_mesh_core.hand.joints`` uses to map STB's palm to the wrist (Ge et al.,
#: CVPR 2019, ``palm2wrist``); with it the root-relative error matches STB's palm-rooted one.
STB_PALM_ROOT = (WRIST, FINGER_JOINTS[3][0])


@dataclass(frozen=True)
class MetricsConfig(ConfigBase):
    """How joint errors are summarised.

    ``root_joints`` lists the joints whose mean is the root of the root-relative error. The
    canonical wrist is ``(0,)`` (:data:`WRIST_ROOT`). STB labels have no wrist: its readers put
    a wrist *estimated* from the palm centre in slot 0 (``hand_mesh_core.hand.joints``), so for
    STB's palm-centre root use :data:`STB_PALM_ROOT` ``(0, 13)``, the midpoint of the wrist and
    the ring MCP, which is exactly the labelled palm centre.
    """

    root_joints: tuple[int, ...] = setting(WRIST_ROOT, "joints averaged to form the root "
                                           "of the root-relative error", ge=0)
    pck_min_mm: float = setting(STB_AUC_MIN_MM, "first PCK threshold = AUC lower bound",
                                unit="mm", ge=0.0)
    pck_max_mm: float = setting(STB_AUC_MAX_MM, "last PCK threshold = AUC upper bound",
                                unit="mm", gt=0.0)
    pck_steps: int = setting(STB_PCK_STEPS, "number of PCK thresholds (evenly spaced)", ge=2)

    def validate(self) -> None:
        if not self.root_joints:
            raise ConfigError("MetricsConfig.root_joints: must name at least one joint")
        if len(set(self.root_joints)) != len(self.root_joints):
            raise ConfigError(f"MetricsConfig.root_joints = {self.root_joints}: "
                              "joints must be distinct")
        if not self.pck_max_mm > self.pck_min_mm:
            raise ConfigError(f"MetricsConfig: pck_max_mm ({self.pck_max_mm}) must be > "
                              f"pck_min_mm ({self.pck_min_mm})")


@dataclass(frozen=True)
class PlotConfig(ConfigBase):
    """Looks of the evaluation figures (``eval/plots.py``)."""

    dpi: int = setting(120, "resolution of the PNGs", unit="dpi", gt=0)
    mesh_alpha: float = setting(0.35, "opacity of the filled mesh triangles", ge=0.0, le=1.0)
    wire_alpha: float = setting(0.5, "opacity of the mesh wireframe", ge=0.0, le=1.0)
    zoom_margin_frac: float = setting(0.35, "overlays are cropped to the hand's projected box "
                                      "grown by this fraction of its long side on each side; "
                                      "a negative value shows the whole image", le=10.0)
    joint_size_pt: float = setting(14.0, "marker area of the joints", unit="pt^2", gt=0.0)


@dataclass(frozen=True)
class EvalConfig(ConfigBase):
    """The evaluation runner: which outputs to write besides the metrics."""

    metrics: MetricsConfig = setting(doc="metric settings", default_factory=MetricsConfig)
    plots: PlotConfig = setting(doc="figure settings", default_factory=PlotConfig)
    n_overlays: int = setting(4, "number of frames drawn as mesh overlays (PNG)", ge=0)
    max_frames: int = setting(0, "evaluate at most this many frames (0 = all)", ge=0)
    write_plots: bool = setting(True, "write the PCK curve and per-joint PNGs")
    progress: bool = setting(True, "show a tqdm progress bar")
