"""Typed domain presets of the synthetic stereo generator.

A *domain* is everything that makes one synthetic data set look like one kind of real data:
camera, hand placement, pose distribution, lighting, skin, background, distractors (forearm,
faces, skin-coloured patches) and sensor effects. Presets live in ``config/domains/<name>.yaml``;
a user adds a domain by writing such a file (no code change) and passes its name or path to
:func:`load_domain` (or ``hand-mesh synth --domain``).

Every ``(min, max)`` pair below is a uniform range a value is sampled from, per sample.
Colours are linear RGB in [0, 1].
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hand_mesh_core.config.base import ConfigBase, ConfigError, setting
from hand_mesh_core.config.presets import preset_path
from hand_mesh_core.geometry.camera import StereoCamera
from hand_mesh_core.hand.poses import POSE_NAMES

__all__ = [
    "BACKGROUND_KINDS", "POSE_KINDS", "PlacementConfig", "PoseConfig", "LightingConfig",
    "SkinToneConfig", "BackgroundConfig", "DistractorConfig", "SensorConfig", "DomainConfig",
    "load_domain",
]

#: Procedural background textures (see ``backgrounds.py``).
BACKGROUND_KINDS = ("plain", "green_screen", "noise", "stripes", "clutter", "floral")
#: Pose families (see ``poses.py``): hand-model random poses, grasps, pre-grasps, named poses.
POSE_KINDS = ("random", "grasp", "pregrasp", "open", "named")


def _check_ranges(cfg: ConfigBase, names: tuple[str, ...]) -> None:
    for name in names:
        lo, hi = getattr(cfg, name)
        if lo > hi:
            raise ConfigError(f"{type(cfg).__name__}.{name} = {[lo, hi]}: min must be <= max")


def _check_weights(cfg: ConfigBase, kinds_name: str, weights_name: str,
                   allowed: tuple[str, ...]) -> None:
    owner = type(cfg).__name__
    kinds, weights = getattr(cfg, kinds_name), getattr(cfg, weights_name)
    bad = [k for k in kinds if k not in allowed]
    if bad or not kinds:
        raise ConfigError(f"{owner}.{kinds_name} = {list(kinds)}: each must be one of "
                          f"{list(allowed)} (at least one)")
    if len(weights) != len(kinds):
        raise ConfigError(f"{owner}.{weights_name} has {len(weights)} values but "
                          f"{kinds_name} has {len(kinds)}")
    if sum(weights) <= 0:
        raise ConfigError(f"{owner}.{weights_name} = {list(weights)}: sum must be > 0")


@dataclass(frozen=True)
class PlacementConfig(ConfigBase):
    """Where the hand is and how it faces the camera."""

    depth_m: tuple[float, float] = setting((0.3, 1.0), "depth of the hand centre (mean of the "
                                           "21 joints)", unit="m", gt=0.0)
    center_frac: float = setting(0.6, "the hand centre is drawn uniformly from this central "
                                 "fraction of the left image (1 = anywhere)", gt=0.0, le=1.0)
    margin_px: float = setting(4.0, "every vertex must lie this far inside both images",
                               unit="px", ge=0.0)
    max_bbox_px: float = setting(0.0, "largest side of the left-image hand bounding box "
                                 "(0 = no limit)", unit="px", ge=0.0)
    view_angle_deg: float = setting(60.0, "largest angle between the palm normal and the "
                                    "direction towards the camera (180 = any viewpoint)",
                                    unit="deg", ge=0.0, le=180.0)
    roll_deg: tuple[float, float] = setting((-60.0, 60.0), "in-image rotation of the fingers "
                                            "about the viewing ray, 0 = fingers up",
                                            unit="deg", ge=-180.0, le=180.0)
    left_hand_prob: float = setting(0.5, "probability of a left hand", ge=0.0, le=1.0)
    max_tries: int = setting(30, "placement attempts before the sample is re-drawn closer to "
                             "the image centre", gt=0)

    def validate(self) -> None:
        _check_ranges(self, ("depth_m", "roll_deg"))


@dataclass(frozen=True)
class PoseConfig(ConfigBase):
    """The pose distribution: a mixture of pose families, all within the joint limits."""

    kinds: tuple[str, ...] = setting(("random", "grasp", "pregrasp", "open"),
                                     f"pose families, each one of {list(POSE_KINDS)}")
    weights: tuple[float, ...] = setting((0.25, 0.35, 0.25, 0.15),
                                         "mixture weights of ``kinds``", ge=0.0)
    named: tuple[str, ...] = setting((), "hand-model named poses used by the 'named' family")
    jitter_rad: float = setting(0.15, "Gaussian jitter added to every joint angle of a "
                                "family pose (then clamped to the limits)", unit="rad", ge=0.0)
    shape_std: float = setting(1.0, "std of the shape coefficients", ge=0.0)

    def validate(self) -> None:
        _check_weights(self, "kinds", "weights", POSE_KINDS)
        if "named" in self.kinds and not self.named:
            raise ConfigError("PoseConfig.named must list named poses when kinds has 'named'")
        bad = [n for n in self.named if n not in POSE_NAMES]
        if bad:
            raise ConfigError(f"PoseConfig.named = {list(self.named)}: each must be one of "
                              f"{list(POSE_NAMES)}")


@dataclass(frozen=True)
class LightingConfig(ConfigBase):
    """Directional lights with cast shadows, hemispherical ambient, Blinn-Phong specular."""

    num_lights: tuple[int, int] = setting((1, 1), "number of directional lights", ge=1)
    light_angle_deg: tuple[float, float] = setting(
        (0.0, 40.0), "angle between the direction towards the key light and the direction "
        "towards the camera (0 = head-on, 90 = grazing)", unit="deg", ge=0.0, le=90.0)
    key_intensity: tuple[float, float] = setting((0.7, 1.0), "irradiance of the key light",
                                                 ge=0.0)
    fill_ratio: tuple[float, float] = setting((0.3, 0.6), "intensity of each extra light "
                                              "relative to the key light", ge=0.0)
    ambient: tuple[float, float] = setting((0.25, 0.4), "ambient irradiance", ge=0.0)
    light_rgb_min: tuple[float, float, float] = setting((0.95, 0.95, 0.95),
                                                        "per-channel light colour, lower end",
                                                        ge=0.0)
    light_rgb_max: tuple[float, float, float] = setting((1.0, 1.0, 1.0),
                                                        "per-channel light colour, upper end",
                                                        ge=0.0)
    specular: tuple[float, float] = setting((0.05, 0.15), "Blinn-Phong specular albedo", ge=0.0)
    shininess: tuple[float, float] = setting((10.0, 30.0), "Blinn-Phong exponent", gt=0.0)
    wrap: float = setting(0.2, "wrap-around diffuse (cheap subsurface look): 0 = Lambert",
                          ge=0.0, le=1.0)
    cast_shadows: bool = setting(True, "trace shadow rays (hand on itself, on the forearm and "
                                 "on the background)")
    shadow_strength: float = setting(1.0, "1 = occluded light is fully blocked", ge=0.0, le=1.0)

    def validate(self) -> None:
        _check_ranges(self, ("num_lights", "light_angle_deg", "key_intensity", "fill_ratio",
                             "ambient", "specular", "shininess"))
        if any(a > b for a, b in zip(self.light_rgb_min, self.light_rgb_max)):
            raise ConfigError("LightingConfig.light_rgb_min must be <= light_rgb_max per channel")


@dataclass(frozen=True)
class SkinToneConfig(ConfigBase):
    """Skin albedo: a tone palette and procedural surface texture attached to the mesh."""

    tones_rgb: tuple[tuple[float, float, float], ...] = setting(
        ((0.80, 0.57, 0.47), (0.70, 0.48, 0.38), (0.55, 0.36, 0.27)),
        "palette of base skin albedos (linear RGB); one is drawn per sample")
    tone_jitter: float = setting(0.06, "relative per-channel jitter of the tone", ge=0.0)
    mottle_strength: float = setting(0.10, "low-frequency blotchiness", ge=0.0, le=1.0)
    pore_strength: float = setting(0.08, "fine pore/grain texture", ge=0.0, le=1.0)
    pore_scale_m: float = setting(0.0012, "size of a pore cell", unit="m", gt=0.0)
    crease_strength: float = setting(0.35, "darkening of palmar flexion creases at the "
                                     "joints", ge=0.0, le=1.0)
    crease_width_m: float = setting(0.0015, "half width of a crease", unit="m", gt=0.0)
    vein_strength: float = setting(0.12, "bluish dorsal veins", ge=0.0, le=1.0)
    nail_rgb: tuple[float, float, float] = setting((0.86, 0.66, 0.62), "nail albedo", ge=0.0,
                                                   le=1.0)
    palm_lightening: float = setting(0.10, "palms are lighter than the back of the hand",
                                     ge=0.0, le=1.0)

    def validate(self) -> None:
        if not self.tones_rgb:
            raise ConfigError("SkinToneConfig.tones_rgb must hold at least one colour")
        for tone in self.tones_rgb:
            if not all(0.0 <= c <= 1.0 for c in tone):
                raise ConfigError(f"SkinToneConfig.tones_rgb: {list(tone)} must lie in [0, 1]")


@dataclass(frozen=True)
class BackgroundConfig(ConfigBase):
    """A textured plane behind the hand, rendered in 3D so that it has the right disparity."""

    kinds: tuple[str, ...] = setting(("plain", "noise"),
                                     f"textures, each one of {list(BACKGROUND_KINDS)}")
    weights: tuple[float, ...] = setting((0.5, 0.5), "mixture weights of ``kinds``", ge=0.0)
    distance_behind_m: tuple[float, float] = setting(
        (0.3, 1.5), "distance from the hand centre to the plane along the optical axis",
        unit="m", gt=0.0)
    tilt_deg: float = setting(20.0, "largest tilt of the plane away from fronto-parallel",
                              unit="deg", ge=0.0, lt=90.0)
    brightness: tuple[float, float] = setting((0.3, 0.8), "mean albedo", ge=0.0, le=1.0)
    saturation: tuple[float, float] = setting((0.0, 0.6), "colour saturation", ge=0.0, le=1.0)
    contrast: tuple[float, float] = setting((0.1, 0.5), "texture contrast", ge=0.0, le=1.0)
    feature_size_m: tuple[float, float] = setting((0.01, 0.08), "typical size of texture "
                                                  "features on the plane", unit="m", gt=0.0)
    texel_m: float = setting(0.0015, "texture resolution on the plane", unit="m", gt=0.0)
    lit: bool = setting(True, "shade the plane with the scene lights (else emissive, like a "
                        "screen or a composite)")

    def validate(self) -> None:
        _check_weights(self, "kinds", "weights", BACKGROUND_KINDS)
        _check_ranges(self, ("distance_behind_m", "brightness", "saturation", "contrast",
                             "feature_size_m"))


@dataclass(frozen=True)
class DistractorConfig(ConfigBase):
    """Skin-coloured distractors: the forearm, faces and skin patches in the background."""

    forearm_prob: float = setting(0.0, "probability of a forearm attached at the wrist",
                                  ge=0.0, le=1.0)
    forearm_length_m: tuple[float, float] = setting((0.22, 0.28), "forearm length", unit="m",
                                                    gt=0.0)
    forearm_taper: tuple[float, float] = setting((1.1, 1.35), "elbow radius / wrist radius",
                                                 gt=0.0)
    sleeve_prob: float = setting(0.0, "probability that a sleeve covers the forearm",
                                 ge=0.0, le=1.0)
    sleeve_start_m: tuple[float, float] = setting((0.03, 0.12), "distance from the wrist to "
                                                  "the sleeve", unit="m", ge=0.0)
    face_prob: float = setting(0.0, "probability of a face-like blob on the background",
                               ge=0.0, le=1.0)
    skin_patches: tuple[int, int] = setting((0, 0), "number of skin-toned patches on the "
                                            "background", ge=0)

    def validate(self) -> None:
        _check_ranges(self, ("forearm_length_m", "forearm_taper", "sleeve_start_m",
                             "skin_patches"))


@dataclass(frozen=True)
class SensorConfig(ConfigBase):
    """Camera sensor and ISP effects, applied after rendering in linear RGB."""

    exposure: tuple[float, float] = setting((0.9, 1.1), "gain before clipping", gt=0.0)
    white_balance_jitter: float = setting(0.03, "relative per-channel gain error", ge=0.0)
    stereo_gain_jitter: float = setting(0.02, "relative gain difference between the two "
                                        "cameras", ge=0.0)
    vignetting: tuple[float, float] = setting((0.0, 0.1), "relative darkening at the corners",
                                              ge=0.0, le=1.0)
    blur_sigma_px: tuple[float, float] = setting((0.3, 0.7), "Gaussian optical blur",
                                                 unit="px", ge=0.0)
    read_noise: tuple[float, float] = setting((0.002, 0.006), "std of additive noise "
                                              "(linear intensity)", ge=0.0)
    shot_noise: tuple[float, float] = setting((0.002, 0.006), "signal-dependent noise: "
                                              "variance = shot_noise * intensity", ge=0.0)
    gamma: tuple[float, float] = setting((2.2, 2.2), "display gamma of the encoding",
                                         gt=0.0)
    jpeg_quality: tuple[int, int] = setting((95, 100), "JPEG round-trip quality (100 = none)",
                                            ge=1, le=100)

    def validate(self) -> None:
        _check_ranges(self, ("exposure", "vignetting", "blur_sigma_px", "read_noise",
                             "shot_noise", "gamma", "jpeg_quality"))


@dataclass(frozen=True)
class DomainConfig(ConfigBase):
    """Everything that defines one synthetic domain (see ``config/domains/*.yaml``)."""

    name: str = setting("custom", "domain name (written to metadata.json)")
    description: str = setting("", "free text")
    camera: StereoCamera = setting(default_factory=StereoCamera,
                                   doc="rectified stereo camera (fx, fy, cx, cy, baseline_m, "
                                   "width, height)")
    placement: PlacementConfig = setting(default_factory=PlacementConfig, doc="hand placement")
    pose: PoseConfig = setting(default_factory=PoseConfig, doc="pose distribution")
    lighting: LightingConfig = setting(default_factory=LightingConfig, doc="lights")
    skin: SkinToneConfig = setting(default_factory=SkinToneConfig, doc="skin albedo and texture")
    background: BackgroundConfig = setting(default_factory=BackgroundConfig, doc="background")
    distractors: DistractorConfig = setting(default_factory=DistractorConfig,
                                            doc="forearm, faces, skin patches")
    sensor: SensorConfig = setting(default_factory=SensorConfig, doc="sensor effects")

    def with_camera(self, camera: StereoCamera) -> "DomainConfig":
        """A copy rendering with another camera (e.g. a small one for tests)."""
        return self.replace(camera=camera)


def load_domain(name_or_path: str | Path) -> DomainConfig:
    """Load a domain preset by name (``config/domains/<name>.yaml``) or from a YAML path.

    Raises:
        FileNotFoundError: neither a file nor a known preset (the message lists the presets).
        ConfigError: unknown keys (the message lists the valid keys), bad types or ranges.
    """
    return DomainConfig.from_yaml(preset_path("domains", name_or_path))
