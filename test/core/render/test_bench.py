"""``hand-mesh bench render``: JSON with the expected keys (tiny run, sphere mesh)."""
from __future__ import annotations

import json

import pytest
import torch

import hand_mesh_core.render.bench as render_bench
from hand_mesh_core.cli import bench as bench_cli
from hand_mesh_core.cli.main import main
from hand_mesh_core.geometry.mesh import uv_sphere


@pytest.fixture
def small_mesh(monkeypatch):
    v, f = uv_sphere(0.05, 6, 10, center_m=(0.0, 0.0, 0.45))
    monkeypatch.setattr(render_bench, "benchmark_mesh", lambda: (v, f, "test sphere"))


def test_bench_render_prints_json(small_mesh, capsys, tmp_path):
    threads = torch.get_num_threads()
    try:
        out_file = tmp_path / "bench.json"
        assert main(["bench", "render", "--repeats", "1", "--warmup", "0", "--device", "cpu",
                     "--output", str(out_file)]) == 0
    finally:
        torch.set_num_threads(threads)
    result = json.loads(capsys.readouterr().out)
    assert result == json.loads(out_file.read_text())
    assert result["target"] == "render" and result["mesh"] == "test sphere"
    cpu = result["cpu"]
    assert set(cpu) == {"128x128", "256x256", "640x480", "photo_128x128"}
    for key in ("depth_forward_ms", "depth_forward_backward_ms", "rasterize_open3d_ms"):
        assert cpu["640x480"][key] > 0
    assert cpu["128x128"]["covered_px"] > 1000  # the crop is framed on the mesh
    assert cpu["photo_128x128"]["render_depth_plus_photo_forward_backward_ms"] > 0


def test_bench_errors(small_mesh, capsys):
    assert "render" in bench_cli.TARGETS
    with pytest.raises(SystemExit):
        main(["bench", "nothing"])
    assert main(["bench", "render", "--repeats", "0"]) == 2
    assert "--repeats" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["bench", "render", "--device", "cuda", "--repeats", "1"]) == 2
