"""A recurrent model run one time step at a time, with everything the fused kernel keeps to itself.

`nn.LSTM` / `nn.GRU` return only each position's output and the final state. To see the gates, the cell state of
every step, or the gradient reaching an intermediate h_t, the same weights are applied step by step here with the
textbook equations (PyTorch's gate order: i, f, g, o for the LSTM; r, z, n for the GRU). A test checks that this
reproduces the fused layer's outputs, so the pictures are of the model that actually runs.
"""

from dataclasses import dataclass, field

import torch
from torch import nn

from hf_seq.models.recurrent import RecurrentModel


# The names of the gate activations recorded per cell, in PyTorch's order of the rows of weight_ih_l{k}.
GATE_NAMES: dict[str, tuple[str, ...]] = {
    "LSTM": ("input", "forget", "candidate", "output"),
    "GRU": ("reset", "update", "candidate"),
    "RNN": (),
}


@dataclass
class LayerTrace:
    """What one layer computed at every step, each tensor shaped (batch, time, hidden_size)."""

    hidden: torch.Tensor
    cell: torch.Tensor | None = None
    gates: dict[str, torch.Tensor] = field(default_factory=dict)
    # The per-step h_t tensors themselves (part of the autograd graph when traced with gradients), so a caller can
    # `retain_grad()` on them and read d loss / d h_t after a backward pass.
    hidden_steps: list[torch.Tensor] = field(default_factory=list)


@dataclass
class LayerWeights:
    w_ih: torch.Tensor
    w_hh: torch.Tensor
    b_ih: torch.Tensor | None
    b_hh: torch.Tensor | None


def recurrent_body(model: nn.Module) -> RecurrentModel:
    """The `RecurrentModel` inside any recurrent head (or the model itself)."""
    body = model if isinstance(model, RecurrentModel) else getattr(model, "model", None)
    if not isinstance(body, RecurrentModel):
        raise TypeError(f"{type(model).__name__} is not an hf_seq recurrent model (RNN, LSTM or GRU)")
    return body


def layer_weights(rnn: nn.RNNBase, layer: int) -> LayerWeights:
    """The parameters of layer `layer` of a fused stack, exactly the tensors the fused kernel uses."""
    return LayerWeights(
        w_ih=getattr(rnn, f"weight_ih_l{layer}"),
        w_hh=getattr(rnn, f"weight_hh_l{layer}"),
        b_ih=getattr(rnn, f"bias_ih_l{layer}", None),
        b_hh=getattr(rnn, f"bias_hh_l{layer}", None),
    )


def _affine(inputs: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return nn.functional.linear(inputs, weight, bias)


def rnn_step(x: torch.Tensor, h: torch.Tensor, w: LayerWeights, nonlinearity: str) -> torch.Tensor:
    """Elman: h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)."""
    pre_activation = _affine(x, w.w_ih, w.b_ih) + _affine(h, w.w_hh, w.b_hh)
    return torch.tanh(pre_activation) if nonlinearity == "tanh" else torch.relu(pre_activation)


def lstm_step(
    x: torch.Tensor, h: torch.Tensor, c: torch.Tensor, w: LayerWeights
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """LSTM: i, f, o = sigma(.), g = tanh(.); c_t = f * c_{t-1} + i * g; h_t = o * tanh(c_t)."""
    pre_activation = _affine(x, w.w_ih, w.b_ih) + _affine(h, w.w_hh, w.b_hh)
    i, f, g, o = pre_activation.chunk(4, dim=-1)
    gates = {
        "input": torch.sigmoid(i),
        "forget": torch.sigmoid(f),
        "candidate": torch.tanh(g),
        "output": torch.sigmoid(o),
    }
    c_next = gates["forget"] * c + gates["input"] * gates["candidate"]
    h_next = gates["output"] * torch.tanh(c_next)
    return h_next, c_next, gates


def gru_step(x: torch.Tensor, h: torch.Tensor, w: LayerWeights) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """GRU (PyTorch's form): r, z = sigma(.); n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); h_t = (1 - z) n + z h."""
    input_part = _affine(x, w.w_ih, w.b_ih).chunk(3, dim=-1)
    hidden_part = _affine(h, w.w_hh, w.b_hh).chunk(3, dim=-1)
    reset = torch.sigmoid(input_part[0] + hidden_part[0])
    update = torch.sigmoid(input_part[1] + hidden_part[1])
    candidate = torch.tanh(input_part[2] + reset * hidden_part[2])
    h_next = (1 - update) * candidate + update * h
    return h_next, {"reset": reset, "update": update, "candidate": candidate}


def _trace_layer(inputs: torch.Tensor, w: LayerWeights, rnn_type: str, nonlinearity: str) -> LayerTrace:
    """One layer over (batch, time, features) inputs from a zero initial state."""
    batch_size, sequence_length = inputs.shape[:2]
    hidden_size = w.w_hh.shape[1]
    h = inputs.new_zeros(batch_size, hidden_size)
    c = inputs.new_zeros(batch_size, hidden_size) if rnn_type == "LSTM" else None
    hidden_steps, cell_steps = [], []
    gate_steps: dict[str, list[torch.Tensor]] = {name: [] for name in GATE_NAMES[rnn_type]}
    for t in range(sequence_length):
        x = inputs[:, t]
        if rnn_type == "LSTM":
            h, c, gates = lstm_step(x, h, c, w)
            cell_steps.append(c)
        elif rnn_type == "GRU":
            h, gates = gru_step(x, h, w)
        else:
            h, gates = rnn_step(x, h, w, nonlinearity), {}
        hidden_steps.append(h)
        for name, value in gates.items():
            gate_steps[name].append(value)
    return LayerTrace(
        hidden=torch.stack(hidden_steps, dim=1),
        cell=torch.stack(cell_steps, dim=1) if cell_steps else None,
        gates={name: torch.stack(values, dim=1) for name, values in gate_steps.items()},
        hidden_steps=hidden_steps,
    )


def trace_recurrent(
    model: nn.Module, input_ids: torch.LongTensor | None = None, inputs_embeds: torch.Tensor | None = None
) -> list[LayerTrace]:
    """Every layer's states and gates for unpadded `input_ids` (batch, time), starting from a zero state.

    Runs with the model's weights in evaluation semantics (no dropout): call under `torch.no_grad()` unless you
    want gradients through the trace. Bidirectional models are refused (a backward pass over time is another trace).
    """
    body = recurrent_body(model)
    config = body.config
    if config.bidirectional:
        raise ValueError("trace_recurrent follows a forward recurrence; bidirectional models are not supported")
    if (input_ids is None) == (inputs_embeds is None):
        raise ValueError("Pass exactly one of `input_ids` or `inputs_embeds`.")
    layer_input = body.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds
    traces = []
    for layer in range(config.num_hidden_layers):
        nonlinearity = getattr(config, "nonlinearity", "tanh")  # only RNNConfig has the field
        trace = _trace_layer(layer_input, layer_weights(body.rnn, layer), config.rnn_type, nonlinearity)
        traces.append(trace)
        layer_input = trace.hidden
    return traces
