"""Canonical skeleton and dataset joint maps (incl. the real STB labels)."""
import numpy as np
import pytest
import scipy.io
import torch

from hand_mesh_core.hand import joints as J
from shared_data import STB_LABELS


def test_canonical_order_and_tree():
    assert J.JOINT_NAMES[:5] == ("wrist", "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip")
    assert J.JOINT_NAMES[9] == "middle_mcp" and J.JOINT_NAMES[20] == "little_tip"
    assert J.NUM_JOINTS == 21 and len(J.BONES) == 20
    for f, fj in enumerate(J.FINGER_JOINTS):
        assert J.PARENTS[fj[0]] == J.WRIST
        assert [J.PARENTS[j] for j in fj[1:]] == list(fj[:3])
    assert J.ARTICULATED_JOINTS == (1, 2, 3, 5, 6, 7, 9, 10, 11, 13, 14, 15, 17, 18, 19)
    assert J.TIP_JOINTS == (4, 8, 12, 16, 20)
    assert J.children(0) == (1, 5, 9, 13, 17)


def test_interhand_order_tip_to_base_wrist_last():
    x = torch.arange(63, dtype=torch.float64).reshape(21, 3)
    inter = J.from_canonical(x, "interhand")
    names = [J.JOINT_NAMES[i] for i in J.JOINT_ORDERS["interhand"]]
    assert names[:4] == ["thumb_tip", "thumb_ip", "thumb_mcp", "thumb_cmc"]
    assert names[4] == "index_tip" and names[19] == "little_mcp" and names[20] == "wrist"
    assert torch.equal(inter[20], x[0]) and torch.equal(inter[0], x[4])
    assert torch.equal(J.to_canonical(inter, "interhand"), x)


@pytest.mark.parametrize("source", ["canonical", "freihand", "mano21", "interhand", "stb"])
def test_round_trip_numpy_and_batched(source):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 21, 3))
    back = J.to_canonical(J.from_canonical(x, source), source)
    np.testing.assert_allclose(back, x, atol=1e-12)
    assert isinstance(back, np.ndarray)


def test_stb_names_order():
    names = [J.JOINT_NAMES[i] for i in J.JOINT_ORDERS["stb"]]
    assert names[1:5] == ["little_mcp", "little_pip", "little_dip", "little_tip"]
    assert names[17:] == ["thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip"]


@pytest.mark.skipif(not STB_LABELS.is_file(), reason="STB sample not present")
def test_stb_real_labels_bone_lengths_constant():
    para = scipy.io.loadmat(STB_LABELS)["handPara"]  # (3, 21, 1500) mm
    assert para.shape == (3, 21, 1500)
    can = J.to_canonical(para.transpose(2, 1, 0), "stb")  # (1500, 21, 3) mm
    lengths = {}
    for parent, child in J.BONES:
        if parent == J.WRIST:  # the wrist is estimated from the palm centre: skip its bones
            continue
        d = np.linalg.norm(can[:, child] - can[:, parent], axis=-1)
        assert d.std() < 0.1, (J.JOINT_NAMES[parent], J.JOINT_NAMES[child], d.std())
        lengths[(parent, child)] = d.mean()
    assert lengths[(9, 10)] == pytest.approx(40.0, abs=0.05)  # middle MCP-PIP
    # the longest finger in STB's skeleton is the middle one, as in ours
    mcp_to_tip = [sum(lengths[(fj[s], fj[s + 1])] for s in range(3))
                  for fj in J.FINGER_JOINTS[1:]]
    assert int(np.argmax(mcp_to_tip)) == 1
    # estimated wrist: palm centre is the wrist/ring-MCP midpoint, and it inverts exactly
    palm = para.transpose(2, 1, 0)[:, 0]
    np.testing.assert_allclose(0.5 * (can[:, 0] + can[:, 13]), palm, atol=1e-9)
    np.testing.assert_allclose(J.from_canonical(can, "stb"), para.transpose(2, 1, 0),
                               atol=1e-9)
    # the estimated wrist lies proximal of the palm centre (farther from the fingertips)
    tips = can[:, list(J.TIP_JOINTS)].mean(axis=1)
    assert (np.linalg.norm(can[:, 0] - tips, axis=1)
            > np.linalg.norm(palm - tips, axis=1)).all()


def test_errors():
    x = np.zeros((21, 3))
    with pytest.raises(ValueError, match="valid"):
        J.to_canonical(x, "coco")
    with pytest.raises(ValueError, match="valid"):
        J.from_canonical(x, "coco")
    with pytest.raises(ValueError, match=r"\(\.\.\., 21, 3\)"):
        J.to_canonical(np.zeros((20, 3)), "stb")
    with pytest.raises(TypeError):
        J.to_canonical([[0.0] * 3] * 21, "stb")
