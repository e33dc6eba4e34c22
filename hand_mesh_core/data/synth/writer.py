"""Write a synthetic data set to disk (layout in ``docs/data.md``), in parallel processes.

Layout of ``<out>``::

    images/{left,right}/<i:06d>.jpg     RGB uint8: the camera's JPEG file (``.png`` for samples
                                        whose sensor does not compress; ``image_ext`` label)
    masks/{left,right}/<i:06d>.png      uint8 labels: 255 hand, 128 forearm, 0 background
    depth/{left,right}/<i:06d>.png      uint16, depth_m * DEPTH_PNG_SCALE (0 = none)
    disparity/left/<i:06d>.png          uint16, disparity_px * DISPARITY_PNG_SCALE (0 = none)
    labels_train.npz, labels_test.npz   labels of each split (np.load, allow_pickle=False)
    metadata.json                       domain config, generator version, seed, counts

Split: sample ``i`` of ``count`` is in "test" iff ``i >= count - round(count * test_fraction)``
(the last samples), else "train". Every sample is seeded from ``(seed, i)``, so the output does
not depend on the number of workers.
"""
from __future__ import annotations

import ctypes
import json
import multiprocessing as mp
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import cv2
import numpy as np

from hand_mesh_core.data.synth.config import DomainConfig
from hand_mesh_core.data.synth.generator import GENERATOR_VERSION, SynthGenerator, SynthSample

__all__ = ["DEPTH_PNG_SCALE", "DISPARITY_PNG_SCALE", "SPLITS", "LABEL_KEYS", "IMAGE_EXTS",
           "WriteResult", "split_of", "split_counts", "image_ext", "write_sample_files",
           "write_dataset", "tune_malloc"]

#: Depth PNG units per metre (0.1 mm steps; uint16 holds up to 6.5535 m, farther -> 0).
DEPTH_PNG_SCALE = 10000.0
#: Disparity PNG units per pixel (1/64 px steps; up to 1023.98 px).
DISPARITY_PNG_SCALE = 64.0
#: Largest uint16 value.
UINT16_MAX = 65535
#: Extensions of the RGB image files: lossless PNG, or the sensor's own JPEG file (written as
#: it is: no second encoding, ~10x smaller, and it decodes to exactly the rendered pixels).
IMAGE_EXTS = (".png", ".jpg")
#: The splits, in file order.
SPLITS = ("train", "test")
#: PNG compression level (0-9): 1 is ~3x faster than the default and ~10 % larger.
PNG_COMPRESSION = 1
#: PNG filter option (OpenCV < 4.11 has none and uses its default filter).
_FILTER = getattr(cv2, "IMWRITE_PNG_FILTER", None)


#: PNG compression level of the label masks: flat runs, run-length coded (level 2).
MASK_PNG_COMPRESSION = 2


def _png_params(filt: str, strategy: str = "", level: int = PNG_COMPRESSION
                ) -> tuple[int, ...]:
    params = [cv2.IMWRITE_PNG_COMPRESSION, level]
    if _FILTER is not None:
        params += [_FILTER, getattr(cv2, f"IMWRITE_PNG_FILTER_{filt}")]
    if strategy:
        params += [cv2.IMWRITE_PNG_STRATEGY, getattr(cv2, f"IMWRITE_PNG_STRATEGY_{strategy}")]
    return tuple(params)


#: PNG encoder settings per kind of image, measured on 640x480 target_lab samples (shared
#: 2-core machine): noisy RGB images compress about as well with the "sub" filter and Huffman
#: coding only (680 vs 634 KiB) in 1/4 of the time (8 vs 34 ms); label images are mostly flat
#: runs: no filter and run-length coding (0.42 ms, 1 KiB; "sub" filter and default coding:
#: 0.55 ms, 5 KiB); depth is smooth along columns ("up" filter: 3.5 vs 12 ms, same size),
#: disparity along rows ("sub": 2 vs 5 ms). All lossless.
PNG_PARAMS = {"rgb": _png_params("SUB", "HUFFMAN_ONLY"),
              "mask": _png_params("NONE", "RLE", MASK_PNG_COMPRESSION),
              "depth": _png_params("UP"), "disparity": _png_params("SUB")}
#: Per-sample arrays stored in ``labels_<split>.npz`` (plus ``faces_left``/``faces_right``).
LABEL_KEYS = ("index", "joints_m", "vertices_m", "handedness", "fx", "fy", "cx", "cy",
              "baseline_m", "width", "height", "pose", "shape", "global_orient", "transl",
              "pose_family", "background", "forearm", "image_ext")


