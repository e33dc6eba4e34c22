"""Settings of the real-data readers, skin mask, hand ROI, stereo crops and augmentations.

(The synthetic generator keeps its own settings in ``data/synth/``.)
"""
from __future__ import annotations

from dataclasses import dataclass

from hand_mesh_core.config.base import ConfigBase, ConfigError, setting

__all__ = [
    "StbConfig", "FreiHandConfig", "RosbagConfig", "SkinConfig", "RoiConfig",
    "StereoCropConfig", "AugmentConfig", "STB_SPLITS",
]

#: Splits of :class:`StbConfig`: the paper's protocol (Chen et al. ICCV'21, after Zimmermann &
#: Brox 2017) tests on B1Counting + B1Random and trains on B2-B6; "all" is every sequence.
STB_SPLITS = ("train", "test", "all")


@dataclass(frozen=True)
class StbConfig(ConfigBase):
    """STB (Stereo Hand Pose Tracking Benchmark) reader."""

    split: str = setting("test", "which sequences: the paper's train/test protocol, or all",
                         choices=STB_SPLITS)
    camera_yaml: str = setting("", "StereoCamera preset YAML; empty = the official BB2Stereo "
                               "parameters (hand_mesh_core.data.stb.STB_CAMERA)")
    require_all_sequences: bool = setting(
        False, "raise if a label file of the split is missing (else skip it)")


@dataclass(frozen=True)
class FreiHandConfig(ConfigBase):
    """FreiHAND (monocular, right hands) reader."""

    version: str = setting("gs", "image version: green screen or one of the 3 recolourings",
                           choices=("gs", "hom", "sample", "auto"))
    vertices: str = setting("fit", "vertex labels: none, the released MANO vertices "
                            "(training_verts.json, MANO topology only), or the hand model "
                            "fitted to the 21 joints", choices=("none", "mano", "fit"))
    fit_iterations: int = setting(150, "Adam steps when fitting the hand model to the 21 "
                                  "joints (150: ~1 mm on self-generated joints)", gt=0)
    fit_lr: float = setting(0.03, "Adam learning rate of the fit", gt=0.0)
    fit_pose_reg: float = setting(1e-6, "weight of the squared pose norm in the fit "
                                  "(m^2 per rad^2)", ge=0.0)
    cache_dir: str = setting("", "directory of the fitted-hand npz cache; empty = no cache")


@dataclass(frozen=True)
class RosbagConfig(ConfigBase):
    """rosbag2 stereo reader: topics and stereo pairing."""

    left_image_topic: str = setting("left/image_rect", "left rectified image (raw)")
    right_image_topic: str = setting("right/image_rect", "right rectified image (raw)")
    left_compressed_topic: str = setting("left/image_rect/compressed",
                                         "left rectified image (compressed)")
    right_compressed_topic: str = setting("right/image_rect/compressed",
                                          "right rectified image (compressed)")
    left_info_topic: str = setting("left/camera_info", "left CameraInfo")
    right_info_topic: str = setting("right/camera_info", "right CameraInfo")
    slop_s: float = setting(0.005, "largest stamp difference of a left/right pair", unit="s",
                            ge=0.0)
    use_header_stamp: bool = setting(True, "pair by header.stamp (else by bag record time)")


@dataclass(frozen=True)
class SkinConfig(ConfigBase):
    """Skin-colour mask: YCrCb box, optional adaptive Gaussian refinement, morphology."""

    cr_range: tuple[int, int] = setting((133, 173), "Cr range of skin (Chai & Ngan 1999)",
                                        ge=0, le=255)
    cb_range: tuple[int, int] = setting((77, 127), "Cb range of skin (Chai & Ngan 1999)",
                                        ge=0, le=255)
    y_min: int = setting(40, "darkest luma treated as skin (too dark = unreliable chroma)",
                         ge=0, le=255)
    adaptive: bool = setting(False, "refit a CrCb Gaussian on the cleaned box mask and "
                             "threshold its Mahalanobis distance")
    adaptive_within_box: bool = setting(True, "the adaptive model only tightens the box (never "
                                        "adds pixels outside it)")
    adaptive_max_mahalanobis: float = setting(2.5, "Mahalanobis radius of the adaptive model",
                                              gt=0.0)
    adaptive_min_pixels: int = setting(500, "fewest box pixels needed to fit the adaptive "
                                       "model", unit="px", gt=0)
    open_kernel_px: int = setting(5, "opening kernel (removes speckle)", unit="px", ge=1)
    close_kernel_px: int = setting(5, "closing kernel (fills small gaps)", unit="px", ge=1)
    min_area_px: int = setting(400, "smallest connected component kept", unit="px", ge=0)

    def validate(self) -> None:
        for name in ("cr_range", "cb_range"):
            lo, hi = getattr(self, name)
            if lo >= hi:
                raise ConfigError(f"SkinConfig.{name} = {(lo, hi)}: low must be < high")


