"""Textured background planes, rendered in 3D so both views see them with the right disparity.

The background is a plane behind the hand (optionally tilted) carrying a procedural texture in
plane coordinates (metres). Each view intersects its own pixel rays with the plane, so a
background at depth z appears shifted by exactly ``fx * B / z`` px between the views (a
fronto-parallel image pasted identically into both views would be at infinite depth, which a
stereo network would learn to exploit).

Texture kinds (``BackgroundConfig.kinds``): ``plain`` (painted wall with soft unevenness),
``green_screen`` (chroma-key cloth with folds), ``noise`` (two-colour fractal noise), ``stripes``
(woven fabric), ``clutter`` (overlapping textured boxes, discs and bars, like a lab shelf),
``floral`` (printed fabric: clusters of coloured blobs on a light ground, like STB's backdrop).
Skin-coloured distractors (a face-like blob, skin patches) are painted onto the texture.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from hand_mesh_core.data.synth.config import BackgroundConfig, DistractorConfig
from hand_mesh_core.data.synth.raycast import camera_center
from hand_mesh_core.data.synth.textures import noise_image
from hand_mesh_core.geometry.camera import StereoCamera

__all__ = ["BackgroundPlane", "make_background", "hsv_colour", "hsv_colours"]

#: Texture resolution relative to the image footprint of a texel at the plane's depth (< 1 means
#: finer than a pixel, so the texture is not visibly magnified).
TEXEL_PER_PIXEL = 0.75
#: Chroma-key green (linear RGB), like a FreiHAND-style green screen.
GREEN_SCREEN_RGB = (0.08, 0.45, 0.12)
#: Linear RGB of dark hair for the face-like distractor.
HAIR_RGB = (0.03, 0.025, 0.02)
#: Extra texture border around the region seen by the two views, in texels.
TEXTURE_BORDER = 8
#: Sub-pixel precision of cv2 drawing calls (coordinates are multiplied by 2**SHIFT).
DRAW_SHIFT = 4
#: Entries of an 8-bit lookup table (cv2.LUT).
UINT8_LEVELS = 256


def hsv_colour(hue: float, saturation: float, value: float) -> np.ndarray:
    """A linear RGB colour (3,) from HSV in [0, 1]."""
    return hsv_colours(np.array([hue]), np.array([saturation]), np.array([value]))[0]


def hsv_colours(hue: np.ndarray, saturation: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Linear RGB colours (N, 3) float32 from HSV arrays (N,) in [0, 1] (8-bit conversion)."""
    hsv = np.stack(np.broadcast_arrays(np.asarray(hue, np.float64) * 179.0,
                                       np.asarray(saturation, np.float64) * 255.0,
                                       np.asarray(value, np.float64) * 255.0), -1)
    rgb = cv2.cvtColor(hsv[None].astype(np.uint8), cv2.COLOR_HSV2RGB)[0]
    return rgb.astype(np.float32) / np.float32(255.0)


