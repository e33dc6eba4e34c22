"""Forward-time benchmark of the hand model: ``python -m hand_mesh_core.hand.bench``.

Prints one JSON object: per batch size the median wall time of ``HandModel.forward`` (no
autograd) in ms per call and per hand, plus V, F and the torch thread count.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from hand_mesh_core.hand.model import HandModel
from hand_mesh_core.hand.poses import sample_pose

__all__ = ["benchmark", "main"]


def benchmark(batch_sizes: tuple[int, ...] = (1, 64), repeats: int = 50, warmup: int = 5,
              seed: int = 0) -> dict:
    """Time the forward pass.

    Returns:
        {"vertices", "faces", "threads", "results": [{"batch", "ms_per_call",
        "ms_per_hand"}]}.
    """
    model = HandModel.procedural()
    gen = torch.Generator().manual_seed(seed)
    results = []
    for b in batch_sizes:
        pose = sample_pose(gen, b)
        orient = 0.3 * torch.randn(b, 3, generator=gen)
        transl = torch.randn(b, 3, generator=gen)
        times = []
        with torch.no_grad():
            for i in range(warmup + repeats):
                t0 = time.perf_counter()
                model(pose=pose, global_orient=orient, transl=transl)
                if i >= warmup:
                    times.append(time.perf_counter() - t0)
        ms = 1e3 * statistics.median(times)
        results.append({"batch": b, "ms_per_call": round(ms, 4), "ms_per_hand": round(ms / b, 4)})
    return {"vertices": model.num_vertices, "faces": model.num_faces,
            "threads": torch.get_num_threads(), "results": results}


def main(argv: list[str] | None = None) -> None:
    """CLI entry: ``--batch 1 64 --repeats 50 --threads 1``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 64], help="batch sizes")
    parser.add_argument("--repeats", type=int, default=50, help="timed calls per batch size")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(json.dumps(benchmark(tuple(args.batch), args.repeats)))


if __name__ == "__main__":
    main()
