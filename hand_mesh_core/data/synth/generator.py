"""The synthetic stereo generator: a posed hand (plus distractors) ray-traced into a rectified
pair with exact labels.

One sample ``i`` of a run with seed ``s`` draws everything from its own generator seeded by
``SeedSequence([s, i])``, so a sample does not depend on the other samples or on the number of
worker processes.

Per sample: handedness, pose (family mixture), shape, orientation and position (the hand must
lie inside both images), optional forearm, lights, skin, background plane, sensor. Each view
casts one ray per pixel (open3d ``RaycastingScene``) against the hand and the forearm; rays that
miss hit the background plane. Hit points are textured with a solid skin texture attached to the
rest-pose surface, shaded (wrapped Lambert + Blinn-Phong + ambient) with shadow rays towards each
light, and passed through the sensor model.
"""
from __future__ import annotations

from dataclasses import InitVar, dataclass, field
from typing import Any

import cv2
import numpy as np
import torch

from hand_mesh_core.data.synth import raycast
from hand_mesh_core.data.synth.backgrounds import BackgroundPlane, make_background
from hand_mesh_core.data.synth.config import DomainConfig
from hand_mesh_core.data.synth.meshes import forearm_mesh, vertex_normals, wrist_section
from hand_mesh_core.data.synth.poses import sample_pose
from hand_mesh_core.data.synth.sensor import decode_jpeg, sample_sensor, sensor_image
from hand_mesh_core.data.synth.shading import (HandFrame, LightingParams, SkinParams,
                                               add_columns, nearest_bone, sample_lighting,
                                               sample_skin, scale_columns, scale_rows, shade,
                                               skin_albedo)
from hand_mesh_core.data.synth.textures import smoothstep
from hand_mesh_core.data.types import HANDEDNESS_CHOICES, StereoSample
from hand_mesh_core.geometry.camera import StereoCamera
from hand_mesh_core.hand.joints import BONES, FINGER_JOINTS, WRIST

__all__ = ["GENERATOR_VERSION", "MASK_HAND", "MASK_FOREARM", "MASK_BACKGROUND", "HandRig",
           "SynthSample", "SynthGenerator", "sample_seed_sequence"]

#: Bumped whenever the same (domain, seed, index) would render differently.
GENERATOR_VERSION = "1.2.0"
#: Label values of the mask images (PNG, uint8).
MASK_BACKGROUND = 0
MASK_FOREARM = 128
MASK_HAND = 255
#: Geometry ids of the ray-casting scene.
GEOM_HAND, GEOM_FOREARM = 0, 1
#: Shape coefficients are drawn from N(0, shape_std) and clipped to this many std units.
SHAPE_CLIP = 2.5
#: Wrist flexion/extension and radial/ulnar deviation of the forearm, radians (a relaxed
#: range; Ryu et al., J. Hand Surg. 16A(3), 1991 report ~ +-60 deg flexion, ~ 20-30 deg deviation).
FOREARM_FLEXION_RAD = (-0.5, 0.5)
FOREARM_DEVIATION_RAD = (-0.3, 0.3)
#: Width of the sleeve edge, metres, and the amplitude of its waviness.
SLEEVE_EDGE_M = 0.002
SLEEVE_WOBBLE_M = 0.008
#: Spatial frequency of the sleeve edge's waviness, 1/m.
SLEEVE_WOBBLE_FREQ_PER_M = 60.0
#: Points closer than this to the camera plane make the projected box the whole image, m.
MIN_BBOX_DEPTH_M = 1e-3
#: Rays are cast for the pixels within this many px of a mesh's projected convex hull (covers
#: the rounding of the hull's fixed-point corners and pixel centres on its edge).
HULL_MARGIN_PX = 1
#: Fractional bits of the hull's corner coordinates (cv2 fixed point).
HULL_SHIFT = 4
#: Hull corners farther than this from the image box (px) make the hull the whole box (keeps
#: the fixed-point coordinates far inside int32).
MAX_HULL_PX = 1e6
#: |light . plane normal| below this: the light grazes the plane, no shadow is cast on it.
PARALLEL_EPS = 1e-6
#: Added to norms before dividing.
NORMAL_EPS = 1e-12
#: Outer placement attempts (each with a new orientation) before giving up.
MAX_ORIENTATION_TRIES = 20


def sample_seed_sequence(seed: int, index: int) -> np.random.SeedSequence:
    """The seed sequence of sample ``index`` of a run with ``seed`` (both >= 0)."""
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be >= 0, got {seed} and {index}")
    return np.random.SeedSequence([int(seed), int(index)])


def _rotvec_to_matrix(rv: np.ndarray) -> np.ndarray:
    theta = float(np.linalg.norm(rv))
    if theta < 1e-12:
        return np.eye(3)
    k = rv / theta
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(theta) * kx + (1 - np.cos(theta)) * kx @ kx


