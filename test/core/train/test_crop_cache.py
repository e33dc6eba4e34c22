"""Crop cache: round trip against the direct crops, merging, validation, pretraining from it."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hand_mesh_core.train.batch import CropJitter, CroppedDataset, collate_cropped
from hand_mesh_core.train.config import PretrainConfig
from hand_mesh_core.train.crop_cache import (CACHE_FILE, META_FILE, CropCache, CropCacheDataset,
                                             CropCacheSpec, merge_crop_caches, write_crop_cache)
from hand_mesh_core.train.pretrain import pretrain

#: fp16 offsets from the centroid: |offset| < 0.2 m -> spacing <= 2^-13 m, error <= half that.
VERTEX_TOL_M = 2.0 ** -14
#: Mean |pixel difference| between a crop cut from the cached window (96 px, JPEG q100) and the
#: direct 32 px crop: one extra bilinear resampling of the toy's sharp-edged triangles (measured
#: 2.9-4.3; it falls to 1.1-1.8 with 192 px windows, so it is resampling, not misregistration).
MEAN_PIXEL_TOL = 5.0
JITTER = CropJitter(0.08, 0.1, 0.05)


@pytest.fixture
def cached(tmp_path, topology, samples_factory):
    samples = samples_factory(5, topology, seed=3)
    path = write_crop_cache(samples, tmp_path / "c", CropCacheSpec(context_size=96,
                                                                   jpeg_quality=100),
                            provenance="toy", topology_hash=topology.topology_hash)
    return samples, CropCache(path)


def test_round_trip_matches_direct_crops(cached):
    samples, cache = cached
    assert len(cache) == 5 and cache.provenance == "toy"
    for jitter in (CropJitter(), JITTER):
        direct = CroppedDataset(samples, 32, margin_frac=0.15, jitter=jitter, seed=7)
        ds = CropCacheDataset(cache, 32, margin_frac=0.15, jitter=jitter, seed=7)
        for epoch in (0, 1):
            direct.set_epoch(epoch)
            ds.set_epoch(epoch)
            for i in range(len(samples)):
                a, b = direct[i], ds[i]
                np.testing.assert_allclose(b.vertices_m, a.vertices_m, atol=VERTEX_TOL_M)
                np.testing.assert_array_equal(b.joints_m, a.joints_m)
                torch.testing.assert_close(b.K, a.K)
                assert b.baseline_m == pytest.approx(a.baseline_m)
                assert b.crop.left.x0 == pytest.approx(a.crop.left.x0, abs=0.1)
                assert b.crop.left.width == pytest.approx(a.crop.left.width, abs=0.1)
                assert b.crop.shift_px == pytest.approx(a.crop.shift_px, abs=0.1)
                for x, y in ((a.left, b.left), (a.right, b.right)):
                    diff = (x.float() - y.float()).abs().mean()
                    assert diff < MEAN_PIXEL_TOL, float(diff)
                assert b.index == i and b.mask_left is None
    # A wrong window (shifted by 3 px) would not match: the check above can fail.
    ds = CropCacheDataset(cache, 32)
    s = ds[0]
    other = CroppedDataset(samples, 32)[0]
    shifted = torch.roll(other.left, 3, dims=-1)
    assert (shifted.float() - s.left.float()).abs().mean() > MEAN_PIXEL_TOL


def test_jitter_changes_with_epoch(cached):
    _, cache = cached
    ds = CropCacheDataset(cache, 32, jitter=JITTER)
    a = ds[0].crop
    ds.set_epoch(1)
    assert ds[0].crop != a


def test_merge(cached, tmp_path, topology, samples_factory):
    samples, cache = cached
    more = write_crop_cache(samples_factory(2, topology, seed=9), tmp_path / "d",
                            CropCacheSpec(context_size=96, jpeg_quality=100),
                            topology_hash=topology.topology_hash)
    merged = CropCache(merge_crop_caches([cache.path, more], tmp_path / "m"))
    second = CropCache(more)
    assert len(merged) == 7
    for i in range(5):
        np.testing.assert_array_equal(merged.images(i)[1], cache.images(i)[1])
    for i in range(2):
        np.testing.assert_array_equal(merged.images(5 + i)[0], second.images(i)[0])
        np.testing.assert_array_equal(merged.vertices_m(5 + i), second.vertices_m(i))
    assert merged.handedness(6) == second.handedness(1) == "right"
    with pytest.raises(ValueError, match="at least one folder"):
        merge_crop_caches([], tmp_path / "x")
    spec40 = CropCacheSpec(context_size=40, jpeg_quality=100)
    bad = write_crop_cache(samples[:1], tmp_path / "e", spec40)
    with pytest.raises(ValueError, match="context_size"):
        merge_crop_caches([cache.path, bad], tmp_path / "y")


def test_validation(tmp_path, cached, topology, samples_factory):
    samples, cache = cached
    with pytest.raises(ValueError, match="context_size"):
        CropCacheSpec(context_size=8)
    with pytest.raises(ValueError, match="context_frac"):
        CropCacheSpec(context_frac=0.5)
    with pytest.raises(ValueError, match="margin_frac"):
        CropCacheSpec(margin_frac=-0.1)
    with pytest.raises(ValueError, match="jpeg_quality"):
        CropCacheSpec(jpeg_quality=0)
    with pytest.raises(ValueError, match="at least one sample"):
        write_crop_cache([], tmp_path / "empty")
    nolabel = samples[0].__class__(**{**samples[0].__dict__, "vertices_m": None})
    with pytest.raises(ValueError, match="no vertex/joint labels"):
        write_crop_cache([nolabel], tmp_path / "nl")
    small = samples_factory(1, topology)[0]
    toy_like = small.__class__(**{**small.__dict__, "vertices_m": small.vertices_m[:-1]})
    with pytest.raises(ValueError, match="vertices, the first had"):
        write_crop_cache([samples[0], toy_like], tmp_path / "mix")
    with pytest.raises(FileNotFoundError, match="crop cache file not found"):
        CropCache(tmp_path / "nothing")
    meta = json.loads((cache.path / META_FILE).read_text())
    (cache.path / META_FILE).write_text(json.dumps({**meta, "format": "other"}))
    with pytest.raises(ValueError, match="not a crop cache"):
        CropCache(cache.path)
    with pytest.raises(TypeError, match="CropCache"):
        CropCacheDataset(samples, 32)
    assert (cache.path / CACHE_FILE).is_file()


def test_pretrain_from_cache_equals_loss_drop(cached, tmp_path, topology, tiny_network):
    _, cache = cached
    cfg = PretrainConfig(network=tiny_network, steps=12, batch_size=5, lr=3e-3,
                         warmup_steps=2, device="cpu", log_every=4, checkpoint_every=100)
    res = pretrain(cfg, cache, tmp_path / "run", topology, progress=False)
    assert res.steps == 12 and res.final_loss < res.first_loss
    assert (tmp_path / "run" / "pretrained.safetensors").is_file()


def test_time_budget_stops_early_and_saves(cached, tmp_path, topology, tiny_network):
    _, cache = cached
    cfg = PretrainConfig(network=tiny_network, steps=10_000, batch_size=5, device="cpu",
                         max_time_s=1.0, checkpoint_every=100_000)
    res = pretrain(cfg, cache, tmp_path / "t", topology, progress=False)
    assert 0 < res.steps < 10_000
    info = json.loads((tmp_path / "t" / "last.json").read_text())
    assert info["extra"]["step"] == res.steps


def test_persistent_workers_see_the_epoch(cached):
    _, cache = cached
    ds = CropCacheDataset(cache, 32, jitter=JITTER)
    loader = torch.utils.data.DataLoader(ds, batch_size=5, num_workers=1,
                                         persistent_workers=True, collate_fn=collate_cropped)
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        batch = next(iter(loader))
        assert ds.epoch == epoch
        expected = [ds[i].crop.left.x0 for i in range(5)]
        np.testing.assert_allclose(batch.crops.offset_x_left.numpy(),
                                   [-x * batch.crops.scale_x[i].item() - 0.5
                                    for i, x in enumerate(expected)], rtol=1e-5)
