"""Skin albedo with surface texture, and Lambert (wrapped) + Blinn-Phong shading with shadows.

All colours are linear RGB. The albedo of a surface point is a function of its *rest-pose*
position and normal only (see :mod:`~hand_mesh_core.data.synth.textures`), so it is the same in
both views and in every pose. Surface detail, all procedural:

* tone: a palette colour, jittered, with low-frequency mottling; palms lighter;
* pores: fine solid noise at ``pore_scale_m``;
* creases: palmar flexion creases at the MCP, PIP and DIP joints, two transverse palm lines and
  the thenar arc, faint dorsal knuckle wrinkles;
* nails: the dorsal distal half of the distal phalanges;
* veins: bluish ridged noise on the back of the hand and the forearm.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hand_mesh_core.data.synth.config import LightingConfig, SkinToneConfig
from hand_mesh_core.data.synth.textures import SolidNoise, smoothstep
from hand_mesh_core.hand.joints import BONES, FINGER_JOINTS, TIP_JOINTS, WRIST

__all__ = ["HandFrame", "SkinParams", "Light", "LightingParams", "sample_skin",
           "sample_lighting", "skin_albedo", "shade", "nearest_bone"]

#: Frequency of the mottling noise: blotches of ~2.5 cm (1 / 0.025 m).
MOTTLE_FREQ_PER_M = 40.0
#: Frequency of the vein noise (veins ~1 cm apart on the back of the hand).
VEIN_FREQ_PER_M = 60.0
#: Veins run along the fingers: the vein noise is stretched along the rest pose's y axis.
VEIN_STRETCH = np.array([1.0, 2.5, 1.0], np.float32)
#: Width of a vein as a fraction of the noise range.
VEIN_WIDTH = 0.08
#: Tint that veins multiply the albedo with (bluish, darker): linear RGB.
VEIN_TINT = np.array([0.80, 0.85, 1.05], np.float32)
#: Crease tint: creases are darker and redder (linear RGB multiplier at full strength).
CREASE_TINT = np.array([0.55, 0.42, 0.40], np.float32)
#: Relative position of the distal and proximal transverse palm lines along wrist -> middle
#: MCP (0 = wrist, 1 = MCP), and their slope across the palm; rough anatomy.
PALM_LINES = ((0.80, 0.10), (0.62, -0.12))
#: The nail covers the distal phalanx beyond this fraction of its length (DIP -> tip).
NAIL_START = 0.35
#: Extra Blinn-Phong specular on nails (they are glossier than skin).
NAIL_SPECULAR_GAIN = 2.5
#: Ambient comes from a hemisphere: this fraction varies with the normal's "up" component.
AMBIENT_HEMISPHERE = 0.3
#: Colour of the cloth of a sleeve is drawn from this value range (dark to mid-grey fabrics).
SLEEVE_VALUE = (0.02, 0.35)
#: Per-channel weights of the mottling (reds vary most).
MOTTLE_RGB = np.array([1.0, 0.8, 0.7], np.float32)


# Row-wise products of (N, C) arrays, one column at a time. NumPy runs ``x * s[:, None]`` and
# ``a[:, None] * b[None]`` as N inner loops of C (= 3) elements, ~3-8x slower than C loops of N
# elements; the products are the same IEEE operations in the same dtype, so the results are
# identical to the broadcast expressions.
def scale_rows(x: np.ndarray, s: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``x * s[:, None]`` for x (N, C) and s (N,) (``out``: (N, C), may be ``x``)."""
    if out is None:
        out = np.empty(x.shape, np.result_type(x, s))
    for c in range(x.shape[1]):
        np.multiply(x[:, c], s, out=out[:, c])
    return out


