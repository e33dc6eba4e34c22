"""The binocular hand mesh network (Chen et al., ICCV 2021, Sec. 3.1) and its z-head variant.

Two weight-sharing branches (one :class:`ResNetBackbone` + mesh head run on the left and the right
crop) regress per-vertex ``(u, v)`` in crop pixels as offsets from a template prior (the hand
template drawn at the crop centre, ``template_fill`` of the crop side). The mesh head is linear in
the feature (a learned linear basis of vertex offsets), zero-initialised so that an untrained
network outputs the template prior.

- ``depth_mode="stereo"``: depth per vertex from the two branches' disparity
  (:func:`~hand_mesh_core.model.decode.decode_stereo`).
- ``depth_mode="mono"`` (the paper's z-head): each branch also regresses a root depth
  ``z_root = mono_depth_ref_m * fx / window_px * exp(s)`` and per-vertex offsets
  ``rel_depth_scale_m * r_i``; it is trained with the same stereo losses and at test time runs on
  one image (:meth:`HandMeshNet.forward_mono`). :func:`with_z_head` turns a trained binocular
  network into a z-head one (every weight kept, zero z-head) to start that training from.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from hand_mesh_core.model.backbone import ResNetBackbone, normalize_images
from hand_mesh_core.model.confidence import (DEFAULT_CONFIDENCE_COEF, confidence_from_features,
                                             consistency_features)
from hand_mesh_core.model.config import NetworkConfig
from hand_mesh_core.model.decode import CropBatch, decode_mono, decode_stereo
from hand_mesh_core.model.topology import HandTopology

__all__ = ["HandMeshNet", "HandNetOutput", "BranchOutput", "template_uv_prior", "with_z_head"]


def template_uv_prior(template_vertices: torch.Tensor, input_size: int, fill: float
                      ) -> torch.Tensor:
    """The template's (x, y) drawn centred in the crop: (V, 3) metres -> (V, 2) crop px.

    The template's bounding box is centred on the crop centre and its larger side scaled to
    ``fill * input_size``.
    """
    xy = template_vertices[:, :2].double()
    lo, hi = xy.min(0).values, xy.max(0).values
    extent = float((hi - lo).max())
    if not extent > 0:
        raise ValueError("template_vertices has zero extent in x, y")
    centre_px = (input_size - 1) / 2.0
    return ((xy - (lo + hi) / 2) * (fill * input_size / extent) + centre_px).float()


@dataclass(frozen=True)
class BranchOutput:
    """Raw predictions of one branch.

    Attributes:
        uv_crop: (B, V, 2) crop px.
        root_log_scale: (B,) z-head log depth correction, or None (stereo mode).
        rel_depth_m: (B, V) z-head per-vertex depth offsets, metres, or None.
    """

    uv_crop: torch.Tensor
    root_log_scale: torch.Tensor | None
    rel_depth_m: torch.Tensor | None


@dataclass(frozen=True)
class HandNetOutput:
    """Network output for B hands.

    Attributes:
        vertices: (B, V, 3) metres, left optical frame.
        joints: (B, 21, 3) metres, left optical frame (``joint_regressor @ vertices``).
        vertices_right: (B, V, 3) right-branch mesh, metres, RIGHT optical frame, or None
            (monocular inference).
        uv_left_crop, uv_left: (B, V, 2) left-branch vertex px in the crop / full image.
        uv_right_crop, uv_right: (B, V, 2) right-branch px, or None (monocular inference).
        depth_m: (B, V) per-vertex z of ``vertices``, metres.
        confidence: (B,) in (0, 1) from left-right consistency, or None (monocular inference).
        consistency: (B, 2) the features behind ``confidence`` (photo, disparity_px; see
            :mod:`hand_mesh_core.model.confidence`), or None.
    """

    vertices: torch.Tensor
    joints: torch.Tensor
    vertices_right: torch.Tensor | None
    uv_left_crop: torch.Tensor
    uv_left: torch.Tensor
    uv_right_crop: torch.Tensor | None
    uv_right: torch.Tensor | None
    depth_m: torch.Tensor
    confidence: torch.Tensor | None
    consistency: torch.Tensor | None = None


def _check_images(name: str, images: torch.Tensor, size: int, batch: int | None = None) -> None:
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(images).__name__}")
    if images.dim() != 4 or images.shape[1] != 3 or images.shape[-2:] != (size, size):
        raise ValueError(f"{name} must have shape (B, 3, {size}, {size}), got "
                         f"{tuple(images.shape)}")
    if batch is not None and images.shape[0] != batch:
        raise ValueError(f"{name} has batch {images.shape[0]}, expected {batch} (one crop each)")


class HandMeshNet(nn.Module):
    """Binocular hand mesh network with weight-sharing branches.

    Args:
        config: network settings.
        topology: the hand model topology (vertex count, faces, joint regressor, template).
    """

    def __init__(self, config: NetworkConfig, topology: HandTopology) -> None:
        super().__init__()
        if not isinstance(config, NetworkConfig):
            raise TypeError(f"config must be a NetworkConfig, got {type(config).__name__}")
        if not isinstance(topology, HandTopology):
            raise TypeError(f"topology must be a HandTopology, got {type(topology).__name__}")
        self.config = config
        self.topology_hash = topology.topology_hash
        v = topology.num_vertices
        self.num_vertices = v
        self.backbone = ResNetBackbone(config)
        self.uv_head = nn.Linear(config.feature_dim, 2 * v)
        nn.init.zeros_(self.uv_head.weight)
        nn.init.zeros_(self.uv_head.bias)
        self.z_head: nn.Linear | None = None
        if config.depth_mode == "mono":
            self.z_head = nn.Linear(config.feature_dim, 1 + v)
            nn.init.zeros_(self.z_head.weight)
            nn.init.zeros_(self.z_head.bias)
        self.register_buffer("faces", topology.faces.clone())
        self.register_buffer("joint_regressor", topology.joint_regressor.float().clone())
        self.register_buffer("template_uv", template_uv_prior(
            topology.template_vertices, config.input_size, config.template_fill))
        self.register_buffer("confidence_coef", torch.tensor(DEFAULT_CONFIDENCE_COEF))

    # ------------------------------------------------------------------ branches
    def branch(self, images: torch.Tensor) -> BranchOutput:
        """Run one branch on crops (B, 3, S, S), uint8 or float in [0, 1]."""
        return self._branch_normalized(normalize_images(images))

    def _branch_normalized(self, images: torch.Tensor) -> BranchOutput:
        feat = self.backbone(images).float()
        # The heads run in float32 even under autocast: fp16 (u, v) would quantise the disparity.
        with torch.autocast(device_type=feat.device.type, enabled=False):
            uv = self.template_uv + self.config.uv_range_px * self.uv_head(feat).view(
                -1, self.num_vertices, 2)
            if self.z_head is None:
                return BranchOutput(uv, None, None)
            z = self.z_head(feat)
        return BranchOutput(uv, z[:, 0], self.config.rel_depth_scale_m * z[:, 1:])

    def _mono_depth(self, out: BranchOutput, crops: CropBatch, K: torch.Tensor) -> torch.Tensor:
        fx = K.to(out.uv_crop).expand(len(crops), 3, 3)[:, 0, 0]
        window_px = self.config.input_size / crops.scale_x.to(out.uv_crop)
        z_root = self.config.mono_depth_ref_m * fx / window_px * torch.exp(out.root_log_scale)
        return z_root[:, None] + out.rel_depth_m

    def joints_from_vertices(self, vertices: torch.Tensor) -> torch.Tensor:
        """(B, V, 3) -> (B, 21, 3) with the hand model's joint regressor."""
        return torch.einsum("jv,bvc->bjc", self.joint_regressor.to(vertices), vertices)

    # ------------------------------------------------------------------ forward
    def forward(self, left: torch.Tensor, right: torch.Tensor, crops: CropBatch,
                K: torch.Tensor, baseline_m: float | torch.Tensor) -> HandNetOutput:
        """Binocular forward pass.

        Args:
            left, right: (B, 3, S, S) crops of a rectified pair (S = ``config.input_size``),
                uint8 or float in [0, 1], cut with ``crops``.
            crops: the B stereo crops.
            K: full-image intrinsics (3, 3) or (B, 3, 3).
            baseline_m: scalar or (B,) metres.

        Returns:
            :class:`HandNetOutput` (both branches; depth from triangulation in "stereo" mode,
            from each branch's z-head in "mono" mode).
        """
        size = self.config.input_size
        _check_images("left", left, size, len(crops))
        _check_images("right", right, size, len(crops))
        left, right = normalize_images(left), normalize_images(right)
        both = self._branch_normalized(torch.cat([left, right], dim=0))
        b = left.shape[0]
        uv_lc, uv_rc = both.uv_crop[:b], both.uv_crop[b:]
        crops = crops.to(device=uv_lc.device, dtype=uv_lc.dtype)
        K = K.to(uv_lc)
        disp_from_depth = None
        if self.z_head is None:
            dec = decode_stereo(uv_lc, uv_rc, crops, K, baseline_m,
                                max_depth_from_median_m=self.config.max_depth_from_median_m)
            verts, verts_r, uv_l, uv_r, depth = (dec.vertices_left, dec.vertices_right,
                                                 dec.uv_left, dec.uv_right, dec.depth_m)
        else:
            half = (BranchOutput(uv_lc, both.root_log_scale[:b], both.rel_depth_m[:b]),
                    BranchOutput(uv_rc, both.root_log_scale[b:], both.rel_depth_m[b:]))
            depth = self._mono_depth(half[0], crops, K)
            depth_r = self._mono_depth(half[1], crops, K)
            verts, uv_l = decode_mono(uv_lc, depth, crops, K, "left")
            verts_r, uv_r = decode_mono(uv_rc, depth_r, crops, K, "right")
            bl = torch.as_tensor(baseline_m, dtype=depth.dtype, device=depth.device)
            bl = bl[:, None] if bl.dim() == 1 else bl
            fx = K.expand(b, 3, 3)[:, 0, 0, None]
            disp_from_depth = fx * bl / depth.clamp_min(1e-3)
        feats = consistency_features(left, right, uv_lc, uv_rc, uv_l, uv_r,
                                     disp_from_depth)
        stacked = feats.stacked()
        conf = confidence_from_features(stacked, self.confidence_coef)
        return HandNetOutput(verts, self.joints_from_vertices(verts), verts_r, uv_lc, uv_l,
                             uv_rc, uv_r, depth, conf, stacked)

    def forward_mono(self, image: torch.Tensor, crops: CropBatch, K: torch.Tensor,
                     view: str = "left") -> HandNetOutput:
        """Monocular inference of the z-head variant on one view.

        Args:
            image: (B, 3, S, S) crops of ``view``.
            crops: the crops (for "right", ``shift_px`` places the right window).
            K: full-image intrinsics (3, 3) or (B, 3, 3).
            view: "left" or "right"; the output is always in the LEFT optical frame only when
                view is "left" (for "right" it is in the right optical frame).

        Raises:
            ValueError: the network has no z-head (``depth_mode != "mono"``), or bad shapes.
        """
        if self.z_head is None:
            raise ValueError("forward_mono needs depth_mode='mono' (the z-head); this network "
                             f"has depth_mode={self.config.depth_mode!r}")
        _check_images("image", image, self.config.input_size, len(crops))
        out = self.branch(image)
        crops = crops.to(device=out.uv_crop.device, dtype=out.uv_crop.dtype)
        K = K.to(out.uv_crop)
        depth = self._mono_depth(out, crops, K)
        verts, uv = decode_mono(out.uv_crop, depth, crops, K, view)
        return HandNetOutput(verts, self.joints_from_vertices(verts), None, out.uv_crop, uv,
                             None, None, depth, None)


