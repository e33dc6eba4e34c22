"""Evaluation figures (matplotlib, Agg; no display needed): PCK curves, per-joint errors and
before/after mesh overlays like Figure 4 of Chen et al., ICCV 2021.

Every function draws on its own :class:`matplotlib.figure.Figure` (no pyplot global state) and
writes a PNG, returning its path.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from hand_mesh_core.eval.config import PlotConfig
from hand_mesh_core.eval.metrics import MM_PER_M, PCKCurve
from hand_mesh_core.geometry.camera import StereoCamera
from hand_mesh_core.geometry.projection import project
from hand_mesh_core.hand.joints import BONES, FINGER_JOINTS, JOINT_NAMES, NUM_JOINTS

__all__ = ["OverlayPanel", "plot_pck_curves", "plot_per_joint_errors", "plot_mesh_overlays",
           "plot_before_after", "draw_mesh", "draw_skeleton", "FINGER_COLORS"]

#: One colour per finger (thumb, index, middle, ring, little), matplotlib's tab10 palette.
FINGER_COLORS = ("tab:red", "tab:orange", "tab:green", "tab:blue", "tab:purple")
#: Colour of the wrist and of ground-truth joints.
_WRIST_COLOR = "white"
_GT_COLOR = "yellow"
#: Figure sizes in inches (width, height).
_CURVE_SIZE_IN = (6.0, 4.5)
_BAR_SIZE_IN = (11.0, 4.5)
_PANEL_SIZE_IN = 4.5
_TITLE_SPACE_IN = 0.9
#: Top of the PCK axis: a little above 1 so that a curve at PCK = 1 stays visible.
_PCK_TOP = 1.02
#: The per-joint bar chart's y axis goes to this multiple of the tallest bar (legend space).
_LEGEND_HEADROOM = 1.3


def _finger_of(joint: int) -> int | None:
    for f, joints in enumerate(FINGER_JOINTS):
        if joint in joints:
            return f
    return None


def _save(fig: Figure, path: str | Path, dpi: int) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"path must end with .png, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=dpi)
    return path


# ----------------------------------------------------------------------------- curves and bars
def plot_pck_curves(curves: Mapping[str, PCKCurve], path: str | Path, title: str = "3D PCK",
                    config: PlotConfig | None = None) -> Path:
    """Several methods' 3D PCK curves on one plot, AUC in the legend.

    Args:
        curves: method name -> its curve (thresholds in mm).
        path: output ``.png``.
        title: plot title (e.g. the data set and the alignment).
        config: figure settings.

    Returns:
        The written path.
    """
    config = config or PlotConfig()
    if not curves:
        raise ValueError("curves must name at least one method")
    for name, c in curves.items():
        if not isinstance(c, PCKCurve):
            raise TypeError(f"curves[{name!r}] must be a PCKCurve, got {type(c).__name__}")
    fig = Figure(figsize=_CURVE_SIZE_IN, layout="constrained")
    ax = fig.add_subplot()
    for name, c in curves.items():
        ax.plot(c.thresholds_mm, c.pck, marker="o", markersize=3,
                label=f"{name} (AUC={c.auc:.3f})")
    lo = min(float(c.thresholds_mm[0]) for c in curves.values())
    hi = max(float(c.thresholds_mm[-1]) for c in curves.values())
    ax.set_xlim(lo, hi)
    ax.set_ylim(0.0, _PCK_TOP)
    ax.set_xlabel("error threshold (mm)")
    ax.set_ylabel("3D PCK")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best")  # curves sit low or high depending on the model
    return _save(fig, path, config.dpi)


def plot_per_joint_errors(per_joint_mm: Mapping[str, np.ndarray], path: str | Path,
                          title: str = "Mean error per joint",
                          joint_names: Sequence[str] = JOINT_NAMES,
                          config: PlotConfig | None = None) -> Path:
    """Grouped bar chart of the mean error of each joint, one colour per method.

    Args:
        per_joint_mm: method name -> ``(N,)`` mean error of each joint, mm (NaN = no data).
        path: output ``.png``.
        title: plot title.
        joint_names: the N joint names (canonical by default).
        config: figure settings.

    Returns:
        The written path.
    """
    config = config or PlotConfig()
    if not per_joint_mm:
        raise ValueError("per_joint_mm must name at least one method")
    n = len(joint_names)
    for name, v in per_joint_mm.items():
        if np.shape(v) != (n,):
            raise ValueError(f"per_joint_mm[{name!r}] must have shape ({n},), got {np.shape(v)}")
    fig = Figure(figsize=_BAR_SIZE_IN, layout="constrained")
    ax = fig.add_subplot()
    width = 0.8 / len(per_joint_mm)
    x = np.arange(n)
    for k, (name, v) in enumerate(per_joint_mm.items()):
        v = np.asarray(v, dtype=np.float64)
        ax.bar(x + (k - (len(per_joint_mm) - 1) / 2) * width, v, width,
               label=f"{name} (mean {np.nanmean(v):.1f} mm)" if np.isfinite(v).any() else name)
    ax.set_xticks(x, joint_names, rotation=60, ha="right", fontsize=8)
    ax.set_xlim(-0.6, n - 0.4)
    top = max((np.nanmax(v) for v in per_joint_mm.values() if np.isfinite(v).any()),
              default=1.0)
    ax.set_ylim(0.0, top * _LEGEND_HEADROOM)  # room for the legend above the bars
    ax.set_ylabel("mean error (mm)")
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(loc="upper center", ncol=min(len(per_joint_mm), 4))
    return _save(fig, path, config.dpi)


# ----------------------------------------------------------------------------- overlays
@dataclass(frozen=True)
class OverlayPanel:
    """One panel of a mesh overlay figure.

    Attributes:
        title: panel title, e.g. "before (test directly)".
        vertices_m: ``(V, 3)`` mesh vertices, metres, left optical frame.
        joints_m: ``(21, 3)`` joints, metres, left optical frame, canonical order, or None.
        color: matplotlib colour of the mesh.
    """

    title: str
    vertices_m: np.ndarray
    joints_m: np.ndarray | None = None
    color: str = "tab:cyan"


def _project_np(points_m: np.ndarray, camera: StereoCamera) -> np.ndarray:
    pts = torch.as_tensor(np.asarray(points_m, dtype=np.float64))
    return project(pts, camera.K_tensor(torch.float64)).numpy()


def _check_overlay_inputs(image: np.ndarray, faces: np.ndarray, camera: StereoCamera) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 \
            or image.dtype != np.uint8:
        raise ValueError(f"image must be an (H, W, 3) uint8 array, got "
                         f"{getattr(image, 'shape', None)} {getattr(image, 'dtype', type(image))}")
    if not isinstance(camera, StereoCamera):
        raise TypeError(f"camera must be a StereoCamera, got {type(camera).__name__}")
    if image.shape[:2] != (camera.height, camera.width):
        raise ValueError(f"image is {image.shape[1]}x{image.shape[0]} but the camera is "
                         f"{camera.width}x{camera.height}")
    faces = np.asarray(faces)
    if faces.ndim != 2 or faces.shape[1] != 3 or not np.issubdtype(faces.dtype, np.integer):
        raise ValueError(f"faces must be an (F, 3) integer array, got {faces.shape} {faces.dtype}")


def draw_mesh(ax: Axes, vertices_m: np.ndarray, faces: np.ndarray, camera: StereoCamera,
              color: str = "tab:cyan", config: PlotConfig | None = None) -> np.ndarray:
    """Draw a mesh projected into the left image: translucent triangles plus wireframe.

    Triangles are painted far to near (painter's algorithm on the mean depth); triangles with a
    vertex behind the camera are skipped.

    Args:
        ax: axes showing the left image in pixel coordinates.
        vertices_m: ``(V, 3)`` metres, left optical frame.
        faces: ``(F, 3)`` vertex indices.
        camera: gives the intrinsics.
        color: mesh colour.
        config: alphas.

    Returns:
        ``(V, 2)`` the projected vertices, px.
    """
    config = config or PlotConfig()
    verts = np.asarray(vertices_m, dtype=np.float64)
    if verts.ndim != 2 or verts.shape[1] != 3:
        raise ValueError(f"vertices_m must have shape (V, 3), got {verts.shape}")
    faces = np.asarray(faces)
    if faces.size and (faces.min() < 0 or faces.max() >= len(verts)):
        raise ValueError(f"faces index vertices outside [0, {len(verts)})")
    uv = _project_np(verts, camera)
    in_front = verts[faces, 2].min(axis=1) > 0
    tri = faces[in_front]
    order = np.argsort(-verts[tri, 2].mean(axis=1))
    polys = uv[tri[order]]
    ax.add_collection(PolyCollection(polys, facecolors=color, edgecolors="none",
                                     alpha=config.mesh_alpha))
    ax.add_collection(PolyCollection(polys, facecolors="none", edgecolors=color,
                                     linewidths=0.3, alpha=config.wire_alpha))
    return uv


def draw_skeleton(ax: Axes, joints_m: np.ndarray, camera: StereoCamera,
                  config: PlotConfig | None = None, ground_truth: bool = False) -> np.ndarray:
    """Draw the 21 joints and 20 bones projected into the left image.

    Args:
        ax: axes showing the left image.
        joints_m: ``(21, 3)`` metres, left optical frame, canonical order.
        camera: gives the intrinsics.
        config: marker size.
        ground_truth: draw as ground truth (yellow crosses, dashed bones) instead of the
            per-finger colours.

    Returns:
        ``(21, 2)`` projected joints, px.
    """
    config = config or PlotConfig()
    joints = np.asarray(joints_m, dtype=np.float64)
    if joints.shape != (NUM_JOINTS, 3):
        raise ValueError(f"joints_m must have shape ({NUM_JOINTS}, 3), got {joints.shape}")
    uv = _project_np(joints, camera)
    segs = [uv[[p, c]] for p, c in BONES]
    if ground_truth:
        ax.add_collection(LineCollection(segs, colors=_GT_COLOR, linewidths=1.0,
                                         linestyles="dashed"))
        ax.scatter(uv[:, 0], uv[:, 1], s=config.joint_size_pt * 1.5, c=_GT_COLOR, marker="x",
                   linewidths=1.2, zorder=4)
        return uv
    colors = [FINGER_COLORS[_finger_of(c)] for _, c in BONES]
    ax.add_collection(LineCollection(segs, colors=colors, linewidths=2.0))
    point_colors = [_WRIST_COLOR if _finger_of(j) is None else FINGER_COLORS[_finger_of(j)]
                    for j in range(NUM_JOINTS)]
    ax.scatter(uv[:, 0], uv[:, 1], s=config.joint_size_pt, c=point_colors, edgecolors="black",
               linewidths=0.5, zorder=5)
    return uv


def _zoom(ax: Axes, uv: np.ndarray, camera: StereoCamera, margin_frac: float) -> None:
    """Square window around ``uv`` grown by ``margin_frac``, clipped to the image (whole image
    when ``margin_frac < 0`` or nothing projects inside it)."""
    full_x, full_y = (-0.5, camera.width - 0.5), (-0.5, camera.height - 0.5)
    uv = uv[np.isfinite(uv).all(axis=1)]
    x0, x1, y0, y1 = *full_x, *full_y
    if margin_frac >= 0 and len(uv):
        lo, hi = uv.min(axis=0), uv.max(axis=0)
        centre = (lo + hi) / 2
        half = max((hi - lo).max() / 2 * (1 + 2 * margin_frac), 1.0)
        x0, x1 = max(centre[0] - half, full_x[0]), min(centre[0] + half, full_x[1])
        y0, y1 = max(centre[1] - half, full_y[0]), min(centre[1] + half, full_y[1])
        if x0 >= x1 or y0 >= y1:  # entirely outside the image
            x0, x1, y0, y1 = *full_x, *full_y
    ax.set_xlim(x0, x1)
    ax.set_ylim(y1, y0)  # image rows grow downwards


def plot_mesh_overlays(image: np.ndarray, panels: Sequence[OverlayPanel], faces: np.ndarray,
                       camera: StereoCamera, path: str | Path,
                       gt_joints_m: np.ndarray | None = None, title: str = "",
                       config: PlotConfig | None = None) -> Path:
    """Side-by-side panels of meshes projected on the left image (shared zoom).

    Args:
        image: ``(H, W, 3)`` uint8 RGB left image.
        panels: one per mesh (e.g. before and after adaptation).
        faces: ``(F, 3)`` integer triangles shared by the meshes.
        camera: the rectified pair (left intrinsics are used).
        path: output ``.png``.
        gt_joints_m: optional ``(21, 3)`` ground-truth joints, metres, drawn in every panel.
        title: figure title.
        config: figure settings.

    Returns:
        The written path.
    """
    config = config or PlotConfig()
    _check_overlay_inputs(image, faces, camera)
    if not panels:
        raise ValueError("panels must contain at least one OverlayPanel")
    for p in panels:
        if not isinstance(p, OverlayPanel):
            raise TypeError(f"panels must be OverlayPanel instances, got {type(p).__name__}")
    faces = np.asarray(faces)
    fig = Figure(figsize=(_PANEL_SIZE_IN * len(panels), _PANEL_SIZE_IN + _TITLE_SPACE_IN),
                 layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    all_uv = []
    for ax, panel in zip(axes, panels):
        ax.imshow(image, interpolation="bilinear")
        all_uv.append(draw_mesh(ax, panel.vertices_m, faces, camera, panel.color, config))
        if gt_joints_m is not None:
            all_uv.append(draw_skeleton(ax, gt_joints_m, camera, config, ground_truth=True))
        label = panel.title
        if panel.joints_m is not None:
            all_uv.append(draw_skeleton(ax, panel.joints_m, camera, config))
            if gt_joints_m is not None:
                err_mm = np.linalg.norm(np.asarray(panel.joints_m, dtype=np.float64)
                                        - np.asarray(gt_joints_m, dtype=np.float64),
                                        axis=-1).mean() * MM_PER_M
                label = f"{label}\nmean joint error {err_mm:.1f} mm"
        ax.set_title(label)
        ax.set_axis_off()
    uv = np.concatenate(all_uv)
    for ax in axes:
        _zoom(ax, uv, camera, config.zoom_margin_frac)
    handles = [Line2D([], [], color="gray", marker="o", markeredgecolor="black",
                      label="predicted joints")]
    if gt_joints_m is not None:
        handles.append(Line2D([], [], color=_GT_COLOR, marker="x", linestyle="--",
                              label="ground truth"))
    axes[0].legend(handles=handles, loc="lower left", fontsize=8, framealpha=0.8)
    if title:
        fig.suptitle(title)
    return _save(fig, path, config.dpi)


def plot_before_after(image: np.ndarray, before_vertices_m: np.ndarray,
                      after_vertices_m: np.ndarray, faces: np.ndarray, camera: StereoCamera,
                      path: str | Path, before_joints_m: np.ndarray | None = None,
                      after_joints_m: np.ndarray | None = None,
                      gt_joints_m: np.ndarray | None = None,
                      labels: tuple[str, str] = ("before adaptation", "after adaptation"),
                      config: PlotConfig | None = None) -> Path:
    """The paper's Figure 4: the same frame's mesh before and after adaptation, side by side.

    Args:
        image: ``(H, W, 3)`` uint8 RGB left image.
        before_vertices_m: ``(V, 3)`` metres, left optical frame.
        after_vertices_m: ``(V, 3)`` metres, left optical frame.
        faces: ``(F, 3)`` integer triangles.
        camera: the rectified pair.
        path: output ``.png``.
        before_joints_m, after_joints_m: optional ``(21, 3)`` joints of each mesh, metres.
        gt_joints_m: optional ``(21, 3)`` ground truth, metres.
        labels: the two panel titles.
        config: figure settings.

    Returns:
        The written path.
    """
    panels = [OverlayPanel(labels[0], before_vertices_m, before_joints_m, "tab:red"),
              OverlayPanel(labels[1], after_vertices_m, after_joints_m, "tab:cyan")]
    return plot_mesh_overlays(image, panels, faces, camera, path, gt_joints_m, config=config)
