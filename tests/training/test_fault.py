"""A TBPTT run killed with SIGKILL mid-training and resumed ends with the parameters of an uninterrupted run."""

import os
import signal
import time

import torch
from safetensors.torch import load_file

from tests.training.helpers import finish, start_worker


WORKER = os.path.join(os.path.dirname(__file__), "worker_tbptt.py")


def test_sigkill_then_resume_matches_the_uninterrupted_run(tokenizer_dir, text_files, tmp_path):
    reference = start_worker(WORKER, tokenizer_dir, text_files[0], tmp_path / "reference")
    victim = start_worker(WORKER, tokenizer_dir, text_files[0], tmp_path / "victim", "--slow")
    try:
        # Kill the slow run once it has written checkpoint-6: it is then mid-way (24 steps) and has work to lose.
        deadline = time.time() + 150
        while not os.path.isdir(tmp_path / "victim" / "checkpoint-6"):
            assert victim.poll() is None, "the run ended before it could be killed"
            assert time.time() < deadline, "no checkpoint appeared in time"
            time.sleep(0.05)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
    finally:
        if victim.poll() is None:
            victim.kill()
        victim.communicate()
    assert victim.returncode == -signal.SIGKILL
    assert not os.path.exists(tmp_path / "victim" / "model.safetensors")  # it really died before the end
    assert not os.path.isdir(tmp_path / "victim" / "checkpoint-24")

    resumed_output = finish(start_worker(WORKER, tokenizer_dir, text_files[0], tmp_path / "victim", "--resume"))
    assert "Resumed from" in resumed_output
    reference_output = finish(reference)

    final_loss = [line for line in reference_output.splitlines() if line.startswith("final train_loss")]
    assert final_loss and final_loss == [
        line for line in resumed_output.splitlines() if line.startswith("final train_loss")
    ]
    expected = load_file(tmp_path / "reference" / "model.safetensors")
    resumed = load_file(tmp_path / "victim" / "model.safetensors")
    assert expected.keys() == resumed.keys()
    for name in expected:
        assert torch.equal(expected[name], resumed[name]), name