def _matrix_to_rotvec(r: np.ndarray) -> np.ndarray:
    cos = np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0)
    theta = np.arccos(cos)
    if theta < 1e-9:
        return np.zeros(3)
    if np.pi - theta < 1e-6:
        # axis from the largest diagonal entry of (R + I) / 2
        m = (r + np.eye(3)) / 2.0
        k = int(np.argmax(np.diag(m)))
        axis = m[:, k] / np.sqrt(m[k, k])
        return axis * theta
    axis = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    axis = axis / (2 * np.sin(theta))
    return axis * theta


class HandRig:
    """Numpy front end of the hand model (``hand_mesh_core.hand``), one hand at a time.

    Args:
        model: a ``HandModel``; default ``HandModel.procedural()``.
    """

    def __init__(self, model: Any = None) -> None:
        if model is None:
            from hand_mesh_core.hand.model import HandModel
            model = HandModel.procedural()
        self.model = model
        self._rest: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._bones: dict[str, np.ndarray] = {}
        self._parts: dict[str, list[np.ndarray]] = {}

    @property
    def num_shape(self) -> int:
        """Length of the shape vector."""
        return int(getattr(self.model, "num_shape"))

    def faces(self, handedness: str) -> np.ndarray:
        """(F, 3) int64 faces, counter-clockwise seen from outside, for ``handedness``."""
        f = self.model.faces_for(handedness)
        return np.asarray(f.detach().cpu().numpy() if isinstance(f, torch.Tensor) else f,
                          np.int64)

    @torch.no_grad()
    def forward(self, pose: np.ndarray, shape: np.ndarray, global_orient: np.ndarray,
                handedness: str) -> tuple[np.ndarray, np.ndarray]:
        """Posed vertices (V, 3) and joints (21, 3), float64, metres, no translation."""
        out = self.model(pose=torch.as_tensor(pose, dtype=torch.float32)[None],
                         shape=torch.as_tensor(shape, dtype=torch.float32)[None],
                         global_orient=torch.as_tensor(global_orient, dtype=torch.float32)[None],
                         transl=torch.zeros(1, 3), handedness=handedness)
        return (out.vertices[0].double().numpy(), out.joints[0].double().numpy())

    def rest(self, handedness: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Texture coordinates: rest vertices (V, 3), rest normals (V, 3), rest joints (21, 3)
        of the mean shape in the flat pose (cached per handedness)."""
        if handedness not in self._rest:
            v, j = self.forward(np.zeros((15, 3)), np.zeros(self.num_shape), np.zeros(3),
                                handedness)
            self._rest[handedness] = (v, vertex_normals(v, self.faces(handedness)), j)
        return self._rest[handedness]

    def vertex_bones(self, handedness: str) -> np.ndarray:
        """(V,) index into ``BONES`` of the bone nearest to each rest vertex (cached)."""
        if handedness not in self._bones:
            v, _, j = self.rest(handedness)
            self._bones[handedness] = nearest_bone(v, j)
        return self._bones[handedness]

    def part_vertices(self, handedness: str) -> list[np.ndarray]:
        """Vertex indices of the hand's parts: the palm (metacarpal bones) and the phalanges
        of each finger (cached). Each face belongs to the part of its first corner's bone and
        all three corners are in that part, so every face lies inside the convex hull of one
        part's vertices (in any pose): a tighter cover of the hand than one hull."""
        if handedness not in self._parts:
            finger = {j: f for f, joints in enumerate(FINGER_JOINTS) for j in joints}
            part_of_bone = np.array([0 if parent == WRIST else 1 + finger[child]
                                     for parent, child in BONES])
            faces = self.faces(handedness)
            face_part = part_of_bone[self.vertex_bones(handedness)[faces[:, 0]]]
            self._parts[handedness] = [np.unique(faces[face_part == k])
                                       for k in range(len(FINGER_JOINTS) + 1)
                                       if np.any(face_part == k)]
        return self._parts[handedness]


@dataclass
class SynthSample:
    """One rendered stereo pair with every label.

    The RGB images ``left`` and ``right`` are properties: when the sensor compressed them,
    they are decoded from ``left_jpeg`` / ``right_jpeg`` on first use (a writer that stores
    the JPEG files as they are never decodes them); else they are given as ``left_image`` /
    ``right_image``.

    Attributes:
        index: sample index in its run.
        left, right: (H, W, 3) uint8 RGB (read-only properties).
        mask_left, mask_right: (H, W) uint8 labels: MASK_HAND, MASK_FOREARM, MASK_BACKGROUND.
        depth_left, depth_right: (H, W) float32 z in metres of whatever each pixel sees (hand,
            forearm or background), 0 where nothing.
        disparity_left: (H, W) float32 ``fx * B / depth_left`` px, 0 where depth is 0.
        joints_m: (21, 3) float32, left optical frame, canonical order.
        vertices_m: (V, 3) float32, left optical frame.
        camera: the stereo camera.
        handedness: "left" or "right".
        pose: (15, 3) float32 axis-angle of the articulated joints (hand-model convention).
        shape: (S,) float32 shape coefficients.
        global_orient: (3,) float32 axis-angle, hand frame -> left optical frame.
        transl: (3,) float32 translation added to the model output (``transl`` argument of the
            hand model), metres.
        info: per-sample scene parameters (pose family, background kind, lights, forearm...).
        left_jpeg, right_jpeg: the JPEG files that decode to ``left`` / ``right`` when the
            sensor compresses (the writer stores them as they are), else None.
        left_image, right_image: init-only: the decoded images (None: decode the JPEG file
            when first needed).

    Raises:
        ValueError: a view has neither an image nor a JPEG file.
    """

    index: int
    mask_left: np.ndarray
    mask_right: np.ndarray
    depth_left: np.ndarray
    depth_right: np.ndarray
    disparity_left: np.ndarray
    joints_m: np.ndarray
    vertices_m: np.ndarray
    camera: StereoCamera
    handedness: str
    pose: np.ndarray
    shape: np.ndarray
    global_orient: np.ndarray
    transl: np.ndarray
    info: dict = field(default_factory=dict)
    left_jpeg: bytes | None = None
    right_jpeg: bytes | None = None
    left_image: InitVar[np.ndarray | None] = None
    right_image: InitVar[np.ndarray | None] = None
    _images: list = field(init=False, repr=False, compare=False)

    def __post_init__(self, left_image: np.ndarray | None, right_image: np.ndarray | None
                      ) -> None:
        self._images = [left_image, right_image]
        for view, image, data in (("left", left_image, self.left_jpeg),
                                  ("right", right_image, self.right_jpeg)):
            if image is None and data is None:
                raise ValueError(f"the {view} view needs an image or a JPEG file, got neither")

    def _image(self, k: int) -> np.ndarray:
        if self._images[k] is None:
            data = (self.left_jpeg, self.right_jpeg)[k]
            if data is None:
                raise ValueError(f"the {raycast.VIEWS[k]} image was never decoded and its JPEG "
                                 "file has been removed")
            self._images[k] = decode_jpeg(data)
        return self._images[k]

    @property
    def left(self) -> np.ndarray:
        """(H, W, 3) uint8 RGB left image."""
        return self._image(0)

    @property
    def right(self) -> np.ndarray:
        """(H, W, 3) uint8 RGB right image."""
        return self._image(1)

    def to_stereo_sample(self, source: str = "synth") -> StereoSample:
        """The sample as the library-wide :class:`StereoSample` (masks: hand only)."""
        return StereoSample(left=self.left, right=self.right, camera=self.camera,
                            handedness=self.handedness, joints_m=self.joints_m,
                            vertices_m=self.vertices_m, mask_left=self.mask_left == MASK_HAND,
                            mask_right=self.mask_right == MASK_HAND,
                            source=f"{source}/{self.index}")


#: Columns of the per-vertex attribute table of a mesh (:class:`_Geometry`): posed normal,
#: rest-pose position and normal (the solid texture's coordinates) and, on the forearm, the
#: distance from the wrist (m).
ATTR_NORMAL, ATTR_REST_POINT, ATTR_REST_NORMAL = slice(0, 3), slice(3, 6), slice(6, 9)
ATTR_AXIAL = 9


@dataclass
class _Geometry:
    """Posed meshes of one sample and their per-vertex attributes.

    ``attributes[k]`` is (V_k, 9) float32 (10 on the forearm), columns ``ATTR_*``: all the
    values a ray hit interpolates, in one table so that one barycentric gather serves them.
    """

    vertices: list[np.ndarray]
    faces: list[np.ndarray]
    attributes: list[np.ndarray]
    sleeve_start_m: float
    hand_bones: np.ndarray
    #: (V_p, 3) posed vertices of each part (hand parts, then the forearm): every face of
    #: every mesh lies inside the convex hull of one part.
    parts: list[np.ndarray] = field(default_factory=list)


@dataclass
class _Surface:
    """Shading inputs of N mesh hits (of one view): points (N, 3) float32 left frame,
    unit normals (N, 3) facing the camera, unit directions to the camera (N, 3), albedo
    (N, 3) linear RGB, specular gain (N,)."""

    points: np.ndarray
    normals: np.ndarray
    to_cam: np.ndarray
    albedo: np.ndarray
    specular: np.ndarray


@dataclass
class _PlaneLight:
    """Irradiance of the lit background plane: ``unshadowed`` (3,) RGB everywhere, minus,
    per view, ``lost`` (3,) float32 at the pixels ``pix`` whose shadow ray (slot ``slot`` of
    the shadow-ray batch) is blocked."""

    unshadowed: np.ndarray
    shadows: list[list[tuple[np.ndarray, int, np.ndarray]]]


def _attributes(*columns: np.ndarray) -> np.ndarray:
    """Per-vertex attribute table (V, C) float32 from (V,) or (V, c) columns."""
    return np.ascontiguousarray(np.concatenate(
        [np.asarray(c, np.float32).reshape(len(c), -1) for c in columns], axis=1))


def _interp(values: np.ndarray, tri: np.ndarray, bary: np.ndarray) -> np.ndarray:
    """Barycentric interpolation: ``values`` (V, C) at the corners ``tri`` (N, 3) with weights
    ``bary`` (N, 3) -> (N, C) float32."""
    vals = np.asarray(values, np.float32)
    # one gather of every corner's row, (3, N, C): corner k's weighted values are
    # corners[k], summed in the order corner 0 + corner 1 + corner 2
    corners = vals.take(np.asarray(tri).T, axis=0)
    corners *= np.asarray(bary, np.float32).T[:, :, None]
    out = corners[0]
    out += corners[1]
    out += corners[2]
    return out


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dot products of (N, 3) arrays -> (N,)."""
    return np.einsum("ij,ij->i", a, b)


def _normalize(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` (N, 3) scaled to unit length (in place; zero rows stay ~0)."""
    norm = np.sqrt(_dot(x, x))
    norm += np.float32(NORMAL_EPS)
    for c in range(x.shape[1]):  # x /= norm[:, None], column by column (see scale_rows)
        np.divide(x[:, c], norm, out=x[:, c])
    return x


def _uniform_cap_direction(rng: np.random.Generator, max_angle_rad: float) -> tuple[float, float]:
    # Uniform on the spherical cap: cos(theta) uniform in [cos(max), 1].
    cos_t = rng.uniform(np.cos(max_angle_rad), 1.0)
    return float(np.arccos(cos_t)), float(rng.uniform(0.0, 2.0 * np.pi))


class SynthGenerator:
    """Renders samples of one domain.

    Args:
        domain: the domain preset.
        rig: hand model front end (default: the procedural hand model).
        nthreads: open3d ray-casting threads (0 = all cores; 1 inside worker processes).
    """

    def __init__(self, domain: DomainConfig, rig: HandRig | None = None, nthreads: int = 0
                 ) -> None:
        if not isinstance(domain, DomainConfig):
            raise TypeError(f"domain must be a DomainConfig, got {type(domain).__name__}")
        if nthreads < 0:
            raise ValueError(f"nthreads must be >= 0, got {nthreads}")
        self.domain = domain
        self.rig = rig if rig is not None else HandRig()
        self.nthreads = nthreads
        self.camera = domain.camera
        self._rays = {v: raycast.view_rays(self.camera, v) for v in raycast.VIEWS}

    # ------------------------------------------------------------------ sampling
    def _orientation(self, rng: np.random.Generator) -> np.ndarray:
        cfg = self.domain.placement
        # Canonical hand frame (fingers +y, palm +z) -> camera: fingers up (-y), palm to camera.
        base = np.diag([1.0, -1.0, -1.0])
        roll = np.deg2rad(rng.uniform(*cfg.roll_deg))
        r_roll = _rotvec_to_matrix(np.array([0.0, 0.0, roll]))
        theta, phi = _uniform_cap_direction(rng, np.deg2rad(cfg.view_angle_deg))
        r_tilt = _rotvec_to_matrix(theta * np.array([np.cos(phi), np.sin(phi), 0.0]))
        return r_tilt @ r_roll @ base

    def _fits(self, vertices: np.ndarray) -> bool:
        cam, cfg = self.camera, self.domain.placement
        if np.any(vertices[:, 2] <= 0):
            return False
        u = cam.fx * vertices[:, 0] / vertices[:, 2] + cam.cx
        v = cam.fy * vertices[:, 1] / vertices[:, 2] + cam.cy
        ur = u - cam.fx_baseline / vertices[:, 2]
        m = cfg.margin_px
        inside = (u.min() >= m - 0.5 and u.max() <= cam.width - 0.5 - m
                  and ur.min() >= m - 0.5 and ur.max() <= cam.width - 0.5 - m
                  and v.min() >= m - 0.5 and v.max() <= cam.height - 0.5 - m)
        if not inside:
            return False
        if cfg.max_bbox_px > 0 and max(u.max() - u.min(), v.max() - v.min()) > cfg.max_bbox_px:
            return False
        return True

    def _place(self, rng: np.random.Generator, pose: np.ndarray, shape: np.ndarray,
               handedness: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        cfg, cam = self.domain.placement, self.camera
        for _ in range(MAX_ORIENTATION_TRIES):
            rot = self._orientation(rng)
            orient = _matrix_to_rotvec(rot)
            verts, joints = self.rig.forward(pose, shape, orient, handedness)
            centre = joints.mean(0)
            for k in range(cfg.max_tries):
                frac = cfg.center_frac * (1.0 - k / cfg.max_tries)
                z = rng.uniform(*cfg.depth_m)
                u = cam.cx + (rng.uniform() - 0.5) * frac * cam.width
                v = cam.cy + (rng.uniform() - 0.5) * frac * cam.height
                # Aim the centre so that it lands half-way between the two views' positions.
                target = np.array([(u - cam.cx) / cam.fx * z + cam.baseline_m / 2,
                                   (v - cam.cy) / cam.fy * z, z])
                transl = target - centre
                if self._fits(verts + transl):
                    return orient, transl, verts + transl, joints + transl
        raise RuntimeError(
            f"could not place the hand inside both {cam.width}x{cam.height} images in "
            f"{MAX_ORIENTATION_TRIES * cfg.max_tries} tries: widen placement.depth_m "
            f"{list(cfg.depth_m)} or relax max_bbox_px / margin_px")

    def _geometry(self, rng: np.random.Generator, pose: np.ndarray, shape: np.ndarray,
                  orient: np.ndarray, transl: np.ndarray, verts: np.ndarray,
                  handedness: str, info: dict) -> _Geometry:
        faces = self.rig.faces(handedness)
        rest_v, rest_n, _ = self.rig.rest(handedness)
        geo = _Geometry([verts], [faces], [_attributes(vertex_normals(verts, faces), rest_v,
                                                       rest_n)],
                        np.inf, self.rig.vertex_bones(handedness),
                        [verts[idx] for idx in self.rig.part_vertices(handedness)])
        dcfg = self.domain.distractors
        info["forearm"] = bool(rng.uniform() < dcfg.forearm_prob)
        if info["forearm"]:
            canon, _ = self.rig.forward(pose, shape, np.zeros(3), handedness)
            section = wrist_section(canon)
            length = rng.uniform(*dcfg.forearm_length_m)
            fv, ff = forearm_mesh(section, length, rng.uniform(*dcfg.forearm_taper),
                                  rng.uniform(*FOREARM_FLEXION_RAD),
                                  rng.uniform(*FOREARM_DEVIATION_RAD))
            rot = _rotvec_to_matrix(orient)
            posed = fv @ rot.T + transl
            geo.vertices.append(posed)
            geo.faces.append(ff)
            geo.parts.append(posed)
            # rest position, and the distance from the wrist (m) for the sleeve
            geo.attributes.append(_attributes(vertex_normals(posed, ff), fv,
                                              vertex_normals(fv, ff), -fv[:, 1]))
            if rng.uniform() < dcfg.sleeve_prob:
                geo.sleeve_start_m = rng.uniform(*dcfg.sleeve_start_m)
            info["sleeve_start_m"] = float(geo.sleeve_start_m)
        return geo

    # ------------------------------------------------------------------ rendering
    def _bbox(self, view: str, points: np.ndarray) -> tuple[int, int, int, int] | None:
        """Pixel box (u0, v0, u1, v1), end-exclusive, holding the projection of ``points`` in
        ``view`` (None if empty); the whole image if a point is at or behind the camera."""
        cam = self.camera
        h, w = cam.height, cam.width
        if np.any(points[:, 2] <= MIN_BBOX_DEPTH_M):
            return 0, 0, w, h
        x = points[:, 0] - raycast.camera_center(cam, view)[0]
        u = cam.fx * x / points[:, 2] + cam.cx
        v = cam.fy * points[:, 1] / points[:, 2] + cam.cy
        u0 = int(np.clip(np.floor(u.min()) - 1, 0, w))
        u1 = int(np.clip(np.ceil(u.max()) + 2, 0, w))
        v0 = int(np.clip(np.floor(v.min()) - 1, 0, h))
        v1 = int(np.clip(np.ceil(v.max()) + 2, 0, h))
        if u0 >= u1 or v0 >= v1:
            return None
        return u0, v0, u1, v1

    @staticmethod
    def _box_pixels(box: tuple[int, int, int, int], width: int) -> np.ndarray:
        """Flat indices (ascending) of the pixels of ``box`` (u0, v0, u1, v1)."""
        u0, v0, u1, v1 = box
        return (np.arange(v0, v1)[:, None] * width + np.arange(u0, u1)[None, :]).reshape(-1)

    def _hull_pixels(self, view: str, parts: list[np.ndarray], box: tuple[int, int, int, int]
                     ) -> np.ndarray:
        """Flat indices (ascending) of the pixels of ``box`` within HULL_MARGIN_PX of the
        convex hull of one part's projection into ``view`` (the projection of a triangle
        lies inside the hull of its corners' projections); the whole box if a point is near
        the camera plane or projects very far away.

        Args:
            parts: (V_p, 3) points, metres, left frame.
        """
        cam = self.camera
        u0, v0, u1, v1 = box
        if any(np.any(v[:, 2] <= MIN_BBOX_DEPTH_M) for v in parts):
            return self._box_pixels(box, cam.width)
        centre_x = raycast.camera_center(cam, view)[0]
        mask = np.zeros((v1 - v0, u1 - u0), np.uint8)
        scale = 1 << HULL_SHIFT
        for v in parts:
            # in box coordinates: pixel (u0, v0) of the image is (0, 0) of the mask
            uv = np.stack([cam.fx * (v[:, 0] - centre_x) / v[:, 2] + (cam.cx - u0),
                           cam.fy * v[:, 1] / v[:, 2] + (cam.cy - v0)], axis=1)
            if not np.all(np.abs(uv) < MAX_HULL_PX):
                return self._box_pixels(box, cam.width)
            hull = cv2.convexHull(np.round(uv * scale).astype(np.int32))
            cv2.fillConvexPoly(mask, hull, 1, cv2.LINE_8, HULL_SHIFT)
        size = 2 * HULL_MARGIN_PX + 1
        mask = cv2.dilate(mask, np.ones((size, size), np.uint8))
        rows, cols = np.nonzero(mask)
        return (rows + v0) * cam.width + (cols + u0)

    def _mesh_pixels(self, view: str, geo: _Geometry) -> np.ndarray:
        """Flat indices of the pixels of ``view`` whose rays may hit a mesh: the convex hulls
        of the projections of the meshes' parts (``_Geometry.parts``), grown by
        HULL_MARGIN_PX; the whole box if a part's vertex is near the camera plane
        (:meth:`_hull_pixels`)."""
        box = self._bbox(view, np.concatenate(geo.vertices))
        if box is None:
            return np.zeros(0, np.int64)
        return self._hull_pixels(view, geo.parts, box)

    @staticmethod
    def _shadow_points(meshes: list[np.ndarray], plane: BackgroundPlane, direction: np.ndarray,
                       ray_shift_m: float = 0.0) -> np.ndarray | None:
        """The points of ``meshes`` (each (V_k, 3)), concatenated, moved along ``direction``
        onto the plane (their shadow), or None if the light is parallel to the plane.

        With ``ray_shift_m`` > 0 the shadow is moved by ``ray_shift_m * (l / (l . n) - n)``:
        a shadow ray that starts ``ray_shift_m`` above the plane point p (along the normal
        n) towards the light l hits a face only if p lies in the face's shadow moved so."""
        pts = np.concatenate(meshes)
        denom = float(direction @ plane.normal)
        if abs(denom) < PARALLEL_EPS:
            return None
        t = (plane.offset - pts @ plane.normal) / denom
        shadow = pts + t[:, None] * direction[None]
        if ray_shift_m > 0.0:
            shadow += ray_shift_m * (direction / denom - plane.normal)
        return shadow

    def _view_background(self, view: str, plane: BackgroundPlane
                         ) -> tuple[np.ndarray, np.ndarray]:
        """Albedo (H, W, 3) float32 and flat depth (H * W,) float32 (inf: no plane) of the
        background plane in ``view``."""
        analytic = plane.render(self.camera, view)
        if analytic is not None:  # a homography of the texture
            albedo, depth = analytic
        else:  # some rays miss the plane: intersect per pixel
            origin, dirs = self._rays[view]
            depth = plane.intersect(origin.astype(np.float64), dirs)
            points = origin[None, None] + np.where(np.isfinite(depth), depth, 0.0)[..., None] \
                * dirs
            albedo = plane.albedo(points.astype(np.float32))
        return albedo, depth.reshape(-1)

    def _render_views(self, scene: Any, geo: _Geometry, frame: HandFrame, skin: SkinParams,
                      lighting: LightingParams, plane: BackgroundPlane
                      ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Linear radiance (H, W, 3), depth (H, W) and mask (H, W) of each view in
        ``raycast.VIEWS``.

        The ray casting of both views is batched: one primary-ray call for the pixels of both
        views that may see a mesh, one shadow-ray call for every light, mesh and view (each
        ray is traced on its own, so batching changes no result). The shading arithmetic is
        not batched across views: it runs on each (view, mesh) set of hits as an array of its
        own, because some of its operations (BLAS matrix-vector products) round differently
        depending on an element's position in the array."""
        h, w = self.camera.height, self.camera.width
        backgrounds = [self._view_background(view, plane) for view in raycast.VIEWS]
        depths = [depth for _, depth in backgrounds]
        masks = [np.full(h * w, MASK_BACKGROUND, np.uint8) for _ in raycast.VIEWS]
        # Primary rays of the pixels that may see a mesh, both views in one call.
        pix = [self._mesh_pixels(view, geo) for view in raycast.VIEWS]
        counts = [len(p) for p in pix]
        ray_view = np.repeat(np.arange(len(raycast.VIEWS)), counts)
        ray_pix = np.concatenate(pix)
        origins = np.concatenate([np.broadcast_to(self._rays[view][0], (n, 3))
                                  for view, n in zip(raycast.VIEWS, counts)])
        dirs = np.concatenate([self._rays[view][1].reshape(-1, 3).take(p, axis=0)
                               for view, p in zip(raycast.VIEWS, pix)])
        # (view, ray indices, shading inputs) of the hits of each view on each mesh
        surfaces: list[tuple[int, np.ndarray, _Surface]] = []
        if len(ray_pix):
            hits = raycast.cast(scene, origins, dirs, self.nthreads)
            hit = np.nonzero(hits.hit)[0]
            for k in range(len(raycast.VIEWS)):
                mine = hit[ray_view[hit] == k]
                depths[k][ray_pix[mine]] = hits.t[mine]
                for gid in range(len(geo.vertices)):
                    sel = mine[hits.geometry[mine] == gid]
                    if len(sel) == 0:
                        continue
                    masks[k][ray_pix[sel]] = MASK_HAND if gid == GEOM_HAND else MASK_FOREARM
                    surfaces.append((k, sel, self._surface(gid, hits, sel, dirs, origins, geo,
                                                           frame, skin)))
        # Shadow rays: mesh hits facing each light, and the plane pixels in each light's
        # shadow box, all in one call.
        queries: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        mesh_slots = []
        for _, _, surf in surfaces:
            slots = []
            if lighting.cast_shadows:
                for light in lighting.lights:
                    idx = np.nonzero((surf.normals @ light.direction) > 0)[0]
                    slots.append((idx, len(queries)))
                    queries.append((surf.points.take(idx, axis=0), surf.normals.take(idx, axis=0),
                                    light.direction))
            mesh_slots.append(slots)
        plane_light = self._plane_lighting(geo, lighting, plane, masks, depths, queries)
        blocked = raycast.occluded_batch(scene, queries, self.nthreads) if queries else []
        # Shade the meshes and the plane.
        mesh_rad = []
        for (view, sel, surf), slots in zip(surfaces, mesh_slots):
            vis = np.ones((len(sel), len(lighting.lights)), np.float32)
            for k, (idx, slot) in enumerate(slots):
                vis[idx[blocked[slot]], k] = 1.0 - lighting.shadow_strength
            mesh_rad.append((view, sel, shade(surf.albedo, surf.normals, surf.to_cam, lighting,
                                              vis, surf.specular)))
        out = []
        for k, ((albedo, _), depth, mask) in enumerate(zip(backgrounds, depths, masks)):
            radiance = self._shade_plane(albedo, plane_light, k, blocked)
            flat_rad = radiance.reshape(-1, 3)
            for view, sel, rad in mesh_rad:
                if view == k:
                    flat_rad[ray_pix[sel]] = rad
            depth[~np.isfinite(depth)] = 0.0  # float32 already
            out.append((radiance, depth.reshape(h, w), mask.reshape(h, w)))
        return out

    def _plane_lighting(self, geo: _Geometry, lighting: LightingParams,
                        plane: BackgroundPlane, masks: list[np.ndarray],
                        depths: list[np.ndarray],
                        queries: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
                        ) -> _PlaneLight | None:
        """Unshadowed irradiance of the lit plane, and the shadow rays of its visible pixels
        inside the box of each light's shadow in each view (appended to ``queries``; None for
        an unlit plane)."""
        if not plane.lit:
            return None
        unshadowed = np.full(3, lighting.ambient, np.float64)
        shadows: list[list[tuple[np.ndarray, int, np.ndarray]]] = [[] for _ in raycast.VIEWS]
        for light in lighting.lights:
            ndl = max(0.0, float(plane.normal @ light.direction))
            if ndl == 0.0:
                continue
            unshadowed += ndl * light.rgb
            if not lighting.cast_shadows:
                continue
            shadow = self._shadow_points(geo.vertices, plane, light.direction)
            if shadow is None:
                continue
            # Only plane points inside the shadow of some face can be blocked: the shadow
            # of the parts' hulls, moved by the offset of the shadow rays' origins.
            parts = np.split(self._shadow_points(geo.parts, plane, light.direction,
                                                 raycast.SHADOW_EPS_M),
                             np.cumsum([len(v) for v in geo.parts])[:-1])
            lost = (ndl * lighting.shadow_strength * light.rgb).astype(np.float32)
            for k, view in enumerate(raycast.VIEWS):
                box = self._bbox(view, shadow)
                if box is None:
                    continue
                pix = self._hull_pixels(view, parts, box)
                depth = depths[k]
                pix = pix[(masks[k][pix] == MASK_BACKGROUND) & np.isfinite(depth[pix])]
                origin = raycast.camera_center(self.camera, view)
                # origin + depth * ray, in float64 (column by column, see scale_rows)
                pts = scale_rows(self._rays[view][1].reshape(-1, 3).take(pix, axis=0),
                                 depth.take(pix).astype(np.float64))
                add_columns(pts, origin, out=pts)
                shadows[k].append((pix, len(queries), lost))
                queries.append((pts, np.broadcast_to(plane.normal, pts.shape),
                                light.direction))
        return _PlaneLight(unshadowed, shadows)

    @staticmethod
    def _shade_plane(albedo: np.ndarray, light: _PlaneLight | None, view_index: int,
                     blocked: list[np.ndarray]) -> np.ndarray:
        """Radiance (H, W, 3) of the plane: albedo x irradiance, which is constant except in
        the cast shadows."""
        if light is None:
            return albedo.copy()
        radiance = cv2.multiply(albedo, tuple(float(c) for c in light.unshadowed) + (0.0,))
        flat_rad, flat_alb = radiance.reshape(-1, 3), albedo.reshape(-1, 3)
        for pix, slot, lost in light.shadows[view_index]:
            px = pix[blocked[slot]]
            # flat_rad[px] -= flat_alb[px] * lost[None], the same operations (see scale_rows)
            lost_rad = scale_columns(flat_alb.take(px, axis=0), lost)
            flat_rad[px] = flat_rad.take(px, axis=0) - lost_rad
        return radiance

    def _surface(self, gid: int, hits: raycast.Hits, sel: np.ndarray, dirs: np.ndarray,
                 origins: np.ndarray, geo: _Geometry, frame: HandFrame, skin: SkinParams
                 ) -> _Surface:
        """Shading inputs of the rays ``sel`` (of one view) that hit mesh ``gid``."""
        # row gathers with take(axis=0): the same rows as fancy indexing, faster
        tri = geo.faces[gid].take(hits.triangle.take(sel), axis=0)
        bary = hits.bary.take(sel, axis=0)
        ray = dirs.take(sel, axis=0)
        points = scale_rows(ray, hits.t.take(sel))  # origin + t * ray
        points += origins.take(sel, axis=0)
        attr = _interp(geo.attributes[gid], tri, bary)
        normals = _normalize(attr[:, ATTR_NORMAL])
        rest_p = attr[:, ATTR_REST_POINT]
        rest_n = _normalize(attr[:, ATTR_REST_NORMAL])
        sleeve = None
        if gid == GEOM_FOREARM and np.isfinite(geo.sleeve_start_m):
            wobble = SLEEVE_WOBBLE_M * skin.noise.octave(rest_p, SLEEVE_WOBBLE_FREQ_PER_M, 3)
            sleeve = smoothstep(geo.sleeve_start_m, geo.sleeve_start_m + SLEEVE_EDGE_M,
                                attr[:, ATTR_AXIAL] + wobble)
        bones = None
        if gid == GEOM_HAND:
            nearest = tri[np.arange(len(tri)), bary.argmax(1)]
            bones = geo.hand_bones[nearest]
        albedo, spec = skin_albedo(rest_p, rest_n, skin, frame if gid == GEOM_HAND else None,
                                   sleeve, bones)
        to_cam = _normalize(-ray)
        # two-sided: make normals face the camera before offsetting the shadow rays
        scale_rows(normals, np.where(_dot(normals, to_cam) < 0, -1.0, 1.0).astype(np.float32),
                   out=normals)
        return _Surface(points, normals, to_cam, albedo, spec)

    # ------------------------------------------------------------------ public
    def generate(self, index: int, seed: int) -> SynthSample:
        """Render sample ``index`` of the run with ``seed`` (deterministic).

        Raises:
            ValueError: negative ``index`` or ``seed``.
            RuntimeError: the placement settings cannot fit the hand in the images.
        """
        ss = sample_seed_sequence(seed, index)
        scene_ss, noise_l, noise_r = ss.spawn(3)
        rng = np.random.default_rng(scene_ss)
        d = self.domain
        info: dict[str, Any] = {}
        handedness = HANDEDNESS_CHOICES[0] if rng.uniform() < d.placement.left_hand_prob \
            else HANDEDNESS_CHOICES[1]
        pose, family = sample_pose(rng, d.pose)
        info["pose_family"] = family
        shape = np.clip(rng.normal(size=self.rig.num_shape) * d.pose.shape_std,
                        -SHAPE_CLIP * max(d.pose.shape_std, 1e-9),
                        SHAPE_CLIP * max(d.pose.shape_std, 1e-9))
        orient, transl, verts, joints = self._place(rng, pose, shape, handedness)
        geo = self._geometry(rng, pose, shape, orient, transl, verts, handedness, info)
        lighting = sample_lighting(rng, d.lighting)
        skin = sample_skin(rng, d.skin)
        _, _, rest_j = self.rig.rest(handedness)
        frame = HandFrame.from_joints(rest_j, handedness)
        plane = make_background(rng, d.background, d.distractors, self.camera, joints.mean(0),
                                np.asarray(d.skin.tones_rgb, np.float32))
        info["background"] = plane.kind
        info["lights"] = [lt.direction.tolist() for lt in lighting.lights]
        sensor = sample_sensor(rng, d.sensor)
        scene = raycast.build_scene(list(zip(geo.vertices, geo.faces)))
        images, depths, masks = [], [], []
        rendered = self._render_views(scene, geo, frame, skin, lighting, plane)
        for k, ((radiance, depth, mask), nrng) in enumerate(zip(rendered, (noise_l, noise_r))):
            images.append(sensor_image(radiance, sensor, k, np.random.default_rng(nrng),
                                       decode=False))
            depths.append(depth)
            masks.append(mask)
        # fx * B / depth in float32 where depth > 0, else 0
        disparity = np.zeros(depths[0].shape, np.float32)
        np.divide(self.camera.fx_baseline, depths[0], out=disparity, where=depths[0] > 0)
        return SynthSample(index=index, left_image=images[0].image,
                           right_image=images[1].image,
                           left_jpeg=images[0].jpeg, right_jpeg=images[1].jpeg,
                           mask_left=masks[0],
                           mask_right=masks[1], depth_left=depths[0], depth_right=depths[1],
                           disparity_left=disparity, joints_m=joints.astype(np.float32),
                           vertices_m=verts.astype(np.float32), camera=self.camera,
                           handedness=handedness, pose=pose.astype(np.float32),
                           shape=shape.astype(np.float32),
                           global_orient=orient.astype(np.float32),
                           transl=transl.astype(np.float32), info=info)
