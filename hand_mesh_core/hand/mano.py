"""Optional MANO loader through a restricted unpickler.

MANO (Romero et al., SIGGRAPH Asia 2017) cannot ship with hand_mesh; users may supply their own
``MANO_RIGHT.pkl``. Pickles can run arbitrary code, so the file goes through
:class:`RestrictedUnpickler`, which only resolves an allow-list of globals: numpy array
reconstruction (``ndarray``, ``dtype``, ``_reconstruct``, ``scalar``, ``_frombuffer``),
scipy's ``csc_matrix``/``csr_matrix``, ``_codecs.encode`` (bytes under protocol 2) and
chumpy's ``Ch`` (mapped to the numpy-backed stand-in :class:`ChStandIn`, chumpy itself is
never imported). Any other global raises :class:`UnsafePickleError`.

Keys used: ``v_template`` (V, 3), ``f`` (F, 3), ``weights`` (V, 16), ``J_regressor`` (16, V)
sparse or dense, ``kintree_table`` (2, 16), ``shapedirs`` (V, 3, S), ``posedirs`` (V, 3, 135).
MANO's 16 joints (wrist; index, middle, little, ring, thumb x 3) are mapped to the canonical
order; the five fingertips are vertices (``HandModelConfig.mano_fingertip_vertices``).
"""
from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hand_mesh_core.hand.joints import FINGER_JOINTS, NUM_JOINTS, WRIST

__all__ = ["UnsafePickleError", "RestrictedUnpickler", "ChStandIn", "ManoData", "load_mano",
           "restricted_loads", "MANO_PARENTS", "CANONICAL_TO_MANO_JOINT",
           "CANONICAL_TO_MANO_POSE"]

#: MANO's kinematic tree (parent of each of its 16 joints).
MANO_PARENTS = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14)
# MANO joint index of each finger's three articulated joints, canonical finger order
_MANO_FINGER = {0: (13, 14, 15), 1: (1, 2, 3), 2: (4, 5, 6), 3: (10, 11, 12), 4: (7, 8, 9)}
#: CANONICAL_TO_MANO_JOINT[c] = MANO joint of canonical joint c (-1 for fingertips).
CANONICAL_TO_MANO_JOINT: tuple[int, ...] = tuple(
    0 if c == WRIST else next((m[s] for f, m in _MANO_FINGER.items()
                               for s in range(3) if FINGER_JOINTS[f][s] == c), -1)
    for c in range(NUM_JOINTS))
#: MANO pose order (its joints 1..15) as indices into the canonical pose order.
CANONICAL_TO_MANO_POSE: tuple[int, ...] = tuple(
    3 * f + s for mj in range(1, 16) for f, m in _MANO_FINGER.items() for s in range(3)
    if m[s] == mj)
