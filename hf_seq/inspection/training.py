"""The small, plain training loop the inspection figures need: a model, a token stream, a fixed number of steps.

The figures compare models trained under one recipe and budget, so the loop is deliberately bare (no scheduler,
no evaluation callbacks): what differs between two runs is only what the figure is about.
"""

import math
import os
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from hf_seq.data.nsmc import sample_data_path


# Where the longer runs for the docs read reviews from; tests use the shipped sample instead.
REVIEWS_ENV_VAR = "HF_SEQ_REVIEWS_TRAIN"
SAMPLE_REVIEWS = sample_data_path("reviews_sample_train.txt")


def reviews_path(path: str | os.PathLike | None = None) -> str:
    """The review file to read: the given path, else $HF_SEQ_REVIEWS_TRAIN, else the shipped sample."""
    return os.fspath(path) if path else os.environ.get(REVIEWS_ENV_VAR) or SAMPLE_REVIEWS


def read_lines(path: str | os.PathLike, max_lines: int | None = None) -> list[str]:
    """Non-empty lines of a UTF-8 text file (one review a line), the first `max_lines` of them."""
    lines = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if line:
                lines.append(line)
            if max_lines is not None and len(lines) >= max_lines:
                break
    return lines


def char_tokenizer(lines: list[str], vocab_size: int = 2000):
    """A character tokenizer trained on `lines` (the project's char algorithm; rare characters fall back to bytes)."""
    from tokenizer_training.train import train_tokenizer

    return train_tokenizer(texts=lines, algorithm="char", vocab_size=vocab_size)


def token_stream(lines: list[str], tokenizer) -> torch.LongTensor:
    """All lines tokenized and joined into one stream, each review ending with the end-of-sequence token."""
    ids: list[int] = []
    for encoding in tokenizer(lines)["input_ids"]:
        ids.extend(encoding)
        ids.append(tokenizer.eos_token_id)
    return torch.tensor(ids, dtype=torch.long)


def random_windows(stream: torch.LongTensor, batch_size: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """`batch_size` windows of `length` consecutive tokens at random offsets of the stream."""
    if stream.numel() <= length:
        raise ValueError(f"The token stream ({stream.numel()} tokens) is shorter than one window of {length}")
    starts = torch.randint(0, stream.numel() - length, (batch_size,), generator=generator)
    return torch.stack([stream[start : start + length] for start in starts.tolist()])


@dataclass
class TrainingRecord:
    losses: list[float] = field(default_factory=list)
    gradient_norms: list[float] = field(default_factory=list)  # before clipping
    diverged_at: int | None = None  # the first step whose loss was not finite
    seconds: float = 0.0


def train_language_model(
    model: nn.Module,
    stream: torch.LongTensor,
    *,
    steps: int,
    batch_size: int = 32,
    length: int = 64,
    optimizer: str = "adam",
    learning_rate: float = 3e-3,
    clip_norm: float | None = 1.0,
    max_seconds: float | None = None,
    seed: int = 0,
) -> TrainingRecord:
    """Train a causal LM on random windows of `stream` for `steps` steps (or `max_seconds`); stops if it diverges.

    `clip_norm=None` trains without gradient clipping (the relu RNN's exploding gradients then show in the loss).
    """
    generator = torch.Generator().manual_seed(seed)
    parameters = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "sgd":
        opt = torch.optim.SGD(parameters, lr=learning_rate)
    else:
        opt = torch.optim.Adam(parameters, lr=learning_rate)
    record = TrainingRecord()
    start = time.monotonic()
    model.train()
    for step in range(steps):
        batch = random_windows(stream, batch_size, length, generator)
        loss = model(input_ids=batch, labels=batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        # clip_grad_norm_ with an infinite limit only measures the norm, so both runs log the same quantity.
        norm = torch.nn.utils.clip_grad_norm_(parameters, clip_norm if clip_norm is not None else math.inf)
        record.losses.append(float(loss.detach()))
        record.gradient_norms.append(float(norm))
        if not (math.isfinite(record.losses[-1]) and math.isfinite(record.gradient_norms[-1])):
            record.diverged_at = step
            break
        opt.step()
        if max_seconds is not None and time.monotonic() - start > max_seconds:
            break
    model.eval()
    record.seconds = time.monotonic() - start
    return record
