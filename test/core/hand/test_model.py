"""HandModel: forward, gradients, regressor, mirror, proportions, shape, validation."""
import math

import numpy as np
import pytest
import torch

from hand_mesh_core.hand.config import HandModelConfig
from hand_mesh_core.hand.joints import ARTICULATED_JOINTS, FINGER_JOINTS, NUM_JOINTS, PARENTS
from hand_mesh_core.hand.kinematics import axis_angle_to_matrix
from hand_mesh_core.hand.model import HandModel, HandOutput
from hand_mesh_core.hand.poses import POSE_NAMES, named_pose, sample_pose


@pytest.fixture(scope="module")
def model():
    return HandModel.procedural()


def _random_inputs(batch, dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    pose = sample_pose(gen, batch, dtype=dtype)
    shape = torch.randn(batch, 3, generator=gen, dtype=dtype)
    orient = torch.randn(batch, 3, generator=gen, dtype=dtype)
    transl = torch.randn(batch, 3, generator=gen, dtype=dtype)
    return pose, shape, orient, transl


def test_forward_shapes_dtype(model):
    out = model()
    assert isinstance(out, HandOutput)
    assert out.vertices.shape == (1, model.num_vertices, 3)
    assert out.joints.shape == (1, 21, 3)
    assert out.vertices.dtype == torch.float32
    pose, shape, orient, transl = _random_inputs(4, torch.float64)
    out = model(pose, shape, orient, transl)
    assert out.vertices.shape == (4, model.num_vertices, 3) and out.joints.dtype == torch.float64
    with pytest.raises(Exception):
        out.vertices = None  # frozen


def test_identity_pose_reproduces_template(model):
    out = model()
    torch.testing.assert_close(out.vertices[0], model.template_vertices, atol=1e-7, rtol=0)
    torch.testing.assert_close(out.joints[0], model.rest_joints, atol=1e-7, rtol=0)
    assert out.joints[0, 0].abs().max() == 0  # wrist at the origin


def test_proportions(model):
    j = model().joints[0].double()
    hand_length = (j[12] - j[0]).norm().item()
    assert 0.18 <= hand_length <= 0.19
    # middle finger longest, then ring, index, little (Buryanov & Kotiuk 2010)
    finger_len = [sum((j[fj[s + 1]] - j[fj[s]]).norm().item() for s in range(3))
                  for fj in FINGER_JOINTS[1:]]
    assert np.argsort(finger_len).tolist() == [3, 0, 2, 1]
    # canonical frame: fingers along +y, thumb towards +x
    assert (j[[8, 12, 16, 20], 1] > 0.14).all() and j[4, 0] > j[8, 0]


def test_joint_regressor_at_named_poses(model):
    r = model.joint_regressor.double()
    assert r.shape == (21, model.num_vertices) and (r >= 0).all()
    torch.testing.assert_close(r.sum(1), torch.ones(21, dtype=torch.float64))
    poses = torch.stack([named_pose(n) for n in POSE_NAMES])
    out = model(pose=poses)
    err = (r.float() @ out.vertices - out.joints).norm(dim=-1)
    assert err.max().item() < 2e-3


def test_gradcheck_float64(model):
    m = model.double()
    pose, shape, orient, transl = _random_inputs(1, torch.float64, seed=3)
    sub = torch.arange(0, model.num_vertices, 97)

    def f(p, s, o, t):
        out = m(p, s, o, t)
        return out.vertices[:, sub], out.joints
    args = tuple(x.clone().requires_grad_(True) for x in (pose, shape, orient, transl))
    assert torch.autograd.gradcheck(f, args, eps=1e-6, atol=1e-5, fast_mode=True)
    # also at exactly zero rotation (Rodrigues' Taylor branch)
    zero = tuple(torch.zeros_like(x).requires_grad_(True) for x in (pose, shape, orient, transl))
    assert torch.autograd.gradcheck(f, zero, eps=1e-6, atol=1e-5, fast_mode=True)
    model.float()


def _naive_joints(model, pose, shape, orient, transl):
    """Reference: 4x4 homogeneous chain, one joint and one hand at a time, float64."""
    rest = (model.rest_joints.double() + model.joint_shapedirs.double()[..., 1:]
            @ shape[1:]) * (1 + 0.1 * shape[0])
    frames = model.joint_frames.double()
    g = [None] * NUM_JOINTS
    g[0] = torch.eye(4, dtype=torch.float64)
    g[0][:3, 3] = rest[0]
    for j in range(1, NUM_JOINTS):
        local = torch.eye(4, dtype=torch.float64)
        if j in ARTICULATED_JOINTS:
            k = ARTICULATED_JOINTS.index(j)
            local[:3, :3] = frames[k] @ axis_angle_to_matrix(pose[k]) @ frames[k].T
        step = torch.eye(4, dtype=torch.float64)
        step[:3, 3] = rest[j] - rest[PARENTS[j]]
        g[j] = g[PARENTS[j]] @ step @ local
    joints = torch.stack([x[:3, 3] for x in g])
    return joints @ axis_angle_to_matrix(orient).T + transl


def test_batched_matches_naive_loop(model):
    pose, shape, orient, transl = _random_inputs(5, torch.float64, seed=1)
    m = model.double()
    out = m(pose, shape, orient, transl)
    for b in range(5):
        ref = _naive_joints(m, pose[b], shape[b], orient[b], transl[b])
        torch.testing.assert_close(out.joints[b], ref, atol=1e-10, rtol=0)
        single = m(pose[b:b + 1], shape[b:b + 1], orient[b:b + 1], transl[b:b + 1])
        torch.testing.assert_close(single.vertices[0], out.vertices[b], atol=1e-10, rtol=0)
    model.float()


def test_global_transform_is_rigid(model):
    pose, _, orient, transl = _random_inputs(2, torch.float64, seed=2)
    m = model.double()
    local = m(pose)
    moved = m(pose, global_orient=orient, transl=transl)
    rot = axis_angle_to_matrix(orient)
    ref = local.vertices @ rot.transpose(1, 2) + transl[:, None]
    torch.testing.assert_close(moved.vertices, ref, atol=1e-12, rtol=0)
    model.float()


def test_left_is_mirrored_right_with_flipped_winding(model):
    pose, shape, orient, transl = _random_inputs(2, torch.float64, seed=4)
    m = model.double()
    right = m(pose, shape)
    left = m(pose, shape, handedness="left")
    mirror = torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(left.vertices, right.vertices * mirror)
    torch.testing.assert_close(left.joints, right.joints * mirror)
    faces = m.faces_for("left")
    assert torch.equal(faces, m.faces[:, [0, 2, 1]])
    assert torch.equal(m.faces_for("right"), m.faces)

    def volume(v, f):
        t = v[f]
        return (t[:, 0] * torch.cross(t[:, 1], t[:, 2], dim=-1)).sum() / 6

    lv = m(pose, shape, orient, transl, handedness="left").vertices
    assert volume(lv[0], faces) > 0 and volume(lv[0], m.faces) < 0
    # thumb of a left hand (flat, no global motion) is on the -x side
    flat = m(handedness="left").joints[0]
    assert flat[4, 0] < flat[8, 0] < 0
    model.float()


def test_shape_parameters_do_what_they_claim(model):
    m = model.double()
    base = m(shape=torch.zeros(1, 3, dtype=torch.float64))
    j0, v0 = base.joints[0], base.vertices[0]
    # overall scale: everything x1.1 about the wrist
    s = m(shape=torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64))
    torch.testing.assert_close(s.vertices[0], 1.1 * v0)
    # finger length: finger bones x1.1, palm (wrist -> bases) unchanged
    s = m(shape=torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64)).joints[0]
    for fj in FINGER_JOINTS:
        torch.testing.assert_close(s[fj[0]], j0[fj[0]])
        for a, b in zip(fj[:3], fj[1:]):
            assert (s[b] - s[a]).norm().item() == pytest.approx(
                1.1 * (j0[b] - j0[a]).norm().item(), rel=1e-6)
    # finger width: joints fixed, finger vertices move away from their bone axis, palm fixed
    s = m(shape=torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64))
    torch.testing.assert_close(s.joints[0], j0)
    w = m.skinning_weights
    a, b = m.rest_joints[10], m.rest_joints[11]  # middle finger, middle phalanx
    axis = (b - a) / (b - a).norm()
    sel = w[:, 10] > 0.99

    def radial(v):
        rel = v[sel] - a
        return (rel - (rel @ axis)[:, None] * axis).norm(dim=1)
    torch.testing.assert_close(radial(s.vertices[0]), 1.1 * radial(v0), atol=1e-5, rtol=0)
    palm = w[:, 0] > 0.999
    torch.testing.assert_close(s.vertices[0][palm], v0[palm], atol=1e-5, rtol=0)