_NUM_MANO_JOINTS = 16
_NUM_POSE_FEATURES = 9 * 15


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle refers to a global outside the MANO allow-list."""


class ChStandIn:
    """Numpy-backed stand-in for ``chumpy.ch.Ch``: keeps the pickled state, exposes ``.r``."""

    def __setstate__(self, state: Any) -> None:
        self.__dict__["_state"] = state

    @property
    def r(self) -> np.ndarray:
        """The array value (chumpy's ``x`` state entry)."""
        state = self.__dict__.get("_state")
        value = state.get("x") if isinstance(state, dict) else state
        if value is None:
            raise ValueError("chumpy object without an array value ('x')")
        return np.asarray(value)


def _reconstructor(cls: type, base: type, state: Any) -> Any:
    """Safe copyreg._reconstructor: only allowed classes, only plain ``object`` bases."""
    import scipy.sparse as sp

    if cls not in (ChStandIn, sp.csc_matrix, sp.csr_matrix) or base is not object:
        raise UnsafePickleError(f"copyreg._reconstructor of {cls!r} is not allowed")
    return object.__new__(cls)


def _allowed() -> dict[tuple[str, str], Any]:
    import scipy.sparse as sp

    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): __import__("codecs").encode,
        ("chumpy.ch", "Ch"): ChStandIn,
        ("copy_reg", "_reconstructor"): _reconstructor,
        ("copyreg", "_reconstructor"): _reconstructor,
        ("__builtin__", "object"): object,
        ("builtins", "object"): object,
    }
    for core in ("numpy.core", "numpy._core"):
        mod = np._core if hasattr(np, "_core") else np.core
        allowed[(f"{core}.multiarray", "_reconstruct")] = mod.multiarray._reconstruct
        allowed[(f"{core}.multiarray", "scalar")] = mod.multiarray.scalar
        allowed[(f"{core}.numeric", "_frombuffer")] = mod.numeric._frombuffer
    for name in ("csc", "csr"):
        cls = getattr(sp, f"{name}_matrix")
        for mod_name in (f"scipy.sparse.{name}", f"scipy.sparse._{name}"):
            allowed[(mod_name, f"{name}_matrix")] = cls
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` only resolves the MANO allow-list."""

    def find_class(self, module: str, name: str) -> Any:
        """Resolve an allowed global or raise :class:`UnsafePickleError`."""
        try:
            return _allowed()[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to unpickle global {module}.{name}: only numpy arrays, scipy "
                "csc/csr matrices and chumpy.ch.Ch are allowed in a MANO file") from None


def restricted_loads(data: bytes) -> Any:
    """Unpickle bytes with :class:`RestrictedUnpickler` (latin1 for Python 2 pickles)."""
    return RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()


@dataclass(frozen=True)
class ManoData:
    """MANO arrays mapped to the canonical 21-joint layout (float64, metres).

    Attributes:
        v_template: (V, 3). faces: (F, 3) int64. weights: (V, 21) (tip columns zero).
        joint_regressor: (21, V) rows summing to 1 (tips one-hot on their vertices).
        shapedirs: (V, 3, S). posedirs: (135, 3 V), rows in MANO pose-feature order.
    """

    v_template: np.ndarray
    faces: np.ndarray
    weights: np.ndarray
    joint_regressor: np.ndarray
    shapedirs: np.ndarray
    posedirs: np.ndarray


def _array(data: dict, key: str) -> np.ndarray:
    if key not in data:
        raise ValueError(f"MANO file lacks key {key!r}")
    value = data[key]
    if isinstance(value, ChStandIn):
        value = value.r
    if hasattr(value, "toarray"):
        value = value.toarray()
    return np.asarray(value, dtype=np.float64)


def load_mano(path: str | Path, fingertip_vertices: Sequence[int]) -> ManoData:
    """Read and validate a MANO model file.

    Args:
        path: MANO_RIGHT.pkl.
        fingertip_vertices: 5 vertex ids of the thumb..little fingertips.

    Raises:
        FileNotFoundError: no such file. UnsafePickleError: forbidden global.
        ValueError: missing key or inconsistent shapes.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MANO file not found: {path}")
    data = restricted_loads(path.read_bytes())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a dict, got {type(data).__name__}")
    v = _array(data, "v_template")
    num = len(v)
    faces = _array(data, "f").astype(np.int64)
    weights = _array(data, "weights")
    regressor = _array(data, "J_regressor")
    kintree = _array(data, "kintree_table").astype(np.int64)
    shapedirs = _array(data, "shapedirs")
    posedirs = _array(data, "posedirs")
    expected = {"v_template": (v.shape, (num, 3)), "weights": (weights.shape, (num, 16)),
                "J_regressor": (regressor.shape, (16, num)),
                "kintree_table": (kintree.shape, (2, 16)),
                "posedirs": (posedirs.shape, (num, 3, _NUM_POSE_FEATURES))}
    for key, (got, want) in expected.items():
        if got != want:
            raise ValueError(f"MANO {key} must be {want}, got {got}")
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.min() < 0 or faces.max() >= num:
        raise ValueError(f"MANO f must be (F, 3) indices in [0, {num}), got {faces.shape}")
    if shapedirs.ndim != 3 or shapedirs.shape[:2] != (num, 3):
        raise ValueError(f"MANO shapedirs must be ({num}, 3, S), got {shapedirs.shape}")
    if tuple(kintree[0, 1:]) != MANO_PARENTS[1:]:
        raise ValueError(f"MANO kintree_table parents {kintree[0].tolist()} differ from "
                         f"{list(MANO_PARENTS)}")
    tips = [int(i) for i in fingertip_vertices]
    if len(tips) != 5 or min(tips) < 0 or max(tips) >= num:
        raise ValueError(f"fingertip_vertices must be 5 ids in [0, {num}), got {tips}")
    w21 = np.zeros((num, NUM_JOINTS))
    r21 = np.zeros((NUM_JOINTS, num))
    for c, m in enumerate(CANONICAL_TO_MANO_JOINT):
        if m >= 0:
            w21[:, c] = weights[:, m]
            r21[c] = regressor[m]
    for f, vid in enumerate(tips):
        r21[FINGER_JOINTS[f][3], vid] = 1.0
    posed = posedirs.reshape(num * 3, _NUM_POSE_FEATURES).T.copy()
    return ManoData(v, faces, w21, r21, shapedirs, posed)
