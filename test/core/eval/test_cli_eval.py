"""Tests of ``hand-mesh eval`` / ``hand-mesh experiment`` and the dataset-folder dispatch."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

import hand_mesh_core.eval.experiments as experiments
import hand_mesh_core.pipeline as pipeline
from hand_mesh_core.cli.main import main
from hand_mesh_core.data.types import StereoSample
from hand_mesh_core.eval.evaluate import detect_dataset_kind, open_dataset
from hand_mesh_core.eval.experiments import BackendUnavailable, ExperimentConfig
from hand_mesh_core.geometry.camera import StereoCamera
from hand_mesh_core.geometry.mesh import uv_sphere
from hand_mesh_core.pipeline import HandMeshResult
from shared_data import STB_DIR as STB_ROOT

needs_stb = pytest.mark.skipif(not (STB_ROOT / "labels").is_dir(), reason="no STB sample")


def _result(joints_m: np.ndarray) -> HandMeshResult:
    v, f = uv_sphere(0.02, 3, 4, tuple(float(x) for x in joints_m[9]))
    return HandMeshResult(v.numpy(), joints_m.astype(np.float32), f.numpy().astype(np.int32),
                          1.0, "left", np.zeros((len(v), 2), np.float32), (0.0, 0.0, 1.0, 1.0))


def test_detect_dataset_kind(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset folder not found"):
        detect_dataset_kind(tmp_path / "nope")
    with pytest.raises(ValueError, match="unrecognised dataset folder"):
        detect_dataset_kind(tmp_path)
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "metadata.json").write_text("{}")
    assert detect_dataset_kind(tmp_path / "s") == "synthetic"
    (tmp_path / "b" / "labels").mkdir(parents=True)
    (tmp_path / "b" / "labels" / "B1Counting_BB.mat").write_bytes(b"")
    assert detect_dataset_kind(tmp_path / "b") == "stb"


def test_open_dataset_synthetic_dispatch(tmp_path, monkeypatch):
    import hand_mesh_core.data.synth.dataset as synth_dataset

    opened = []

    class Reader(list):
        def __init__(self, root, split="train"):
            opened.append((Path(root), split))
            super().__init__([] if split == "train" else ["sample"])

    monkeypatch.setattr(synth_dataset, "SynthStereoDataset", Reader)
    (tmp_path / "metadata.json").write_text("{}")
    assert open_dataset(tmp_path) == ["sample"]
    assert opened == [(tmp_path, "test")]
    with pytest.raises(ValueError, match="split 'train' is empty"):
        open_dataset(tmp_path, split="train")


@needs_stb
def test_open_dataset_stb_real_sample():
    ds = open_dataset(STB_ROOT)
    assert len(ds) == 1  # only frame 0 of B1Counting has images
    sample = ds[0]
    assert isinstance(sample, StereoSample) and sample.joints_m.shape == (21, 3)
    with pytest.raises((FileNotFoundError, ValueError), match="no STB label file|no frame"):
        open_dataset(STB_ROOT, split="train")  # the sample has test-split labels only


def test_cli_eval_rejects_bad_folders(tmp_path, capsys):
    assert main(["eval", "--model", "default", "--data", str(tmp_path), "--out",
                 str(tmp_path / "o")]) == 2
    assert "unrecognised dataset folder" in capsys.readouterr().err
    assert main(["eval", "--model", "default", "--data", str(tmp_path / "missing"), "--out",
                 str(tmp_path / "o")]) == 2
    assert "dataset folder not found" in capsys.readouterr().err


@needs_stb
def test_cli_eval_without_model_loader(tmp_path, capsys, monkeypatch):
    monkeypatch.delattr(pipeline, "load_estimator", raising=False)
    assert main(["eval", "--model", "default", "--data", str(STB_ROOT), "--out",
                 str(tmp_path)]) == 2
    assert "model loading is not available" in capsys.readouterr().err


@needs_stb
def test_cli_eval_stb_end_to_end(tmp_path, capsys, monkeypatch):
    gt = open_dataset(STB_ROOT)[0].joints_m

    class Double:
        def predict(self, left, right, camera, roi=None):
            return _result(gt + np.array([0.0, 0.003, 0.004], np.float32))  # 5 mm

    loaded = []

    def load(path, device, handedness="right"):
        loaded.append((path, device, handedness))
        return Double()

    monkeypatch.setattr(pipeline, "load_estimator", load, raising=False)
    rc = main(["eval", "--model", "default", "--data", str(STB_ROOT), "--out", str(tmp_path),
               "--no-progress", "--overlays", "1"])
    out = capsys.readouterr().out
    assert rc == 0 and "1 frames, 0 failed | absolute 5.0 mm" in out
    assert loaded == [("default", "cpu", "left")]  # STB films left hands
    data = json.loads((tmp_path / "metrics.json").read_text())
    assert data["metrics"]["absolute"]["mean_mm"] == pytest.approx(5.0, rel=1e-4)
    assert data["data"].startswith("stb:")
    assert data["metrics"]["root_joints"] == [0, 13]  # STB: palm-centre root
    assert (tmp_path / "overlay_00000.png").is_file() and (tmp_path / "pck.png").is_file()
    with pytest.raises(SystemExit):
        main(["eval", "--model", "x.safetensors", "--data", str(STB_ROOT)])  # --out missing
    assert main(["eval", "--model", str(tmp_path / "no.safetensors"), "--data", str(STB_ROOT),
                 "--out", str(tmp_path)]) == 2
    assert "model checkpoint not found" in capsys.readouterr().err


def test_cli_experiment_print_config(capsys, tmp_path):
    assert main(["experiment", "table1", "--quick", "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert ExperimentConfig.from_dict(printed) == ExperimentConfig.preset("quick")
    assert main(["experiment", "table2", "--quick", "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert ExperimentConfig.from_dict(printed) == ExperimentConfig.preset("quick", "table2")
    cfg_path = tmp_path / "e.yaml"
    ExperimentConfig.preset("quick").replace(seed=7).to_yaml(cfg_path)
    assert main(["experiment", "table2", "--config", str(cfg_path), "--device", "cuda",
                 "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["seed"] == 7 and printed["device"] == "cuda"
    cfg_path.write_text("seeed: 1\n")
    assert main(["experiment", "table1", "--config", str(cfg_path)]) == 2
    assert "unknown key" in capsys.readouterr().err


def test_cli_experiment_runs_backend_and_reports_missing(capsys, tmp_path, monkeypatch):
    camera = StereoCamera(fx=100.0, fy=100.0, cx=31.5, cy=23.5, baseline_m=0.1, width=64,
                          height=48)
    gt = np.random.default_rng(0).normal(scale=0.03, size=(21, 3)) + [0.0, 0.0, 0.5]

    class Backend:
        def check(self, modes):
            pass

        def loss_names(self):
            return ("silhouette",)

        def dataset(self, domain, split, n, seed):
            img = np.zeros((48, 64, 3), np.uint8)
            return [StereoSample(img, img, camera, joints_m=gt.astype(np.float32))] * n

        def pretrain(self, data, config, out_dir):
            return "pre"

        def adapt(self, checkpoint, data, mode, drop_loss, config, out_dir):
            return mode

        def load(self, checkpoint, mode, device):
            class Est:
                def predict(self, left, right, cam, roi=None):
                    return _result(gt + (0.01 if checkpoint == "pre" else 0.0))
            return Est()

    monkeypatch.setattr(experiments, "default_backend", lambda: Backend())
    cfg_path = tmp_path / "tiny.yaml"
    ExperimentConfig.preset("quick").replace(
        n_source_train=1, n_target_train=1, n_target_test=1, pretrained_checkpoint="",
        rows=["test_directly", "self_supervised_binocular"]).to_yaml(cfg_path)
    assert main(["experiment", "table1", "--config", str(cfg_path), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| Test directly (pretrained on source) | 17.3 |" in out  # 10 mm * sqrt(3)
    assert "| Self-supervised, binocular (ours) | 0.0 |" in out
    assert "oracle" not in out  # only the selected rows
    md = (tmp_path / "table1" / "table1.md").read_text()
    assert f"Command: `hand-mesh experiment table1 --config {cfg_path}`" in md
    assert (tmp_path / "table1" / "table1_before_after_0.png").is_file()

    class Missing(Backend):
        def check(self, modes):
            raise BackendUnavailable("hand_mesh_core.train.adapt is not available yet")

    monkeypatch.setattr(experiments, "default_backend", lambda: Missing())
    assert main(["experiment", "table1", "--quick", "--out", str(tmp_path)]) == 2
    assert "train.adapt is not available yet" in capsys.readouterr().err


def test_cli_experiment_merge(capsys, tmp_path):
    from hand_mesh_core.eval.experiments import RowResult, TableResult

    cfg = ExperimentConfig.preset("quick")
    rows = {"self_supervised_binocular": RowResult("self_supervised_binocular", "Ours", 10.0,
                                                   8.0, 6.0, 0.9, 0.95, 4, 0, 12.0),
            "test_directly": RowResult("test_directly", "Direct", 40.0, 30.0, 20.0, 0.1, 0.2,
                                       4, 1, 0.0)}
    for key, row in rows.items():
        TableResult("table1", cfg.replace(rows=[key]), (row,), "part").write(tmp_path / key)
    out = tmp_path / "merged"
    assert main(["experiment", "table1", "--merge", str(tmp_path / "self_supervised_binocular"),
                 str(tmp_path / "test_directly"), "--out", str(out)]) == 0
    merged = json.loads((out / "table1" / "table1.json").read_text())
    assert [r["key"] for r in merged["rows"]] == ["test_directly", "self_supervised_binocular"]
    assert "| Direct | 40.0 |" in capsys.readouterr().out
    # A folder without the table, and parts whose configs differ: one line, exit 2.
    assert main(["experiment", "table1", "--merge", str(tmp_path), "--out", str(out)]) == 2
    assert "--merge: no" in capsys.readouterr().err
    TableResult("table1", cfg.replace(seed=5, rows=["x"]), (rows["test_directly"],)).write(
        tmp_path / "other")
    assert main(["experiment", "table1", "--merge", str(tmp_path / "other"),
                 str(tmp_path / "self_supervised_binocular"), "--out", str(out)]) == 2
    assert "differ beyond rows: ['seed']" in capsys.readouterr().err
