"""Settings of the differentiable mesh renderer."""
from __future__ import annotations

from dataclasses import dataclass

from hand_mesh_core.config.base import ConfigBase, ConfigError, setting

__all__ = ["RenderConfig", "RASTER_BACKENDS"]

#: Rasteriser implementations: "torch" (vectorised, CPU or CUDA), "open3d" (RaycastingScene,
#: CPU only), "auto" (torch, unless on CPU the bounding boxes of the triangles would hold more
#: than ``max_torch_pairs`` pixels, e.g. a mesh touching the lens: then open3d).
RASTER_BACKENDS = ("auto", "torch", "open3d")


@dataclass(frozen=True)
class RenderConfig(ConfigBase):
    """How meshes are rasterised and how the soft silhouette is shaped."""

    backend: str = setting("auto", "rasteriser implementation", choices=RASTER_BACKENDS)
    max_torch_pairs: int = setting(
        8_000_000, "with backend 'auto' on CPU, more (triangle, pixel) candidates than this "
        "use open3d (the torch rasteriser's memory grows with them, ~60 B each)", gt=0)
    near_m: float = setting(
        1e-3, "triangles with a vertex closer than this (or behind the camera) are not drawn",
        unit="m", gt=0.0)
    cull_back_faces: bool = setting(
        True, "rasteriser: skip faces seen from behind (clockwise on screen). Exact for closed "
        "meshes with outward counter-clockwise faces (the hand: a back face is always hidden "
        "behind a front face) and halves the work; disable for open surfaces seen from behind")
    soft_scale_px: float = setting(
        0.5, "soft silhouette: D = sigmoid(+-(d / scale)^2) of the distance d to a triangle",
        unit="px", gt=0.0)
    soft_band_px: float = setting(
        1.5, "soft silhouette: triangles farther than this from a pixel are ignored", unit="px",
        gt=0.0)
    soft_mask: bool = setting(True, "compute the soft silhouette")
    normals: bool = setting(True, "compute the per-pixel normal map")

    def validate(self) -> None:
        # Truncation at the band must be invisible: sigmoid(-(band/scale)^2) < 1e-3 needs
        # (band/scale)^2 > ln(999) ~ 6.9, i.e. band > 2.63 * scale.
        if self.soft_band_px < _MIN_BAND_OVER_SCALE * self.soft_scale_px:
            raise ConfigError(
                f"RenderConfig.soft_band_px = {self.soft_band_px}: must be >= "
                f"{_MIN_BAND_OVER_SCALE} * soft_scale_px ({self.soft_scale_px}) so that the soft "
                "mask is < 1e-3 where it is cut off")


#: sqrt(ln(999)): the band/scale ratio at which the cut-off soft-mask value is 1e-3.
_MIN_BAND_OVER_SCALE = 2.63