@dataclass(frozen=True)
class RoiConfig(ConfigBase):
    """Hand ROI from skin blobs, stereo, size at depth, shape and a tracking prior."""

    min_depth_m: float = setting(0.25, "nearest hand depth searched", unit="m", gt=0.0)
    max_depth_m: float = setting(2.0, "farthest hand depth searched", unit="m", gt=0.0)
    min_hand_size_m: float = setting(0.13, "smallest hand extent (blob long side, with some "
                                     "wrist); adult hands are 15-22 cm", unit="m", gt=0.0)
    max_hand_size_m: float = setting(0.28, "largest hand extent (hand + a bit of forearm)",
                                     unit="m", gt=0.0)
    size_tolerance_m: float = setting(0.05, "size score falls to 0 this far outside the range",
                                      unit="m", gt=0.0)
    max_candidates: int = setting(6, "largest left blobs that are scored", gt=0)
    min_stereo_iou: float = setting(0.3, "least left/right blob IoU for a stereo match",
                                    ge=0.0, le=1.0)
    good_stereo_iou: float = setting(0.7, "stereo IoU that earns the full stereo score (the "
                                     "score is weight_stereo * min(IoU / this, 1))", gt=0.0,
                                     le=1.0)
    finger_defect_frac: float = setting(0.08, "a convexity defect deeper than this fraction of "
                                        "the blob's long side counts as a finger gap", gt=0.0)
    weight_stereo: float = setting(3.0, "score weight of the stereo match", ge=0.0)
    weight_size: float = setting(1.0, "score weight of the size-at-depth test", ge=0.0)
    weight_fingers: float = setting(0.25, "score weight of the finger-gap count (weak: ragged "
                                    "background blobs have deep defects too)", ge=0.0)
    weight_prior: float = setting(2.0, "score weight of the overlap with a prior ROI", ge=0.0)
    min_score: float = setting(1.5, "best candidate below this = no hand", ge=0.0)
    default_depth_m: float = setting(0.6, "depth used for an external ROI whose stereo match "
                                     "fails", unit="m", gt=0.0)
    margin_frac: float = setting(0.15, "square ROI side = long side * (1 + 2 * margin)",
                                 ge=0.0)
    min_window_size_m: float = setting(
        0.15, "the window's side before the margin is at least this at the hand's depth: a "
        "blob that is only part of the hand (shadowed or dark skin outside the colour box, a "
        "cut finger) still gets a hand-sized window; 15 cm = a small adult hand's length",
        unit="m", ge=0.0)
    dense_stereo: bool = setting(True, "compute a dense disparity map (SGBM) to split blobs "
                                 "into depth layers and score protrusion (needs the images)")
    stereo_downscale: int = setting(2, "the dense disparity is computed at 1/this resolution "
                                    "(2: ~20 ms at 640x480 on one core)", choices=(1, 2, 4))
    sgbm_block_px: int = setting(5, "SGBM matching block side at the reduced resolution",
                                 unit="px", ge=3)
    hand_depth_halfrange_m: float = setting(0.1, "a depth layer keeps pixels within this "
                                            "depth of its disparity peak (a hand pointing at "
                                            "the camera is up to ~ 20 cm deep)", unit="m",
                                            gt=0.0)
    max_layers: int = setting(6, "depth layers extracted per skin blob", gt=0)
    min_blob_area_px: int = setting(400, "smallest layer / forearm-split piece scored",
                                    unit="px", gt=0)
    ring_width_frac: float = setting(0.2, "width of the ring around a blob whose disparity "
                                     "is the blob's surroundings, fraction of its long side",
                                     gt=0.0)
    behind_margin_m: float = setting(0.04, "a surrounding pixel is behind the blob when it is "
                                     "at least this much farther", unit="m", gt=0.0)
    behind_margin_px: float = setting(
        4.0, "... and at least this much smaller in disparity: the dense disparity (SGBM at "
        "half resolution) is off by 1-2 px on textured surfaces, i.e. 2-5 cm at 1-1.5 m, so "
        "a patch on a wall would look a few cm in front of its surroundings (synthetic "
        "target_lab, seed 7)", unit="px", ge=0.0)
    good_behind_frac: float = setting(0.6, "fraction of the surrounding ring behind the blob "
                                      "that earns the full protrusion score (a hand is held in "
                                      "front of what lies around it; a sleeve at its depth "
                                      "covers part of the ring)", gt=0.0, le=1.0)
    weight_protrusion: float = setting(3.0, "score weight of the protrusion cue", ge=0.0)
    split_forearm: bool = setting(True, "also score the hand end of a too-long blob, cut at "
                                  "the wrist (narrowest section)")
    wrist_distance_m: tuple[float, float] = setting(
        (0.09, 0.22), "distance from a blob end to the wrist cut searched when the blob is "
        "longer than max_hand_size_m (wrist to fingertip is 16-21 cm in adults)", unit="m",
        gt=0.0)
    arm_hand_length_m: float = setting(
        0.2, "a blob that touches the image border at one end is an arm entering the picture; "
        "when it is longer than this at its depth and no wrist is found, the hand is its part "
        "within this distance of the free end (adult wrist-to-fingertip length 16-21 cm). On "
        "`target_lab` (100 pairs, seeds 1000003 and 7) the median window went from 1.22x to "
        "1.14x / 1.16x the labelled hand's window", unit="m", gt=0.0)
    max_arm_length_m: float = setting(
        0.8, "a border blob longer than this at its depth is no arm (shoulder to fingertip is "
        "70-80 cm in adults) and is not cut down to a hand; below arm_hand_length_m the border "
        "rule is off", unit="m", gt=0.0)
    max_wrist_ratio: float = setting(0.8, "the wrist (narrowest section) must be at most this "
                                     "fraction of the hand piece's widest section", gt=0.0,
                                     le=1.0)
    min_forearm_solidity: float = setting(
        0.8, "the part a wrist cut removes must be this convex (area / convex hull area) to be "
        "a forearm: fingers cut off at the knuckles are several thin pieces (solidity ~0.5), "
        "a forearm one tapered cylinder (~0.9)", gt=0.0, le=1.0)
    check_disparity: bool = setting(
        True, "after the full search (images given), measure the chosen blob's disparity again "
        "with a full-resolution SGBM over its box (median over its skin pixels, searched "
        "within +- hand_depth_halfrange_m of depth); when it disagrees with the mask match by "
        "more than max_disparity_disagreement_px it replaces it. On target_lab (100 pairs each "
        "of seeds 1000003 and 7) the mean error fell from 7.6 / 5.9 px to 5.5 / 4.8 px and the "
        "errors above 15 px from 13 / 9 pairs to 7 / 4, for +2-6 ms per pair")
    max_disparity_disagreement_px: float = setting(
        5.0, "check_disparity: the mask match is kept unless the local SGBM median differs by "
        "more than this (where both are right they differ by their 1-3 px of noise; 3 and 8 "
        "px gave mean errors within 0.4 px of 5 on the pairs above)", unit="px", gt=0.0)
    refine_skin: bool = setting(False, "fit the skin colour on the chosen blob, re-segment "
                                "and search again (only when the masks are not given)")
    refine_max_mahalanobis: float = setting(3.0, "Mahalanobis radius of the refined colour "
                                            "model", gt=0.0)
    track_search_margin_frac: float = setting(
        0.5, "tracking fast path: the searched window is the prior box's long side times "
        "(1 + 2 * this), centred on the prior (a hand moving ~ its own size per second moves "
        "~ 3 % of it between 30 Hz frames; the rest absorbs a late or grown prior)", gt=0.0)
    track_downscale: int = setting(2, "tracking fast path: the window's skin masks are computed "
                                   "at 1/this resolution", choices=(1, 2, 4))
    track_max_depth_change_m: float = setting(
        0.15, "tracking fast path: the disparity searched is the prior's +- this depth change "
        "(when the prior's disparity is known)", unit="m", gt=0.0)

    def validate(self) -> None:
        if self.min_depth_m >= self.max_depth_m:
            raise ConfigError(f"RoiConfig: min_depth_m ({self.min_depth_m}) must be < "
                              f"max_depth_m ({self.max_depth_m})")
        if self.min_hand_size_m >= self.max_hand_size_m:
            raise ConfigError(f"RoiConfig: min_hand_size_m ({self.min_hand_size_m}) must be < "
                              f"max_hand_size_m ({self.max_hand_size_m})")
        lo, hi = self.wrist_distance_m
        if lo >= hi:
            raise ConfigError(f"RoiConfig.wrist_distance_m = {(lo, hi)}: low must be < high")