def outer_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a[:, None] * b[None]`` for a (N,) and b (C,), as (N, C)."""
    b = np.asarray(b)
    out = np.empty((len(a), len(b)), np.result_type(a, b))
    for c in range(len(b)):
        np.multiply(a, b[c:c + 1], out=out[:, c])
    return out


def _per_column(ufunc: np.ufunc, x: np.ndarray, b: np.ndarray, out: np.ndarray | None
                ) -> np.ndarray:
    """``ufunc(x, b[None])`` for x (N, C) and b (C,), one column at a time."""
    b = np.asarray(b)
    if out is None:
        out = np.empty(x.shape, np.result_type(x, b))
    for c in range(x.shape[1]):
        ufunc(x[:, c], b[c:c + 1], out=out[:, c])
    return out


def scale_columns(x: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``x * b[None]`` for x (N, C) and b (C,) (``out``: (N, C), may be ``x``)."""
    return _per_column(np.multiply, x, b, out)


def add_columns(x: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``x + b[None]`` for x (N, C) and b (C,) (``out``: (N, C), may be ``x``)."""
    return _per_column(np.add, x, b, out)


def tint_rows(x: np.ndarray, w: np.ndarray, tint: np.ndarray) -> np.ndarray:
    """``x *= 1 - w[:, None] + w[:, None] * tint[None]`` in place, for x (N, C), w (N,) and
    tint (C,): a blend towards ``x * tint`` with weight ``w``."""
    tint = np.asarray(tint)
    keep = 1.0 - w
    for c in range(x.shape[1]):
        factor = w * tint[c:c + 1]
        np.add(keep, factor, out=factor)
        np.multiply(x[:, c], factor, out=x[:, c])
    return x


@dataclass
class HandFrame:
    """Rest-pose skeleton of the textured hand: where creases, nails and veins go.

    Attributes:
        joints: (21, 3) rest-pose joints, metres, canonical order.
        dorsal: (3,) unit normal of the palm pointing to the back of the hand.
        length_axis: (3,) unit wrist -> middle MCP.
        width_axis: (3,) unit, across the palm towards the index finger.
    """

    joints: np.ndarray
    dorsal: np.ndarray
    length_axis: np.ndarray
    width_axis: np.ndarray

    @classmethod
    def from_joints(cls, joints: np.ndarray, handedness: str) -> "HandFrame":
        """Palm frame from rest joints. For a right hand ``dorsal = length x width``; a left
        hand is its mirror image, so the cross product flips."""
        j = np.asarray(joints, np.float64)
        length = j[FINGER_JOINTS[2][0]] - j[WRIST]
        length /= np.linalg.norm(length)
        width = j[FINGER_JOINTS[1][0]] - j[FINGER_JOINTS[4][0]]
        width -= (width @ length) * length
        width /= np.linalg.norm(width)
        dorsal = np.cross(length, width)
        if handedness == "left":
            dorsal = -dorsal
        return cls(j, dorsal, length, width)


@dataclass
class SkinParams:
    """Per-sample skin appearance (drawn by :func:`sample_skin`)."""

    tone: np.ndarray
    noise: SolidNoise
    mottle: float
    pores: float
    pore_scale_m: float
    creases: float
    crease_width_m: float
    veins: float
    nail_rgb: np.ndarray
    palm_lightening: float
    sleeve_rgb: np.ndarray


def sample_skin(rng: np.random.Generator, cfg: SkinToneConfig) -> SkinParams:
    """Draw a skin tone and a fresh texture."""
    tone = np.asarray(cfg.tones_rgb[int(rng.integers(len(cfg.tones_rgb)))], np.float32)
    tone = np.clip(tone * (1.0 + cfg.tone_jitter * rng.normal(size=3)), 0.0, 1.0)
    sleeve = np.full(3, rng.uniform(*SLEEVE_VALUE)) * (1.0 + 0.3 * rng.normal(size=3))
    return SkinParams(tone=tone.astype(np.float32), noise=SolidNoise.random(rng),
                      mottle=cfg.mottle_strength, pores=cfg.pore_strength,
                      pore_scale_m=cfg.pore_scale_m, creases=cfg.crease_strength,
                      crease_width_m=cfg.crease_width_m, veins=cfg.vein_strength,
                      nail_rgb=np.asarray(cfg.nail_rgb, np.float32),
                      palm_lightening=cfg.palm_lightening,
                      sleeve_rgb=np.clip(sleeve, 0.0, 1.0).astype(np.float32))


def nearest_bone(points: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """Index (N,) into ``BONES`` of the bone segment nearest to each point (N, 3)."""
    a = joints[[b[0] for b in BONES]]  # (20, 3)
    ab = joints[[b[1] for b in BONES]] - a
    length2 = (ab * ab).sum(1)
    best = np.full(len(points), np.inf)
    out = np.zeros(len(points), np.int64)
    for k in range(len(BONES)):
        rel = points - a[k]
        t = np.clip(rel @ ab[k] / length2[k], 0.0, 1.0)
        d2 = ((rel - t[:, None] * ab[k]) ** 2).sum(1)
        closer = d2 < best
        best = np.where(closer, d2, best)
        out[closer] = k
    return out


def _bone_position(points: np.ndarray, joints: np.ndarray, bone: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Position t (N,) in [0, 1] of each point along its bone, and the bone length (N,)."""
    start = joints[[b[0] for b in BONES]]
    seg = joints[[b[1] for b in BONES]] - start
    seg_len2 = (seg * seg).sum(1)
    # row gathers with take(axis=0): the rows of start[bone] etc., faster
    a, ab, length2 = start.take(bone, axis=0), seg.take(bone, axis=0), seg_len2.take(bone)
    t = np.clip(np.einsum("ij,ij->i", points - a, ab) / length2, 0.0, 1.0)
    return t, np.sqrt(seg_len2).take(bone)


#: Per bone (index into ``BONES``): parent joint, and whether the child joint is a fingertip
#: or a thumb joint (lookups by bone index instead of set membership tests per point).
_BONE_PARENT = np.array([b[0] for b in BONES])
_BONE_ENDS_AT_TIP = np.isin([b[1] for b in BONES], TIP_JOINTS)
_BONE_ENDS_IN_THUMB = np.isin([b[1] for b in BONES], FINGER_JOINTS[0])


def _hand_features(p: np.ndarray, n: np.ndarray, frame: HandFrame, skin: SkinParams,
                   bone: np.ndarray | None) -> dict[str, np.ndarray]:
    f32 = np.float32
    joints = frame.joints.astype(f32)
    dorsal = n @ frame.dorsal.astype(f32)
    palmar_w = smoothstep(0.05, 0.45, -dorsal)
    dorsal_w = smoothstep(0.05, 0.45, dorsal)
    if bone is None:
        bone = nearest_bone(p, joints)
    t, length = _bone_position(p, joints, bone)
    parent = _BONE_PARENT[bone]
    w = skin.crease_width_m
    # Finger creases at both ends of the phalanx (not at the wrist or the fingertip).
    wobble = 0.4 * w * skin.noise.octave(p, 1.0 / (4.0 * w), 1)
    at_start = np.where(parent != WRIST, np.exp(-((t * length + wobble) / w) ** 2), 0.0)
    is_tip = _BONE_ENDS_AT_TIP[bone]
    at_end = np.where(~is_tip, np.exp(-(((1.0 - t) * length + wobble) / w) ** 2), 0.0)
    finger_crease = np.maximum(at_start, at_end)
    # Palm lines, in palm coordinates (a along the palm, b across it, both ~[0, 1]).
    metacarpal = parent == WRIST
    rel = add_columns(p, -joints[WRIST])  # p - joints[WRIST]
    palm_len = f32(np.linalg.norm(joints[FINGER_JOINTS[2][0]] - joints[WRIST]))
    a = rel @ frame.length_axis.astype(f32) / palm_len
    b = rel @ frame.width_axis.astype(f32) / palm_len
    palm = np.zeros(len(p), f32)
    for pos, slope in PALM_LINES:
        dist = (a - pos - slope * b) * palm_len + 1.5 * wobble
        palm = np.maximum(palm, np.exp(-(dist / (1.3 * w)) ** 2))
    thumb = add_columns(p, -joints[FINGER_JOINTS[0][1]])
    arc = np.sqrt(np.einsum("ij,ij->i", thumb, thumb)) - 0.45 * palm_len + wobble
    palm = np.maximum(palm, np.exp(-(arc / (1.3 * w)) ** 2) * (a > 0.1))
    crease = palmar_w * np.where(metacarpal & ~_BONE_ENDS_IN_THUMB[bone], palm, finger_crease)
    crease = np.maximum(crease, 0.35 * dorsal_w * at_start * (parent != WRIST))
    nail = np.where(is_tip, smoothstep(NAIL_START, NAIL_START + 0.15, t), 0.0)
    nail = nail * smoothstep(0.45, 0.7, dorsal)
    vein_zone = dorsal_w * metacarpal
    return {"palmar": palmar_w, "crease": crease, "nail": nail, "vein_zone": vein_zone}


def skin_albedo(rest_points: np.ndarray, rest_normals: np.ndarray, skin: SkinParams,
                frame: HandFrame | None = None, sleeve: np.ndarray | None = None,
                bones: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Albedo and specular gain of skin surface points.

    Args:
        rest_points: (N, 3) texture coordinates: rest-pose positions, metres.
        rest_normals: (N, 3) unit rest-pose normals.
        skin: per-sample parameters.
        frame: rest skeleton for creases, nails and palm lines (None: plain skin with veins, as
            on a forearm).
        sleeve: (N,) in [0, 1], 1 where cloth covers the skin (None: no sleeve).
        bones: (N,) index into ``BONES`` of each point's bone (None: the nearest bone, slower;
            the generator passes the bone of the hit triangle's nearest vertex).

    Returns:
        ``(albedo (N, 3) float32 linear RGB, specular gain (N,) float32)``.
    """
    p = np.asarray(rest_points, np.float32)
    n = np.asarray(rest_normals, np.float32)
    if p.ndim != 2 or p.shape[1] != 3 or n.shape != p.shape:
        raise ValueError(f"rest_points and rest_normals must both be (N, 3), got {p.shape} "
                         f"and {n.shape}")
    if sleeve is None:
        return _bare_skin(p, n, skin, frame, bones)
    # Cloth and skin are blended across the sleeve's edge only: each is computed where it
    # shows.
    s = np.asarray(sleeve, np.float32)
    albedo = np.zeros((len(p), 3), np.float32)
    spec = np.zeros(len(p), np.float32)
    bare = np.nonzero(s < 1.0)[0]
    if len(bare):
        sub = None if bones is None else bones[bare]
        a, g = _bare_skin(p[bare], n[bare], skin, frame, sub)
        w = (1.0 - s[bare])[:, None]
        albedo[bare] = a * w
        spec[bare] = g * w[:, 0]
    covered = np.nonzero(s > 0.0)[0]
    if len(covered):
        cloth = skin.sleeve_rgb[None] * (
            1.0 + 0.15 * skin.noise.fractal(p[covered] + 2.1, 400.0, 2)[:, None])
        albedo[covered] += np.clip(cloth, 0.0, 1.0) * s[covered, None]
    return albedo, spec


def _bare_skin(p: np.ndarray, n: np.ndarray, skin: SkinParams, frame: HandFrame | None,
               bones: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Albedo (N, 3) and specular gain (N,) of uncovered skin (see :func:`skin_albedo`)."""
    noise = skin.noise
    mottle = noise.fractal(p, MOTTLE_FREQ_PER_M, octaves=2)
    # tone * (1 + mottle * MOTTLE_RGB), column by column (see scale_rows)
    albedo = outer_rows(skin.mottle * mottle, MOTTLE_RGB)
    albedo += 1.0
    scale_columns(albedo, skin.tone, out=albedo)
    pores = noise.fractal(p + 0.37, 1.0 / skin.pore_scale_m, octaves=2)
    scale_rows(albedo, 1.0 - skin.pores * smoothstep(0.1, 0.6, np.abs(pores)), out=albedo)
    spec = np.ones(len(p), np.float32)
    vein_zone = None
    if frame is not None:
        f = _hand_features(p, n, frame, skin, bones)
        scale_rows(albedo, 1.0 + skin.palm_lightening * f["palmar"], out=albedo)
        crease = np.clip(skin.creases * f["crease"], 0.0, 1.0)
        tint_rows(albedo, crease, CREASE_TINT)
        vein_zone = f["vein_zone"]
        nailed = np.nonzero(f["nail"] > 0.0)[0]
        if len(nailed):
            nail = f["nail"][nailed, None]
            albedo[nailed] = albedo[nailed] * (1.0 - nail) + nail * skin.nail_rgb[None] * (
                1.0 + 0.05 * noise.octave(p[nailed], 1.0 / skin.pore_scale_m, 2)[:, None])
        spec *= 1.0 + (NAIL_SPECULAR_GAIN - 1.0) * f["nail"]
    # veins: everywhere on plain skin, only in the vein zone of a hand
    veined = np.arange(len(p)) if vein_zone is None else np.nonzero(vein_zone > 0.0)[0]
    if len(veined):
        stretched = scale_columns(p.take(veined, axis=0), VEIN_STRETCH)
        stretched += 1.3
        ridge = np.abs(noise.fractal(stretched, VEIN_FREQ_PER_M, octaves=2))
        vein = smoothstep(VEIN_WIDTH, 0.0, ridge)
        if vein_zone is not None:
            vein = vein * vein_zone[veined]
        vein_mix = np.clip(skin.veins * vein, 0.0, 1.0)
        rows = tint_rows(albedo.take(veined, axis=0), vein_mix, VEIN_TINT)
        albedo[veined] = rows
    np.clip(albedo, 0.0, 1.0, out=albedo)
    return albedo.astype(np.float32, copy=False), spec.astype(np.float32, copy=False)


@dataclass
class Light:
    """A directional light: unit direction *towards* the light (left frame), RGB irradiance."""

    direction: np.ndarray
    rgb: np.ndarray


@dataclass
class LightingParams:
    """Per-sample lighting (drawn by :func:`sample_lighting`)."""

    lights: list[Light]
    ambient: float
    specular: float
    shininess: float
    wrap: float
    cast_shadows: bool
    shadow_strength: float


def _direction(angle_rad: float, azimuth_rad: float) -> np.ndarray:
    # Rotate "towards the camera" (-z) by angle about an axis in the image plane.
    return np.array([np.sin(angle_rad) * np.cos(azimuth_rad),
                     np.sin(angle_rad) * np.sin(azimuth_rad), -np.cos(angle_rad)])


def sample_lighting(rng: np.random.Generator, cfg: LightingConfig) -> LightingParams:
    """Draw the lights of one sample."""
    count = int(rng.integers(cfg.num_lights[0], cfg.num_lights[1] + 1))
    key = rng.uniform(*cfg.key_intensity)
    lights = []
    for k in range(count):
        lo, hi = cfg.light_angle_deg if k == 0 else (0.0, max(cfg.light_angle_deg[1], 60.0))
        direction = _direction(np.deg2rad(rng.uniform(lo, hi)), rng.uniform(0, 2 * np.pi))
        intensity = key if k == 0 else key * rng.uniform(*cfg.fill_ratio)
        colour = rng.uniform(cfg.light_rgb_min, cfg.light_rgb_max)
        lights.append(Light(direction, (intensity * colour).astype(np.float32)))
    return LightingParams(lights=lights, ambient=rng.uniform(*cfg.ambient),
                          specular=rng.uniform(*cfg.specular),
                          shininess=rng.uniform(*cfg.shininess), wrap=cfg.wrap,
                          cast_shadows=cfg.cast_shadows, shadow_strength=cfg.shadow_strength)


def shade(albedo: np.ndarray, normals: np.ndarray, view_dirs: np.ndarray,
          lighting: LightingParams, visibility: np.ndarray | None = None,
          specular_gain: np.ndarray | None = None) -> np.ndarray:
    """Outgoing radiance of surface points: wrapped Lambert + normalised Blinn-Phong + ambient.

    ``L = a * (ambient * hemi(n) + sum_l E_l * vis_l * max(0, (n.l + w) / (1 + w)))
    + sum_l E_l * vis_l * ks * g * (s + 8) / (8 pi) * max(0, n.h)^s * [n.l > 0]``
    with ``h = normalize(l + v)``; ``hemi(n)`` lets the "up" side (-y) get a little more ambient.

    Args:
        albedo: (N, 3) linear RGB.
        normals: (N, 3) unit normals (flipped to face the viewer if needed).
        view_dirs: (N, 3) unit directions from the point towards the camera.
        lighting: lights, ambient and specular settings.
        visibility: (N, L) in [0, 1], 1 = light l reaches the point (None: all lit).
        specular_gain: (N,) per-point specular multiplier (None: 1).

    Returns:
        (N, 3) float32 linear radiance.
    """
    n = np.asarray(normals, np.float32)
    v = np.asarray(view_dirs, np.float32)
    if albedo.shape != n.shape or n.shape != v.shape or n.ndim != 2 or n.shape[1] != 3:
        raise ValueError(f"albedo, normals and view_dirs must all be (N, 3), got {albedo.shape}, "
                         f"{n.shape}, {v.shape}")
    num = len(lighting.lights)
    if visibility is not None and visibility.shape != (len(n), num):
        raise ValueError(f"visibility must be (N, {num}), got {visibility.shape}")
    facing = np.einsum("ij,ij->i", n, v)
    # broadcast products column by column (scale_rows): the same operations, faster
    n = scale_rows(n, np.where(facing < 0, np.float32(-1.0), np.float32(1.0)))
    hemi = 1.0 - AMBIENT_HEMISPHERE * 0.5 * (1.0 + n[:, 1])
    ambient = lighting.ambient * hemi
    diffuse = np.empty((len(n), 3), ambient.dtype)
    for c in range(3):
        diffuse[:, c] = ambient
    specular = np.zeros_like(diffuse)
    s = lighting.shininess
    norm = (s + 8.0) / (8.0 * np.pi)
    for k, light in enumerate(lighting.lights):
        ndl = n @ light.direction.astype(np.float32)
        vis = 1.0 if visibility is None else visibility[:, k]
        wrapped = np.clip((ndl + lighting.wrap) / (1.0 + lighting.wrap), 0.0, None) * vis
        h = add_columns(v, light.direction.astype(np.float32))
        # n . h / |h| without normalising h
        ndh = np.einsum("ij,ij->i", n, h)
        ndh /= np.sqrt(np.einsum("ij,ij->i", h, h)) + np.float32(1e-12)
        np.maximum(ndh, 0.0, out=ndh)
        spec = lighting.specular * norm * ndh ** s * (ndl > 0) * vis
        rgb = np.asarray(light.rgb)
        for c in range(3):  # diffuse += wrapped (x) rgb, specular += spec (x) rgb
            np.add(diffuse[:, c], wrapped * rgb[c:c + 1], out=diffuse[:, c])
            np.add(specular[:, c], spec * rgb[c:c + 1], out=specular[:, c])
    radiance = albedo * diffuse
    if specular_gain is not None:
        scale_rows(specular, specular_gain, out=specular)
    radiance += specular
    return radiance.astype(np.float32, copy=False)
