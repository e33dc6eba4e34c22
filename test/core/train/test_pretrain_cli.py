"""``hand-mesh pretrain`` argument errors: one line on stderr, exit code 2."""
from __future__ import annotations

import pytest

from hand_mesh_core.cli.adapt import load_target
from hand_mesh_core.cli.main import CliError, main


def test_missing_folder(tmp_path, capsys):
    assert main(["pretrain", "--data", str(tmp_path / "nope"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "dataset folder not found" in err and len(err.splitlines()) == 1


def test_unlabelled_folder(tmp_path, capsys):
    assert main(["pretrain", "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "no metadata.json" in capsys.readouterr().err


def test_bad_config_key(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("stepz: 3\n")
    (tmp_path / "metadata.json").write_text("{}")
    assert main(["pretrain", "--data", str(tmp_path), "--config", str(cfg), "--out",
                 str(tmp_path / "o")]) == 2
    assert "valid keys" in capsys.readouterr().err
    # A folder with metadata.json but no labels: the reader's error, one line, exit 2.
    assert main(["pretrain", "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "labels_train.npz" in capsys.readouterr().err


def test_adapt_refuses_pickle_and_unknown_folder(tmp_path, capsys):
    assert main(["adapt", "--model", str(tmp_path / "m.pth"), "--data", str(tmp_path),
                 "--out", str(tmp_path / "o")]) == 2
    assert "refused" in capsys.readouterr().err
    with pytest.raises(CliError, match="not a synthetic dataset"):
        load_target(tmp_path, 10)
    with pytest.raises(FileNotFoundError):
        load_target(tmp_path / "nope", 10)
    assert main(["adapt", "--model", str(tmp_path / "m.safetensors"), "--data", str(tmp_path),
                 "--out", str(tmp_path / "o"), "--frames", "0"]) == 2
    assert "--frames must be >= 1" in capsys.readouterr().err


def test_crop_cache_options(tmp_path, capsys):
    from hand_mesh_core.cli.main import main

    assert main(["pretrain", "--crop-cache", str(tmp_path / "none"), "--out",
                 str(tmp_path / "o")]) != 0
    assert "crop cache file not found" in capsys.readouterr().err
    assert main(["pretrain", "--data", str(tmp_path), "--write-crop-cache", "--out",
                 str(tmp_path / "o")]) != 0
    assert "--write-crop-cache needs --synth-domain" in capsys.readouterr().err


def test_write_crop_cache_then_pretrain_from_it(tmp_path, capsys):
    from hand_mesh_core.cli.main import main
    from hand_mesh_core.train.crop_cache import CropCache

    cache = tmp_path / "cache"
    assert main(["pretrain", "--synth-domain", "source_studio", "--count", "2", "--start", "5",
                 "--write-crop-cache", "--out", str(cache)]) == 0
    c = CropCache(cache)
    assert len(c) == 2 and "indices" not in c.provenance and "from index 5" in c.provenance
    assert main(["pretrain", "--crop-cache", str(cache), "--steps", "2", "--batch-size", "2",
                 "--device", "cpu", "--no-progress", "--out", str(tmp_path / "run")]) == 0
    assert "pretrained 2 steps" in capsys.readouterr().out
    assert (tmp_path / "run" / "pretrained.safetensors").is_file()
