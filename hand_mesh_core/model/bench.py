"""Inference timing of the hand mesh network: ``python -m hand_mesh_core.model.bench`` (JSON).

Times one stereo pair (batch 1, both branches in one backbone call) at the default input size
with the default hand model topology, for the stereo and z-head variants, with 1 and 2 torch
threads, on CPU (and CUDA when available).
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from hand_mesh_core.geometry.camera import StereoCamera
from hand_mesh_core.geometry.crop import CropTransform, StereoCrop
from hand_mesh_core.model.config import NetworkConfig
from hand_mesh_core.model.decode import CropBatch
from hand_mesh_core.model.network import HandMeshNet
from hand_mesh_core.model.topology import HandTopology

__all__ = ["time_forward", "main"]

#: Example crop: a 200 px window around the STB image centre, right window 150 px to the left
#: (about the STB hands' disparity).
_WINDOW_PX, _SHIFT_PX = 200.0, 150.0


def time_forward(net: HandMeshNet, device: torch.device, repeats: int, warmup: int
                 ) -> dict[str, float]:
    """Median and 90th-percentile ms of one binocular forward pass (batch 1)."""
    cam = StereoCamera()
    s = net.config.input_size
    crops = CropBatch.from_crops([StereoCrop(CropTransform.square(
        cam.cx, cam.cy, _WINDOW_PX, s), _SHIFT_PX)], device=device)
    g = torch.Generator().manual_seed(0)
    left = torch.randint(0, 256, (1, 3, s, s), generator=g, dtype=torch.uint8).to(device)
    right = torch.randint(0, 256, (1, 3, s, s), generator=g, dtype=torch.uint8).to(device)
    K = cam.K_tensor(device=device)
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            net(left, right, crops, K, cam.baseline_m)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i >= warmup:
                times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    return {"median_ms": round(times[len(times) // 2], 3),
            "p90_ms": round(times[int(0.9 * (len(times) - 1))], 3)}


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark and print JSON."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=50, help="timed passes (count)")
    p.add_argument("--warmup", type=int, default=5, help="untimed passes first (count)")
    args = p.parse_args(argv)
    topo = HandTopology.default()
    out: dict = {"num_vertices": topo.num_vertices, "input_size": NetworkConfig().input_size}
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available()
                                       else [])
    for dev in devices:
        for mode in ("stereo", "mono"):
            net = HandMeshNet(NetworkConfig(depth_mode=mode), topo).to(dev).eval()
            out.setdefault("parameters", {})[mode] = sum(p.numel() for p in net.parameters())
            for threads in ((1, 2) if dev.type == "cpu" else (torch.get_num_threads(),)):
                torch.set_num_threads(threads)
                key = f"{dev.type}_{mode}" + (f"_threads{threads}" if dev.type == "cpu" else "")
                out[key] = time_forward(net, dev, args.repeats, args.warmup)
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":  # pragma: no cover
    main()
