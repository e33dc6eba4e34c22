"""End-to-end inference API: a rectified stereo pair in, an absolute hand mesh out.

This is the one entry point that the CLI demo and the ROS node call. It never imports ROS.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import math

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
        confidence: in [0, 1], from left-right consistency; NaN for monocular inference
            (one image: no consistency to measure).
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

__all__ += ["HandMeshPipeline", "load_estimator", "default_model_path", "DEFAULT_MODEL_NAME",
            "ROI_FALLBACKS"]


#: ``HandMeshPipeline.find_roi`` searches without a prior / after the window failed.
ROI_FALLBACKS = ("full", "quick", "none")


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

    Monocular inference (the paper's z-head variant, ``depth_mode="mono"``): the network runs on
    the LEFT crop only (:meth:`~hand_mesh_core.model.network.HandMeshNet.forward_mono`), its
    depth from the z-head; the right image is never read by the network. The hand ROI
    (:meth:`find_roi`: skin + stereo search, or an external box whose disparity it measures)
    still looks at both images to find the hand and size the crop; pass ``roi`` and use
    :meth:`predict_crop` with a given crop to run on one image alone.

    Args:
        model: the trained network (eval mode is set here).
        handedness: "right" or "left": the hand in the images. The network is trained on
            right hands; for "left" the pair is mirrored (both images flipped horizontally and
            swapped, ``cx' = W - 1 - cx``: a rectified pair of the mirrored world showing a
            right hand), the network runs on it and its mesh is mapped back with
            ``(x, y, z) -> (B - x, y, z)`` and the faces' winding reversed
            (``HandModel.faces_for("left")``). Derivation: :mod:`hand_mesh_core.model.mirror`.
        device: torch device for inference.
        roi_config: settings of the skin/stereo hand ROI (``hand_mesh_core.data.config``).
        monocular: run the network on the left image only (see above). None (default): auto,
            True when the network has a z-head (``depth_mode="mono"``). False on a z-head
            network runs its binocular forward (both branches, depth from the left branch's
            z-head, left-right confidence).

    Raises:
        TypeError: ``model`` is not a HandMeshNet.
        ValueError: unknown ``handedness``; ``monocular=True`` on a network without a z-head.
    """

    def __init__(self, model: Any, handedness: str = "right", device: str = "cpu",
                 roi_config: Any = None, monocular: bool | None = None) -> None:
        import torch

        from hand_mesh_core.data.types import HANDEDNESS_CHOICES
        from hand_mesh_core.model.network import HandMeshNet

        if not isinstance(model, HandMeshNet):
            raise TypeError(f"model must be a HandMeshNet, got {type(model).__name__}")
        if handedness not in HANDEDNESS_CHOICES:
            raise ValueError(f"handedness must be one of {list(HANDEDNESS_CHOICES)}, "
                             f"got {handedness!r}")
        if monocular is None:
            monocular = model.z_head is not None
        elif not isinstance(monocular, bool):
            raise TypeError(f"monocular must be True, False or None (auto), got "
                            f"{type(monocular).__name__}")
        elif monocular and model.z_head is None:
            raise ValueError("monocular=True needs a z-head network (depth_mode='mono'); this "
                             f"one has depth_mode={model.config.depth_mode!r}: use "
                             "monocular=False or None (auto)")
        self.monocular = monocular
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.handedness = handedness
        self.roi_config = roi_config
        faces = model.faces.cpu().numpy().astype(np.int32)
        if handedness == "left":
            from hand_mesh_core.model.mirror import mirror_faces
            faces = mirror_faces(faces)
        self.faces = faces

    def find_roi(self, left: np.ndarray, right: np.ndarray, camera: StereoCamera,
                 roi: tuple[float, float, float, float] | None = None,
                 prior: tuple[float, float, float, float] | None = None,
                 prior_disparity_px: float | None = None, fallback: str = "full") -> Any:
        """The hand's ``HandRoi`` (``hand_mesh_core.data.roi``), or None when no hand is found.

        Args:
            left, right: (H, W, 3) uint8 RGB rectified images of ``camera``'s size.
            camera: the pair.
            roi: external box ``(x0, y0, w, h)`` (a detector's), px: trusted, only its
                disparity is measured (``roi_from_box``).
            prior: where the hand was (``(x0, y0, w, h)``, px; e.g. the last ROI window):
                the tracking fast path searches a window around it (``track_hand_roi``, a few
                ms). Ignored with ``roi``.
            prior_disparity_px: the hand's last disparity (px), narrows the fast path's
                disparity search; None searches the whole depth range.
            fallback: the search without a prior or when the window holds no hand, one of
                :data:`ROI_FALLBACKS`: "full" (``find_hand_roi``, with the prior; accurate,
                30-100 ms at 640x480), "quick" (``quick_hand_roi``: the fast path over the
                whole image, ~5 ms, less accurate) or "none" (None).

        Raises:
            ValueError: unknown ``fallback``.
        """
        from hand_mesh_core.data.roi import (find_hand_roi, quick_hand_roi, roi_from_box,
                                             track_hand_roi)

        if fallback not in ROI_FALLBACKS:
            raise ValueError(f"fallback must be one of {list(ROI_FALLBACKS)}, got {fallback!r}")
        if roi is not None:
            return roi_from_box(left, right, camera, tuple(roi), self.roi_config)
        if prior is not None:
            hand = track_hand_roi(left, right, camera, tuple(prior), self.roi_config,
                                  prior_disparity_px=prior_disparity_px)
            if hand is not None:
                return hand
        if fallback == "quick":
            return quick_hand_roi(left, right, camera, self.roi_config)
        if fallback == "full":
            return find_hand_roi(left, right, camera, self.roi_config,
                                 prior=None if prior is None else tuple(prior))
        return None

    def crop_for(self, left: np.ndarray, right: np.ndarray, camera: StereoCamera,
                 roi: tuple[float, float, float, float] | None = None,
                 prior: tuple[float, float, float, float] | None = None,
                 prior_disparity_px: float | None = None) -> Any:
        """The stereo crop of the hand: from ``roi`` (external box), or the skin/stereo ROI
        finder (tracking fast path around ``prior`` when given, see :meth:`find_roi`).
        Returns a ``StereoCrop`` (its ``shift_px`` is the hand's disparity) or None when no
        hand is found."""
        from hand_mesh_core.train.batch import roi_stereo_crop

        hand = self.find_roi(left, right, camera, roi, prior, prior_disparity_px)
        if hand is None:
            return None
        return roi_stereo_crop(hand.left, hand.disparity_px, self.model.config.input_size)

    def predict_crop(self, left: np.ndarray, right: np.ndarray, camera: StereoCamera,
                     crop: Any) -> HandMeshResult:
        """Run the network on a given ``StereoCrop`` of the pair.

        ``crop`` is always a crop of the pair as given (its ``roi_left`` is reported). For a
        left hand the network sees the mirrored pair through the mirrored crop, which samples
        exactly the flipped and swapped crops (:func:`~hand_mesh_core.model.mirror.
        mirror_stereo_crop`), and the mesh comes back in this pair's left optical frame.
        Monocular pipelines (:attr:`monocular`) read only ``left`` and ``crop.left``.
        """
        if self.monocular:
            return self._predict_crop_mono(left, camera, crop)
        import torch

        from hand_mesh_core.geometry.projection import project
        from hand_mesh_core.model.decode import CropBatch
        from hand_mesh_core.model.mirror import (mirror_camera, mirror_points,
                                                 mirror_stereo_crop, mirror_stereo_images)

        roi_left = (crop.left.x0, crop.left.y0, crop.left.width, crop.left.height)
        net_camera, net_crop = camera, crop
        if self.handedness == "left":
            left, right = mirror_stereo_images(left, right)
            net_camera = mirror_camera(camera)
            net_crop = mirror_stereo_crop(crop, camera.width)
        lc = net_crop.left.apply(left)
        rc = net_crop.right.apply(right)

        def tensor(img: np.ndarray) -> "torch.Tensor":
            return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None].to(
                self.device)
        with torch.inference_mode():
            out = self.model(tensor(lc), tensor(rc), CropBatch.from_crops([net_crop]),
                             net_camera.K_tensor(device=self.device), camera.baseline_m)
        vertices = out.vertices[0].float().cpu()
        joints = out.joints[0].float().cpu()
        uv_left = out.uv_left[0].float().cpu()
        if self.handedness == "left":
            # New-left frame (the flipped right view) -> this pair's left frame.
            vertices = mirror_points(vertices, camera.baseline_m)
            joints = mirror_points(joints, camera.baseline_m)
            uv_left = project(vertices[None], camera.K_tensor())[0]
        return HandMeshResult(
            vertices_m=vertices.numpy(), joints_m=joints.numpy(), faces=self.faces,
            confidence=float(out.confidence[0]), handedness=self.handedness,
            uv_left=uv_left.numpy(), roi_left=roi_left)

    def _predict_crop_mono(self, left: np.ndarray, camera: StereoCamera, crop: Any
                           ) -> HandMeshResult:
        """The z-head network on the left window of ``crop`` of the left image alone.

        A left hand: the flipped left image is the camera C' of the mirrored world
        (``cx' = W - 1 - cx``, coordinates ``x_C' = -x_L``; :mod:`hand_mesh_core.model.mirror`,
        step 1) showing a right hand; the flipped left window samples exactly the flipped crop
        (step 4), and the mesh comes back with ``x -> -x``.
        """
        import torch

        from hand_mesh_core.geometry.crop import StereoCrop
        from hand_mesh_core.geometry.projection import project
        from hand_mesh_core.model.decode import CropBatch
        from hand_mesh_core.model.mirror import mirror_camera, mirror_stereo_crop

        window = crop.left
        roi_left = (window.x0, window.y0, window.width, window.height)
        image, net_camera = left, camera
        if self.handedness == "left":
            image = np.ascontiguousarray(left[:, ::-1])
            net_camera = mirror_camera(camera)
            # the mirrored left window: a zero-shift pair's left window, mirrored
            window = mirror_stereo_crop(StereoCrop(window, 0.0), camera.width).left
        lc = window.apply(image)
        with torch.inference_mode():
            out = self.model.forward_mono(
                torch.from_numpy(np.ascontiguousarray(lc.transpose(2, 0, 1)))[None].to(
                    self.device), CropBatch.from_crops([window]),
                net_camera.K_tensor(device=self.device), "left")
        vertices = out.vertices[0].float().cpu()
        joints = out.joints[0].float().cpu()
        uv_left = out.uv_left[0].float().cpu()
        if self.handedness == "left":
            flip_x = torch.tensor([-1.0, 1.0, 1.0])  # camera C' -> this pair's left frame
            vertices, joints = vertices * flip_x, joints * flip_x
            uv_left = project(vertices[None], camera.K_tensor())[0]
        return HandMeshResult(
            vertices_m=vertices.numpy(), joints_m=joints.numpy(), faces=self.faces,
            confidence=math.nan, handedness=self.handedness, uv_left=uv_left.numpy(),
            roi_left=roi_left)

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
                   handedness: str = "right", monocular: bool | None = None
                   ) -> HandMeshPipeline:
    """Load a :class:`HandMeshPipeline` from a safetensors checkpoint.

    Args:
        model_path: ``.safetensors`` checkpoint (JSON sidecar beside it); None or "default"
            loads the shipped default checkpoint.
        device: "cpu", "cuda", "cuda:N".
        handedness: the hand in the images, "right" or "left" (left pairs are mirrored
            for the right-hand network, see :class:`HandMeshPipeline`).
        monocular: left image only (z-head networks); None = auto (a z-head checkpoint runs
            monocular), see :class:`HandMeshPipeline`.

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
    return HandMeshPipeline(model, handedness=handedness, device=device, monocular=monocular)


class KnownHandednessEstimator:
    """Runs each pair of a labelled set through the pipeline of its sample's handedness.

    For evaluation on data that mixes left and right hands (``target_lab`` draws left hands
    with probability 0.5) when the side is known, as it is on the robot (the ROS node's
    ``handedness`` parameter) and in STB (always left). ``predict`` receives only images, so a
    pair is recognised by the identity of its left image array: it must be the ``left`` array
    of one of ``samples`` (a cached sequence keeps those arrays alive).

    Implements :class:`HandMeshEstimator`.

    Args:
        pipeline: the estimator (either handedness); its model, device and ROI settings are
            shared by a twin of the other handedness.
        samples: the pairs this estimator will be asked about, each with ``handedness``.

    Raises:
        TypeError: ``pipeline`` is not a :class:`HandMeshPipeline`.
    """

    def __init__(self, pipeline: HandMeshPipeline, samples: Any) -> None:
        if not isinstance(pipeline, HandMeshPipeline):
            raise TypeError(f"pipeline must be a HandMeshPipeline, got {type(pipeline).__name__}")
        other = "left" if pipeline.handedness == "right" else "right"
        self.pipelines = {pipeline.handedness: pipeline,
                          other: HandMeshPipeline(pipeline.model, other, str(pipeline.device),
                                                  pipeline.roi_config, pipeline.monocular)}
        self._samples = list(samples)  # keeps the arrays (and so their ids) alive
        self._handedness = {id(s.left): s.handedness for s in self._samples}

    def predict(self, left: np.ndarray, right: np.ndarray, camera: StereoCamera,
                roi: tuple[float, float, float, float] | None = None
                ) -> HandMeshResult | None:
        """See :meth:`HandMeshEstimator.predict`.

        Raises:
            ValueError: ``left`` is not the left image of one of the samples.
        """
        hand = self._handedness.get(id(left))
        if hand is None:
            raise ValueError("KnownHandednessEstimator only runs the pairs it was built with "
                             "(the left image array of one of its samples)")
        return self.pipelines[hand].predict(left, right, camera, roi)


__all__ += ["KnownHandednessEstimator"]
