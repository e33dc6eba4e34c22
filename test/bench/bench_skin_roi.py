"""Benchmark: skin-mask IoU, hand-pixel recall and hand-ROI hit rate on synthetic domains.

For ``N`` samples of each domain (``SynthGenerator(load_domain(name)).generate(i, seed)``):

* skin-mask IoU against the rendered hand mask (label 255), for the fixed colour box and the
  adaptive model (the bare forearm, label 128, counts as false positive: it is skin but not the
  hand, which is what the ROI must isolate);
* hand-pixel recall of the box mask;
* ROI hit: the left window of :func:`find_hand_roi` holds >= 90% of the projected joints;
* IoU of the box-mask pixels inside the chosen candidate's box with the hand mask;
* window tightness: the ROI window's side over the labelled hand's window side (the training
  crop, ``gt_stereo_crop`` with the same margin; 1 = as tight as the network was trained on);
* disparity error: the ROI disparity minus the labelled hand's median vertex disparity (what
  the training crops shift the right window by), px; its median, mean and the count of gross
  errors (above ``GROSS_DISPARITY_ERR_PX``).

The ROI runs twice on the same images: "current" (the given RoiConfig) and "previous" (the
same with dense_stereo, refine_skin, split_forearm and check_disparity off: the previous
method), so the two are compared on identical renders even while the generator changes.
``--no-arm-cut`` and ``--no-disparity-check`` add the current method without one feature.

Prints one JSON object. On a shared 2-core machine N=30 takes about a minute per domain.

    python test/bench/bench_skin_roi.py --n 30 --seed 7 --domains target_lab source_studio
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

#: An ROI "hits" when it holds at least this fraction of the projected joints.
HIT_JOINT_FRAC = 0.9
#: Output side of the label crop compared with the ROI (any value: only the crop's window side
#: and right-window shift are read, and neither depends on it).
LABEL_CROP_PX = 128
#: A disparity error above this is gross: a wrong blob or a wrong mask match, not noise (the
#: mask match's median error is 2-2.5 px on target_lab; 15 px is ~10 % of the depth at 0.7 m).
GROSS_DISPARITY_ERR_PX = 15.0


def _in_box(uv: np.ndarray, box) -> np.ndarray:
    x0, y0, w, h = box
    return (uv[:, 0] >= x0) & (uv[:, 0] < x0 + w) & (uv[:, 1] >= y0) & (uv[:, 1] < y0 + h)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def run_domain(domain: str, n: int, seed: int, roi_configs: dict, failures_png: str | None
               ) -> dict:
    import cv2
    import torch

    from hand_mesh_core.data.config import SkinConfig
    from hand_mesh_core.data.roi import draw_hand_roi, find_hand_roi
    from hand_mesh_core.data.skin import skin_masks_stereo
    from hand_mesh_core.data.synth.config import load_domain
    from hand_mesh_core.data.synth.generator import MASK_HAND, SynthGenerator
    from hand_mesh_core.train.batch import gt_stereo_crop

    torch.set_num_threads(1)
    gen = SynthGenerator(load_domain(domain), nthreads=1)
    iou_box, iou_adaptive, recall = [], [], []
    per = {name: {"hits": [], "blob_iou": [], "ms": [], "misses": [], "win_ratio": [],
                  "disp_err": []} for name in roi_configs}
    tiles = []
    for i in range(n):
        s = gen.generate(i, seed=seed)
        hand = s.mask_left == MASK_HAND
        ml, mr = skin_masks_stereo(s.left, s.right, SkinConfig())
        iou_box.append(_iou(ml, hand))
        recall.append(float((ml & hand).sum() / max(hand.sum(), 1)))
        iou_adaptive.append(_iou(skin_masks_stereo(s.left, s.right,
                                                   SkinConfig(adaptive=True))[0], hand))
        j = s.joints_m.astype(np.float64)
        uv = (j @ s.camera.K.T)[:, :2] / j[:, 2:]
        for name, cfg in roi_configs.items():
            r = per[name]
            t = time.perf_counter()
            roi = find_hand_roi(s.left, s.right, s.camera, cfg)
            r["ms"].append(1000.0 * (time.perf_counter() - t))
            ok = roi is not None and _in_box(uv, roi.left).mean() >= HIT_JOINT_FRAC
            r["hits"].append(bool(ok))
            if roi is not None:
                label = gt_stereo_crop(s.vertices_m.astype(np.float64), s.camera,
                                       LABEL_CROP_PX, cfg.margin_frac)
                r["win_ratio"].append(roi.left[2] / label.left.width)
                r["disp_err"].append(roi.disparity_px - label.shift_px)
            if roi is not None and roi.candidate is not None:
                x0, y0, w, h = roi.candidate.bbox_left
                box = np.zeros_like(hand)
                box[int(y0 + 0.5):int(y0 + 0.5 + h), int(x0 + 0.5):int(x0 + 0.5 + w)] = True
                r["blob_iou"].append(_iou(box & ml, hand))
            else:
                r["blob_iou"].append(0.0)
            if not ok:
                r["misses"].append(i)
                if failures_png and name == "current" and len(tiles) < 4:
                    img = draw_hand_roi(s.left, s.right, (ml, mr), roi, uv)
                    tiles.append(cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2),
                                            interpolation=cv2.INTER_AREA))
    if failures_png and tiles:
        cv2.imwrite(failures_png, cv2.cvtColor(np.vstack(tiles), cv2.COLOR_RGB2BGR))
    out = {
        "n": n, "seed": seed,
        "skin_iou_box_mean": float(np.mean(iou_box)),
        "skin_iou_box_median": float(np.median(iou_box)),
        "skin_iou_adaptive_mean": float(np.mean(iou_adaptive)),
        "skin_iou_adaptive_median": float(np.median(iou_adaptive)),
        "hand_pixel_recall_mean": float(np.mean(recall)),
    }
    for name, r in per.items():
        out[name] = {
            "roi_hits": int(sum(r["hits"])), "roi_hit_rate": float(np.mean(r["hits"])),
            "roi_misses": r["misses"],
            "chosen_box_skin_iou_mean": float(np.mean(r["blob_iou"])),
            "chosen_box_skin_iou_median": float(np.median(r["blob_iou"])),
            "roi_ms_mean": float(np.mean(r["ms"])),
            "window_to_label_ratio_median": float(np.median(r["win_ratio"])),
            "window_to_label_ratio_p90": float(np.quantile(r["win_ratio"], 0.9)),
            "disparity_abs_err_px_median": float(np.median(np.abs(r["disp_err"]))),
            "disparity_abs_err_px_mean": float(np.mean(np.abs(r["disp_err"]))),
            "disparity_gross_errors": int(np.sum(np.abs(r["disp_err"]) > GROSS_DISPARITY_ERR_PX)),
        }
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=30, help="samples per domain")
    ap.add_argument("--seed", type=int, default=7, help="generator seed")
    ap.add_argument("--domains", nargs="+", default=["target_lab", "source_studio"])
    ap.add_argument("--roi-config", default="", help="RoiConfig YAML (default: the defaults)")
    ap.add_argument("--no-arm-cut", action="store_true",
                    help="also run the current method without the border-arm cut (as "
                    "'current_no_arm_cut')")
    ap.add_argument("--no-disparity-check", action="store_true",
                    help="also run the current method without the disparity check (as "
                    "'current_no_check')")
    ap.add_argument("--no-previous", action="store_true",
                    help="skip the previous method (skin blobs + mask stereo + size only)")
    ap.add_argument("--failures-png", default="",
                    help="save up to 4 missed samples of each domain to <this>_<domain>.png")
    a = ap.parse_args()
    if a.n <= 0:
        ap.error("--n must be > 0")
    import cv2

    from hand_mesh_core.data.config import RoiConfig

    cv2.setNumThreads(1)
    cfg = RoiConfig.from_yaml(a.roi_config) if a.roi_config else RoiConfig()
    configs = {"current": cfg}
    if a.no_arm_cut:
        # max_arm_length_m below arm_hand_length_m turns the border rule off
        configs["current_no_arm_cut"] = cfg.replace(max_arm_length_m=1e-3)
    if a.no_disparity_check:
        configs["current_no_check"] = cfg.replace(check_disparity=False)
    if not a.no_previous:
        configs["previous"] = cfg.replace(dense_stereo=False, refine_skin=False,
                                          split_forearm=False, check_disparity=False)
    out = {}
    t = time.perf_counter()
    for d in a.domains:
        png = f"{a.failures_png}_{d}.png" if a.failures_png else None
        out[d] = run_domain(d, a.n, a.seed, configs, png)
    out["total_s"] = time.perf_counter() - t
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
