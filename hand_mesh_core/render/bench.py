"""Timing of the renderer and the photo loss (``hand-mesh bench render``).

Meshes: the procedural hand (``HandModel.procedural()``) when available, else a ~1500-triangle
UV sphere. Resolutions: a 128x128 and a 256x256 crop around the hand (``CropTransform.crop_K``)
and the full 640x480 image. Reports the median wall time in ms over ``repeats`` runs after
``warmup`` runs, on CPU and on CUDA when available.

Per resolution: the rasterisers alone, then the renderer (depth only, and all outputs), forward
and forward+backward, with a breakdown of the differentiable stages (interpolation of the
depth, soft silhouette). ``photo_128x128``: the self-supervised photo branch at the model's crop
size (right-view depth render + warp + SSIM/L1), with its parts.
"""
from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from typing import Any, Callable

import torch

from hand_mesh_core.geometry.camera import StereoCamera
from hand_mesh_core.geometry.crop import CropTransform
from hand_mesh_core.geometry.mesh import uv_sphere
from hand_mesh_core.geometry.projection import project
from hand_mesh_core.losses.photo import photo_consistency_loss
from hand_mesh_core.render.config import RenderConfig
from hand_mesh_core.render.interpolate import interpolate
from hand_mesh_core.render.rasterize import rasterize
from hand_mesh_core.render.renderer import render_mesh
from hand_mesh_core.render.silhouette import soft_silhouette

__all__ = ["run_benchmark", "benchmark_mesh", "CROP_SIZES_PX", "HAND_DEPTH_M"]

#: Square crop sizes benchmarked (the model's input crops).
CROP_SIZES_PX = (128, 256)
#: Hand distance from the camera in the benchmark scene (STB: 0.6-0.72 m; closer = more px).
HAND_DEPTH_M = 0.45
#: Crop side relative to the hand's projected extent (as a hand ROI with a margin).
CROP_MARGIN = 1.2
#: Sphere used when the hand model is missing: 2 * 38 * 19 = 1444 triangles, radius of a hand.
_SPHERE = dict(radius_m=0.06, rings=20, segments=38)


def benchmark_mesh() -> tuple[torch.Tensor, torch.Tensor, str]:
    """``(V, 3)`` float32 vertices in the left camera frame, faces, and a description."""
    try:
        from hand_mesh_core.hand.model import HandModel
    except ImportError:
        v, f = uv_sphere(center_m=(0.0, 0.0, HAND_DEPTH_M), **_SPHERE)
        return v, f, f"uv_sphere ({f.shape[0]} triangles; hand model missing)"
    model = HandModel.procedural()
    with torch.no_grad():
        out = model(global_orient=torch.tensor([[0.2, -0.3, 0.1]]),
                    transl=torch.tensor([[-0.01, -0.08, HAND_DEPTH_M]]))
    faces = torch.as_tensor(model.faces)
    return out.vertices[0].float(), faces, f"procedural hand ({faces.shape[0]} triangles)"


def _timeit(fn: Callable[[], Any], repeats: int, warmup: int, sync: Callable[[], None]
            ) -> float:
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return round(statistics.median(times), 3)


def _scenes(vertices: torch.Tensor, cam: StereoCamera) -> dict[str, tuple[torch.Tensor, tuple]]:
    K = torch.tensor(cam.K, dtype=torch.float32)
    uv = project(vertices.unsqueeze(0), K)[0]
    lo, hi = uv.amin(0), uv.amax(0)
    side = float((hi - lo).max()) * CROP_MARGIN
    cu, cv = float(lo[0] + hi[0]) / 2, float(lo[1] + hi[1]) / 2
    scenes = {}
    for s in CROP_SIZES_PX:
        crop = CropTransform.square(cu, cv, side, s)
        scenes[f"{s}x{s}"] = (torch.tensor(crop.crop_K(cam.K), dtype=torch.float32), (s, s))
    scenes[f"{cam.width}x{cam.height}"] = (K, (cam.height, cam.width))
    return scenes


