"""Interpretable cells: the LSTM cell-state units most correlated with simple properties of the text.

As in Karpathy, Johnson & Fei-Fei (2015), "Visualizing and Understanding Recurrent Networks": a character LSTM LM is
read over reviews, each unit's cell state c_t is correlated (Pearson) with a property of the text read so far, and the
best units are drawn as coloured text. The properties are of the state after reading character t.
"""

import html

import numpy as np
import torch
from torch import nn

from .gradients import build_model
from .stepping import trace_recurrent
from .training import char_tokenizer, token_stream, train_language_model


PROPERTIES = ("inside_quotes", "inside_brackets", "position", "after_laugh")
QUOTES = {'"': '"', "'": "'", "“": "”", "‘": "’"}
BRACKETS = {"(": ")", "[": "]", "{": "}", "<": ">"}
LAUGHS = "ㅋㅎ"


def character_properties(text: str) -> dict[str, np.ndarray]:
    """Per character: inside a quotation / bracket (after reading it), relative position, inside a laughing run.

    `after_laugh` is 1 once at least two ㅋ (or ㅎ) in a row have been read, until the run ends.
    """
    length = len(text)
    inside_quotes = np.zeros(length)
    inside_brackets = np.zeros(length)
    after_laugh = np.zeros(length)
    open_quote: str | None = None
    bracket_depth = 0
    run = 0
    for index, character in enumerate(text):
        if open_quote is not None and character == QUOTES[open_quote]:
            open_quote = None  # the closing mark ends the quotation
        elif open_quote is None and character in QUOTES:
            open_quote = character
        if character in BRACKETS:
            bracket_depth += 1
        elif character in BRACKETS.values() and bracket_depth > 0:
            bracket_depth -= 1
        run = run + 1 if character in LAUGHS else 0
        inside_quotes[index] = open_quote is not None
        inside_brackets[index] = bracket_depth > 0
        after_laugh[index] = run >= 2
    position = (np.arange(length) + 1) / max(length, 1)
    return {
        "inside_quotes": inside_quotes,
        "inside_brackets": inside_brackets,
        "position": position,
        "after_laugh": after_laugh,
    }


def has_marks(text: str) -> bool:
    """Whether the text holds a quotation mark or an opening bracket."""
    return any(character in QUOTES or character in BRACKETS for character in text)


def mark_rich_lines(lines: list[str]) -> list[str]:
    """Every line holding a quotation mark or bracket, each followed by the next line without one (file order).

    In reviews about 1% of the lines hold one and 0.3% of the characters lie inside quotes or brackets: too rare for a
    short training run to learn to track them, or for a correlation over a few hundred reviews to measure. Here half
    the lines hold one.
    """
    plain = (line for line in lines if not has_marks(line))
    mixed = []
    for line in filter(has_marks, lines):
        mixed.append(line)
        following = next(plain, None)
        if following is not None:
            mixed.append(following)
    return mixed


def train_char_lstm(
    lines: list[str],
    *,
    hidden_size: int = 128,
    num_hidden_layers: int = 1,
    steps: int = 300,
    max_seconds: float | None = None,
    batch_size: int = 32,
    length: int = 100,
    seed: int = 0,
):
    """A character-level LSTM LM trained on `lines` (Adam, clipping 1.0). Returns (model, tokenizer, record)."""
    tokenizer = char_tokenizer(lines)
    stream = token_stream(lines, tokenizer)
    model = build_model(
        "lstm",
        len(tokenizer),
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        initializer="xavier",
        seed=seed,
    )
    record = train_language_model(
        model,
        stream,
        steps=steps,
        batch_size=batch_size,
        length=length,
        learning_rate=3e-3,
        max_seconds=max_seconds,
        seed=seed,
    )
    return model, tokenizer, record


def _aligned_batch(tokenizer, texts: list[str]) -> tuple[torch.LongTensor, list[list[int]]]:
    """Texts right-padded into one batch, and for each text the character index of every token (-1: special)."""
    encodings = tokenizer(texts, return_offsets_mapping=True)
    char_indices = [
        [start if end > start else -1 for start, end in offsets] for offsets in encodings["offset_mapping"]
    ]
    longest = max(len(ids) for ids in encodings["input_ids"])
    # Right padding leaves every real position exact: the recurrence never looks ahead.
    batch = torch.full((len(texts), longest), tokenizer.pad_token_id, dtype=torch.long)
    for row, ids in enumerate(encodings["input_ids"]):
        batch[row, : len(ids)] = torch.tensor(ids)
    return batch, char_indices


