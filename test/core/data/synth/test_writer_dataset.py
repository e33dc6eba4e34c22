"""On-disk layout, read back through the Dataset, worker-count independence, CLI errors."""
import json
import shutil

import cv2
import numpy as np
import pytest

from hand_mesh_core.cli.main import EXIT_USAGE, main
from hand_mesh_core.data.synth.dataset import SynthStereoDataset, read_image
from hand_mesh_core.data.synth.generator import MASK_HAND, SynthGenerator
from hand_mesh_core.data.synth.sensor import JPEG_NONE
from hand_mesh_core.data.synth.writer import (DEPTH_PNG_SCALE, LABEL_KEYS, image_ext,
                                              split_counts, split_of, write_dataset,
                                              write_sample_files)
from hand_mesh_core.data.types import StereoSample

COUNT = 3


@pytest.fixture(scope="module")
def written(tmp_path_factory, lab_gen):
    out = tmp_path_factory.mktemp("synth")
    samples = []
    res = write_dataset(out, lab_gen.domain, COUNT, seed=5, workers=1, test_fraction=0.34,
                        progress=False, generator=lab_gen, on_sample=samples.append)
    return out, samples, res


def test_layout_and_labels(written):
    out, samples, res = written
    assert res.counts == {"train": 2, "test": 1} == split_counts(COUNT, 0.34)
    for sub in ("masks/left", "masks/right", "depth/left", "depth/right", "disparity/left"):
        assert sorted(p.name for p in (out / sub).iterdir()) == [f"{i:06d}.png"
                                                                 for i in range(COUNT)]
    # target_lab's sensor always compresses (JPEG quality < 100): its JPEG files are stored
    for sub in ("images/left", "images/right"):
        assert sorted(p.name for p in (out / sub).iterdir()) == [f"{i:06d}.jpg"
                                                                 for i in range(COUNT)]
    assert all(s.left_jpeg is not None for s in samples)
    assert (out / "images/left/000001.jpg").read_bytes() == samples[1].left_jpeg
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["seed"] == 5 and meta["count"] == COUNT and meta["domain"]["name"] == "target_lab"
    with np.load(out / "labels_train.npz", allow_pickle=False) as npz:
        assert set(LABEL_KEYS) <= set(npz.files)
        assert npz["joints_m"].shape == (2, 21, 3) and npz["vertices_m"].dtype == np.float32
        np.testing.assert_array_equal(npz["index"], [0, 1])
        assert npz["handedness"].dtype.kind == "U"
        assert list(npz["image_ext"]) == [".jpg", ".jpg"]


def test_dataset_reads_back_what_was_rendered(written):
    out, samples, _ = written
    ds = {split: SynthStereoDataset(out, split, load_depth=True) for split in ("train", "test")}
    assert (len(ds["train"]), len(ds["test"])) == (2, 1)
    for s in samples:
        split = split_of(s.index, COUNT, 0.34)
        item = ds[split][s.index - (0 if split == "train" else 2)]
        assert isinstance(item, StereoSample)
        assert item.left.tobytes() == s.left.tobytes()
        assert item.right.tobytes() == s.right.tobytes()
        np.testing.assert_array_equal(item.mask_left, s.mask_left == MASK_HAND)
        np.testing.assert_array_equal(item.joints_m, s.joints_m)
        assert item.camera == s.camera and item.handedness == s.handedness
        np.testing.assert_allclose(item.extras["depth_left"], s.depth_left,
                                   atol=0.5 / DEPTH_PNG_SCALE + 1e-6)
        np.testing.assert_allclose(item.extras["disparity_left"], s.disparity_left, atol=0.01)
        assert item.extras["index"] == s.index


def test_uncompressed_sensor_writes_png_and_replaces_a_stale_jpeg(studio_gen, tmp_path):
    domain = studio_gen.domain
    domain = domain.replace(sensor=domain.sensor.replace(jpeg_quality=(JPEG_NONE, JPEG_NONE)))
    sample = SynthGenerator(domain, studio_gen.rig, nthreads=1).generate(0, 0)
    assert sample.left_jpeg is None and sample.right_jpeg is None
    for sub in ("images/left", "images/right", "masks/left", "masks/right", "depth/left",
                "depth/right", "disparity/left"):
        (tmp_path / sub).mkdir(parents=True)
    stale = tmp_path / "images/left/000000.jpg"
    stale.write_bytes(b"old")
    assert image_ext(sample) == ".png"
    write_sample_files(tmp_path, sample)
    assert not stale.exists()
    assert read_image(tmp_path / "images/left/000000.png", cv2.IMREAD_COLOR).tobytes() \
        == sample.left.tobytes()
    assert read_image(tmp_path / "images/right/000000.png", cv2.IMREAD_COLOR).tobytes() \
        == sample.right.tobytes()


def test_dataset_without_image_ext_label_reads_png(written, tmp_path):
    # data sets of generator < 1.2 have PNG images and no "image_ext" label
    out, samples, _ = written
    old = tmp_path / "old"
    shutil.copytree(out, old)
    for view in ("left", "right"):
        for i in range(COUNT):
            jpg = old / "images" / view / f"{i:06d}.jpg"
            img = cv2.imread(str(jpg), cv2.IMREAD_COLOR)
            cv2.imwrite(str(jpg.with_suffix(".png")), img)
            jpg.unlink()
    with np.load(old / "labels_train.npz", allow_pickle=False) as npz:
        labels = {k: npz[k] for k in npz.files if k != "image_ext"}
    np.savez(old / "labels_train.npz", **labels)
    item = SynthStereoDataset(old, "train")[1]
    assert item.left.tobytes() == samples[1].left.tobytes()


