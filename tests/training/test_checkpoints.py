"""Resume checkpoints: `latest` takes the newest complete one, on both loops; a Trainer run killed while saving,
again and again, resumes to the parameters of an uninterrupted run."""

import logging
import os
import signal

import pytest
import torch
from safetensors.torch import load_file

from hf_seq.training import pretrain
from hf_seq.training.checkpoints import CHECKPOINT_COMPLETE_NAME, mark_checkpoint_complete, resolve_resume_checkpoint
from tests.training import worker_finetune
from tests.training.helpers import finish, start_worker, tiny_lstm_config, training_arguments


WORKER = os.path.join(os.path.dirname(__file__), "worker_finetune.py")


def trained_steps(worker_output):
    return [int(line.split()[-1]) for line in worker_output.splitlines() if line.startswith("trained step ")]


def test_latest_is_the_newest_complete_checkpoint_and_a_named_one_must_be_complete(tmp_path):
    for step in (1, 2, 3):
        os.makedirs(tmp_path / f"checkpoint-{step}")
    for step in (1, 2):
        mark_checkpoint_complete(str(tmp_path / f"checkpoint-{step}"), step)
    os.makedirs(tmp_path / "checkpoint-4.tmp")  # a TBPTT checkpoint still being written
    mark_checkpoint_complete(str(tmp_path / "checkpoint-4.tmp"), 4)

    for latest in ("latest", "true", True):
        assert resolve_resume_checkpoint(latest, str(tmp_path)) == str(tmp_path / "checkpoint-2")
    assert resolve_resume_checkpoint(None, str(tmp_path)) is None
    assert resolve_resume_checkpoint(str(tmp_path / "checkpoint-1"), str(tmp_path)) == str(tmp_path / "checkpoint-1")
    with pytest.raises(ValueError, match=f"not a complete checkpoint \\(no {CHECKPOINT_COMPLETE_NAME}"):
        resolve_resume_checkpoint(str(tmp_path / "checkpoint-3"), str(tmp_path))
    with pytest.raises(FileNotFoundError, match="checkpoint to resume from not found"):
        resolve_resume_checkpoint(str(tmp_path / "checkpoint-9"), str(tmp_path))


@pytest.mark.parametrize("loop", ["trainer", "tbptt"])
def test_latest_before_any_checkpoint_starts_a_fresh_run_and_says_so(
    tiny_tokenizer, text_files, tmp_path, loop, caplog
):
    os.makedirs(tmp_path / "lm" / "checkpoint-2")  # killed while saving its first checkpoint: nothing to resume
    args = training_arguments(tmp_path / "lm", max_steps=2, resume_from_checkpoint="latest")
    with caplog.at_level(logging.WARNING, logger="hf_seq"):
        run = pretrain(
            args,
            text_files[0],
            tiny_tokenizer,
            model=tiny_lstm_config(tiny_tokenizer),
            loop=loop,
            bptt=8,
            block_size=16,
        )
    assert os.path.isfile(tmp_path / "lm" / "model.safetensors")
    assert run.metrics["train_loss"] > 0
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert any(
        "no complete checkpoint" in message and "checkpoint-2" in message and "starting a fresh run" in message
        for message in warnings
    ), warnings


def test_a_trainer_run_killed_while_saving_resumes_to_the_uninterrupted_parameters(tokenizer_dir, nsmc_dir, tmp_path):
    victim_dir = tmp_path / "victim"
    # Killed while writing checkpoint-2's model files: checkpoint-1 is the newest complete one.
    first = start_worker(WORKER, tokenizer_dir, nsmc_dir, victim_dir, "--die_saving", "2:model")
    worker_finetune.run(tokenizer_dir, nsmc_dir, tmp_path / "reference")  # in this process, meanwhile
    assert trained_steps(finish(first, returncode=-signal.SIGKILL)) == [1, 2]
    assert os.path.isfile(victim_dir / "checkpoint-2" / "model.safetensors")
    assert not os.path.exists(victim_dir / "checkpoint-2" / "trainer_state.json")
    assert not os.path.exists(victim_dir / "model.safetensors")

    # Resumed from checkpoint-1, then killed after checkpoint-4's trainer_state.json but before its weight average.
    second = start_worker(WORKER, tokenizer_dir, nsmc_dir, victim_dir, "--resume", "--die_saving", "4:callbacks")
    assert trained_steps(finish(second, returncode=-signal.SIGKILL)) == [2, 3, 4]
    assert os.path.isfile(victim_dir / "checkpoint-4" / "trainer_state.json")
    assert not os.path.exists(victim_dir / "checkpoint-4" / "weight_average.safetensors")
    assert not os.path.exists(victim_dir / "checkpoint-4" / CHECKPOINT_COMPLETE_NAME)

    # Resumed from checkpoint-3 (with the average of steps 3..), it runs to the end.
    assert trained_steps(finish(start_worker(WORKER, tokenizer_dir, nsmc_dir, victim_dir, "--resume"))) == [4, 5, 6]
    expected = load_file(tmp_path / "reference" / "model.safetensors")
    resumed = load_file(victim_dir / "model.safetensors")
    assert expected.keys() == resumed.keys()
    for name in expected:
        assert torch.equal(expected[name], resumed[name]), name
