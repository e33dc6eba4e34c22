"""Requested addition to test/core/eval/test_experiments.py (uses its _Backend, TINY)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, "/work/main/test/core/eval")
from test_experiments import TINY, _Backend  # noqa: E402

from hand_mesh_core.eval.experiments import render_markdown, run_table  # noqa: E402
from hand_mesh_core.pipeline import default_model_path  # noqa: E402


class _Recording(_Backend):
    def adapt(self, checkpoint, data, mode, drop_loss, config, out_dir):
        self.calls.append(("adapt", checkpoint, len(data), mode, drop_loss))
        return "binocular"

    def load(self, checkpoint, mode, device):
        return super().load("pre" if isinstance(checkpoint, Path) else checkpoint, mode, device)


def test_pretrained_checkpoint_skips_pretraining(tmp_path):
    backend = _Recording()
    cfg = TINY.replace(pretrained_checkpoint="default", rows=["test_directly",
                                                              "self_supervised_binocular"])
    result = run_table("table1", cfg, backend, tmp_path, row_plots=False)
    assert not [c for c in backend.calls if c[0] == "pretrain"]
    assert [c[1] for c in backend.calls if c[0] == "adapt"] == [default_model_path()]
    assert "pretrained checkpoint `default` (no pretraining run)" in render_markdown(result)
    with pytest.raises(FileNotFoundError, match="pretrained_checkpoint"):
        run_table("table1", TINY.replace(pretrained_checkpoint=str(tmp_path / "no.safetensors")),
                  _Recording(), tmp_path / "b")


def test_notes_name_patience_and_handedness(tmp_path):
    result = run_table("table1", TINY.replace(adapt_patience=12, known_handedness=False,
                                              rows=["test_directly"]),
                       _Backend(), tmp_path, row_plots=False)
    md = render_markdown(result)
    assert "guard patience 12" in md and "handedness ignored" in md