def test_dataset_errors(written, tmp_path):
    out = written[0]
    with pytest.raises(ValueError, match="split must be one of"):
        SynthStereoDataset(out, "val")
    with pytest.raises(FileNotFoundError, match="metadata.json"):
        SynthStereoDataset(tmp_path)
    with pytest.raises(IndexError):
        SynthStereoDataset(out, "test")[5]


def test_write_dataset_errors(lab_gen, tmp_path):
    d = lab_gen.domain
    for kwargs, msg in (({"count": 0}, "count"), ({"count": 1, "seed": -1}, "seed"),
                        ({"count": 1, "workers": 0}, "workers"),
                        ({"count": 1, "test_fraction": 1.0}, "test_fraction")):
        with pytest.raises(ValueError, match=msg):
            write_dataset(tmp_path, d, progress=False, **kwargs)
    with pytest.raises(TypeError, match="DomainConfig"):
        write_dataset(tmp_path, {"name": "x"}, 1)


def test_two_workers_write_the_same_bytes(written, tmp_path):
    out, samples, _ = written
    from hand_mesh_core.data.synth.config import load_domain
    domain = load_domain("target_lab")
    domain = domain.with_camera(domain.camera.scaled(0.25))
    # the workers render everything; then the parent helps during the start-up (default)
    write_dataset(tmp_path, domain, COUNT, seed=5, workers=2, test_fraction=0.34,
                  progress=False, render_during_startup=False)
    write_dataset(tmp_path / "helped", domain, COUNT, seed=5, workers=2, test_fraction=0.34,
                  progress=False)
    for sub, ext in (("images/left", "jpg"), ("images/right", "jpg"), ("masks/right", "png"),
                     ("depth/left", "png")):
        for i in range(COUNT):
            name = f"{i:06d}.{ext}"
            assert (tmp_path / sub / name).read_bytes() == (out / sub / name).read_bytes()
            assert (tmp_path / "helped" / sub / name).read_bytes() \
                == (out / sub / name).read_bytes()
    a = np.load(out / "labels_train.npz", allow_pickle=False)
    b = np.load(tmp_path / "labels_train.npz", allow_pickle=False)
    np.testing.assert_array_equal(a["vertices_m"], b["vertices_m"])


@pytest.mark.parametrize("extra", [["--count", "0"], ["--count", "2", "--seed", "-1"],
                                   ["--count", "2", "--workers", "0"],
                                   ["--count", "2", "--split-test", "1.5"],
                                   ["--count", "2", "--camera-scale", "0"],
                                   ["--count", "two"]])
def test_cli_bad_args_exit_2(extra, tmp_path):
    assert _cli(["--domain", "target_lab", "--out", str(tmp_path), *extra]) == EXIT_USAGE


def test_cli_bad_domain_exit_2(tmp_path, capsys):
    assert main(["synth", "--domain", "nope", "--count", "1", "--out", str(tmp_path)]) == 2
    assert "presets" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("colour: red\n")
    assert main(["synth", "--domain", str(bad), "--count", "1", "--out", str(tmp_path)]) == 2
    assert "valid keys" in capsys.readouterr().err


def test_cli_writes_and_previews(tmp_path):
    sheet = tmp_path / "sheet.png"
    assert main(["synth", "--domain", "source_studio", "--count", "2", "--seed", "3", "--out",
                 str(tmp_path / "d"), "--camera-scale", "0.25", "--preview", str(sheet),
                 "--workers", "1", "--no-progress"]) == 0
    assert sheet.is_file() and (tmp_path / "d" / "labels_train.npz").is_file()


@pytest.mark.parametrize("cpus,count,expected", [(2, 2000, 2), (8, 3, 3), (1, 10, 1)])
def test_default_workers_one_per_usable_cpu(monkeypatch, cpus, count, expected):
    from hand_mesh_core.cli import synth as synth_cli

    monkeypatch.setattr(synth_cli.os, "sched_getaffinity", lambda pid: set(range(cpus)),
                        raising=False)
    assert synth_cli.default_workers(count) == expected


def _cli(args):
    try:
        return main(["synth", *args])
    except SystemExit as exc:  # argparse type errors
        return exc.code


@pytest.mark.parametrize("count,workers", [(1, 2), (37, 2), (200, 3)])
def test_guided_claims_cover_every_index_once(count, workers):
    import multiprocessing as mp

    from hand_mesh_core.data.synth.writer import MAX_CHUNK, _claim

    counter = mp.get_context("spawn").Value("q", 0)
    seen, sizes = [], []
    while True:
        r = _claim(counter, count, workers)
        if not r:
            break
        seen += list(r)
        sizes.append(len(r))
    assert seen == list(range(count))
    assert max(sizes) <= MAX_CHUNK and sizes[-1] == 1
    assert not _claim(counter, count, workers)
