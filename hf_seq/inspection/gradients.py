"""Gradient flow over time: the norm of d loss_T / d h_t against the distance d = T - t.

For a recurrent model h_t is the last layer's hidden state at step t (traced step by step, see `stepping`), so the
gradient reaches it only through the recurrence h_t -> h_{t+1} -> ... -> h_T: its decay with d is the product of
the step Jacobians, governed by the spectral radius of W_hh and, in an LSTM/GRU, by the gates. For the Transformer the
equivalent is the residual stream at position t entering the first block (the embedding output): attention reaches
every position in one step, so there is no product over d.
"""

import math

import torch
from torch import nn

from hf_seq.models.recurrent import (
    GRUConfig,
    GRUForCausalLM,
    LSTMConfig,
    LSTMForCausalLM,
    RecurrentForCausalLM,
    RNNConfig,
    RNNForCausalLM,
)
from hf_seq.models.transformer import TransformerLMConfig, TransformerLMForCausalLM

from .stepping import recurrent_body, trace_recurrent
from .training import TrainingRecord, random_windows, train_language_model


CELLS = ("rnn_tanh", "rnn_relu", "lstm", "gru", "transformer")
INITIALIZERS = ("uniform", "xavier", "kaiming", "orthogonal")


def build_model(
    cell: str,
    vocab_size: int,
    *,
    hidden_size: int = 64,
    num_hidden_layers: int = 1,
    initializer: str = "uniform",
    seed: int = 0,
) -> nn.Module:
    """A small causal LM of one cell type, with dropout off (the figures measure the function, not the noise)."""
    torch.manual_seed(seed)
    special = {"pad_token_id": 0, "bos_token_id": min(2, vocab_size - 1), "eos_token_id": min(3, vocab_size - 1)}
    if cell == "transformer":
        heads = 4 if hidden_size % 4 == 0 else 1
        config = TransformerLMConfig(
            vocab_size=vocab_size,
            hidden_size=hidden_size,
            num_hidden_layers=max(num_hidden_layers, 2),
            num_attention_heads=heads,
            **special,
        )
        return TransformerLMForCausalLM(config).eval()
    recurrent = {
        "vocab_size": vocab_size,
        "embedding_size": hidden_size,
        "hidden_size": hidden_size,
        "num_hidden_layers": num_hidden_layers,
        "embedding_dropout": 0.0,
        "dropout": 0.0,
        "output_dropout": 0.0,
        "initializer": initializer,
        **special,
    }
    if cell in ("rnn_tanh", "rnn_relu"):
        config = RNNConfig(nonlinearity=cell.removeprefix("rnn_"), **recurrent)
    elif cell == "lstm":
        config = LSTMConfig(**recurrent)
    elif cell == "gru":
        config = GRUConfig(**recurrent)
    else:
        raise ValueError(f"Unknown cell {cell!r}; choose one of {', '.join(CELLS)}")
    return _recurrent_lm(config)


def _recurrent_lm(config) -> nn.Module:
    lm_class = {"RNN": RNNForCausalLM, "LSTM": LSTMForCausalLM, "GRU": GRUForCausalLM}[config.rnn_type]
    return lm_class(config).eval()


def _loss_at_last_position(
    model: nn.Module, last_hidden: torch.Tensor, targets: torch.LongTensor | None
) -> torch.Tensor:
    """loss_T: the LM's cross-entropy for the token after position T, or sum(h_T) for a model without an LM head."""
    if targets is None or not isinstance(model, RecurrentForCausalLM):
        return last_hidden.sum()
    if model.output_projection is not None:
        last_hidden = model.output_projection(last_hidden)
    return nn.functional.cross_entropy(model.lm_head(last_hidden), targets)


def recurrent_gradient_norms(
    model: nn.Module, input_ids: torch.LongTensor, targets: torch.LongTensor | None = None
) -> list[float]:
    """Mean over the batch of |d loss_T / d h_t| for the last layer, listed by distance d = T - t (d = 0 is h_T)."""
    traces = trace_recurrent(model, input_ids)
    steps = traces[-1].hidden_steps
    for h in steps:
        h.retain_grad()  # intermediate tensors drop their gradient unless asked to keep it
    loss = _loss_at_last_position(model, steps[-1], targets)
    model.zero_grad(set_to_none=True)
    loss.backward()
    norms = [float(h.grad.norm(dim=-1).mean()) for h in steps]
    return norms[::-1]


def transformer_gradient_norms(
    model: TransformerLMForCausalLM, input_ids: torch.LongTensor, targets: torch.LongTensor
) -> list[float]:
    """Mean over the batch of |d loss_T / d x_t|, x_t the residual stream entering the first block, by distance."""
    embeds = model.get_input_embeddings()(input_ids).detach().requires_grad_(True)
    logits = model(inputs_embeds=embeds, use_cache=False).logits[:, -1]
    loss = nn.functional.cross_entropy(logits, targets)
    model.zero_grad(set_to_none=True)
    loss.backward()
    norms = embeds.grad.norm(dim=-1).mean(dim=0).tolist()
    return norms[::-1]


