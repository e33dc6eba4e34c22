"""The demo: the ROS 2 stereo node on loopback DDS, fed a bundled stereo sequence.

    python -m hand_mesh_ros.demo [--frames 8] [--out demo_out]

1. keeps DDS on this machine (:mod:`hand_mesh_ros.loopback`);
2. starts the stereo node as a separate process (``python -m hand_mesh_ros.stereo_node``)
   with the shipped default model (or ``--model``), in namespace ``/hand_mesh_demo``;
3. replays ``--frames`` synthetic ``target_lab`` pairs rendered from a fixed seed, then the real
   STB pair bundled in ``demo_data/stb/`` (a LEFT hand), one pair in flight at a time; before
   each pair whose hand differs from the previous one it sets the node's ``handedness``
   parameter (the synthetic domain mixes left and right hands);
4. prints, per source, the rate (Hz, one pair in flight: pairs / (first publish -> last
   result)), the latency (median and p99 ms, publish -> result receipt) and the ABSOLUTE mean
   joint error (mm, left optical frame) against the ground truth;
5. writes into ``--out``: ``stb_overlay.png`` and ``synthetic_overlay.png`` (mesh + joints over
   the left image, ground truth dashed; the synthetic one shows the median-error pair),
   ``stb_mesh.ply`` (the recovered STB mesh, metres, left optical frame), ``summary.json`` and
   ``node.log`` (the node's output).

Exits non-zero with the reason when the node does not start or cannot load its model.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hand_mesh_core.config.base import ConfigBase, ConfigError, setting

__all__ = ["DemoConfig", "SourceStats", "FrameResult", "source_stats", "main", "NAMESPACE",
           "STB_NOTE"]

#: Namespace of the demo's node; its inputs are remapped under INPUT_PREFIX.
NAMESPACE = "/hand_mesh_demo"
INPUT_PREFIX = "/hand_mesh_demo_cam"
FRAME_ID = "demo_left_optical"
#: Repository root (demo_data/ lives there in a source checkout).
_REPO = Path(__file__).resolve().parents[1]
STB_NOTE = "one real frame: a smoke test, not a benchmark"
_MM_PER_M = 1000.0
_MS_PER_S = 1000.0
#: Percentile reported as the tail latency.
TAIL_PERCENTILE = 99.0
#: Stamp of the first replayed pair (any fixed time; each pair is 1/30 s later).
_T0_NS = 1_700_000_000 * 10**9
_FRAME_PERIOD_NS = 33_333_333


@dataclass(frozen=True)
class DemoConfig(ConfigBase):
    """Settings of the demo (one command-line option per field)."""

    frames: int = setting(8, "synthetic target_lab pairs to replay", ge=0, le=1000)
    seed: int = setting(0, "seed of the rendered synthetic sequence", ge=0)
    domain: str = setting("target_lab", "synthetic domain preset name or YAML path")
    out: str = setting("demo_out", "output folder (overlays, PLY, summary.json)")
    model: str = setting("", "checkpoint (.safetensors) for the node; empty: the shipped default")
    stb_dir: str = setting(str(_REPO / "demo_data" / "stb"), "STB root in the official layout "
                           "(empty: skip the real pair)")
    start_timeout_s: float = setting(60.0, "longest wait for the node to start and load its "
                                     "model", unit="s", gt=0.0)
    result_timeout_s: float = setting(10.0, "longest wait for one result; after it the pair "
                                      "counts as 'no hand'", unit="s", gt=0.0)
    min_confidence: float = setting(0.0, "the node's min_confidence (0: publish every hand "
                                    "found)", ge=0.0, le=1.0)


@dataclass(frozen=True)
class FrameResult:
    """One replayed pair.

    Attributes:
        source: "synthetic" or "stb".
        name: provenance, e.g. "synth/target_lab/3" or "stb/B1Counting/0".
        handedness: the hand in the pair ("left"/"right"), sent to the node.
        latency_s: first publish -> result receipt, s (nan when no result).
        published_s: monotonic time of the first publish, s.
        received_s: monotonic time of the result receipt, s (nan when no result).
        joint_error_mm: mean absolute joint error, mm, left optical frame (nan: no result).
        joints_m: (21, 3) recovered joints, m, or None.
        vertices_m: (V, 3) recovered vertices, m, or None.
    """

    source: str
    name: str
    handedness: str
    latency_s: float
    published_s: float
    received_s: float
    joint_error_mm: float
    joints_m: np.ndarray | None = field(default=None, repr=False)
    vertices_m: np.ndarray | None = field(default=None, repr=False)


@dataclass(frozen=True)
class SourceStats:
    """Statistics of one source (JSON-ready floats; nan when undefined).

    Attributes:
        frames: pairs sent.
        results: pairs that gave a hand.
        rate_hz: results / (first publish -> last result receipt), one pair in flight.
        latency_ms_median, latency_ms_p99: publish -> result receipt, ms.
        mean_joint_error_mm: mean over results of the per-pair mean joint error, mm.
        median_joint_error_mm: median of the same, mm.
        per_frame_error_mm: per result, mm.
    """

    frames: int
    results: int
    rate_hz: float
    latency_ms_median: float
    latency_ms_p99: float
    mean_joint_error_mm: float
    median_joint_error_mm: float
    per_frame_error_mm: tuple[float, ...]


def source_stats(frames: Sequence[FrameResult]) -> SourceStats:
    """Rate, latency and error statistics of the pairs of one source."""
    done = [f for f in frames if math.isfinite(f.received_s)]
    nan = float("nan")
    if not done:
        return SourceStats(len(frames), 0, nan, nan, nan, nan, nan, ())
    span = max(f.received_s for f in done) - min(f.published_s for f in frames)
    lat_ms = np.array([f.latency_s for f in done]) * _MS_PER_S
    err = np.array([f.joint_error_mm for f in done])
    return SourceStats(
        frames=len(frames), results=len(done),
        rate_hz=float(len(done) / span) if span > 0 else nan,
        latency_ms_median=float(np.median(lat_ms)),
        latency_ms_p99=float(np.percentile(lat_ms, TAIL_PERCENTILE)),
        mean_joint_error_mm=float(err.mean()), median_joint_error_mm=float(np.median(err)),
        per_frame_error_mm=tuple(round(float(e), 2) for e in err))


class DemoError(RuntimeError):
    """The demo cannot go on (the message says why)."""


def _synthetic_samples(cfg: DemoConfig) -> list[Any]:
    from hand_mesh_core.data.synth.config import load_domain
    from hand_mesh_core.data.synth.generator import SynthGenerator

    gen = SynthGenerator(load_domain(cfg.domain))
    return [gen.generate(i, cfg.seed).to_stereo_sample(source=f"synth/{cfg.domain}")
            for i in range(cfg.frames)]


def _stb_samples(cfg: DemoConfig) -> list[Any]:
    if not cfg.stb_dir:
        return []
    from hand_mesh_core.data.stb import StbDataset

    ds = StbDataset(cfg.stb_dir, sequences=("B1Counting",))
    if len(ds) == 0:
        raise DemoError(f"no STB stereo pair with labels under {cfg.stb_dir}")
    return [ds[i] for i in range(len(ds))]


class _Session:
    """The node process plus this process's ROS side (publisher, results, parameter client)."""

    def __init__(self, cfg: DemoConfig, log_path: Path) -> None:
        import rclpy
        from rcl_interfaces.srv import SetParameters
        from rclpy.executors import SingleThreadedExecutor

        from hand_mesh_ros.testing import (NodeProcess, ResultCollector, StereoPublisher,
                                           stereo_node_command)

        self.cfg = cfg
        self.ctx = rclpy.context.Context()
        rclpy.init(context=self.ctx)
        self.io = rclpy.create_node("hand_mesh_demo_io", context=self.ctx)
        self.ex = SingleThreadedExecutor(context=self.ctx)
        self.ex.add_node(self.io)
        self.pub = StereoPublisher(self.io, namespace=INPUT_PREFIX)
        self.res = ResultCollector(self.io, NAMESPACE)
        self.params = self.io.create_client(SetParameters,
                                            f"{NAMESPACE}/hand_mesh/set_parameters")
        self.handedness = "right"
        # The demo's frames are unrelated stills (different scenes, then the STB pair), not a
        # video: tracking the last hand across them would carry a wrong prior, so every pair
        # gets the full hand search, as the first frame of a real stream does.
        cmd = stereo_node_command(NAMESPACE, INPUT_PREFIX, {
            "model_path": cfg.model, "image_qos": "reliable", "handedness": self.handedness,
            "min_confidence": cfg.min_confidence, "track_roi": False})
        self.proc = NodeProcess(cmd, log_path=str(log_path))

    def wait_ready(self) -> None:
        from hand_mesh_ros.testing import spin_until

        def ready() -> bool:
            d = self.res.last_diagnostic() or {}
            return (not self.proc.alive() or d.get("level") == "2"
                    or (d.get("model_loaded") == "true" and self.pub.wait_for_subscribers(0.0)
                        and self.params.service_is_ready()))
        ok = spin_until(self.ex, ready, self.cfg.start_timeout_s)
        d = self.res.last_diagnostic() or {}
        if not self.proc.alive():
            raise DemoError(f"the stereo node exited (code {self.proc.proc.returncode}) during "
                            f"start-up; its log ({self.proc.log_path}):\n{self.proc.output()}")
        if d.get("level") == "2":
            raise DemoError(f"the stereo node cannot run: {d.get('message')}")
        if not ok:
            raise DemoError(f"the stereo node did not start within {self.cfg.start_timeout_s} s"
                            f"; its log ({self.proc.log_path}):\n{self.proc.output()}")

    def set_handedness(self, hand: str) -> None:
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter

        from hand_mesh_ros.testing import spin_until

        if hand == self.handedness:
            return
        req = SetParameters.Request(parameters=[Parameter("handedness",
                                                          value=hand).to_parameter_msg()])
        fut = self.params.call_async(req)
        if not spin_until(self.ex, fut.done, self.cfg.start_timeout_s):
            raise DemoError("the stereo node did not answer a parameter change")
        result = fut.result().results[0]
        if not result.successful:
            raise DemoError(f"the stereo node refused handedness={hand}: {result.reason}")
        self.handedness = hand

    def run_pair(self, source: str, sample: Any, index: int) -> FrameResult:
        from hand_mesh_ros.common import stamp_ns
        from hand_mesh_ros.testing import publish_until, stamp_msg, stereo_messages

        self.set_handedness(sample.handedness)
        stamp = stamp_msg(_T0_NS + index * _FRAME_PERIOD_NS)
        key = stamp_ns(stamp)
        msgs = stereo_messages(sample.left, sample.right, sample.camera, stamp, FRAME_ID)
        t0 = time.monotonic()
        got = publish_until(self.ex, self.pub, msgs,
                            lambda: key in self.res.joints and key in self.res.points,
                            self.cfg.result_timeout_s)
        nan = float("nan")
        if not got:
            return FrameResult(source, sample.source, sample.handedness, nan, t0, nan, nan)
        t_recv, joints = self.res.joints[key]
        verts = self.res.points[key][1]
        err = nan
        if sample.joints_m is not None:
            err = float(np.linalg.norm(joints - sample.joints_m, axis=1).mean() * _MM_PER_M)
        return FrameResult(source, sample.source, sample.handedness, t_recv - t0, t0, t_recv,
                           err, joints, verts)

    def close(self) -> int:
        code = self.proc.stop()
        self.ex.shutdown()
        self.io.destroy_node()
        if self.ctx.ok():
            import rclpy

            rclpy.shutdown(context=self.ctx)
        return code


