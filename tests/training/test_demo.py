"""The demo checks its settings before any work."""

import os

import pytest

from hf_seq.training import run_demo


@pytest.mark.parametrize(
    "setting, value, message",
    [
        ("num_threads", -1, "num_threads must be a whole number >= 0"),
        ("lm_epochs", 0, "lm_epochs must be a number of epochs > 0"),
        ("vocab_size", 0, "vocab_size must be a positive integer"),
    ],
)
def test_a_bad_setting_is_refused_before_any_work(tmp_path, setting, value, message):
    with pytest.raises(ValueError, match=message):
        run_demo(output_dir=str(tmp_path / "demo"), **{setting: value})
    assert os.listdir(tmp_path) == []  # no folder, no temporary sibling
