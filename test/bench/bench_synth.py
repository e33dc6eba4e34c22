"""Benchmark: synthetic stereo generator throughput at the domains' camera size (640x480).

Single process, set up as ``hand-mesh synth`` sets up its processes (one thread,
``tune_malloc``): ms per pair of ``SynthGenerator.generate`` (render only) and of render + write
(2 JPEG images as the sensor made them + 5 PNGs), wall-clock and CPU time, after one warm-up
pair, per domain. Then ``write_dataset`` with ``--workers 1`` and ``2`` (pairs/s overall and
after the first pair). Prints one JSON object. Not a unit test: timings depend on the machine
and its load.

    python test/bench/bench_synth.py --count 20 --workers-count 40
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.append(str(REPO))


def _single(domain_name: str, count: int, seed: int, out: Path) -> dict:
    from hand_mesh_core.data.synth.config import load_domain
    from hand_mesh_core.data.synth.generator import SynthGenerator
    from hand_mesh_core.data.synth.writer import write_sample_files

    gen = SynthGenerator(load_domain(domain_name), nthreads=1)
    for sub in ("images/left", "images/right", "masks/left", "masks/right", "depth/left",
                "depth/right", "disparity/left"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    gen.generate(0, seed)  # warm-up
    render_wall = render_cpu = write_wall = write_cpu = 0.0
    for i in range(1, count + 1):
        w0, c0 = time.perf_counter(), time.process_time()
        sample = gen.generate(i, seed)
        w1, c1 = time.perf_counter(), time.process_time()
        write_sample_files(out, sample)
        render_wall += w1 - w0
        render_cpu += c1 - c0
        write_wall += time.perf_counter() - w1
        write_cpu += time.process_time() - c1
    ms = 1000.0 / count
    return {"render_ms_per_pair": round(render_wall * ms, 1),
            "render_cpu_ms_per_pair": round(render_cpu * ms, 1),
            "write_ms_per_pair": round(write_wall * ms, 1),
            "write_cpu_ms_per_pair": round(write_cpu * ms, 1),
            "total_ms_per_pair": round((render_wall + write_wall) * ms, 1),
            "total_cpu_ms_per_pair": round((render_cpu + write_cpu) * ms, 1)}


def _workers(domain_name: str, count: int, workers: int, seed: int, out: Path) -> dict:
    from hand_mesh_core.data.synth.config import load_domain
    from hand_mesh_core.data.synth.writer import write_dataset

    res = write_dataset(out, load_domain(domain_name), count, seed=seed, workers=workers,
                        progress=False)
    return {"pairs_per_s": round(res.pairs_per_s, 2),
            "steady_pairs_per_s": round(res.steady_pairs_per_s, 2),
            "seconds": round(res.seconds, 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=20, help="pairs per domain, single process")
    ap.add_argument("--workers-count", type=int, default=40,
                    help="pairs per write_dataset run (0 = skip the worker runs)")
    ap.add_argument("--domains", nargs="+", default=["source_studio", "target_lab"])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    import cv2
    import torch

    import hand_mesh_core
    from hand_mesh_core.data.synth.writer import tune_malloc

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    report: dict = {"package": str(Path(hand_mesh_core.__file__).parent),
                    "cpus": os.cpu_count(), "load_avg_start": os.getloadavg(),
                    "malloc_tuned": tune_malloc(),
                    "single_process": {}, "write_dataset": {}}
    tmp = Path(tempfile.mkdtemp(prefix="bench_synth_"))
    try:
        for name in a.domains:
            report["single_process"][name] = _single(name, a.count, a.seed, tmp / name)
        if a.workers_count > 0:
            for name in a.domains:
                for w in a.workers:
                    report["write_dataset"][f"{name}/workers={w}"] = _workers(
                        name, a.workers_count, w, a.seed, tmp / f"{name}_w{w}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report["load_avg_end"] = os.getloadavg()
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
