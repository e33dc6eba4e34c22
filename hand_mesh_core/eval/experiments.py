"""Reproduce the paper's tables on synthetic domains: orchestration, results and markdown.

Protocol (Chen et al., ICCV 2021, Tables 1 and 2, transposed to our synthetic domains): pretrain
with full supervision on the *source* domain (``source_studio``), adapt on unlabelled stereo pairs
of the *target* domain (``target_lab``), evaluate on a held-out labelled target test split.

Rows:

* ``table1``: ``test_directly`` (the pretrained model, no adaptation),
  ``self_supervised_binocular`` (the paper's method), ``self_supervised_monocular`` (the
  pretrained network given a zero-initialised z-head, :func:`~hand_mesh_core.model.network.
  with_z_head`, adapted with the same stereo losses on unlabelled pairs, then tested on the
  LEFT image alone), ``supervised_oracle`` (the pretrained network fine-tuned *with* the target
  training labels, same steps and batch: an upper bound).
* ``table2``: ``self_supervised_binocular`` with every loss, then one row per loss with that loss
  dropped (``without_<loss>``).

Training, data generation and model loading go through an :class:`ExperimentBackend`; the
default one (:func:`default_backend`) calls ``hand_mesh_core.train`` and
``hand_mesh_core.data.synth``. Only the ``supervised`` training mode reads target labels; the
self-supervised ones go through :func:`hand_mesh_core.train.adapt.adapt`, which drops them.
Everything else (row lists, config validation, JSON and markdown) is independent of training and
tested with a test-double backend.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence

from hand_mesh_core.config.base import ConfigBase, ConfigError, setting
from hand_mesh_core.data.types import StereoSample
from hand_mesh_core.eval.config import EvalConfig, MetricsConfig
from hand_mesh_core.eval.evaluate import EvalReport, evaluate
from hand_mesh_core.eval.metrics import PCKCurve
from hand_mesh_core.eval.plots import plot_before_after, plot_pck_curves
from hand_mesh_core.losses.total import LossWeights
from hand_mesh_core.train.config import ADAPT_LOSS_WEIGHTS
from hand_mesh_core.pipeline import (HandMeshEstimator, HandMeshPipeline,
                                     KnownHandednessEstimator)

__all__ = [
    "TABLES", "PRESETS", "TRAIN_MODES", "ROW_LABELS", "ExperimentConfig", "RowSpec",
    "RowResult", "TableResult", "ExperimentBackend", "table_rows", "run_table",
    "render_markdown", "default_backend", "BackendUnavailable", "merge_tables",
    "Z_HEAD_START_NAME",
]

#: The ``quick`` preset of table1: unlabelled target pairs, test pairs and adaptation steps.
#: More unlabelled pairs cost little (rendering and the ROI, ~0.1 s a pair; the steps stay):
#: binocular adaptation lowers the error by 41.3 % with 256 pairs, 40.0 % with 512 and 38.2 %
#: with 128 (session 4; docs/results.md, "Quick preset").
QUICK_TABLE1_SIZES = (256, 64, 300)
#: The ``quick`` preset of table2 (seven adaptation runs, so smaller): 6.3 min on 2 CPU cores.
QUICK_TABLE2_SIZES = (32, 32, 100)
#: Adaptation steps of the ``full`` preset (batch 8: 8 epochs of 500 pairs).
FULL_ADAPT_STEPS = 500
#: The reproducible tables.
TABLES = ("table1", "table2")
#: Named presets of :class:`ExperimentConfig`.
PRESETS = ("quick", "full")
#: How a row's model is obtained from the pretrained one: no training, self-supervised
#: binocular / monocular adaptation, supervised adaptation (uses target labels).
TRAIN_MODES = ("none", "binocular", "monocular", "supervised")
#: Row key -> label in the tables.
ROW_LABELS = {
    "test_directly": "Test directly (pretrained on source)",
    "self_supervised_binocular": "Self-supervised, binocular (ours)",
    "self_supervised_monocular": "Self-supervised, monocular (z-head)",
    "supervised_oracle": "Supervised on target (oracle)",
}
#: Figure 4 compares these rows (before / after adaptation).
_BEFORE_AFTER = ("test_directly", "self_supervised_binocular")
_TABLE1_ROWS = (("test_directly", "none"), ("self_supervised_binocular", "binocular"),
                ("self_supervised_monocular", "monocular"), ("supervised_oracle", "supervised"))


class BackendUnavailable(RuntimeError):
    """The training or data code the experiment needs is not available (yet)."""


@dataclass(frozen=True)
class ExperimentConfig(ConfigBase):
    """One reproduction of the paper's tables on synthetic domains (YAML-loadable).

    Use :meth:`preset` for the ``quick`` (CPU smoke, minutes) and ``full`` presets.
    """

    preset_name: str = setting("custom", "name recorded with the results")
    source_domain: str = setting("source_studio", "synthetic domain used for pretraining")
    target_domain: str = setting("target_lab", "synthetic domain used for adaptation and test")
    n_source_train: int = setting(2000, "labelled source samples for pretraining", gt=0)
    n_target_train: int = setting(1000, "unlabelled target samples for adaptation", gt=0)
    n_target_test: int = setting(500, "held-out labelled target samples for evaluation (the "
                                 "protocol asks for at least 500)", gt=0)
    pretrain_steps: int = setting(20000, "optimiser steps of supervised pretraining", gt=0)
    adapt_steps: int = setting(5000, "optimiser steps of each adaptation run", gt=0)
    batch_size: int = setting(16, "training batch size", gt=0)
    adapt_patience: int = setting(0, "guard evaluations without improvement of the held-out "
                                  "photometric residual before adaptation stops "
                                  "(AdaptConfig.patience); 0 = AdaptConfig's default", ge=0)
    seed: int = setting(0, "seed of data generation and training", ge=0)
    test_seed_offset: int = setting(1_000_003, "added to seed for the test split, so test "
                                    "samples are never training samples", gt=0)
    device: str = setting("cpu", "torch device for training and inference")
    pretrained_checkpoint: str = setting(
        "", "skip pretraining and start every row from this checkpoint: a .safetensors path, "
        "or \"default\" for the shipped one (pretrained on source_studio); empty = pretrain "
        "with n_source_train / pretrain_steps")
    known_handedness: bool = setting(
        True, "the hand's side of each test pair is known (as the ROS node's handedness "
        "parameter): left hands run through the mirrored pipeline (handedness=\"left\"); "
        "False runs every test pair as a right hand")
    rows: tuple[str, ...] = setting((), "row keys to run (e.g. test_directly); empty = every "
                                    "row of the table")
    loss_weights: LossWeights = setting(
        default_factory=lambda: ADAPT_LOSS_WEIGHTS,
        doc="self-supervised loss weights of the adaptation rows (default: "
        "hand_mesh_core.train.config.ADAPT_LOSS_WEIGHTS; the paper's are LossWeights())")
    ablate_losses: tuple[str, ...] = setting(
        (), "table2: losses dropped one at a time; empty = every loss of the adaptation")
    metrics: MetricsConfig = setting(doc="metric settings", default_factory=MetricsConfig)

    def validate(self) -> None:
        if self.source_domain == self.target_domain:
            raise ConfigError(f"ExperimentConfig: source_domain and target_domain must differ, "
                              f"both are {self.source_domain!r}")
        if len(set(self.ablate_losses)) != len(self.ablate_losses):
            raise ConfigError(f"ExperimentConfig.ablate_losses = {self.ablate_losses}: "
                              "losses must be distinct")
        if any(not name for name in self.ablate_losses):
            raise ConfigError("ExperimentConfig.ablate_losses: names must be non-empty")
        if len(set(self.rows)) != len(self.rows):
            raise ConfigError(f"ExperimentConfig.rows = {self.rows}: rows must be distinct")

    @classmethod
    def preset(cls, name: str, table: str = "table1") -> "ExperimentConfig":
        """The ``quick`` or ``full`` preset of ``table``.

        Both start every row from the shipped checkpoint, which is the stage-1 model
        (pretrained on ``source_studio``, see its sidecar); set ``pretrained_checkpoint: ""``
        to pretrain here with ``n_source_train`` / ``pretrain_steps`` instead (a GPU job).
        ``quick``: minutes on 2 CPU cores, and it shows the effect (docs/results.md):
        :data:`QUICK_TABLE1_SIZES` or :data:`QUICK_TABLE2_SIZES` (unlabelled target pairs, test
        pairs, adaptation steps). ``full``: the protocol's sizes, 500 unlabelled target pairs
        and 500 test pairs, :data:`FULL_ADAPT_STEPS` steps (table1: 15 minutes on 2 CPU cores).

        Raises:
            ValueError: unknown ``name`` or ``table``.
        """
        if table not in TABLES:
            raise ValueError(f"table must be one of {list(TABLES)}, got {table!r}")
        if name == "quick":
            n_train, n_test, steps = (QUICK_TABLE1_SIZES if table == "table1"
                                      else QUICK_TABLE2_SIZES)
            return cls(preset_name="quick", pretrained_checkpoint="default",
                       n_target_train=n_train, n_target_test=n_test, adapt_steps=steps,
                       batch_size=8)
        if name == "full":
            return cls(preset_name="full", pretrained_checkpoint="default", n_target_train=500,
                       n_target_test=500, adapt_steps=FULL_ADAPT_STEPS, batch_size=8)
        raise ValueError(f"preset must be one of {list(PRESETS)}, got {name!r}")


@dataclass(frozen=True)
class RowSpec:
    """One row to produce.

    Attributes:
        key: stable identifier (JSON key), e.g. ``"without_silhouette"``.
        label: text of the table row.
        train_mode: one of :data:`TRAIN_MODES`.
        drop_loss: the loss switched off during adaptation, or None.
    """

    key: str
    label: str
    train_mode: str
    drop_loss: str | None = None


def table_rows(table: str, loss_names: Sequence[str] = ()) -> tuple[RowSpec, ...]:
    """The rows of ``table``.

    Args:
        table: one of :data:`TABLES`.
        loss_names: table2's ablated losses (one row each, dropped one at a time).

    Returns:
        The rows in table order.
    """
    if table not in TABLES:
        raise ValueError(f"table must be one of {list(TABLES)}, got {table!r}")
    if table == "table1":
        return tuple(RowSpec(k, ROW_LABELS[k], mode) for k, mode in _TABLE1_ROWS)
    if not loss_names:
        raise ValueError("table2 needs at least one loss name to ablate")
    full = RowSpec("self_supervised_binocular", "All losses (ours)", "binocular")
    return (full,) + tuple(RowSpec(f"without_{n}", f"without {n}", "binocular", drop_loss=n)
                           for n in loss_names)


@dataclass(frozen=True)
class RowResult:
    """The measured numbers of one row (errors in mm over the target test split).

    Attributes:
        key, label: from the :class:`RowSpec`.
        absolute_mm: mean absolute (camera-space) joint error, the paper's metric.
        root_relative_mm: mean root-relative joint error.
        procrustes_mm: mean Procrustes-aligned joint error.
        auc_absolute: AUC of the absolute 3D PCK over the config's threshold range.
        auc_root_relative: AUC of the root-relative 3D PCK.
        n_frames: test frames.
        n_failed: test frames without a prediction.
        train_time_s: wall-clock time to produce the row's model (adaptation only).
    """

    key: str
    label: str
    absolute_mm: float
    root_relative_mm: float
    procrustes_mm: float
    auc_absolute: float
    auc_root_relative: float
    n_frames: int
    n_failed: int
    train_time_s: float

    @classmethod
    def from_report(cls, spec: RowSpec, report: EvalReport, train_time_s: float
                    ) -> "RowResult":
        m = report.metrics
        return cls(spec.key, spec.label, m.absolute.mean_mm, m.root_relative.mean_mm,
                   m.procrustes.mean_mm, m.absolute.pck.auc, m.root_relative.pck.auc,
                   m.n_frames, m.n_failed, train_time_s)

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v)
                for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RowResult":
        names = [f.name for f in dataclasses.fields(cls)]
        if set(data) != set(names):
            raise ValueError(f"row keys {sorted(data)} must be exactly {sorted(names)}")
        return cls(**{k: (math.nan if data[k] is None else data[k]) for k in names})


@dataclass(frozen=True)
class TableResult:
    """A reproduced table.

    Attributes:
        table: one of :data:`TABLES`.
        config: the experiment configuration.
        rows: in table order.
        notes: provenance (command, machine, date), printed under the table.
    """

    table: str
    config: ExperimentConfig
    rows: tuple[RowResult, ...]
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "config": self.config.to_dict(), "notes": self.notes,
                "rows": [r.to_dict() for r in self.rows]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TableResult":
        if data.get("table") not in TABLES:
            raise ValueError(f"table must be one of {list(TABLES)}, got {data.get('table')!r}")
        return cls(data["table"], ExperimentConfig.from_dict(data["config"]),
                   tuple(RowResult.from_dict(r) for r in data["rows"]), data.get("notes", ""))

    def write(self, out_dir: str | Path) -> tuple[Path, Path]:
        """Write ``<table>.json`` and ``<table>.md`` into ``out_dir``; returns both paths."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        js = out / f"{self.table}.json"
        md = out / f"{self.table}.md"
        js.write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False))
        md.write_text(render_markdown(self))
        return js, md