@torch.no_grad()
def cell_states_and_properties(
    model: nn.Module, tokenizer, texts: list[str]
) -> tuple[np.ndarray, dict[str, np.ndarray], list]:
    """The last layer's c_t (or h_t for RNN/GRU) at every character token, with the properties there.

    Returns (states (tokens, hidden), properties {name: (tokens,)}, per text a list of (character, row index)).
    """
    batch, char_indices = _aligned_batch(tokenizer, texts)
    trace = trace_recurrent(model, batch)[-1]
    states = trace.cell if trace.cell is not None else trace.hidden
    rows, values = [], {name: [] for name in PROPERTIES}
    layout = []
    for text_index, (text, indices) in enumerate(zip(texts, char_indices)):
        properties = character_properties(text)
        seen_characters = set()
        text_layout = []
        for position, char_index in enumerate(indices):
            # Byte-fallback characters span several tokens: use the state after the character's last token.
            if char_index < 0 or (position + 1 < len(indices) and indices[position + 1] == char_index):
                continue
            if char_index in seen_characters:
                continue
            seen_characters.add(char_index)
            text_layout.append((text[char_index], len(rows)))
            rows.append(states[text_index, position].numpy())
            for name in PROPERTIES:
                values[name].append(properties[name][char_index])
        layout.append(text_layout)
    return np.stack(rows), {name: np.asarray(v) for name, v in values.items()}, layout


def pearson_by_unit(states: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Pearson correlation of every column of `states` with `target` (0 where either is constant)."""
    centred_states = states - states.mean(axis=0)
    centred_target = target - target.mean()
    denominator = np.sqrt((centred_states**2).sum(axis=0) * (centred_target**2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (centred_states * centred_target[:, None]).sum(axis=0) / denominator
    return np.nan_to_num(r)


def find_interpretable_cells(model: nn.Module, tokenizer, texts: list[str], top_k: int = 3) -> dict:
    """For each property, the `top_k` units by |r|, with r and how often the property holds."""
    states, properties, _ = cell_states_and_properties(model, tokenizer, texts)
    result = {"num_characters": int(states.shape[0]), "num_texts": len(texts), "properties": {}}
    for name, target in properties.items():
        r = pearson_by_unit(states, target)
        best = np.argsort(-np.abs(r), kind="stable")[:top_k]
        result["properties"][name] = {
            "fraction_true": float(target.mean()),
            "cells": [{"unit": int(unit), "r": float(r[unit])} for unit in best],
        }
    return result


def examples_for(texts: list[str], name: str, count: int = 2) -> list[int]:
    """Indices of texts where the property is visible (for position: the longest texts)."""
    if name == "position":
        return sorted(range(len(texts)), key=lambda i: -len(texts[i]))[:count]
    having = [i for i, text in enumerate(texts) if character_properties(text)[name].any()]
    return (having or list(range(len(texts))))[:count]


def render_rows(
    model: nn.Module, tokenizer, texts: list[str], cells: dict, count: int = 2
) -> list[tuple[str, list[str], list[float]]]:
    """(title, characters, values in [-1, 1]) rows: each property's best unit over a few example texts."""
    states, _, layout = cell_states_and_properties(model, tokenizer, texts)
    rows = []
    for name, found in cells["properties"].items():
        unit, r = found["cells"][0]["unit"], found["cells"][0]["r"]
        scale = float(np.abs(states[:, unit]).max() or 1.0)
        for text_index in examples_for(texts, name, count):
            characters = [character for character, _ in layout[text_index]]
            values = [float(states[row, unit]) / scale for _, row in layout[text_index]]
            rows.append((f"{name}: cell {unit} (r = {r:+.2f})", characters, values))
    return rows


def _colour(value: float) -> str:
    """White at 0, towards red for +1 and blue for -1."""
    fade = int(255 * (1 - min(abs(value), 1.0)))
    return f"rgb(255,{fade},{fade})" if value >= 0 else f"rgb({fade},{fade},255)"


def rows_to_html(rows: list[tuple[str, list[str], list[float]]]) -> str:
    """The same rows as an HTML page: each character on a background from blue (-1) to red (+1)."""
    parts = [
        "<!doctype html><meta charset='utf-8'><title>Interpretable cells</title>",
        "<body style='font-family: monospace'>",
    ]
    for title, characters, values in rows:
        spans = []
        for character, value in zip(characters, values):
            spans.append(f"<span style='background: {_colour(value)}'>{html.escape(character)}</span>")
        parts.append(f"<h4>{html.escape(title)}</h4><p>{''.join(spans)}</p>")
    parts.append("</body>")
    return "\n".join(parts)