@dataclass
class BackgroundPlane:
    """A textured plane ``n . x = offset`` in the left optical frame.

    Attributes:
        normal: (3,) unit normal, pointing towards the cameras (negative z).
        offset: plane offset, metres.
        e1, e2: (3,) unit in-plane axes; plane coordinates ``(s, t) = (x . e1, x . e2)``.
        texture: (Ht, Wt, 3) float32 linear albedo.
        st0: (2,) plane coordinates of the centre of texel (0, 0), metres.
        texel_m: texel size, metres.
        lit: shade with the scene lights (else an emissive composite).
        kind: which texture kind was drawn.
    """

    normal: np.ndarray
    offset: float
    e1: np.ndarray
    e2: np.ndarray
    texture: np.ndarray
    st0: np.ndarray
    texel_m: float
    lit: bool = True
    kind: str = "plain"

    def intersect(self, origin: np.ndarray, dirs: np.ndarray) -> np.ndarray:
        """Hit parameter of rays ``origin + t * dirs`` (= depth for unit-z dirs); inf if none.

        Args:
            origin: (3,) ray origin, metres.
            dirs: (..., 3) directions.

        Returns:
            (...,) float32.
        """
        denom = dirs @ self.normal
        num = self.offset - float(origin @ self.normal)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = num / denom
        return np.where(np.isfinite(t) & (t > 0), t, np.inf).astype(np.float32)

    def render(self, camera: StereoCamera, view: str
               ) -> tuple[np.ndarray, np.ndarray] | None:
        """Albedo and depth of the plane in every pixel of ``view``, without per-pixel rays.

        For a pinhole camera a plane's depth is ``num / (a u + b v + c)`` and its texture
        coordinates are a homography of the pixel ``(u, v)``, so the texture lookup is one
        ``cv2.warpPerspective`` (same bilinear filter and reflect border as :meth:`albedo`).

        Args:
            camera: the stereo pair.
            view: "left" or "right".

        Returns:
            ``(albedo (H, W, 3) float32, depth (H, W) float32 metres)``, or None when the rays
            of some pixels miss the plane (it is then not in front of the whole image; use
            :meth:`intersect` and :meth:`albedo` per pixel).
        """
        origin = camera_center(camera, view)
        k_inv = np.array([[1.0 / camera.fx, 0.0, -camera.cx / camera.fx],
                          [0.0, 1.0 / camera.fy, -camera.cy / camera.fy],
                          [0.0, 0.0, 1.0]])
        n = np.asarray(self.normal, np.float64)
        den_row = n @ k_inv  # n . ray(u, v) = den_row . (u, v, 1)
        num = self.offset - float(origin @ n)
        w, h = camera.width, camera.height
        corners = np.array([[0.0, 0.0, 1.0], [w - 1.0, 0.0, 1.0], [0.0, h - 1.0, 1.0],
                            [w - 1.0, h - 1.0, 1.0]])
        den_c = corners @ den_row
        # the denominator is affine in (u, v): same strict sign at the corners -> everywhere
        if not (np.all(den_c * num > 0) and np.all(np.abs(den_c) > 0)):
            return None
        u = np.arange(w, dtype=np.float64)
        v = np.arange(h, dtype=np.float64)
        den = den_row[0] * u[None, :] + (den_row[1] * v + den_row[2])[:, None]
        depth = (num / den).astype(np.float32)
        rows = [((float(origin @ e) - s0) * den_row + num * (np.asarray(e, np.float64) @ k_inv))
                / self.texel_m for e, s0 in ((self.e1, self.st0[0]), (self.e2, self.st0[1]))]
        homography = np.stack(rows + [den_row])
        albedo = cv2.warpPerspective(self.texture, homography, (w, h),
                                     flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                     borderMode=cv2.BORDER_REFLECT)
        return albedo, depth

    def albedo(self, points: np.ndarray) -> np.ndarray:
        """Bilinear texture lookup at plane points (H, W, 3) -> (H, W, 3) float32."""
        if points.ndim != 3 or points.shape[-1] != 3:
            raise ValueError(f"points must be (H, W, 3), got {points.shape}")
        e1 = (self.e1 / self.texel_m).astype(np.float32)
        e2 = (self.e2 / self.texel_m).astype(np.float32)
        mx = points @ e1 - np.float32(self.st0[0] / self.texel_m)
        my = points @ e2 - np.float32(self.st0[1] / self.texel_m)
        return cv2.remap(self.texture, mx.astype(np.float32), my.astype(np.float32),
                         cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _random_plane(rng: np.random.Generator, cfg: BackgroundConfig, center: np.ndarray
                  ) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    depth = center[2] + rng.uniform(*cfg.distance_behind_m)
    anchor = center * (depth / center[2])
    tilt = np.deg2rad(rng.uniform(0.0, cfg.tilt_deg))
    az = rng.uniform(0.0, 2.0 * np.pi)
    normal = np.array([np.sin(tilt) * np.cos(az), np.sin(tilt) * np.sin(az), -np.cos(tilt)])
    e1 = np.cross([0.0, 1.0, 0.0], normal)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(normal, e1)
    return normal, float(normal @ anchor), e1, e2


def _gray3(x: np.ndarray) -> np.ndarray:
    """(H, W) -> (H, W, 3) float32 with the same value in each channel."""
    x = np.asarray(x, np.float32)
    return cv2.merge([x, x, x])


def _scalar(rgb: np.ndarray) -> tuple[float, float, float, float]:
    """An RGB colour as a cv2 scalar (per-channel operand of cv2.add/multiply)."""
    return (float(rgb[0]), float(rgb[1]), float(rgb[2]), 0.0)


def _scale(img: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """``img * rgb`` per channel for (H, W, 3) float32 images (cv2: ~10x faster than numpy
    broadcasting over a last axis of 3)."""
    return cv2.multiply(img, _scalar(rgb))


def _stripes(rng: np.random.Generator, colours: np.ndarray, h: int, w: int,
             period_px: float) -> np.ndarray:
    """(h, w, 3) float32 straight stripes cycling through ``colours`` (K <= 255, 3), period
    ``period_px`` texels, at a random angle."""
    angle = rng.uniform(0.0, np.pi)
    # phase = (x cos + y sin) / period, as an outer sum (no coordinate grids)
    phase = (np.arange(w, dtype=np.float32) * np.float32(np.cos(angle) / period_px))[None, :] \
        + (np.arange(h, dtype=np.float32) * np.float32(np.sin(angle) / period_px))[:, None]
    n = np.float32(len(colours))
    stripe = np.floor(phase)
    stripe -= n * np.floor(stripe / n)  # stripe index modulo the number of colours
    idx = stripe.astype(np.uint8)
    lut = np.zeros((1, UINT8_LEVELS, 3), np.float32)
    lut[0, :len(colours)] = colours
    return cv2.LUT(cv2.merge([idx, idx, idx]), lut)


def _draw_shapes(rng: np.random.Generator, tex: np.ndarray, kind: str, count: int,
                 feature_px: float, sat: float) -> None:
    """Draw ``count`` random shapes into ``tex`` in place: boxes, discs and bars ("clutter") or
    petal-like discs ("floral"). All parameters are drawn up front (vectorised)."""
    h, w = tex.shape[:2]
    floral = kind == "floral"
    sats = rng.uniform(0.2, 1.0, size=count) if floral else np.full(count, sat)
    colours = hsv_colours(rng.uniform(size=count), sats, np.ones(count)) \
        * rng.uniform(0.05, 1.0, size=count)[:, None].astype(np.float32)
    centres = rng.uniform(0.0, 1.0, size=(count, 2)) * [w, h]
    sizes = feature_px * rng.uniform(0.2, 1.5 if floral else 3.0, size=count)
    shapes = np.ones(count, np.int64) if floral else rng.integers(0, 3, size=count)
    angles = rng.uniform(0.0, 180.0, size=count)
    tilted = rng.uniform(size=count) < 0.3
    aspect = rng.uniform(0.3, 2.5, size=count)
    squash = rng.uniform(0.5, 1.0, size=count)
    reach = rng.normal(size=(count, 2))
    scale = 1 << DRAW_SHIFT
    # Python floats in the loop (same double arithmetic as numpy scalars, less overhead)
    for colour, (cx, cy), size, shape, angle, tilt, asp, sq, (rx, ry) in zip(
            colours.tolist(), centres.tolist(), sizes.tolist(), shapes.tolist(),
            angles.tolist(), tilted.tolist(), aspect.tolist(), squash.tolist(),
            reach.tolist()):
        if shape == 0:  # box
            box = cv2.boxPoints(((cx, cy), (size, size * asp), angle if tilt else 0.0))
            cv2.fillPoly(tex, [np.round(box * scale).astype(np.int32)], colour, cv2.LINE_AA,
                         DRAW_SHIFT)
        elif shape == 1:  # disc / petal
            axes = (int(size / 2 * scale), int(size / 2 * sq * scale))
            cv2.ellipse(tex, (int(cx * scale), int(cy * scale)), axes, angle, 0, 360,
                        colour, -1, cv2.LINE_AA, DRAW_SHIFT)
        else:  # bar / cable
            x2, y2 = cx + rx * size * 2, cy + ry * size * 2
            cv2.line(tex, (int(cx * scale), int(cy * scale)),
                     (int(x2 * scale), int(y2 * scale)), colour,
                     max(1, int(size * 0.15)), cv2.LINE_AA, DRAW_SHIFT)


def _draw_texture(rng: np.random.Generator, kind: str, cfg: BackgroundConfig, h: int, w: int,
                  texel_m: float) -> np.ndarray:
    brightness = rng.uniform(*cfg.brightness)
    sat = rng.uniform(*cfg.saturation)
    contrast = rng.uniform(*cfg.contrast)
    feature_px = rng.uniform(*cfg.feature_size_m) / texel_m
    base = hsv_colour(rng.uniform(), sat, 1.0) * brightness
    low = noise_image(rng, h, w, max(4.0, 8.0 * feature_px), octaves=2)
    if kind == "plain":
        tex = _scale(_gray3(1.0 + 0.3 * contrast * low), base)
    elif kind == "green_screen":
        folds = noise_image(rng, h, w, max(4.0, 4.0 * feature_px), octaves=3)
        tex = _scale(_gray3(1.0 + 0.5 * contrast * folds),
                     np.asarray(GREEN_SCREEN_RGB, np.float32) * brightness / 0.5)
    elif kind == "noise":
        other = hsv_colour(rng.uniform(), sat, 1.0) * rng.uniform(*cfg.brightness)
        n = noise_image(rng, h, w, max(2.0, feature_px), octaves=5)
        m = _gray3(np.clip(0.5 + contrast * 1.5 * n, 0.0, 1.0))
        tex = cv2.add(_scale(m, other - base), _scalar(base))
    elif kind == "stripes":
        extra = int(rng.integers(1, 3))
        colours = np.stack([base] + [hsv_colour(rng.uniform(), sat, 1.0)
                                     * rng.uniform(*cfg.brightness) for _ in range(extra)])
        tex = _stripes(rng, colours, h, w, max(3.0, feature_px))
        weave = noise_image(rng, h, w, 2.0, octaves=2)
        tex = cv2.multiply(tex, _gray3(1.0 + 0.25 * contrast * weave))
    elif kind in ("clutter", "floral"):
        tex = _scale(_gray3(1.0 + 0.2 * contrast * low), base)
        count = int(np.clip(h * w / (feature_px ** 2) * (0.6 if kind == "clutter" else 1.5),
                            5, 400))
        _draw_shapes(rng, tex, kind, count, feature_px, sat)
        grain = noise_image(rng, h, w, max(2.0, feature_px / 4), octaves=3)
        tex = cv2.multiply(tex, _gray3(1.0 + 0.3 * contrast * grain))
    else:
        raise ValueError(f"background kind must be one of {list(cfg.kinds)}, got {kind!r}")
    return np.clip(tex, 0.0, 1.0, out=tex)


def _draw_skin_distractors(rng: np.random.Generator, tex: np.ndarray, texel_m: float,
                           cfg: DistractorConfig, tones: np.ndarray) -> None:
    h, w = tex.shape[:2]
    scale = 1 << DRAW_SHIFT

    def ellipse(c: tuple[float, float], axes_m: tuple[float, float], angle: float,
                colour: np.ndarray) -> None:
        ax = (int(axes_m[0] / texel_m * scale), int(axes_m[1] / texel_m * scale))
        cv2.ellipse(tex, (int(c[0] * scale), int(c[1] * scale)), ax, angle, 0, 360,
                    colour.tolist(), -1, cv2.LINE_AA, DRAW_SHIFT)

    for _ in range(int(rng.integers(cfg.skin_patches[0], cfg.skin_patches[1] + 1))):
        tone = tones[rng.integers(len(tones))] * rng.uniform(0.7, 1.1)
        ellipse((rng.uniform(0, w), rng.uniform(0, h)),
                (rng.uniform(0.02, 0.08), rng.uniform(0.015, 0.05)), rng.uniform(0, 180), tone)
    if rng.uniform() < cfg.face_prob:
        tone = tones[rng.integers(len(tones))]
        # A head: ~0.16 m wide, 0.22 m tall (adult head breadth/height, rounded).
        c = (rng.uniform(0.15, 0.85) * w, rng.uniform(0.2, 0.8) * h)
        px = 1.0 / texel_m
        ellipse((c[0], c[1] - 0.03 * px), (0.085, 0.1), 0.0, np.asarray(HAIR_RGB))
        ellipse(c, (0.075, 0.1), 0.0, tone)
        for side in (-1, 1):  # eyes, brows
            ellipse((c[0] + side * 0.032 * px, c[1] - 0.01 * px), (0.012, 0.006), 0.0,
                    tone * 0.25)
        ellipse((c[0], c[1] + 0.05 * px), (0.022, 0.007), 0.0, tone * np.array([0.8, 0.5, 0.5]))
        ellipse((c[0], c[1] + 0.02 * px), (0.008, 0.015), 0.0, tone * 0.85)
        ellipse((c[0], c[1] + 0.19 * px), (0.16, 0.07), 0.0, tone * 0.2)  # neck/shirt shadow


def make_background(rng: np.random.Generator, cfg: BackgroundConfig,
                    distractors: DistractorConfig, camera: StereoCamera,
                    hand_center_m: np.ndarray, skin_tones: np.ndarray) -> BackgroundPlane:
    """Draw a random background plane behind the hand.

    Args:
        rng: random generator (all randomness comes from it).
        cfg: texture and placement settings.
        distractors: face and skin-patch settings.
        camera: the stereo pair (the texture covers what both views see).
        hand_center_m: (3,) hand centre, left frame, z > 0.
        skin_tones: (K, 3) linear RGB skin tones for skin-coloured distractors.
    """
    normal, offset, e1, e2 = _random_plane(rng, cfg, np.asarray(hand_center_m, np.float64))
    plane = BackgroundPlane(normal, offset, e1, e2, np.zeros((1, 1, 3), np.float32),
                            np.zeros(2), 1.0, cfg.lit)
    corners = []
    for bx in (0.0, camera.baseline_m):
        for u in (-0.5, camera.width - 0.5):
            for v in (-0.5, camera.height - 0.5):
                d = np.array([(u - camera.cx) / camera.fx, (v - camera.cy) / camera.fy, 1.0])
                o = np.array([bx, 0.0, 0.0])
                t = float(plane.intersect(o, d[None])[0])
                corners.append(o + t * d)
    corners = np.asarray(corners)
    st = np.stack([corners @ e1, corners @ e2], axis=1)
    depth = float(np.median(corners[:, 2]))
    texel = max(cfg.texel_m, TEXEL_PER_PIXEL * depth / camera.fx)
    lo = st.min(0) - TEXTURE_BORDER * texel
    size = np.ceil((st.max(0) - lo) / texel).astype(int) + 2 * TEXTURE_BORDER
    w, h = int(size[0]), int(size[1])
    weights = np.asarray(cfg.weights, np.float64)
    kind = cfg.kinds[int(rng.choice(len(cfg.kinds), p=weights / weights.sum()))]
    tex = _draw_texture(rng, kind, cfg, h, w, texel)
    _draw_skin_distractors(rng, tex, texel, distractors, np.asarray(skin_tones, np.float32))
    plane.texture = np.clip(tex, 0.0, 1.0, out=tex)
    plane.st0 = lo
    plane.texel_m = texel
    plane.kind = kind
    return plane
