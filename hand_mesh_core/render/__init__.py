"""Differentiable mesh renderer: rasterize (visibility), interpolate (depth), silhouette."""
from hand_mesh_core.render.config import RASTER_BACKENDS, RenderConfig
from hand_mesh_core.render.interpolate import Interpolated, interpolate
from hand_mesh_core.render.rasterize import Fragments, rasterize, rasterize_projected
from hand_mesh_core.render.renderer import MeshRenderer, RenderOutput, render_mesh, to_right_frame
from hand_mesh_core.render.silhouette import soft_silhouette

__all__ = ["RASTER_BACKENDS", "RenderConfig", "Interpolated", "interpolate", "Fragments",
           "rasterize", "rasterize_projected", "MeshRenderer", "RenderOutput", "render_mesh",
           "to_right_frame", "soft_silhouette"]