def with_z_head(model: HandMeshNet) -> HandMeshNet:
    """A z-head (``depth_mode="mono"``) copy of a binocular network, every weight kept.

    The copy shares nothing with ``model`` (deep copy): same backbone, ``uv_head``, buffers,
    device, dtype and train/eval mode, plus a zero-initialised ``z_head`` (as a fresh
    ``depth_mode="mono"`` network has). So its per-branch ``(u, v)`` equal the original's, and
    its depth starts at the z-head prior: every vertex at
    ``z = mono_depth_ref_m * fx / window_px`` (``window_px = input_size / crop scale_x``), the
    starting point of the paper's monocular row ("trained with the same stereo losses"). Its
    state dict (and so its checkpoint) is the one of ``HandMeshNet(config.replace(
    depth_mode="mono"), topology)``.

    Args:
        model: a ``depth_mode="stereo"`` network (a DDP wrapper is unwrapped).

    Returns:
        The new network.

    Raises:
        TypeError: ``model`` is not a :class:`HandMeshNet`.
        ValueError: ``model`` already has a z-head (``depth_mode="mono"``).
    """
    model = getattr(model, "module", model)
    if not isinstance(model, HandMeshNet):
        raise TypeError(f"model must be a HandMeshNet, got {type(model).__name__}")
    if model.z_head is not None:
        raise ValueError("with_z_head needs a depth_mode='stereo' network; this one has "
                         f"depth_mode={model.config.depth_mode!r} (it already has a z-head)")
    out = copy.deepcopy(model)
    out.config = model.config.replace(depth_mode="mono")
    ref = model.uv_head.weight
    z_head = nn.Linear(out.config.feature_dim, 1 + out.num_vertices, device=ref.device,
                       dtype=ref.dtype)
    nn.init.zeros_(z_head.weight)
    nn.init.zeros_(z_head.bias)
    z_head.train(model.training)
    out.z_head = z_head
    return out