@dataclass(frozen=True)
class StereoCropConfig(ConfigBase):
    """Square stereo crops fed to the network."""

    out_size_px: int = setting(256, "crop side after resizing", unit="px", gt=0)
    min_side_px: float = setting(64.0, "smallest crop window side in the full image", unit="px",
                                 gt=0.0)


@dataclass(frozen=True)
class AugmentConfig(ConfigBase):
    """Photometric and geometric augmentations for pretraining."""

    brightness: float = setting(0.3, "brightness factor drawn in [1 - b, 1 + b]", ge=0.0, lt=1.0)
    contrast: float = setting(0.3, "contrast factor drawn in [1 - c, 1 + c]", ge=0.0, lt=1.0)
    saturation: float = setting(0.3, "saturation factor drawn in [1 - s, 1 + s]", ge=0.0,
                                lt=1.0)
    hue_deg: float = setting(10.0, "hue shift drawn in [-h, h]", unit="deg", ge=0.0, le=180.0)
    blur_prob: float = setting(0.3, "probability of a Gaussian blur", ge=0.0, le=1.0)
    blur_sigma_px: tuple[float, float] = setting((0.5, 1.5), "blur sigma range", unit="px",
                                                 gt=0.0)
    rotation_deg: float = setting(30.0, "in-plane rotation drawn in [-r, r] (monocular only)",
                                  unit="deg", ge=0.0, le=180.0)
