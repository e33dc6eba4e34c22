"""``hand-mesh hand``: pose the hand model and export the mesh (PLY/OBJ) and a picture (PNG)."""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

from hand_mesh_core.cli.main import CliError

__all__ = ["NAME", "HELP", "add_arguments", "run", "render_png", "MESH_SUFFIXES"]

NAME = "hand"
HELP = "pose the procedural (or MANO) hand model and export its mesh and a picture"
#: Mesh formats written through open3d, by file suffix.
MESH_SUFFIXES = (".ply", ".obj")
#: Picture size, inches, and resolution, dots per inch.
_FIG_SIZE_IN = (6.0, 6.0)
_FIG_DPI = 100
#: Lambert shading: ambient fraction of the face colour.
_AMBIENT = 0.35
_SKIN_RGB = (0.87, 0.72, 0.60)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``hand-mesh hand``."""
    from hand_mesh_core.hand.poses import POSE_NAMES

    parser.add_argument("--pose", default="flat",
                        help=f"named pose, one of {list(POSE_NAMES)} (joint angles in radians "
                             "are defined in hand_mesh_core.hand.poses)")
    parser.add_argument("--handedness", default="right",
                        help="'right' or 'left' (left = mirrored right hand)")
    parser.add_argument("--out", required=True,
                        help="output mesh file, .ply or .obj; vertices in metres")
    parser.add_argument("--png", default=None, help="optional picture of the mesh with joints "
                        "and bones (PNG; axes in metres)")
    parser.add_argument("--shape", type=float, nargs="+", default=None, metavar="BETA",
                        help="shape coefficients (procedural: scale, finger length, finger "
                             "width, each unitless in steps of 10 %%)")
    parser.add_argument("--global-orient", type=float, nargs=3, default=None,
                        metavar=("RX", "RY", "RZ"), help="global rotation, axis-angle, radians")
    parser.add_argument("--transl", type=float, nargs=3, default=None, metavar=("X", "Y", "Z"),
                        help="wrist translation, metres")
    parser.add_argument("--mano", default=None,
                        help="path of a MANO_RIGHT.pkl to use instead of the procedural model")


def run(args: argparse.Namespace) -> int:
    """Pose, export, optionally render. Returns 0."""
    import open3d as o3d

    from hand_mesh_core.hand.model import HandModel
    from hand_mesh_core.hand.poses import named_pose

    out = Path(args.out)
    if out.suffix.lower() not in MESH_SUFFIXES:
        raise CliError(f"--out must end with one of {list(MESH_SUFFIXES)}, got {out.name!r}")
    if args.png is not None and Path(args.png).suffix.lower() != ".png":
        raise CliError(f"--png must end with .png, got {args.png!r}")
    if args.handedness not in ("left", "right"):
        raise CliError(f"--handedness must be one of ['left', 'right'], got {args.handedness!r}")
    pose = named_pose(args.pose)  # ValueError lists the valid names
    model = HandModel.from_mano(args.mano) if args.mano else HandModel.procedural()
    shape = None
    if args.shape is not None:
        if len(args.shape) != model.num_shape:
            raise CliError(f"--shape needs {model.num_shape} values, got {len(args.shape)}")
        shape = torch.tensor([args.shape], dtype=torch.float32)
    vec = {k: (torch.tensor([v], dtype=torch.float32) if v is not None else None)
           for k, v in (("go", args.global_orient), ("t", args.transl))}
    for name, v in (("--global-orient", args.global_orient), ("--transl", args.transl)):
        if v is not None and not all(math.isfinite(x) for x in v):
            raise CliError(f"{name} values must be finite, got {v}")
    with torch.no_grad():
        hand = model(pose=pose[None], shape=shape, global_orient=vec["go"], transl=vec["t"],
                     handedness=args.handedness)
    verts = hand.vertices[0].double().numpy()
    faces = model.faces_for(args.handedness).numpy()
    if not out.parent.is_dir():
        raise CliError(f"output folder does not exist: {out.parent}")
    mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(verts),
                                     o3d.utility.Vector3iVector(faces.astype(np.int32)))
    mesh.compute_vertex_normals()
    if not o3d.io.write_triangle_mesh(str(out), mesh):
        raise CliError(f"could not write {out}")
    if args.png is not None:
        render_png(verts, faces, hand.joints[0].numpy(), args.png,
                   title=f"{args.handedness} hand, pose {args.pose}")
    return 0


def render_png(vertices: np.ndarray, faces: np.ndarray, joints: np.ndarray, path: str | Path,
               title: str = "") -> None:
    """Save a shaded picture of a hand mesh with its skeleton (matplotlib, Agg backend).

    Args:
        vertices: (V, 3) metres. faces: (F, 3) outward winding. joints: (21, 3) metres,
            canonical order.
        path: output PNG.
        title: figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    from hand_mesh_core.hand.joints import BONES

    tri = vertices[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
    light = np.array([0.3, -0.5, 1.0]) / np.linalg.norm([0.3, -0.5, 1.0])
    shade = _AMBIENT + (1.0 - _AMBIENT) * np.clip(normal @ light, 0.0, 1.0)
    colours = np.clip(shade[:, None] * np.asarray(_SKIN_RGB), 0.0, 1.0)
    fig = plt.figure(figsize=_FIG_SIZE_IN, dpi=_FIG_DPI)
    ax = fig.add_subplot(projection="3d")
    ax.add_collection3d(Poly3DCollection(tri, facecolors=colours, edgecolor="none",
                                         alpha=0.6))
    for a, b in BONES:
        ax.plot(*joints[[a, b]].T, color="tab:blue", linewidth=1.5)
    ax.scatter(*joints.T, color="tab:red", s=8)
    centre = vertices.mean(axis=0)
    half = 0.5 * float((vertices.max(axis=0) - vertices.min(axis=0)).max())
    for setter, c in zip((ax.set_xlim, ax.set_ylim, ax.set_zlim), centre):
        setter(c - half, c + half)
    ax.set_xlabel("x [m]")
    ax.set_ylabel("y [m]")
    ax.set_zlabel("z [m]")
    ax.set_title(title)
    fig.savefig(path)
    plt.close(fig)