def _write_outputs(out: Path, synth: list[tuple[Any, FrameResult]],
                   stb: list[tuple[Any, FrameResult]]) -> dict[str, str]:
    """Overlays (PNG) and the STB mesh (PLY); returns {what: path}."""
    from hand_mesh_core.eval.plots import OverlayPanel, plot_mesh_overlays
    from hand_mesh_core.hand.model import HandModel

    hand = HandModel.procedural()
    written: dict[str, str] = {}
    for key, pairs, title in (("synthetic_overlay", synth, "synthetic: the median-error pair"),
                              ("stb_overlay", stb, "STB real pair (smoke test)")):
        done = [(s, r) for s, r in pairs if r.vertices_m is not None]
        if not done:
            continue
        # the pair with the median error: representative, neither the best nor the worst
        done.sort(key=lambda sr: sr[1].joint_error_mm)
        s, r = done[(len(done) - 1) // 2]
        faces = hand.faces_for(s.handedness).cpu().numpy()
        panel = OverlayPanel(f"{r.name} ({s.handedness} hand)", r.vertices_m, r.joints_m)
        written[key] = str(plot_mesh_overlays(s.left, [panel], faces, s.camera,
                                              out / f"{key}.png", gt_joints_m=s.joints_m,
                                              title=title))
        if key == "stb_overlay":
            import open3d as o3d

            mesh = o3d.geometry.TriangleMesh(
                o3d.utility.Vector3dVector(np.asarray(r.vertices_m, dtype=np.float64)),
                o3d.utility.Vector3iVector(np.asarray(faces, dtype=np.int32)))
            mesh.compute_vertex_normals()
            ply = out / "stb_mesh.ply"
            if not o3d.io.write_triangle_mesh(str(ply), mesh):
                raise DemoError(f"open3d could not write {ply}")
            written["stb_mesh"] = str(ply)
    return written


def _fmt(x: float, spec: str = ".1f") -> str:
    return "n/a" if not math.isfinite(x) else format(x, spec)


def _print_stats(name: str, st: SourceStats, note: str = "") -> None:
    print(f"{name:10s} {st.results}/{st.frames} pairs  rate {_fmt(st.rate_hz, '.2f')} Hz  "
          f"latency median {_fmt(st.latency_ms_median)} ms, p99 {_fmt(st.latency_ms_p99)} ms  "
          f"joint error mean {_fmt(st.mean_joint_error_mm)} / median "
          f"{_fmt(st.median_joint_error_mm)} mm (absolute, left optical frame)"
          + (f"  [{note}]" if note else ""))


def run_demo(cfg: DemoConfig) -> dict[str, Any]:
    """Run the demo; returns the summary (also written to ``<out>/summary.json``).

    Raises:
        DemoError: the node did not start, refused its model, or data is missing.
    """
    from hand_mesh_ros.loopback import configure_loopback_env

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    configure_loopback_env()
    t_start = time.monotonic()
    session = _Session(cfg, out / "node.log")  # the node starts while the frames render
    code = None
    try:
        synth_samples = _synthetic_samples(cfg)
        stb_samples = _stb_samples(cfg)
        session.wait_ready()
        t_ready = time.monotonic()
        synth = [(s, session.run_pair("synthetic", s, i)) for i, s in enumerate(synth_samples)]
        stb = [(s, session.run_pair("stb", s, len(synth) + i))
               for i, s in enumerate(stb_samples)]
        diag = session.res.last_diagnostic() or {}
    finally:
        code = session.close()
    stats = {"synthetic": source_stats([r for _, r in synth]),
             "stb": source_stats([r for _, r in stb])}
    written = _write_outputs(out, synth, stb)
    summary = {
        "model": cfg.model or "<shipped default>",
        "node_namespace": NAMESPACE,
        "node_start_s": round(t_ready - t_start, 2),
        "node_exit_code": code,
        "node_model_input_size_px": diag.get("model_input_size_px", ""),
        "config": cfg.to_dict(),
        "rate_definition": "results / (first publish -> last result receipt), one pair in "
                           "flight",
        "latency_definition": "publish -> result receipt (joints and points), ms",
        "error_definition": "mean absolute joint error, mm, left optical frame; STB joint 0 "
                            "is an estimated wrist",
        "sources": {k: {**v.__dict__, "per_frame_error_mm": list(v.per_frame_error_mm)}
                    for k, v in stats.items()},
        "stb_note": STB_NOTE,
        "frames": [{k: v for k, v in r.__dict__.items() if k not in ("joints_m", "vertices_m")}
                   for _, r in synth + stb],
        "outputs": written,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float,
                                                 allow_nan=True) + "\n")
    _print_stats("synthetic", stats["synthetic"])
    if stb:
        _print_stats("STB", stats["stb"], STB_NOTE)
    for k, v in written.items():
        print(f"wrote {k}: {v}")
    print(f"wrote summary: {out / 'summary.json'}")
    return summary