_TITLES = {"table1": "Table 1: transfer from {src} to {dst} (test: held-out {dst})",
           "table2": "Table 2: loss ablation of binocular self-supervised adaptation "
                     "({src} -> {dst})"}


def _fmt(x: float, digits: int) -> str:
    return "n/a" if math.isnan(x) else f"{x:.{digits}f}"


_HANDEDNESS_NOTE = {True: "known (left hands mirrored)",
                    False: "ignored (every pair run as a right hand)"}


def render_markdown(result: TableResult) -> str:
    """A docs/results.md-ready markdown section: title, table, configuration line and notes."""
    cfg = result.config
    m = cfg.metrics
    lines = [f"### {_TITLES[result.table].format(src=cfg.source_domain, dst=cfg.target_domain)}",
             "",
             f"| Method | Abs. error (mm) ↓ | Root-rel. (mm) ↓ | PA (mm) ↓ | "
             f"AUC abs. {m.pck_min_mm:g}-{m.pck_max_mm:g} mm ↑ | "
             f"AUC root-rel. ↑ | Failed / frames | Train time (s) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result.rows:
        lines.append(f"| {r.label} | {_fmt(r.absolute_mm, 1)} | {_fmt(r.root_relative_mm, 1)} | "
                     f"{_fmt(r.procrustes_mm, 1)} | {_fmt(r.auc_absolute, 3)} | "
                     f"{_fmt(r.auc_root_relative, 3)} | {r.n_failed} / {r.n_frames} | "
                     f"{r.train_time_s:.0f} |")
    pretraining = (f"pretrained checkpoint `{cfg.pretrained_checkpoint}` (no pretraining "
                   "run)" if cfg.pretrained_checkpoint else
                   f"{cfg.n_source_train} source training samples, {cfg.pretrain_steps} "
                   "pretraining steps")
    lines += ["",
              f"Preset `{cfg.preset_name}`: {pretraining}; {cfg.n_target_train} "
              f"target training samples, {cfg.n_target_test} target test samples, "
              f"{cfg.adapt_steps} adaptation steps (guard patience "
              f"{cfg.adapt_patience or 'default'}), "
              f"batch {cfg.batch_size}, seed {cfg.seed}, root joints {list(m.root_joints)}, "
              f"handedness {_HANDEDNESS_NOTE[cfg.known_handedness]}. "
              "Failed frames are excluded from the mean errors and count as PCK misses."]
    if result.notes:
        lines += ["", result.notes]
    return "\n".join(lines) + "\n"


class ExperimentBackend(Protocol):
    """Data, training and loading used by :func:`run_table` (the real one, or a test double).

    Checkpoints are opaque handles (typically a path) passed back to the backend. A backend may
    also define ``check(train_modes)``, called first, to fail before any training.
    """

    def loss_names(self) -> tuple[str, ...]:
        """The losses of self-supervised adaptation (table2's default ablations)."""
        ...

    def dataset(self, domain: str, split: str, n: int, seed: int) -> Sequence[StereoSample]:
        """``n`` labelled samples of ``domain``; ``split`` in {"train", "test"}."""
        ...

    def pretrain(self, data: Sequence[StereoSample], config: ExperimentConfig,
                 out_dir: Path) -> Any:
        """Supervised pretraining on source data; returns a checkpoint."""
        ...

    def adapt(self, checkpoint: Any, data: Sequence[StereoSample], mode: str,
              drop_loss: str | None, config: ExperimentConfig, out_dir: Path) -> Any:
        """Adapt ``checkpoint`` on target data with ``mode`` in {"binocular", "monocular",
        "supervised"} (only "supervised" may read labels); returns a checkpoint."""
        ...

    def load(self, checkpoint: Any, mode: str, device: str) -> HandMeshEstimator:
        """An estimator for a checkpoint (``mode`` tells binocular from monocular models)."""
        ...


def run_table(table: str, config: ExperimentConfig, backend: ExperimentBackend,
              out_dir: str | Path, notes: str = "", progress: bool = False,
              row_plots: bool = True, n_before_after: int = 2) -> TableResult:
    """Pretrain once, produce every row's model, evaluate each on the target test split.

    Writes ``<out_dir>/<table>.json``, ``<table>.md``, ``<table>_pck.png`` (absolute PCK of every
    row), Figure-4 overlays (table1) and one evaluation folder per row (``<out_dir>/<row key>/``).

    Args:
        table: one of :data:`TABLES`.
        config: sizes, steps, seed, domains.
        backend: data, training and loading.
        out_dir: output folder (checkpoints go to ``<out_dir>/checkpoints``).
        notes: provenance text stored with the results.
        progress: show tqdm bars during evaluation.
        row_plots: write each row's PCK and per-joint PNGs (the table's PCK plot is always
            written).
        n_before_after: table1 only: draw this many test frames as the paper's Figure 4
            (``table1_before_after_<i>.png``: test directly vs binocular self-supervised).

    Returns:
        The table.
    """
    if not isinstance(config, ExperimentConfig):
        raise TypeError(f"config must be an ExperimentConfig, got {type(config).__name__}")
    loss_names = tuple(config.ablate_losses) or tuple(backend.loss_names())
    specs = table_rows(table, loss_names)
    if config.rows:
        valid = [s.key for s in specs]
        unknown = [k for k in config.rows if k not in valid]
        if unknown:
            raise ValueError(f"unknown row(s) {unknown} for {table}; valid: {valid}")
        specs = tuple(s for s in specs if s.key in config.rows)
    if table == "table2" and config.ablate_losses:
        known = set(backend.loss_names())
        unknown = [n for n in config.ablate_losses if n not in known]
        if unknown:
            raise ValueError(f"unknown loss(es) {unknown} in ablate_losses; valid: "
                             f"{sorted(known)}")
    check = getattr(backend, "check", None)
    if check is not None:  # fail before hours of pretraining if a later step cannot run
        check(tuple(sorted({s.train_mode for s in specs})))
    out = Path(out_dir)
    ckpt_dir = out / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    source = backend.dataset(config.source_domain, "train", config.n_source_train, config.seed)
    target = backend.dataset(config.target_domain, "train", config.n_target_train, config.seed)
    test = backend.dataset(config.target_domain, "test", config.n_target_test,
                           config.seed + config.test_seed_offset)
    pretrained = (_resolve_checkpoint(config.pretrained_checkpoint)
                  if config.pretrained_checkpoint else backend.pretrain(source, config, ckpt_dir))
    eval_cfg = EvalConfig(metrics=config.metrics, progress=progress, n_overlays=0,
                          write_plots=row_plots)
    rows, curves, estimators = [], {}, {}
    for spec in specs:
        start = time.perf_counter()
        ckpt = pretrained if spec.train_mode == "none" else backend.adapt(
            pretrained, target, spec.train_mode, spec.drop_loss, config, ckpt_dir)
        train_time_s = time.perf_counter() - start
        estimator = backend.load(ckpt, spec.train_mode, config.device)
        if config.known_handedness and isinstance(estimator, HandMeshPipeline):
            estimator = KnownHandednessEstimator(estimator, test)
        if spec.key in _BEFORE_AFTER:
            estimators[spec.key] = estimator
        report = evaluate(estimator, test, out / spec.key, eval_cfg,
                          model_name=spec.key, data_name=f"{config.target_domain}/test")
        rows.append(RowResult.from_report(spec, report, train_time_s))
        curves[spec.label] = report.metrics.absolute.pck
    result = TableResult(table, config, tuple(rows), notes)
    result.write(out)
    _plot_table_pck(curves, out / f"{table}_pck.png", table)
    if table == "table1" and n_before_after > 0 and all(k in estimators for k in _BEFORE_AFTER):
        _plot_before_after(estimators, test, n_before_after, out, table)
    return result


def _row_order(key: str) -> int:
    """Table order of a row key: table1's rows, then table2's ablations in loss order."""
    from hand_mesh_core.losses.total import TERM_NAMES

    order = [k for k, _ in _TABLE1_ROWS] + [f"without_{n}" for n in TERM_NAMES]
    return order.index(key) if key in order else len(order)


def merge_tables(results: Sequence[TableResult], notes: str = "") -> TableResult:
    """One table from runs that each produced some of its rows (e.g. one process per row).

    Args:
        results: tables of the same kind whose configurations differ only in ``rows``.
        notes: provenance of the merge, added after the parts' own (distinct) notes.

    Returns:
        The table with every row, in table order; its config lists the rows.

    Raises:
        ValueError: no results, mixed tables, configurations that differ beyond ``rows``, or a
            row that appears twice.
    """
    if not results:
        raise ValueError("merge_tables needs at least one table")
    table = results[0].table
    base = results[0].config.replace(rows=())
    for r in results[1:]:
        if r.table != table:
            raise ValueError(f"cannot merge {r.table} into {table}")
        if r.config.replace(rows=()) != base:
            diff = sorted(k for k, v in r.config.replace(rows=()).to_dict().items()
                          if base.to_dict()[k] != v)
            raise ValueError(f"configurations differ beyond rows: {diff}")
    rows = [row for r in results for row in r.rows]
    keys = [row.key for row in rows]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise ValueError(f"rows appear in more than one table: {dup}")
    rows.sort(key=lambda row: _row_order(row.key))
    parts = list(dict.fromkeys(r.notes for r in results if r.notes))
    text = "\n\n".join(parts + ([notes] if notes else []))
    return TableResult(table, base.replace(rows=tuple(row.key for row in rows)), tuple(rows),
                       text)


def _resolve_checkpoint(name: str) -> Path:
    """``ExperimentConfig.pretrained_checkpoint`` -> an existing checkpoint path.

    Raises:
        FileNotFoundError: the file (or the shipped default) does not exist.
    """
    from hand_mesh_core.pipeline import default_model_path

    path = default_model_path() if name == "default" else Path(name)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained_checkpoint {name!r}: no file at {path} (give a "
                                ".safetensors path or \"default\")")
    return path


def _plot_before_after(estimators: dict[str, HandMeshEstimator], test: Sequence[StereoSample],
                       count: int, out: Path, table: str) -> list[Path]:
    """Figure 4: the first ``count`` test frames where both models find the hand."""
    before_est, after_est = (estimators[k] for k in _BEFORE_AFTER)
    paths = []
    for i, sample in enumerate(test):
        if len(paths) >= count:
            break
        before = before_est.predict(sample.left, sample.right, sample.camera)
        after = after_est.predict(sample.left, sample.right, sample.camera)
        if before is None or after is None:
            continue
        paths.append(plot_before_after(
            sample.left, before.vertices_m, after.vertices_m, after.faces, sample.camera,
            out / f"{table}_before_after_{i}.png", before.joints_m, after.joints_m,
            sample.joints_m, labels=(ROW_LABELS[_BEFORE_AFTER[0]],
                                     ROW_LABELS[_BEFORE_AFTER[1]])))
    return paths


def _plot_table_pck(curves: dict[str, PCKCurve], path: Path, table: str) -> Path:
    return plot_pck_curves(curves, path, title=f"{table}: absolute 3D PCK on the target test set")


class _SynthSequence(Sequence[StereoSample]):
    """``n`` samples of a synthetic domain rendered on demand and kept in memory.

    Memory: about 2 MB per 640x480 sample; fine for the quick preset. TODO(data): read an on-disk
    dataset (``open_dataset``) for the full preset once the generator writes one.
    """

    def __init__(self, domain: str, split: str, n: int, seed: int) -> None:
        from hand_mesh_core.data.synth.config import load_domain
        from hand_mesh_core.data.synth.generator import SynthGenerator

        self.generator = SynthGenerator(load_domain(domain))
        self.n, self.seed, self.source = n, seed, f"synth/{domain}/{split}"
        self._cache: dict[int, StereoSample] = {}

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> StereoSample:  # type: ignore[override]
        if not -self.n <= index < self.n:
            raise IndexError(f"index {index} out of range for {self.n} samples")
        index %= self.n
        if index not in self._cache:
            self._cache[index] = self.generator.generate(index, self.seed).to_stereo_sample(
                self.source)
        return self._cache[index]


#: File stem of the monocular row's starting checkpoint (the pretrained network + zero z-head).
Z_HEAD_START_NAME = "z_head_start"


class _RightHanded(Sequence[StereoSample]):
    """``data`` with left-hand pairs mirrored into right-hand pairs (labels included,
    :func:`~hand_mesh_core.model.mirror.mirror_sample`), on access: the network is a
    right-hand network."""

    def __init__(self, data: Sequence[StereoSample]) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> StereoSample:  # type: ignore[override]
        from hand_mesh_core.model.mirror import mirror_sample

        sample = self.data[index]
        return mirror_sample(sample) if sample.handedness == "left" else sample


class _DefaultBackend:
    """Wires :func:`run_table` to ``hand_mesh_core.train`` and ``hand_mesh_core.data.synth``.

    Data: :class:`~hand_mesh_core.data.synth.generator.SynthGenerator`. Pretraining:
    :func:`hand_mesh_core.train.pretrain.pretrain`. Training modes (:meth:`adapt`):

    * ``binocular``: self-supervised adaptation (:func:`hand_mesh_core.train.adapt.adapt`,
      optional dropped loss); the guard's refusal keeps the pretrained checkpoint.
    * ``monocular``: the pretrained network gets a zero z-head
      (:func:`~hand_mesh_core.model.network.with_z_head`; a z-head checkpoint is used as is),
      saved as ``z_head_start.safetensors``, then the same adaptation (same six stereo losses;
      the guard's held-out photometric residual is computed from both branches of the
      binocular forward). The guard's refusal keeps the converted START checkpoint, so the row
      always measures a monocular model.
    * ``supervised`` (oracle): :func:`~hand_mesh_core.train.pretrain.pretrain` started from the
      pretrained weights (``init_weights``) on the LABELLED target training pairs (left hands
      mirrored into right hands, as adaptation and inference do), ``adapt_steps`` steps of
      ``batch_size``, the adaptation learning rate (``AdaptConfig.lr``), no warm-up. The only
      mode that reads target labels.

    Loading: :func:`hand_mesh_core.pipeline.load_estimator`, monocular (left image only) for
    the ``monocular`` mode and binocular for the others.
    """

    @staticmethod
    def _need(module: str, attr: str) -> Any:
        import importlib

        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            raise BackendUnavailable(f"{module} is not available yet ({exc}); the experiment "
                                     "needs it") from exc
        if not hasattr(mod, attr):
            raise BackendUnavailable(f"{module}.{attr} is not available yet; the experiment "
                                     "needs it")
        return getattr(mod, attr)

    def check(self, train_modes: tuple[str, ...]) -> None:
        """Fail now, before any training, if a step of rows with these training modes cannot run.

        Raises:
            BackendUnavailable: pretraining, loading or a mode's training code is missing.
            ValueError: an unknown mode (allowed: :data:`TRAIN_MODES`).
        """
        self._need("hand_mesh_core.train.pretrain", "pretrain")
        self._need("hand_mesh_core.pipeline", "load_estimator")
        for mode in train_modes:
            if mode != "none":
                self._adapt_fn(mode)

    def loss_names(self) -> tuple[str, ...]:
        weights = self._need("hand_mesh_core.losses.total", "LossWeights")
        return tuple(f.name for f in dataclasses.fields(weights) if getattr(weights(), f.name))

    def dataset(self, domain: str, split: str, n: int, seed: int) -> Sequence[StereoSample]:
        return _SynthSequence(domain, split, n, seed)

    def pretrain(self, data: Sequence[StereoSample], config: ExperimentConfig,
                 out_dir: Path) -> Any:
        pretrain = self._need("hand_mesh_core.train.pretrain", "pretrain")
        pretrain_config = self._need("hand_mesh_core.train.config", "PretrainConfig")
        cfg = pretrain_config(steps=config.pretrain_steps, batch_size=config.batch_size,
                              seed=config.seed, device=config.device)
        result = pretrain(cfg, data, out_dir / "pretrain",
                          training_data=f"synth/{config.source_domain} x{len(data)} "
                                        f"seed {config.seed}")
        return result.checkpoint

    def adapt(self, checkpoint: Any, data: Sequence[StereoSample], mode: str,
              drop_loss: str | None, config: ExperimentConfig, out_dir: Path) -> Any:
        """Train the row's model from ``checkpoint`` (see the class docstring); returns the
        path of the checkpoint to measure.

        Raises:
            ValueError: unknown ``mode`` (allowed: the :data:`TRAIN_MODES` other than
                "none"), or a ``drop_loss`` with the supervised mode.
            BackendUnavailable: the mode's training code is missing.
        """
        if mode == "supervised":
            if drop_loss is not None:
                raise ValueError(f"drop_loss must be None for the supervised mode (it has no "
                                 f"self-supervised losses), got {drop_loss!r}")
            return self._finetune_supervised(checkpoint, data, config, out_dir)
        adapt = self._adapt_fn(mode)
        adapt_config = self._need("hand_mesh_core.train.config", "AdaptConfig")
        loss_config = self._need("hand_mesh_core.losses.total", "LossConfig")
        load_checkpoint = self._need("hand_mesh_core.model.checkpoint", "load_checkpoint")
        weights = config.loss_weights
        if drop_loss is not None:
            weights = weights.replace(**{drop_loss: 0.0})
        defaults = adapt_config()
        cfg = adapt_config(losses=loss_config(weights=weights), steps=config.adapt_steps,
                           batch_size=config.batch_size, seed=config.seed, device=config.device,
                           eval_every=min(defaults.eval_every, config.adapt_steps),
                           patience=config.adapt_patience or defaults.patience)
        pretrained, _ = load_checkpoint(checkpoint, device="cpu")
        run_dir = out_dir / f"adapt_{mode}_{drop_loss or 'all'}"
        start = checkpoint
        if mode == "monocular" and pretrained.z_head is None:
            pretrained = self._need("hand_mesh_core.model.network", "with_z_head")(pretrained)
            save_checkpoint = self._need("hand_mesh_core.model.checkpoint", "save_checkpoint")
            start = save_checkpoint(
                run_dir / f"{Z_HEAD_START_NAME}.safetensors", pretrained,
                training_data=f"binocular checkpoint {checkpoint} + zero z-head (no training)",
                extra={"stage": "z_head_start", "from_checkpoint": str(checkpoint)})
        result = adapt(cfg, pretrained, data, run_dir,
                       training_data=f"synth/{config.target_domain} x{len(data)} unlabelled, "
                                     f"seed {config.seed}")
        print(f"[{mode}, drop {drop_loss}] {result.message}")
        if result.checkpoint is None and start is not checkpoint:
            print(f"[{mode}, drop {drop_loss}] the row measures the z-head start {start}")
        # The guard writes no checkpoint when adaptation did not help: the row then measures
        # its starting model (the pretrained one; for "monocular" the converted z-head one),
        # as the adapted pipeline would ship it.
        return result.checkpoint if result.checkpoint is not None else start

    def _finetune_supervised(self, checkpoint: Any, data: Sequence[StereoSample],
                             config: ExperimentConfig, out_dir: Path) -> Any:
        """The oracle: supervised fine-tuning on the labelled target pairs (class docstring)."""
        pretrain = self._adapt_fn("supervised")
        pretrain_config = self._need("hand_mesh_core.train.config", "PretrainConfig")
        adapt_config = self._need("hand_mesh_core.train.config", "AdaptConfig")
        read_info = self._need("hand_mesh_core.model.checkpoint", "read_checkpoint_info")
        cfg = pretrain_config(network=read_info(checkpoint).network, steps=config.adapt_steps,
                              batch_size=config.batch_size, lr=adapt_config().lr,
                              warmup_steps=0, freeze_bn=True, seed=config.seed,
                              device=config.device)
        result = pretrain(cfg, _RightHanded(data), out_dir / "adapt_supervised",
                          init_weights=checkpoint,
                          training_data=f"synth/{config.target_domain} x{len(data)} LABELLED "
                                        f"(oracle), seed {config.seed}, from {checkpoint}")
        print(f"[supervised] fine-tuned {result.steps} steps on target labels: loss "
              f"{result.first_loss:.4f} -> {result.final_loss:.4f}; wrote {result.checkpoint}")
        return result.checkpoint

    def _adapt_fn(self, mode: str) -> Any:
        """The training entry point of ``mode`` (raises :class:`BackendUnavailable`)."""
        if mode == "binocular":
            return self._need("hand_mesh_core.train.adapt", "adapt")
        if mode == "monocular":
            self._need("hand_mesh_core.model.network", "with_z_head")
            return self._need("hand_mesh_core.train.adapt", "adapt")
        if mode == "supervised":
            return self._need("hand_mesh_core.train.pretrain", "pretrain")
        raise ValueError(f"mode must be one of {[m for m in TRAIN_MODES if m != 'none']}, "
                         f"got {mode!r}")

    def load(self, checkpoint: Any, mode: str, device: str) -> HandMeshEstimator:
        """The row's pipeline: monocular (left image only) for ``mode="monocular"``."""
        load_estimator = self._need("hand_mesh_core.pipeline", "load_estimator")
        return load_estimator(checkpoint, device, monocular=mode == "monocular")


def default_backend() -> ExperimentBackend:
    """The backend that trains for real: every row of both tables (see
    :class:`_DefaultBackend` for what each training mode runs)."""
    return _DefaultBackend()
