"""Tests of the experiment orchestration, results and markdown, with a test-double backend."""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from hand_mesh_core.config.base import ConfigError
from hand_mesh_core.data.types import StereoSample
from hand_mesh_core.eval.experiments import (
    BackendUnavailable, ExperimentConfig, RowResult, TableResult, default_backend,
    merge_tables, render_markdown, run_table, table_rows,
)
from hand_mesh_core.geometry.camera import StereoCamera
from hand_mesh_core.geometry.mesh import uv_sphere
from hand_mesh_core.pipeline import HandMeshResult

CAMERA = StereoCamera(fx=100.0, fy=100.0, cx=31.5, cy=23.5, baseline_m=0.1, width=64, height=48)
#: Error (mm, along x) of the test double for each checkpoint: what the table must show.
ERROR_MM = {"pre": 25.5, "binocular": 6.0, "monocular": 12.0, "supervised": 3.0}
DROP_ERROR_MM = {"silhouette": 9.0, "depth": 7.5}
TINY = ExperimentConfig(preset_name="tiny", n_source_train=2, n_target_train=2,
                        n_target_test=3, pretrain_steps=1, adapt_steps=1)


def _joints(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(scale=0.03, size=(21, 3)) + [0.0, 0.0, 0.5]).astype(np.float32)


class _Estimator:
    def __init__(self, error_mm: float) -> None:
        self.offset = np.array([error_mm / 1000.0, 0.0, 0.0])
        v, f = uv_sphere(0.03, 3, 4, (0.0, 0.0, 0.5))
        self.v, self.f = v.numpy(), f.numpy().astype(np.int32)

    def predict(self, left, right, camera, roi=None):
        seed = int(left[0, 0, 0])
        return HandMeshResult(self.v, (_joints(seed) + self.offset).astype(np.float32), self.f,
                              1.0, "right", np.zeros((len(self.v), 2), np.float32),
                              (0.0, 0.0, 64.0, 48.0))


class _Backend:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def loss_names(self):
        return tuple(DROP_ERROR_MM)

    def dataset(self, domain, split, n, seed):
        self.calls.append(("dataset", domain, split, n, seed))
        out = []
        for i in range(n):
            left = np.zeros((48, 64, 3), np.uint8)
            left[0, 0, 0] = i
            out.append(StereoSample(left, left.copy(), CAMERA, joints_m=_joints(i)))
        return out

    def pretrain(self, data, config, out_dir):
        self.calls.append(("pretrain", len(data)))
        return "pre"

    def adapt(self, checkpoint, data, mode, drop_loss, config, out_dir):
        self.calls.append(("adapt", checkpoint, len(data), mode, drop_loss))
        return f"drop:{drop_loss}" if drop_loss else mode

    def load(self, checkpoint, mode, device):
        if checkpoint.startswith("drop:"):
            return _Estimator(DROP_ERROR_MM[checkpoint[5:]])
        return _Estimator(ERROR_MM[checkpoint])


def test_table1_rows_measure_each_model(tmp_path):
    backend = _Backend()
    result = run_table("table1", TINY, backend, tmp_path, notes="test double", row_plots=False)
    assert [r.key for r in result.rows] == ["test_directly", "self_supervised_binocular",
                                            "self_supervised_monocular", "supervised_oracle"]
    got = [r.absolute_mm for r in result.rows]
    np.testing.assert_allclose(got, [25.5, 6.0, 12.0, 3.0], rtol=1e-5)
    assert all(r.root_relative_mm == pytest.approx(0.0, abs=1e-4) for r in result.rows)
    assert all(r.n_frames == 3 and r.n_failed == 0 for r in result.rows)
    # constant 25.5 mm error, thresholds 20, 21, .., 50 mm: PCK 0 up to 25, 1 from 26;
    # trapezoid area 0.5 (25..26) + 24 (26..50), over 30 mm
    assert result.rows[0].auc_absolute == pytest.approx(24.5 / 30)
    assert result.rows[1].auc_absolute == pytest.approx(1.0)
    # data: source train, target train, target test with a different seed
    datasets = [c for c in backend.calls if c[0] == "dataset"]
    assert datasets == [("dataset", "source_studio", "train", 2, 0),
                        ("dataset", "target_lab", "train", 2, 0),
                        ("dataset", "target_lab", "test", 3, TINY.test_seed_offset)]
    assert [c for c in backend.calls if c[0] == "pretrain"] == [("pretrain", 2)]
    modes = [c[3] for c in backend.calls if c[0] == "adapt"]
    assert modes == ["binocular", "monocular", "supervised"]
    for name in ("table1.json", "table1.md", "table1_pck.png", "table1_before_after_0.png",
                 "table1_before_after_1.png"):
        assert (tmp_path / name).is_file()
    assert (tmp_path / "supervised_oracle" / "metrics.json").is_file()
    back = TableResult.from_dict(json.loads((tmp_path / "table1.json").read_text()))
    assert back == result


