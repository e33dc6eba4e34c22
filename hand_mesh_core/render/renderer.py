"""Mesh -> depth, masks and normals for one camera (rasterise, interpolate, silhouette).

The camera is outside the renderer: pass vertices already in the frame of the camera to render.
For a rectified stereo pair, the left view takes ``p_left`` and the right view
:func:`to_right_frame` ``(p_left)``. Full images share ``K``; for the crops of a
:class:`~hand_mesh_core.geometry.crop.StereoCrop` use ``crop.left.crop_K(K)`` and
``crop.right.crop_K(K)`` (same scale, principal points differing by ``shift_px * scale_x``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from hand_mesh_core.geometry.mesh import face_normals
from hand_mesh_core.render.config import RenderConfig
from hand_mesh_core.render.interpolate import interpolate_checked
from hand_mesh_core.render.rasterize import _batched_K, check_inputs, rasterize_checked
from hand_mesh_core.render.silhouette import soft_silhouette

__all__ = ["RenderOutput", "render_mesh", "MeshRenderer", "to_right_frame"]


@dataclass(frozen=True)
class RenderOutput:
    """A rendered view, batched.

    Attributes:
        depth_m: ``(B, H, W)`` z of the visible surface, metres, in the rendering camera's
            frame; **0 outside the mesh**. Differentiable w.r.t. the vertices.
        mask: ``(B, H, W)`` bool, a face covers the pixel centre (not differentiable).
        soft_mask: ``(B, H, W)`` in [0, 1], differentiable silhouette, or None if disabled.
        face_ids: ``(B, H, W)`` int64 visible face, -1 where none.
        bary: ``(B, H, W, 3)`` perspective-correct barycentrics, differentiable.
        normals: ``(B, H, W, 3)`` unit normal of the visible face (camera frame, outward for
            counter-clockwise faces), 0 outside; or None if disabled. Differentiable.
    """

    depth_m: torch.Tensor
    mask: torch.Tensor
    soft_mask: torch.Tensor | None
    face_ids: torch.Tensor
    bary: torch.Tensor
    normals: torch.Tensor | None


def to_right_frame(vertices_left: torch.Tensor, baseline_m: float | torch.Tensor
                   ) -> torch.Tensor:
    """Left optical frame -> right optical frame of a rectified pair: ``p - (B, 0, 0)``.

    Args:
        vertices_left: ``(..., 3)`` metres.
        baseline_m: scalar or ``(B,)`` tensor (one per batch item of a ``(B, V, 3)`` input).
    """
    b = torch.as_tensor(baseline_m, dtype=vertices_left.dtype, device=vertices_left.device)
    if b.dim() == 1:
        b = b.reshape((-1,) + (1,) * (vertices_left.dim() - 1))
    shift = torch.zeros(3, dtype=vertices_left.dtype, device=vertices_left.device)
    shift[0] = 1.0
    return vertices_left - b * shift


def render_mesh(vertices: torch.Tensor, faces: torch.Tensor, K: torch.Tensor,
                image_size: tuple[int, int], config: RenderConfig = RenderConfig()
                ) -> RenderOutput:
    """Render meshes into one camera.

    Args:
        vertices: ``(B, V, 3)`` or ``(V, 3)`` metres, in the rendering camera's optical frame.
        faces: ``(F, 3)`` integer vertex indices, counter-clockwise from outside.
        K: ``(3, 3)`` or ``(B, 3, 3)`` intrinsics of the rendered image.
        image_size: ``(H, W)`` px.
        config: backend, near plane, soft-mask shape and which outputs to compute.

    Returns:
        :class:`RenderOutput`.

    Raises:
        ValueError, TypeError: see :func:`~hand_mesh_core.render.rasterize.rasterize`.
    """
    vertices, faces, size = check_inputs(vertices, faces, image_size)
    Kb = _batched_K(K, vertices.shape[0], vertices)
    frags = rasterize_checked(vertices, faces, Kb, size, config.backend, config,
                              barycentrics=False)
    interp = interpolate_checked(vertices, faces, Kb, frags.face_ids,
                                 fallback_depth_m=frags.depth_m, pixel_index=frags.pixel_index)
    mask = frags.mask
    soft = None
    if config.soft_mask:
        soft = soft_silhouette(vertices, faces, Kb, size, hard_mask=mask, config=config)
    normals = None
    if config.normals:
        fn = face_normals(vertices, faces)  # (B, F, 3)
        batch, h, w = frags.face_ids.shape
        sel = interp.pixel_index
        b = torch.div(sel, h * w, rounding_mode="floor")
        vals = fn[b, frags.face_ids.reshape(-1)[sel]]
        normals = fn.new_zeros(batch * h * w, 3).index_put((sel,), vals).reshape(batch, h, w, 3)
    return RenderOutput(depth_m=interp.depth_m, mask=mask, soft_mask=soft,
                        face_ids=frags.face_ids, bary=interp.bary, normals=normals)


class MeshRenderer(nn.Module):
    """Thin module around :func:`render_mesh` holding a :class:`RenderConfig`."""

    def __init__(self, config: RenderConfig | None = None) -> None:
        super().__init__()
        self.config = config or RenderConfig()

    def forward(self, vertices: torch.Tensor, faces: torch.Tensor, K: torch.Tensor,
                image_size: tuple[int, int]) -> RenderOutput:
        """See :func:`render_mesh`."""
        return render_mesh(vertices, faces, K, image_size, self.config)