def build_parser() -> argparse.ArgumentParser:
    """The demo's command line: one option per :class:`DemoConfig` field."""
    p = argparse.ArgumentParser(prog="python -m hand_mesh_ros.demo",
                                description=__doc__.split("\n\n")[0])
    defaults = DemoConfig()
    for name, meta in DemoConfig.describe().items():
        value = getattr(defaults, name)
        unit = f" [{meta['unit']}]" if meta.get("unit") else ""
        p.add_argument(f"--{name.replace('_', '-')}", dest=name, type=type(value),
                       default=value, help=f"{meta['doc']}{unit} (default: {value!r})")
    return p


def main(args: Sequence[str] | None = None) -> int:
    """Entry point (``python -m hand_mesh_ros.demo``). Returns the exit code: 0 on success,
    1 when the demo could not run (the reason is printed), 2 for bad options."""
    ns = build_parser().parse_args(args)
    try:
        cfg = DemoConfig.from_dict(vars(ns))
    except ConfigError as exc:
        print(f"hand_mesh demo: {exc}", file=sys.stderr)
        return 2
    try:
        summary = run_demo(cfg)
    except (DemoError, FileNotFoundError) as exc:
        print(f"hand_mesh demo failed: {exc}", file=sys.stderr)
        return 1
    return 0 if summary["sources"]["synthetic"]["results"] or not cfg.frames else 1


if __name__ == "__main__":
    raise SystemExit(main())
