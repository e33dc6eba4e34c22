"""``hand-mesh hand``: export and errors, through cli.main.main."""
import numpy as np
import open3d as o3d
import pytest

from hand_mesh_core.cli.main import main
from hand_mesh_core.hand.model import HandModel


@pytest.fixture(scope="module")
def counts():
    m = HandModel.procedural()
    return m.num_vertices, m.num_faces


@pytest.mark.parametrize("suffix", [".ply", ".obj"])
def test_export_left_fist(tmp_path, counts, suffix):
    out = tmp_path / f"fist{suffix}"
    png = tmp_path / "fist.png"
    code = main(["hand", "--pose", "fist", "--handedness", "left", "--out", str(out),
                 "--png", str(png), "--transl", "0.0", "0.0", "0.5"])
    assert code == 0
    mesh = o3d.io.read_triangle_mesh(str(out))
    assert len(mesh.vertices) == counts[0] and len(mesh.triangles) == counts[1]
    v = np.asarray(mesh.vertices)
    assert 0.4 < v[:, 2].mean() < 0.6  # translated by 0.5 m
    assert mesh.is_edge_manifold() and mesh.is_orientable()
    f = np.asarray(mesh.triangles)
    t = v[f]
    vol = np.einsum("fi,fi->f", t[:, 0], np.cross(t[:, 1], t[:, 2])).sum() / 6
    assert vol > 0  # left winding keeps normals outward
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_shape_option(tmp_path):
    a, b = tmp_path / "a.ply", tmp_path / "b.ply"
    assert main(["hand", "--out", str(a)]) == 0
    assert main(["hand", "--out", str(b), "--shape", "1", "0", "0"]) == 0
    va = np.asarray(o3d.io.read_triangle_mesh(str(a)).vertices)
    vb = np.asarray(o3d.io.read_triangle_mesh(str(b)).vertices)
    np.testing.assert_allclose(vb, 1.1 * va, atol=1e-6)


@pytest.mark.parametrize("argv, needle", [
    (["--pose", "wave"], "valid"),
    (["--handedness", "both"], "handedness"),
    (["--shape", "1", "2"], "--shape"),
    (["--png", "x.jpg"], "--png"),
    (["--global-orient", "nan", "0", "0"], "finite"),
])
def test_bad_arguments(tmp_path, capsys, argv, needle):
    code = main(["hand", "--out", str(tmp_path / "x.ply"), *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and needle in err


def test_bad_suffix_and_folder(tmp_path, capsys):
    assert main(["hand", "--out", str(tmp_path / "x.stl")]) == 2
    assert ".ply" in capsys.readouterr().err
    assert main(["hand", "--out", str(tmp_path / "missing" / "x.ply")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_help_gives_units(capsys):
    with pytest.raises(SystemExit):
        main(["hand", "--help"])
    out = capsys.readouterr().out
    for unit in ("metres", "radians"):
        assert unit in out