def test_table2_drops_one_loss_per_row(tmp_path):
    backend = _Backend()
    result = run_table("table2", TINY, backend, tmp_path)
    assert (tmp_path / "without_depth" / "pck.png").is_file()
    assert not list(tmp_path.glob("*before_after*"))  # Figure 4 belongs to table1
    assert [r.key for r in result.rows] == ["self_supervised_binocular", "without_silhouette",
                                            "without_depth"]
    np.testing.assert_allclose([r.absolute_mm for r in result.rows], [6.0, 9.0, 7.5],
                               rtol=1e-5)
    assert [c[4] for c in backend.calls if c[0] == "adapt"] == [None, "silhouette", "depth"]
    only = run_table("table2", TINY.replace(ablate_losses=["depth"]), _Backend(),
                     tmp_path / "b", row_plots=False)
    assert not (tmp_path / "b" / "without_depth" / "pck.png").exists()
    assert [r.key for r in only.rows] == ["self_supervised_binocular", "without_depth"]
    with pytest.raises(ValueError, match=r"unknown loss\(es\) \['photo'\]"):
        run_table("table2", TINY.replace(ablate_losses=["photo"]), _Backend(), tmp_path / "c")


def test_row_selection(tmp_path):
    cfg = TINY.replace(rows=["supervised_oracle", "test_directly"])
    backend = _Backend()
    result = run_table("table1", cfg, backend, tmp_path, row_plots=False)
    assert [r.key for r in result.rows] == ["test_directly", "supervised_oracle"]  # table order
    assert [c[3] for c in backend.calls if c[0] == "adapt"] == ["supervised"]
    assert not list(tmp_path.glob("*before_after*"))  # needs the binocular row too
    with pytest.raises(ValueError, match=r"unknown row\(s\) \['ours'\] for table1; valid:"):
        run_table("table1", TINY.replace(rows=["ours"]), _Backend(), tmp_path)
    with pytest.raises(ConfigError, match="rows must be distinct"):
        TINY.replace(rows=["a", "a"])


def test_merge_tables_from_per_row_runs(tmp_path):
    parts = [run_table("table1", TINY.replace(rows=[key]), _Backend(), tmp_path / key,
                       row_plots=False, notes="part")
             for key in ("supervised_oracle", "test_directly", "self_supervised_binocular")]
    whole = run_table("table1", TINY.replace(rows=["test_directly", "self_supervised_binocular",
                                                   "supervised_oracle"]),
                      _Backend(), tmp_path / "whole", row_plots=False)
    merged = merge_tables(parts, notes="merged")

    def numbers(rows):  # everything but the wall-clock train time
        return [dataclasses.replace(r, train_time_s=0.0) for r in rows]

    assert numbers(merged.rows) == numbers(whole.rows)  # same numbers, table order
    assert merged.config == whole.config
    assert merged.notes == "part\n\nmerged"
    with pytest.raises(ValueError, match="at least one"):
        merge_tables([])
    with pytest.raises(ValueError, match=r"more than one table: \['test_directly'\]"):
        merge_tables(parts + parts[1:2])
    other = TableResult("table1", TINY.replace(seed=9, rows=("x",)), parts[0].rows)
    with pytest.raises(ValueError, match=r"differ beyond rows: \['seed'\]"):
        merge_tables([parts[1], other])
    with pytest.raises(ValueError, match="cannot merge table2 into table1"):
        merge_tables([parts[1], TableResult("table2", TINY, parts[0].rows)])