def split_of(index: int, count: int, test_fraction: float) -> str:
    """"train" or "test" for sample ``index`` of ``count`` (the last ones are test)."""
    n_test = round(count * test_fraction)
    return "test" if index >= count - n_test else "train"


def split_counts(count: int, test_fraction: float) -> dict[str, int]:
    """Number of samples per split."""
    n_test = round(count * test_fraction)
    return {"train": count - n_test, "test": n_test}


def _png(path: Path, image: np.ndarray, kind: str) -> None:
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), image, list(PNG_PARAMS[kind])):
        raise ValueError(f"could not write {path}")


def _to_uint16(values: np.ndarray, scale: float) -> np.ndarray:
    """``round(values * scale)`` (in float64) as uint16; 0 where out of range or not finite."""
    q = np.multiply(values, scale, dtype=np.float64)
    np.round(q, out=q)
    ok = q >= 0
    ok &= q <= UINT16_MAX  # NaN compares False: -> 0 too
    np.copyto(q, 0.0, where=~ok)
    return q.astype(np.uint16)


def image_ext(sample: SynthSample) -> str:
    """Extension of the image files of ``sample``: ".jpg" if the sensor made JPEGs, else
    ".png"."""
    return IMAGE_EXTS[1] if sample.left_jpeg is not None and sample.right_jpeg is not None \
        else IMAGE_EXTS[0]


def write_sample_files(out: Path, sample: SynthSample) -> None:
    """Write the images, masks, depth and disparity files of one sample under ``out``.

    The RGB images are the sensor's JPEG files when it made them (see :func:`image_ext`),
    else PNGs; a file of the same sample with the other extension is removed.
    """
    name = f"{sample.index:06d}"
    ext = image_ext(sample)
    for view, jpeg, mask, depth in (
            ("left", sample.left_jpeg, sample.mask_left, sample.depth_left),
            ("right", sample.right_jpeg, sample.mask_right, sample.depth_right)):
        folder = out / "images" / view
        if ext == IMAGE_EXTS[1]:
            (folder / (name + ext)).write_bytes(jpeg)
        else:  # the pixels are only decoded here, when there is no JPEG file to store
            _png(folder / (name + ext), getattr(sample, view), "rgb")
        for other in IMAGE_EXTS:
            if other != ext:
                (folder / (name + other)).unlink(missing_ok=True)
        _png(out / "masks" / view / f"{name}.png", mask, "mask")
        _png(out / "depth" / view / f"{name}.png", _to_uint16(depth, DEPTH_PNG_SCALE), "depth")
    _png(out / "disparity" / "left" / f"{name}.png",
         _to_uint16(sample.disparity_left, DISPARITY_PNG_SCALE), "disparity")


def _labels(sample: SynthSample) -> dict[str, Any]:
    cam = sample.camera
    return {"index": sample.index, "joints_m": sample.joints_m, "vertices_m": sample.vertices_m,
            "handedness": sample.handedness, "fx": cam.fx, "fy": cam.fy, "cx": cam.cx,
            "cy": cam.cy, "baseline_m": cam.baseline_m, "width": cam.width,
            "height": cam.height, "pose": sample.pose, "shape": sample.shape,
            "global_orient": sample.global_orient, "transl": sample.transl,
            "pose_family": sample.info.get("pose_family", ""),
            "background": sample.info.get("background", ""),
            "forearm": bool(sample.info.get("forearm", False)), "image_ext": image_ext(sample)}


# ---------------------------------------------------------------- memory allocator
#: glibc ``mallopt`` parameters (``<malloc.h>``).
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
#: A sample allocates and frees dozens of (H, W, 3) float32/float64 arrays (3.7 / 7.4 MB at
#: 640x480). glibc serves blocks above its mmap threshold (dynamic, 128 KiB to 32 MiB) with
#: fresh pages that the kernel must zero and map on first touch; keeping them in the heap
#: instead saves ~3 ms of system time per target_lab pair. 32 MiB is glibc's largest
#: threshold on 64-bit systems.
MALLOC_MMAP_THRESHOLD_BYTES = 32 << 20
#: Free memory at the top of the heap kept (not returned to the system), and the extra
#: memory requested when the heap grows.
MALLOC_TRIM_THRESHOLD_BYTES = 128 << 20
MALLOC_TOP_PAD_BYTES = 64 << 20


