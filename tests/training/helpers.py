"""Helpers shared by the training tests (fixtures live in conftest.py)."""

import os
import subprocess
import sys

from transformers import TrainingArguments

import hf_seq
from hf_seq.data import sample_data_path
from tokenizer_training import model_config_kwargs, train_tokenizer


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def train_tiny_tokenizer():
    """A BPE tokenizer of 600 tokens trained on 1,000 shipped reviews (pad 0, unk 1, bos 2, eos 3)."""
    with open(sample_data_path("reviews_sample_train.txt"), encoding="utf-8") as handle:
        texts = handle.read().splitlines()[:1000]
    return train_tokenizer(texts=texts, vocab_size=600, limit_alphabet=200)


def tiny_lstm_config(tokenizer, **overrides):
    settings = {"embedding_size": 16, "hidden_size": 16, "num_hidden_layers": 1}
    settings.update(overrides)
    return hf_seq.LSTMConfig(**model_config_kwargs(tokenizer, require_special_tokens=False), **settings)


def training_arguments(output_dir, **overrides):
    """TrainingArguments for tiny CPU test runs: no reports, no progress bars, no checkpoints unless asked."""
    settings = {
        "output_dir": str(output_dir),
        "per_device_train_batch_size": 4,
        "per_device_eval_batch_size": 8,
        "learning_rate": 5e-3,
        "report_to": "none",
        "disable_tqdm": True,
        "use_cpu": True,
        "save_strategy": "no",
        "dataloader_pin_memory": False,
        "seed": 0,
    }
    settings.update(overrides)
    return TrainingArguments(**settings)


def start_worker(script, *arguments):
    """Run a worker script of this folder in a subprocess, on one thread (OMP_NUM_THREADS=1), its output captured."""
    env = {**os.environ, "PYTHONPATH": REPO_ROOT, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, script, *map(str, arguments)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process, timeout=180, returncode=0):
    """Wait for a worker (killing it past `timeout`), check its exit status, and return its output."""
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        raise AssertionError(f"worker did not finish in {timeout} s:\n{output[-3000:]}")
    assert process.returncode == returncode, output[-3000:]
    return output
