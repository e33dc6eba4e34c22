"""Contact sheets of synthetic samples: left image with the projected skeleton, right image,
mask overlay."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from hand_mesh_core.data.types import StereoSample
from hand_mesh_core.hand.joints import BONES, FINGER_JOINTS, NUM_JOINTS

__all__ = ["draw_skeleton", "contact_sheet", "save_contact_sheet"]

#: Bone colours per finger (thumb .. little), RGB, plus the wrist.
FINGER_COLOURS = ((255, 64, 64), (255, 200, 0), (64, 220, 64), (0, 160, 255), (200, 64, 255))
#: Tint of the hand mask overlay (RGB) and its opacity.
MASK_TINT = (0, 255, 128)
MASK_ALPHA = 0.45


def _finger_of(joint: int) -> int:
    for f, js in enumerate(FINGER_JOINTS):
        if joint in js:
            return f
    return 0


def draw_skeleton(image: np.ndarray, uv: np.ndarray, thickness: int = 2) -> np.ndarray:
    """A copy of ``image`` (H, W, 3) uint8 RGB with the 21 joints ``uv`` (21, 2) px drawn."""
    if uv.shape != (NUM_JOINTS, 2):
        raise ValueError(f"uv must be ({NUM_JOINTS}, 2), got {uv.shape}")
    out = np.ascontiguousarray(image.copy())
    pts = np.round(uv).astype(int)
    for parent, child in BONES:
        colour = FINGER_COLOURS[_finger_of(child)]
        cv2.line(out, tuple(map(int, pts[parent])), tuple(map(int, pts[child])), colour,
                 thickness, cv2.LINE_AA)
    for j in range(NUM_JOINTS):
        cv2.circle(out, tuple(map(int, pts[j])), thickness + 1, (255, 255, 255), -1, cv2.LINE_AA)
    return out


def _project(points: np.ndarray, sample: StereoSample, view: str) -> np.ndarray:
    cam = sample.camera
    x = points[:, 0] - (cam.baseline_m if view == "right" else 0.0)
    return np.stack([cam.fx * x / points[:, 2] + cam.cx,
                     cam.fy * points[:, 1] / points[:, 2] + cam.cy], axis=1)


def contact_sheet(samples: Sequence[StereoSample], columns: int = 4, tile_width: int = 320,
                  show_right: bool = True) -> np.ndarray:
    """One RGB image: per sample a row-block of tiles (left + skeleton, right + skeleton,
    left with the hand mask overlaid).

    Args:
        samples: labelled samples.
        columns: samples per row.
        tile_width: width of each tile in px (height follows the aspect ratio).
        show_right: include the right image and the mask tiles.
    """
    if not samples:
        raise ValueError("contact_sheet needs at least one sample")
    if columns < 1 or tile_width < 8:
        raise ValueError(f"columns must be >= 1 and tile_width >= 8, got {columns}, {tile_width}")
    blocks = []
    for s in samples:
        tiles = []
        left = draw_skeleton(s.left, _project(s.joints_m, s, "left"))
        tiles.append(left)
        if show_right:
            tiles.append(draw_skeleton(s.right, _project(s.joints_m, s, "right")))
            over = s.left.astype(np.float32)
            if s.mask_left is not None:
                m = s.mask_left[..., None]
                over = np.where(m, (1 - MASK_ALPHA) * over + MASK_ALPHA * np.float32(MASK_TINT),
                                over)
            tiles.append(over.astype(np.uint8))
        th = max(1, round(tile_width * s.left.shape[0] / s.left.shape[1]))
        tiles = [cv2.resize(t, (tile_width, th), interpolation=cv2.INTER_AREA) for t in tiles]
        blocks.append(np.concatenate(tiles, axis=1))
    h = max(b.shape[0] for b in blocks)
    w = max(b.shape[1] for b in blocks)
    blocks = [np.pad(b, ((0, h - b.shape[0]), (0, w - b.shape[1]), (0, 0))) for b in blocks]
    cols = min(columns, len(blocks))
    rows = -(-len(blocks) // cols)
    blocks += [np.zeros_like(blocks[0])] * (rows * cols - len(blocks))
    return np.concatenate([np.concatenate(blocks[r * cols:(r + 1) * cols], axis=1)
                           for r in range(rows)], axis=0)


def save_contact_sheet(path: str | Path, samples: Sequence[StereoSample], **kwargs) -> Path:
    """Write :func:`contact_sheet` as a PNG; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet = contact_sheet(samples, **kwargs)
    if not cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise ValueError(f"could not write {path}")
    return path