def tune_malloc() -> bool:
    """Make glibc's allocator keep large freed blocks for reuse (see
    ``MALLOC_MMAP_THRESHOLD_BYTES``): for processes that render many samples (the writer's
    workers, ``hand-mesh synth``). Process-wide; no effect on any result.

    Returns:
        True if glibc accepted the settings; False where there is no glibc ``mallopt``
        (nothing changes).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (macOS, Windows)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    results = [mallopt(param, value) for param, value in (
        (_M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD_BYTES),
        (_M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD_BYTES),
        (_M_TOP_PAD, MALLOC_TOP_PAD_BYTES))]
    return all(r == 1 for r in results)


# ---------------------------------------------------------------- worker processes
_WORKER: dict[str, Any] = {}
#: Work sharing: workers (and, while they start, the parent) claim sample indices from a
#: shared counter, "guided": a claim takes 1 / (CHUNKS_PER_WORKER * workers) of what is left,
#: at most MAX_CHUNK samples (fewer round trips early, a balanced finish, a moving progress
#: bar). Each worker writes its own files and returns only the small label rows.
CHUNKS_PER_WORKER = 2
MAX_CHUNK = 8


def _pool_context() -> Any:
    """Multiprocessing context of the workers: "forkserver" where available, with this module
    preloaded in the server, so each worker forks with torch, open3d and cv2 already imported
    (start-up in milliseconds instead of seconds) from a process that has never run threaded
    work (plain "fork" of a parent that has used OpenCV's or torch's thread pools can
    deadlock); else "spawn"."""
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload([__name__])
        return ctx
    return mp.get_context("spawn")


def _claim(counter: Any, count: int, workers: int, most: int = MAX_CHUNK) -> range:
    """Claim the next indices (a guided chunk, at most ``most``) from the shared counter."""
    with counter.get_lock():
        start = counter.value
        size = max(1, min(most, (count - start) // (CHUNKS_PER_WORKER * workers)))
        stop = min(count, start + size)
        counter.value = stop
    return range(start, stop)


def _init_worker(domain_dict: dict, out: str, seed: int, count: int, workers: int,
                 counter: Any, ready: Any) -> None:
    import torch

    # one process per core: no intra-op threads in torch or OpenCV
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    tune_malloc()
    _WORKER.update(gen=SynthGenerator(DomainConfig.from_dict(domain_dict), nthreads=1),
                   out=Path(out), seed=seed, count=count, workers=workers, counter=counter)
    with ready.get_lock():
        ready.value += 1


def _work(_token: int) -> list[dict[str, Any]]:
    """Render and write the next claimed chunk; its label rows (empty when all are claimed)."""
    w = _WORKER
    rows = []
    for index in _claim(w["counter"], w["count"], w["workers"]):
        sample = w["gen"].generate(index, w["seed"])
        write_sample_files(w["out"], sample)
        rows.append(_labels(sample))
    return rows


@dataclass(frozen=True)
class WriteResult:
    """What :func:`write_dataset` wrote.

    Attributes:
        out: the data set folder.
        counts: samples per split.
        seconds: wall-clock time of rendering and writing.
        pairs_per_s: stereo pairs per second, including worker start-up.
        steady_pairs_per_s: pairs per second after the first pair was done (start-up of the
            hand model and the workers excluded; 0 when count == 1).
    """

    out: Path
    counts: dict
    seconds: float
    pairs_per_s: float
    steady_pairs_per_s: float = 0.0


def _stack(rows: list[dict[str, Any]], faces: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for key in LABEL_KEYS:
        values = [r[key] for r in rows]
        if key in ("handedness", "pose_family", "background", "image_ext"):
            out[key] = np.asarray(values, dtype=str)
        elif key in ("index", "width", "height"):
            out[key] = np.asarray(values, np.int64)
        elif key == "forearm":
            out[key] = np.asarray(values, bool)
        elif key in ("fx", "fy", "cx", "cy", "baseline_m"):
            out[key] = np.asarray(values, np.float64)
        else:
            out[key] = np.asarray(values, np.float32)
    for h, f in faces.items():
        out[f"faces_{h}"] = np.asarray(f, np.int64)
    return out


def write_dataset(out: str | Path, domain: DomainConfig, count: int, seed: int = 0,
                  workers: int = 1, test_fraction: float = 0.2, progress: bool = True,
                  generator: SynthGenerator | None = None,
                  on_sample: Callable[[SynthSample], None] | None = None,
                  render_during_startup: bool = True) -> WriteResult:
    """Render ``count`` samples of ``domain`` and write them under ``out``.

    Args:
        out: output folder (created; existing files with the same names are overwritten).
        domain: the domain preset.
        count: number of stereo pairs, > 0.
        seed: run seed, >= 0.
        workers: processes (1 = in this process). Results do not depend on it.
        test_fraction: fraction of samples in the test split, in [0, 1).
        progress: show a tqdm progress bar.
        generator: generator to use in this process (default: a new one for ``domain``).
        on_sample: called with each sample (``workers == 1`` only), e.g. to collect previews.
        render_during_startup: with ``workers > 1``, render samples in this process until the
            workers have started (uses the core the fork server's imports leave idle).

    Raises:
        ValueError: bad count, seed, workers or test_fraction.
        TypeError: ``domain`` is not a DomainConfig.
    """
    if not isinstance(domain, DomainConfig):
        raise TypeError(f"domain must be a DomainConfig, got {type(domain).__name__}")
    if not isinstance(count, int) or count <= 0:
        raise ValueError(f"count must be an int > 0, got {count!r}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int >= 1, got {workers!r}")
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    if on_sample is not None and workers != 1:
        raise ValueError("on_sample needs workers == 1")
    out = Path(out)
    for sub in ("images/left", "images/right", "masks/left", "masks/right", "depth/left",
                "depth/right", "disparity/left"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    first: float | None = None
    from tqdm import tqdm

    bar = tqdm(total=count, desc=f"synth {domain.name}", unit="pair", disable=not progress)
    if workers == 1:
        gen = generator if generator is not None else SynthGenerator(domain)
        for index in range(count):
            sample = gen.generate(index, seed)
            write_sample_files(out, sample)
            rows.append(_labels(sample))
            first = first if first is not None else time.perf_counter()
            if on_sample is not None:
                on_sample(sample)
            bar.update()
        rig = gen.rig
    else:
        ctx = _pool_context()
        counter = ctx.Value("q", 0)  # next unclaimed index
        ready = ctx.Value("i", 0)  # workers that have started
        with ctx.Pool(workers, initializer=_init_worker,
                      initargs=(domain.to_dict(), str(out), seed, count, workers, counter,
                                ready)) as pool:
            # one token per sample at most: each claims >= 1 index or finds none left
            it: Iterator[list[dict[str, Any]]] = pool.imap_unordered(_work, range(count))
            gen = generator
            # The workers' start-up (importing torch and open3d in the fork server) takes
            # seconds of one core: render here meanwhile, one sample at a time.
            while render_during_startup and ready.value < workers:
                claimed = _claim(counter, count, workers, most=1)
                if not claimed:
                    break
                if gen is None:
                    gen = SynthGenerator(domain, nthreads=1)
                sample = gen.generate(claimed[0], seed)
                write_sample_files(out, sample)
                rows.append(_labels(sample))
                first = first if first is not None else time.perf_counter()
                bar.update()
            for part in it:
                rows.extend(part)
                if part:
                    first = first if first is not None else time.perf_counter()
                bar.update(len(part))
        rig = gen.rig if gen is not None else None
        if rig is None:
            from hand_mesh_core.data.synth.generator import HandRig
            rig = HandRig()
    bar.close()
    end = time.perf_counter()
    seconds = end - start
    steady = (count - 1) / (end - first) if count > 1 and first is not None and end > first \
        else 0.0
    rows.sort(key=lambda r: r["index"])
    faces = {h: rig.faces(h) for h in ("left", "right")}
    counts = split_counts(count, test_fraction)
    for split in SPLITS:
        part = [r for r in rows if split_of(r["index"], count, test_fraction) == split]
        if part:
            np.savez(out / f"labels_{split}.npz", **_stack(part, faces))
    meta = {
        "generator_version": GENERATOR_VERSION,
        "domain": domain.to_dict(),
        "seed": seed,
        "count": count,
        "test_fraction": test_fraction,
        "counts": counts,
        "depth_png_scale": DEPTH_PNG_SCALE,
        "disparity_png_scale": DISPARITY_PNG_SCALE,
        "mask_values": {"hand": 255, "forearm": 128, "background": 0},
        "seconds": round(seconds, 3),
        "workers": workers,
    }
    (out / "metadata.json").write_text(json.dumps(meta, indent=2))
    return WriteResult(out=out, counts=counts, seconds=seconds, pairs_per_s=count / seconds,
                       steady_pairs_per_s=steady)
