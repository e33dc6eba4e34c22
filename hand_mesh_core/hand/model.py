"""The articulated hand model: ``HandModel`` (procedural template or user-supplied MANO).

Output frame: the canonical hand frame of :mod:`hand_mesh_core.hand.anatomy` (wrist at the
origin, fingers along +y, palm normal +z, thumb towards +x for a right hand), then rotated by
``global_orient`` about the wrist and translated by ``transl``: callers place the hand in the
camera frame with these two. Units: metres, radians.

Left hands are the documented mirror of right hands: the posed right hand, in its own frame,
has its x coordinates negated (vertices and joints) *before* the global rotation and
translation, and the face winding is flipped (``faces_for("left")``) so normals stay outward.
The same pose parameters therefore mean the same anatomical articulation for both hands.
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hand_mesh_core.data.types import HANDEDNESS_CHOICES
from hand_mesh_core.hand.anatomy import joint_frames, rest_joints
from hand_mesh_core.hand.config import NUM_SHAPE_PROCEDURAL, HandModelConfig
from hand_mesh_core.hand.joints import ARTICULATED_JOINTS, NUM_JOINTS, TIP_JOINTS
from hand_mesh_core.hand.kinematics import (axis_angle_to_matrix, forward_kinematics,
                                            linear_blend_skinning)
from hand_mesh_core.hand.skinning import (SHAPE_STEP, fit_joint_regressor, shape_directions,
                                          skinning_weights)

__all__ = ["HandModel", "HandOutput"]

#: Seed and number of sampled poses (besides the named ones) used to fit the joint regressor.
_REGRESSOR_SEED = 1234
_REGRESSOR_SAMPLES = 48
#: Shipped, pre-built procedural hands (safetensors). Building one takes seconds and its
#: decimation step depends on open3d, so the default build ships as an asset: every machine
#: then gets the same topology (and topology hash), and start-up is fast.
ASSET_DIR = Path(__file__).resolve().parents[1] / "assets"
#: Bump when the procedural construction changes; regenerate with write_procedural_asset().
PROCEDURAL_ASSET_VERSION = 1
#: Mirror of the hand frame (right <-> left): x -> -x.
_MIRROR = (-1.0, 1.0, 1.0)


@dataclass(frozen=True)
class HandOutput:
    """A batch of posed hands.

    Attributes:
        vertices: (B, V, 3) mesh vertices, metres (hand frame moved by global_orient/transl).
        joints: (B, 21, 3) joints, canonical order, same frame and unit.
    """

    vertices: torch.Tensor
    joints: torch.Tensor


def _as_tensor(a: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.tensor(np.array(a, copy=True), dtype=dtype)


class HandModel(nn.Module):
    """Articulated hand mesh: rest shape + linear shape directions + LBS on 21 joints.

    Build with :meth:`procedural` or :meth:`from_mano`. Buffers (move with ``.to()``):
    ``template_vertices`` (V, 3) m, ``faces`` (F, 3) int64 right-hand winding (CCW seen from
    outside), ``skinning_weights`` (V, 21), ``joint_regressor`` (21, V) rows summing to 1,
    ``rest_joints`` (21, 3) m, ``joint_frames`` (15, 3, 3), ``shapedirs`` (V, 3, S) and
    ``joint_shapedirs`` (21, 3, S) m per unit coefficient, ``posedirs`` (135, 3V) (MANO only,
    else empty).

    Shape vector (procedural, S = 3; see ``SHAPE_STEP`` = 0.1):
    ``shape[0]`` overall size: everything scales by ``1 + 0.1 shape[0]`` about the wrist;
    ``shape[1]`` finger length: the 15 finger bones (thumb metacarpal included) by
    ``1 + 0.1 shape[1]``; ``shape[2]`` finger width: finger thickness by ``1 + 0.1 shape[2]``.
    For MANO, ``shape`` is MANO's 10 betas.
    """

    def __init__(self, template_vertices: torch.Tensor, faces: torch.Tensor,
                 skinning_weights: torch.Tensor, joint_regressor: torch.Tensor,
                 rest_joints: torch.Tensor, joint_frames: torch.Tensor,
                 shapedirs: torch.Tensor, joint_shapedirs: torch.Tensor, *,
                 kind: str, scale_first_shape: bool, default_shape: torch.Tensor,
                 posedirs: torch.Tensor | None = None,
                 tip_vertices: tuple[int, ...] | None = None) -> None:
        super().__init__()
        self.kind = kind
        self.scale_first_shape = scale_first_shape
        self.tip_vertices = tip_vertices
        self.register_buffer("template_vertices", template_vertices)
        self.register_buffer("faces", faces)
        self.register_buffer("skinning_weights", skinning_weights)
        self.register_buffer("joint_regressor", joint_regressor)
        self.register_buffer("rest_joints", rest_joints)
        self.register_buffer("joint_frames", joint_frames)
        self.register_buffer("shapedirs", shapedirs)
        self.register_buffer("joint_shapedirs", joint_shapedirs)
        self.register_buffer("default_shape", default_shape)
        self.register_buffer("posedirs", posedirs if posedirs is not None
                             else torch.zeros(0, dtype=template_vertices.dtype))

    # ------------------------------------------------------------------ construction
    @classmethod
    def procedural(cls, config: HandModelConfig | None = None) -> "HandModel":
        """The procedural right hand (deterministic; cached per config).

        Args:
            config: settings (default ``HandModelConfig()``); ``kind`` must be "procedural".

        Raises:
            ValueError: ``config.kind`` is not "procedural".
        """
        config = HandModelConfig() if config is None else config
        if config.kind != "procedural":
            raise ValueError(f"HandModel.procedural needs kind='procedural', got {config.kind!r}"
                             "; use HandModel.from_mano for kind='mano'")
        arrays = _procedural_arrays(config.grid_spacing_m, config.target_vertices,
                                    config.skin_blend_m, config.regressor_neighbours)
        return cls._from_arrays(arrays, config.default_shape)

    @classmethod
    def from_config(cls, config: HandModelConfig) -> "HandModel":
        """Dispatch on ``config.kind`` ("procedural" or "mano")."""
        if config.kind == "mano":
            return cls.from_mano(config.mano_path, config)
        return cls.procedural(config)

    @classmethod
    def from_mano(cls, path: str | Path, config: HandModelConfig | None = None) -> "HandModel":
        """Load a user-supplied MANO_RIGHT.pkl through the restricted unpickler.

        Pose semantics differ from the procedural model: MANO's axis-angles are expressed in
        the hand frame of the rest pose (joint frames = identity), but ``pose`` is still given
        in canonical finger order (thumb, index, middle, ring, little). ``shape`` = 10 betas.

        Raises:
            FileNotFoundError, hand_mesh_core.hand.mano.UnsafePickleError, ValueError.
        """
        from hand_mesh_core.hand.mano import load_mano

        config = HandModelConfig() if config is None else config
        m = load_mano(path, fingertip_vertices=config.mano_fingertip_vertices)
        f32 = torch.float32
        num_shape = m.shapedirs.shape[-1]
        return cls(_as_tensor(m.v_template), _as_tensor(m.faces, torch.int64),
                   _as_tensor(m.weights), _as_tensor(m.joint_regressor),
                   _as_tensor(m.joint_regressor @ m.v_template),
                   torch.eye(3, dtype=f32).expand(len(ARTICULATED_JOINTS), 3, 3).clone(),
                   _as_tensor(m.shapedirs),
                   _as_tensor(np.einsum("jv,vcs->jcs", m.joint_regressor, m.shapedirs)),
                   kind="mano", scale_first_shape=False,
                   default_shape=torch.zeros(num_shape, dtype=f32),
                   posedirs=_as_tensor(m.posedirs),
                   tip_vertices=tuple(int(i) for i in config.mano_fingertip_vertices))

    @classmethod
    def _from_arrays(cls, a: dict[str, np.ndarray], default_shape: tuple[float, ...]
                     ) -> "HandModel":
        return cls(_as_tensor(a["vertices"]), _as_tensor(a["faces"], torch.int64),
                   _as_tensor(a["weights"]), _as_tensor(a["regressor"]),
                   _as_tensor(a["joints"]), _as_tensor(a["frames"]), _as_tensor(a["vdirs"]),
                   _as_tensor(a["jdirs"]), kind="procedural", scale_first_shape=True,
                   default_shape=torch.tensor(default_shape, dtype=torch.float32))

    # ------------------------------------------------------------------ properties
    @property
    def num_vertices(self) -> int:
        """V."""
        return int(self.template_vertices.shape[0])

    @property
    def num_faces(self) -> int:
        """F."""
        return int(self.faces.shape[0])

    @property
    def num_shape(self) -> int:
        """S, the length of the shape vector."""
        return int(self.shapedirs.shape[-1])

    def topology_hash(self) -> str:
        """sha256 (hex) of the vertex count and the faces: checkpoints store it."""
        h = hashlib.sha256(f"V={self.num_vertices};".encode())
        h.update(self.faces.detach().cpu().to(torch.int64).numpy().astype("<i8").tobytes())
        return h.hexdigest()

    def faces_for(self, handedness: str) -> torch.Tensor:
        """(F, 3) int64 faces with outward winding for a "right" or "left" hand.

        Raises:
            ValueError: handedness not in ("left", "right").
        """
        _check_handedness(handedness)
        return self.faces if handedness == "right" else self.faces[:, [0, 2, 1]]

    # ------------------------------------------------------------------ forward
    def forward(self, pose: torch.Tensor | None = None, shape: torch.Tensor | None = None,
                global_orient: torch.Tensor | None = None, transl: torch.Tensor | None = None,
                handedness: str = "right") -> HandOutput:
        """Posed mesh and joints.

        Args:
            pose: (B, 15, 3) axis-angle per articulated joint, radians (procedural: in the
                joint's anatomical frame, components = flexion, twist, abduction). Zeros if None.
            shape: (B, S) shape coefficients (default: the config's ``default_shape``).
            global_orient: (B, 3) axis-angle rotating the hand frame about the wrist, radians.
            transl: (B, 3) translation of the wrist, metres.
            handedness: "right" or "left" (mirror, see the module docstring).

        Returns:
            :class:`HandOutput` with vertices (B, V, 3) and joints (B, 21, 3), metres, in the
            dtype of the inputs (float32 if none is given).

        Raises:
            TypeError: an input is not a floating tensor. ValueError: wrong shapes, mismatched
                batch sizes or unknown handedness.
        """
        _check_handedness(handedness)
        given = {"pose": (pose, (15, 3)), "shape": (shape, (self.num_shape,)),
                 "global_orient": (global_orient, (3,)), "transl": (transl, (3,))}
        batch, dtype = None, self.template_vertices.dtype
        for name, (x, tail) in given.items():
            if x is None:
                continue
            if not isinstance(x, torch.Tensor):
                raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
            if not x.is_floating_point():
                raise TypeError(f"{name} must be floating point, got {x.dtype}")
            if x.ndim != len(tail) + 1 or tuple(x.shape[1:]) != tail:
                raise ValueError(f"{name} must be (B, {', '.join(map(str, tail))}), got "
                                 f"{tuple(x.shape)}")
            if batch is not None and x.shape[0] != batch:
                raise ValueError(f"batch sizes differ: {name} has {x.shape[0]}, expected {batch}")
            batch, dtype = x.shape[0], x.dtype
        batch = 1 if batch is None else batch
        dev = self.template_vertices.device
        pose = torch.zeros(batch, 15, 3, dtype=dtype, device=dev) if pose is None else pose
        if shape is None:
            shape = self.default_shape.to(dtype).expand(batch, self.num_shape)
        buf = {k: getattr(self, k).to(dtype) for k in
               ("template_vertices", "rest_joints", "joint_frames", "shapedirs",
                "joint_shapedirs", "skinning_weights")}

        coeff = shape
        if self.scale_first_shape:
            coeff = torch.cat([torch.zeros_like(shape[:, :1]), shape[:, 1:]], dim=1)
        v_rest = buf["template_vertices"] + torch.einsum("vcs,bs->bvc", buf["shapedirs"], coeff)
        j_rest = buf["rest_joints"] + torch.einsum("jcs,bs->bjc", buf["joint_shapedirs"], coeff)
        if self.scale_first_shape:
            scale = (1.0 + SHAPE_STEP * shape[:, :1])[:, :, None]
            v_rest, j_rest = v_rest * scale, j_rest * scale
        if self.posedirs.numel():
            v_rest = v_rest + self._pose_correctives(pose, dtype)
        rots, joints = forward_kinematics(j_rest, pose, buf["joint_frames"])
        verts = linear_blend_skinning(v_rest, j_rest, rots, joints, buf["skinning_weights"])
        if self.tip_vertices is not None:
            joints = joints.clone()
            joints[:, list(TIP_JOINTS)] = verts[:, list(self.tip_vertices)]
        if handedness == "left":
            mirror = torch.tensor(_MIRROR, dtype=dtype, device=dev)
            verts, joints = verts * mirror, joints * mirror
        if global_orient is not None:
            rot = axis_angle_to_matrix(global_orient)[:, None]
            verts = (rot @ verts[..., None])[..., 0]
            joints = (rot @ joints[..., None])[..., 0]
        if transl is not None:
            verts, joints = verts + transl[:, None], joints + transl[:, None]
        return HandOutput(vertices=verts, joints=joints)

    def _pose_correctives(self, pose: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        from hand_mesh_core.hand.mano import CANONICAL_TO_MANO_POSE

        # MANO's pose feature: (R - I) of its 15 joints in MANO order, flattened (135)
        mano_order = pose[:, list(CANONICAL_TO_MANO_POSE)]
        eye = torch.eye(3, dtype=dtype, device=pose.device)
        feat = (axis_angle_to_matrix(mano_order) - eye).flatten(1)
        return (feat @ self.posedirs.to(dtype)).unflatten(1, (self.num_vertices, 3))


def _check_handedness(handedness: str) -> None:
    if handedness not in HANDEDNESS_CHOICES:
        raise ValueError(f"handedness must be one of {list(HANDEDNESS_CHOICES)}, "
                         f"got {handedness!r}")


def procedural_asset_path(spacing_m: float, target_vertices: int, blend_m: float,
                          neighbours: int) -> Path:
    """Where the pre-built arrays of one procedural configuration are (or would be) shipped."""
    key = (f"v{PROCEDURAL_ASSET_VERSION}_{spacing_m:.6g}_{target_vertices}_{blend_m:.6g}_"
           f"{neighbours}")
    return ASSET_DIR / f"procedural_hand_{key}.safetensors"


def write_procedural_asset(config: HandModelConfig | None = None) -> Path:
    """Build the procedural hand of ``config`` from scratch and ship it as a safetensors asset."""
    from safetensors.numpy import save_file

    c = HandModelConfig() if config is None else config
    args = (c.grid_spacing_m, c.target_vertices, c.skin_blend_m, c.regressor_neighbours)
    arrays = build_procedural_arrays(*args)
    path = procedural_asset_path(*args)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(path))
    return path


@functools.lru_cache(maxsize=4)
def _procedural_arrays(spacing_m: float, target_vertices: int, blend_m: float,
                       neighbours: int) -> dict[str, np.ndarray]:
    path = procedural_asset_path(spacing_m, target_vertices, blend_m, neighbours)
    if path.is_file():
        from safetensors.numpy import load_file

        return load_file(str(path))
    return build_procedural_arrays(spacing_m, target_vertices, blend_m, neighbours)


def build_procedural_arrays(spacing_m: float, target_vertices: int, blend_m: float,
                            neighbours: int) -> dict[str, np.ndarray]:
    """Build the procedural hand's arrays from the implicit surface (slow: seconds)."""
    from hand_mesh_core.hand.poses import POSE_NAMES, named_pose, sample_pose
    from hand_mesh_core.hand.template import procedural_mesh

    vertices, faces = procedural_mesh(spacing_m, target_vertices)
    joints = rest_joints()
    frames = joint_frames(joints)
    weights = skinning_weights(vertices, joints, blend_m)
    vdirs, jdirs = shape_directions(vertices, joints, weights)
    zeros = np.zeros((len(vertices), 3, 1))
    arrays = {"vertices": vertices, "faces": faces, "weights": weights,
              "regressor": np.full((NUM_JOINTS, len(vertices)), 1.0 / len(vertices)),
              "joints": joints, "frames": frames,
              "vdirs": np.concatenate([zeros, vdirs], axis=2),
              "jdirs": np.concatenate([zeros[:NUM_JOINTS], jdirs], axis=2)}
    # fit the regressor on the named poses and seeded samples, in float64
    model = HandModel._from_arrays(arrays, (0.0,) * NUM_SHAPE_PROCEDURAL).double()
    gen = torch.Generator().manual_seed(_REGRESSOR_SEED)
    poses = torch.cat([torch.stack([named_pose(n, torch.float64) for n in POSE_NAMES]),
                       sample_pose(gen, _REGRESSOR_SAMPLES, dtype=torch.float64)])
    with torch.no_grad():
        out = model(pose=poses)
    arrays["regressor"] = fit_joint_regressor(vertices, joints, out.vertices.numpy(),
                                              out.joints.numpy(), neighbours)
    return arrays