def test_default_shape_from_config():
    m = HandModel.procedural(HandModelConfig(default_shape=(1.0, 0.0, 0.0)))
    ref = HandModel.procedural()
    torch.testing.assert_close(m().vertices, 1.1 * ref().vertices)


def test_topology_hash(model):
    h = model.topology_hash()
    assert len(h) == 64 and h == HandModel.procedural().topology_hash()
    other = HandModel.procedural()
    other.faces = other.faces[:, [0, 2, 1]].clone()
    assert other.topology_hash() != h


def test_flexion_curls_towards_palm(model):
    pose = torch.zeros(1, 15, 3)
    pose[0, 3 * 2, 0] = math.pi / 2  # middle MCP 90 deg flexion
    j = model(pose).joints[0]
    rest = model.rest_joints
    # the PIP moves from +y to +z (palm side) of the MCP
    d = j[10] - j[9]
    assert d[2] > 0.9 * (rest[10] - rest[9]).norm() and abs(d[1]) < 0.01


def test_validation_errors(model):
    with pytest.raises(ValueError, match="handedness"):
        model(handedness="ambidextrous")
    with pytest.raises(ValueError, match="handedness"):
        model.faces_for("both")
    with pytest.raises(ValueError, match=r"pose must be \(B, 15, 3\)"):
        model(pose=torch.zeros(1, 16, 3))
    with pytest.raises(ValueError, match=r"shape must be \(B, 3\)"):
        model(shape=torch.zeros(1, 10))
    with pytest.raises(ValueError, match="batch sizes differ"):
        model(pose=torch.zeros(2, 15, 3), transl=torch.zeros(3, 3))
    with pytest.raises(TypeError, match="torch.Tensor"):
        model(transl=[0.0, 0.0, 0.0])
    with pytest.raises(TypeError, match="floating"):
        model(global_orient=torch.zeros(1, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="procedural"):
        HandModel.procedural(HandModelConfig(kind="mano", mano_path="x.pkl"))