def _bench_device(device: torch.device, vertices: torch.Tensor, faces: torch.Tensor,
                  repeats: int, warmup: int) -> dict[str, Any]:
    cam = StereoCamera()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    v = vertices.to(device).unsqueeze(0)
    f = faces.to(device)
    depth_only = RenderConfig(soft_mask=False, normals=False)
    full = RenderConfig()
    out: dict[str, Any] = {}
    for name, (K, size) in _scenes(vertices, cam).items():
        K = K.to(device)
        res: dict[str, Any] = {}
        vg = v.clone().requires_grad_(True)

        def fwd(cfg: RenderConfig) -> Callable[[], Any]:
            return lambda: render_mesh(v, f, K, size, cfg)

        def fwd_bwd(cfg: RenderConfig) -> Callable[[], Any]:
            def run() -> None:
                r = render_mesh(vg, f, K, size, cfg)
                loss = r.depth_m.sum()
                if r.soft_mask is not None:
                    loss = loss + r.soft_mask.sum()
                loss.backward()
                vg.grad = None
            return run

        res["rasterize_torch_ms"] = _timeit(
            lambda: rasterize(v, f, K, size, backend="torch"), repeats, warmup, sync)
        if device.type == "cpu":
            res["rasterize_open3d_ms"] = (_timeit(
                lambda: rasterize(v, f, K, size, backend="open3d"), repeats, warmup, sync)
                if importlib.util.find_spec("open3d") is not None else None)
        frags = rasterize(v, f, K, size)

        def interp_fwd_bwd() -> None:
            interpolate(vg, f, K, frags.face_ids, fallback_depth_m=frags.depth_m,
                        pixel_index=frags.pixel_index).depth_m.sum().backward()
            vg.grad = None

        def soft_fwd_bwd() -> None:
            soft_silhouette(vg, f, K, size, hard_mask=frags.mask, config=full).sum().backward()
            vg.grad = None

        res["interpolate_depth_forward_backward_ms"] = _timeit(interp_fwd_bwd, repeats, warmup,
                                                               sync)
        res["soft_silhouette_forward_backward_ms"] = _timeit(soft_fwd_bwd, repeats, warmup, sync)
        res["depth_forward_ms"] = _timeit(fwd(depth_only), repeats, warmup, sync)
        res["depth_forward_backward_ms"] = _timeit(fwd_bwd(depth_only), repeats, warmup, sync)
        res["all_outputs_forward_ms"] = _timeit(fwd(full), repeats, warmup, sync)
        res["all_outputs_forward_backward_ms"] = _timeit(fwd_bwd(full), repeats, warmup, sync)
        res["covered_px"] = int(render_mesh(v, f, K, size, depth_only).mask.sum())
        out[name] = res
    # Photo loss at the first crop size: right-view render (depth) + warp + SSIM/L1.
    s = CROP_SIZES_PX[0]
    K, size = _scenes(vertices, cam)[f"{s}x{s}"]
    K = K.to(device)
    g = torch.Generator().manual_seed(0)
    left = torch.rand(1, 3, s, s, generator=g).to(device)
    right = torch.rand(1, 3, s, s, generator=g).to(device)
    vg = v.clone().requires_grad_(True)
    depth0 = render_mesh(v, f, K, size, depth_only).depth_m
    mask = depth0 > 0
    scale = 1.0

    def photo_only() -> None:
        d = depth0.clone().requires_grad_(True)
        photo_consistency_loss(left, right, d, mask, cam.fx, cam.baseline_m, 0.0,
                               scale).backward()

    def render_photo() -> None:
        d = render_mesh(vg, f, K, size, depth_only).depth_m
        photo_consistency_loss(left, right, d, mask, cam.fx, cam.baseline_m, 0.0,
                               scale).backward()
        vg.grad = None

    out[f"photo_{s}x{s}"] = {
        "rasterize_torch_ms": _timeit(lambda: rasterize(v, f, K, size, backend="torch"),
                                      repeats, warmup, sync),
        "render_depth_forward_backward_ms": out[f"{s}x{s}"]["depth_forward_backward_ms"],
        "photo_loss_forward_backward_ms": _timeit(photo_only, repeats, warmup, sync),
        "render_depth_plus_photo_forward_backward_ms": _timeit(render_photo, repeats, warmup,
                                                               sync),
    }
    return out


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Run the render benchmark; ``args`` has ``repeats``, ``warmup``, ``device``, ``threads``.

    Returns:
        JSON-ready results: per device, per resolution, median ms.
    """
    if args.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available; "
                         "use one of ['auto', 'cpu']")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    devices = []
    if args.device in ("auto", "cpu"):
        devices.append(torch.device("cpu"))
    if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()):
        devices.append(torch.device("cuda"))
    vertices, faces, what = benchmark_mesh()
    result: dict[str, Any] = {
        "mesh": what, "vertices": int(vertices.shape[0]), "faces": int(faces.shape[0]),
        "hand_depth_m": HAND_DEPTH_M, "torch_threads": torch.get_num_threads(),
        "cull_back_faces": RenderConfig().cull_back_faces,
        "repeats": args.repeats, "statistic": "median ms",
    }
    for dev in devices:
        label = "cpu" if dev.type == "cpu" else f"cuda ({torch.cuda.get_device_name(dev)})"
        result[label] = _bench_device(dev, vertices, faces, args.repeats, args.warmup)
    return result
