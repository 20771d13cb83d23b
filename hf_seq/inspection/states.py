"""Per-layer hidden states, LSTM cell states and gate activations for one text, and the Transformer's attention."""

import numpy as np
import torch
from torch import nn

from hf_seq.models.transformer import TransformerLMForCausalLM, TransformerLMModel

from .stepping import GATE_NAMES, recurrent_body, trace_recurrent


def token_labels(tokenizer, input_ids: list[int]) -> list[str]:
    """Readable labels for the tokens: the metaspace '▁' shown as a space, special tokens kept as they are."""
    return [token.replace("▁", " ") if token != "▁" else "␣" for token in tokenizer.convert_ids_to_tokens(input_ids)]


def encode_text(tokenizer, text: str) -> torch.LongTensor:
    return torch.tensor([tokenizer(text)["input_ids"]], dtype=torch.long)


@torch.no_grad()
def states_and_gates(model: nn.Module, input_ids: torch.LongTensor) -> dict:
    """For one sequence (1, time): each layer's h_t, the LSTM's c_t and every gate, as (time, hidden) lists."""
    body = recurrent_body(model)
    traces = trace_recurrent(body, input_ids)
    layers = []
    for trace in traces:
        layer = {"hidden": trace.hidden[0].tolist()}
        if trace.cell is not None:
            layer["cell"] = trace.cell[0].tolist()
        layer["gates"] = {name: value[0].tolist() for name, value in trace.gates.items()}
        layers.append(layer)
    return {"rnn_type": body.config.rnn_type, "gate_names": list(GATE_NAMES[body.config.rnn_type]), "layers": layers}


def units_to_show(hidden: np.ndarray, max_units: int) -> list[int]:
    """The units whose hidden state varies most over the text: the ones with something to show."""
    order = np.argsort(-hidden.std(axis=0), kind="stable")
    return sorted(order[:max_units].tolist())


def states_figure(result: dict, labels: list[str], max_units: int = 24):
    """One row per layer; panels: h, (c,) and each sigmoid gate, over the tokens (the same units in every panel)."""
    from .figures import heatmap, pyplot

    plt = pyplot()
    panel_names = ["hidden"] + (["cell"] if "cell" in result["layers"][0] else [])
    panel_names += [name for name in result["gate_names"] if name != "candidate"]  # gates in (0, 1)
    layers = result["layers"]
    width = max(4.0, 0.22 * len(labels) + 1.5)
    figure, axes = plt.subplots(
        len(layers), len(panel_names), figsize=(width * len(panel_names) / 2, 3.2 * len(layers)), squeeze=False
    )
    for row, layer in enumerate(layers):
        hidden = np.asarray(layer["hidden"])
        units = units_to_show(hidden, max_units)
        for column, name in enumerate(panel_names):
            values = np.asarray(layer[name] if name in ("hidden", "cell") else layer["gates"][name])[:, units].T
            bounded = name not in ("hidden", "cell")
            limit = None if bounded else float(np.abs(values).max() or 1.0)
            heatmap(
                axes[row, column],
                values,
                labels,
                [str(u) for u in units],
                title=f"layer {row} {name}{' gate' if bounded else ''}",
                cmap="viridis" if bounded else "RdBu_r",
                vmin=0.0 if bounded else -limit,
                vmax=1.0 if bounded else limit,
            )
    figure.suptitle(f"{result['rnn_type']} states and gates ({len(units)} most varying units per layer)", fontsize=10)
    return figure


@torch.no_grad()
def transformer_attentions(
    model: nn.Module, input_ids: torch.LongTensor, attention_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Self-attention weights, shaped (layers, batch, heads, target, source), from the eager attention path.

    Other attention kernels never form the weight matrix, so the model is switched to "eager" for this call.
    """
    if not isinstance(model, (TransformerLMForCausalLM, TransformerLMModel)) and not hasattr(model, "model"):
        raise TypeError(f"{type(model).__name__} is not an hf_seq Transformer")
    previous = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        model.eval()
        outputs = model(input_ids=input_ids, attention_mask=attention_mask, output_attentions=True, use_cache=False)
    finally:
        model.set_attn_implementation(previous)
    if not outputs.attentions:
        raise ValueError(f"{type(model).__name__} returned no attention weights")
    return torch.stack(outputs.attentions)


def attention_figure(attentions: torch.Tensor, labels: list[str]):
    """A grid of heatmaps, one per (layer, head), for the first sequence of the batch."""
    from .figures import attention_heatmap, pyplot

    plt = pyplot()
    num_layers, _, num_heads = attentions.shape[:3]
    size = 0.28 * len(labels) + 1.5
    figure, axes = plt.subplots(num_layers, num_heads, figsize=(size * num_heads, size * num_layers), squeeze=False)
    for layer in range(num_layers):
        for head in range(num_heads):
            attention_heatmap(
                attentions[layer, 0, head].numpy(),
                labels,
                labels,
                ax=axes[layer, head],
                title=f"layer {layer} head {head}",
            )
    return figure