def gradient_norms(model: nn.Module, windows: torch.LongTensor) -> list[float]:
    """Gradient norm by distance for windows of T + 1 tokens: T inputs, and the token after them as loss_T's target."""
    inputs, targets = windows[:, :-1], windows[:, -1]
    was_training = model.training
    model.eval()
    try:
        if isinstance(model, TransformerLMForCausalLM):
            return transformer_gradient_norms(model, inputs, targets)
        recurrent_body(model)  # a clear TypeError for anything else
        return recurrent_gradient_norms(model, inputs, targets)
    finally:
        model.train(was_training)


def ratio(norms: list[float], far: int, near: int = 1) -> float:
    """|grad at distance far| / |grad at distance near|: below 1 vanishing, above 1 exploding."""
    if far >= len(norms):
        raise ValueError(f"distance {far} needs at least {far + 1} steps, got {len(norms)}")
    return norms[far] / norms[near] if norms[near] > 0 else math.nan


def random_token_windows(vocab_size: int, batch_size: int, steps: int, seed: int) -> torch.LongTensor:
    """Uniformly random tokens (avoiding the special ids 0-3): the input at initialisation carries no structure."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(min(4, vocab_size - 1), vocab_size, (batch_size, steps + 1), generator=generator)


def initializer_comparison(
    cells: tuple[str, ...] = ("rnn_tanh", "rnn_relu", "lstm", "gru"),
    initializers: tuple[str, ...] = INITIALIZERS,
    *,
    vocab_size: int = 200,
    hidden_size: int = 64,
    steps: int = 60,
    batch_size: int = 8,
    seed: int = 0,
) -> dict:
    """Gradient norm by distance at initialisation, for every (initialiser, cell) pair, on the same random input."""
    windows = random_token_windows(vocab_size, batch_size, steps, seed)
    results: dict[str, dict[str, list[float]]] = {}
    for initializer in initializers:
        results[initializer] = {}
        for cell in cells:
            model = build_model(cell, vocab_size, hidden_size=hidden_size, initializer=initializer, seed=seed)
            results[initializer][cell] = gradient_norms(model, windows)
    return {
        "hidden_size": hidden_size,
        "steps": steps,
        "batch_size": batch_size,
        "seed": seed,
        "norms": results,
        "ratio_50_to_1": {
            init: {cell: ratio(norms, min(50, steps - 1)) for cell, norms in by_cell.items()}
            for init, by_cell in results.items()
        },
    }


def spectral_radius(model: nn.Module) -> float | None:
    """The largest |eigenvalue| of the last layer's W_hh (per gate block, the largest), None for a Transformer."""
    if isinstance(model, TransformerLMForCausalLM):
        return None
    body = recurrent_body(model)
    w_hh = getattr(body.rnn, f"weight_hh_l{body.config.num_hidden_layers - 1}").detach()
    blocks = w_hh.view(-1, body.config.hidden_size, body.config.hidden_size)
    return max(float(torch.linalg.eigvals(block).abs().max()) for block in blocks)


def train_and_measure(
    cells: tuple[str, ...],
    stream: torch.LongTensor,
    vocab_size: int,
    *,
    hidden_size: int = 64,
    steps: int = 60,
    train_steps: int = 200,
    initializer: str = "uniform",
    batch_size: int = 8,
    seed: int = 0,
) -> dict:
    """Gradient norms by distance for each cell at initialisation and after `train_steps` steps of training.

    The measuring windows are real text from `stream` (the same for every cell), not random tokens.
    """
    windows = random_windows(stream, batch_size, steps + 1, torch.Generator().manual_seed(seed + 1))
    results = {}
    for cell in cells:
        model = build_model(cell, vocab_size, hidden_size=hidden_size, initializer=initializer, seed=seed)
        at_init = gradient_norms(model, windows)
        radius_at_init = spectral_radius(model)
        record = train_language_model(model, stream, steps=train_steps, length=steps, seed=seed, clip_norm=1.0)
        results[cell] = {
            "init": at_init,
            "trained": gradient_norms(model, windows) if record.diverged_at is None else None,
            "spectral_radius_init": radius_at_init,
            "spectral_radius_trained": spectral_radius(model),
            "final_loss": record.losses[-1],
            "train_steps": len(record.losses),
        }
    return {
        "hidden_size": hidden_size,
        "steps": steps,
        "train_steps": train_steps,
        "initializer": initializer,
        "cells": results,
    }


def clipping_experiment(
    stream: torch.LongTensor,
    vocab_size: int,
    *,
    hidden_size: int = 64,
    train_steps: int = 150,
    learning_rate: float = 1.0,
    clip_norm: float = 0.25,
    initializer: str = "orthogonal",
    seed: int = 0,
) -> dict:
    """A relu RNN trained by SGD with and without gradient clipping, from the same weights and batches."""
    runs: dict[str, TrainingRecord] = {}
    for label, clip in (("clipped", clip_norm), ("unclipped", None)):
        model = build_model("rnn_relu", vocab_size, hidden_size=hidden_size, initializer=initializer, seed=seed)
        runs[label] = train_language_model(
            model, stream, steps=train_steps, optimizer="sgd", learning_rate=learning_rate, clip_norm=clip, seed=seed
        )
    return {
        "learning_rate": learning_rate,
        "clip_norm": clip_norm,
        "initializer": initializer,
        "hidden_size": hidden_size,
        "runs": {
            label: {
                "losses": record.losses,
                "gradient_norms": record.gradient_norms,
                "diverged_at": record.diverged_at,
            }
            for label, record in runs.items()
        },
    }
