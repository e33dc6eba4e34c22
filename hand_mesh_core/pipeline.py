"""End-to-end inference API: a rectified stereo pair in, an absolute hand mesh out.

This is the one entry point that the CLI demo and the ROS node call. It never imports ROS.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from hand_mesh_core.geometry.camera import StereoCamera

__all__ = ["HandMeshResult", "HandMeshEstimator"]


@dataclass(frozen=True)
class HandMeshResult:
    """One recovered hand, in the left optical frame.

    Attributes:
        vertices_m: (V, 3) float32 mesh vertices, metres, left optical frame.
        joints_m: (21, 3) float32 joints, metres, left optical frame, canonical order.
        faces: (F, 3) int32 triangle indices, counter-clockwise seen from outside.
        confidence: in [0, 1], from left-right consistency.
        handedness: "left" or "right".
        uv_left: (V, 2) float32 vertex pixels in the full left image.
        roi_left: (x0, y0, width, height) of the left crop in full-image px.
    """

    vertices_m: np.ndarray
    joints_m: np.ndarray
    faces: np.ndarray
    confidence: float
    handedness: str
    uv_left: np.ndarray
    roi_left: tuple[float, float, float, float]


@runtime_checkable
class HandMeshEstimator(Protocol):
    """Anything that turns a rectified pair into a hand mesh (the model, or a test double)."""

    def predict(self, left: np.ndarray, right: np.ndarray, camera: StereoCamera,
                roi: tuple[float, float, float, float] | None = None
                ) -> HandMeshResult | None:
        """Recover the hand.

        Args:
            left, right: (H, W, 3) uint8 RGB rectified images.
            camera: the pair's intrinsics and baseline (full-image).
            roi: optional (x0, y0, width, height) of the hand in the left image, px, from an
                external detector.

        Returns:
            The hand, or None when no hand is found.
        """
        ...


# ---------------------------------------------------------------------------------------------
# Implementation: ROI -> stereo crop -> network -> HandMeshResult.

#: The checkpoint shipped with the package (loaded by ``load_estimator(None)``).
DEFAULT_MODEL_NAME = "hand_mesh_default.safetensors"
#: Where shipped assets live.
ASSETS_DIR = Path(__file__).resolve().parent / "assets"

__all__ += ["HandMeshPipeline", "load_estimator", "default_model_path", "DEFAULT_MODEL_NAME"]


def default_model_path() -> Path:
    """Path of the shipped default checkpoint."""
    return ASSETS_DIR / DEFAULT_MODEL_NAME


def _check_pair(left: np.ndarray, right: np.ndarray, camera: StereoCamera) -> None:
    if not isinstance(camera, StereoCamera):
        raise TypeError(f"camera must be a StereoCamera, got {type(camera).__name__}")
    for name, img in (("left", left), ("right", right)):
        if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 \
                or img.shape[2] != 3:
            raise ValueError(f"{name} must be an (H, W, 3) uint8 RGB array")
        if img.shape[:2] != (camera.height, camera.width):
            raise ValueError(f"{name} is {img.shape[1]}x{img.shape[0]} but the camera is "
                             f"{camera.width}x{camera.height}")


class HandMeshPipeline:
    """The full estimator: hand ROI -> stereo crop -> binocular network -> absolute mesh.

    Implements :class:`HandMeshEstimator`.

    Args:
        model: the trained network (eval mode is set here).
        handedness: "right" or "left": the hand to report. A left hand uses the mirrored
            topology, whose faces are the right hand's with reversed winding
            (``HandModel.faces_for("left")``).
        device: torch device for inference.
        roi_config: settings of the skin/stereo hand ROI (``hand_mesh_core.data.config``).
    """

    def __init__(self, model: Any, handedness: str = "right", device: str = "cpu",
                 roi_config: Any = None) -> None:
        import torch

        from hand_mesh_core.data.types import HANDEDNESS_CHOICES
        from hand_mesh_core.model.network import HandMeshNet

        if not isinstance(model, HandMeshNet):
            raise TypeError(f"model must be a HandMeshNet, got {type(model).__name__}")
        if handedness not in HANDEDNESS_CHOICES:
            raise ValueError(f"handedness must be one of {list(HANDEDNESS_CHOICES)}, "
                             f"got {handedness!r}")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.handedness = handedness
        self.roi_config = roi_config
        faces = model.faces.cpu().numpy().astype(np.int32)
        self.faces = faces if handedness == "right" else faces[:, ::-1].copy()

    def crop_for(self, left: np.ndarray, right: np.ndarray, camera: StereoCamera,
                 roi: tuple[float, float, float, float] | None = None) -> Any:
        """The stereo crop of the hand: from ``roi`` (external box) or the skin/stereo ROI
        finder. Returns a ``StereoCrop`` or None when no hand is found."""
        from hand_mesh_core.data.roi import find_hand_roi, roi_from_box
        from hand_mesh_core.train.batch import roi_stereo_crop

        if roi is not None:
            hand = roi_from_box(left, right, camera, tuple(roi), self.roi_config)
        else:
            hand = find_hand_roi(left, right, camera, self.roi_config)
        if hand is None:
            return None
        return roi_stereo_crop(hand.left, hand.disparity_px, self.model.config.input_size)

    def predict_crop(self, left: np.ndarray, right: np.ndarray, camera: StereoCamera,
                     crop: Any) -> HandMeshResult:
        """Run the network on a given ``StereoCrop`` of the pair."""
        import torch

        from hand_mesh_core.model.decode import CropBatch

        lc = crop.left.apply(left)
        rc = crop.right.apply(right)

        def tensor(img: np.ndarray) -> "torch.Tensor":
            return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None].to(
                self.device)
        with torch.inference_mode():
            out = self.model(tensor(lc), tensor(rc), CropBatch.from_crops([crop]),
                             camera.K_tensor(device=self.device), camera.baseline_m)
        return HandMeshResult(
            vertices_m=out.vertices[0].float().cpu().numpy(),
            joints_m=out.joints[0].float().cpu().numpy(), faces=self.faces,
            confidence=float(out.confidence[0]), handedness=self.handedness,
            uv_left=out.uv_left[0].float().cpu().numpy(),
            roi_left=(crop.left.x0, crop.left.y0, crop.left.width, crop.left.height))

    def predict(self, left: np.ndarray, right: np.ndarray, camera: StereoCamera,
                roi: tuple[float, float, float, float] | None = None
                ) -> HandMeshResult | None:
        """See :meth:`HandMeshEstimator.predict`."""
        _check_pair(left, right, camera)
        crop = self.crop_for(left, right, camera, roi)
        if crop is None:
            return None
        return self.predict_crop(left, right, camera, crop)


def load_estimator(model_path: str | Path | None = None, device: str = "cpu",
                   handedness: str = "right") -> HandMeshPipeline:
    """Load a :class:`HandMeshPipeline` from a safetensors checkpoint.

    Args:
        model_path: ``.safetensors`` checkpoint (JSON sidecar beside it); None or "default"
            loads the shipped default checkpoint.
        device: "cpu", "cuda", "cuda:N".
        handedness: the hand to report ("right" or "left").

    Raises:
        FileNotFoundError: the checkpoint (or the shipped default) is missing.
        hand_mesh_core.model.checkpoint.CheckpointError: refused or corrupt checkpoint.
    """
    from hand_mesh_core.model.checkpoint import load_checkpoint

    if model_path is None or str(model_path) == "default":
        model_path = default_model_path()
        if not model_path.is_file():
            raise FileNotFoundError(
                f"the default checkpoint {model_path} is not installed; train one with "
                "`hand-mesh pretrain` and pass its path")
    model, _ = load_checkpoint(model_path, device=device)
    return HandMeshPipeline(model, handedness=handedness, device=device)