def test_render_markdown_hand_built():
    row = RowResult("test_directly", "Test directly", 12.345, 4.0, 3.21, 0.5, 0.75, 10, 2, 61.4)
    nan_row = RowResult("x", "All failed", math.nan, math.nan, math.nan, 0.0, 0.0, 5, 5, 0.0)
    md = render_markdown(TableResult("table1", TINY, (row, nan_row), notes="Measured on X."))
    lines = md.splitlines()
    assert lines[0] == ("### Table 1: transfer from source_studio to target_lab "
                        "(test: held-out target_lab)")
    assert lines[2].startswith("| Method | Abs. error (mm) ↓ |")
    assert "AUC abs. 20-50 mm" in lines[2]
    assert lines[4] == "| Test directly | 12.3 | 4.0 | 3.2 | 0.500 | 0.750 | 2 / 10 | 61 |"
    assert lines[5] == "| All failed | n/a | n/a | n/a | 0.000 | 0.000 | 5 / 5 | 0 |"
    assert "Preset `tiny`" in md and md.rstrip().endswith("Measured on X.")
    # NaN survives the JSON round trip as null
    d = json.loads(json.dumps(TableResult("table1", TINY, (nan_row,)).to_dict(),
                              allow_nan=False))
    assert d["rows"][0]["absolute_mm"] is None
    assert math.isnan(TableResult.from_dict(d).rows[0].absolute_mm)


def test_rows_and_config_validation(tmp_path):
    assert [r.train_mode for r in table_rows("table1")] == ["none", "binocular", "monocular",
                                                            "supervised"]
    with pytest.raises(ValueError, match=r"table must be one of \['table1', 'table2'\]"):
        table_rows("table3")
    with pytest.raises(ValueError, match="at least one loss"):
        table_rows("table2", ())
    with pytest.raises(ValueError, match=r"preset must be one of \['quick', 'full'\]"):
        ExperimentConfig.preset("medium")
    quick, full = ExperimentConfig.preset("quick"), ExperimentConfig.preset("full")
    assert quick.n_target_test < full.n_target_test and quick.adapt_steps < full.adapt_steps
    quick2 = ExperimentConfig.preset("quick", "table2")  # seven adaptation runs: smaller
    assert quick2.adapt_steps < quick.adapt_steps and quick2.n_target_train < quick.n_target_train
    assert ExperimentConfig.preset("full", "table2") == full
    with pytest.raises(ValueError, match=r"table must be one of \['table1', 'table2'\]"):
        ExperimentConfig.preset("quick", "table3")
    with pytest.raises(ConfigError, match="must differ"):
        ExperimentConfig(source_domain="a", target_domain="a")
    with pytest.raises(ConfigError, match="distinct"):
        ExperimentConfig(ablate_losses=("a", "a"))
    with pytest.raises(ConfigError, match="non-empty"):
        ExperimentConfig(ablate_losses=("",))
    with pytest.raises(ConfigError, match="must be > 0"):
        ExperimentConfig(n_target_test=0)
    with pytest.raises(ConfigError, match="unknown key"):
        ExperimentConfig.from_dict({"n_test": 3})
    with pytest.raises(TypeError, match="ExperimentConfig"):
        run_table("table1", {"seed": 0}, _Backend(), tmp_path)
    with pytest.raises(ValueError, match="must be exactly"):
        RowResult.from_dict({"key": "a"})
    with pytest.raises(ValueError, match="table must be one of"):
        TableResult.from_dict({"table": "t9", "config": {}, "rows": []})


def test_config_yaml_round_trip(tmp_path):
    cfg = ExperimentConfig.preset("quick").replace(ablate_losses=["depth"], seed=3)
    cfg.to_yaml(tmp_path / "e.yaml")
    assert ExperimentConfig.from_yaml(tmp_path / "e.yaml") == cfg


def test_default_backend_wiring_checks(monkeypatch):
    backend = default_backend()
    names = backend.loss_names()  # the non-zero weights of the adaptation losses
    assert "photo" in names and all(isinstance(n, str) for n in names)
    # pretrain, adapt, with_z_head and load_estimator exist: every row of table1 can run
    backend.check(("binocular", "monocular", "none", "supervised"))
    with pytest.raises(ValueError, match=r"mode must be one of \['binocular', 'monocular', "
                                         r"'supervised'\], got 'oracle'"):
        backend.check(("none", "oracle"))
    import hand_mesh_core.model.network as network

    monkeypatch.delattr(network, "with_z_head")  # the monocular row needs the converter
    with pytest.raises(BackendUnavailable, match="with_z_head is not available"):
        backend.check(("none", "monocular"))
    backend.check(("binocular", "supervised"))
