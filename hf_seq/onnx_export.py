"""Exporting saved models to ONNX, for onnxruntime and other ONNX runtimes.

`export_onnx(model_dir, output_dir)` writes `model.onnx` with the folder's tokenizer and config.json beside it:

| model                         | inputs                                                  | outputs                                 |
|-------------------------------|---------------------------------------------------------|-----------------------------------------|
| recurrent causal LM           | input_ids, attention_mask, past_hidden (, past_cell)    | logits, present_hidden (, present_cell) |
| Transformer causal LM         | input_ids, attention_mask, past_key_0, past_value_0...  | logits, present_key_0, present_value_0. |
| sequence / token classifier   | input_ids, attention_mask                               | logits                                  |

Batch and sequence length are dynamic; padding may be on either side (the attention mask says where). A recurrent
LM's state (h, and c for an LSTM: `(num_hidden_layers, batch, hidden_size)`, zeros to start) is an explicit input and
output, so a decode loop feeds one token and the state of the step before: `greedy_generate` is such a loop in
onnxruntime. The Transformer LM takes and returns its key/value cache per layer (`(batch, heads, length, head_dim)`;
empty, length 0, on the first call), and its attention mask covers the cached positions and the new ones, as in
transformers; `with_cache=False` exports the plain (ids, mask) -> logits graph instead.

The graphs are traced with PyTorch's TorchScript-based exporter (`torch.onnx.export(..., dynamo=False)`): it maps a
packed `nn.LSTM`/`nn.GRU`/`nn.RNN` to ONNX's LSTM/GRU/RNN operator with per-row sequence lengths, which
`torch.export` (the dynamo exporter) cannot trace. For the recurrent families the body is exported through
`ExportableRecurrentModel`, which computes what `RecurrentModel.forward` computes from the same weights (padding
moved behind the real tokens with a scatter, as ONNX has no stable sort); the heads above it are the model's own.
After the export the graph is run in onnxruntime on left- and right-padded batches and compared with the PyTorch
model (`check=True`, atol 1e-4).
"""

import copy
import os
import shutil
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    DynamicCache,
)
from transformers.modeling_outputs import BaseModelOutputWithPast

from .models.recurrent.cache_recurrent import RecurrentCache, cache_keyword, cache_of
from .models.recurrent.modeling_recurrent import embedded_inputs
from .training.common import RECURRENT_MODEL_TYPES, load_saved_model, load_tokenizer, read_model_config


ONNX_TASKS = {
    "text-generation": AutoModelForCausalLM,
    "text-classification": AutoModelForSequenceClassification,
    "token-classification": AutoModelForTokenClassification,
}
TASK_OF_ARCHITECTURE = {
    "ForCausalLM": "text-generation",
    "ForSequenceClassification": "text-classification",
    "ForTokenClassification": "token-classification",
}
ONNX_FILE_NAME = "model.onnx"
DEFAULT_ATOL = 1e-4


@dataclass
class OnnxExport:
    """What `export_onnx` wrote: the graph's path, its task, input and output names, and (when checked) the largest
    difference between onnxruntime's outputs and PyTorch's."""

    onnx_path: str
    task: str
    input_names: list = field(default_factory=list)
    output_names: list = field(default_factory=list)
    max_difference: float | None = None


def export_onnx(
    model_dir,
    output_dir,
    task=None,
    opset=17,
    with_cache=True,
    overwrite=False,
    check=True,
    atol=DEFAULT_ATOL,
    trust_remote_code=False,
):
    """Export the model of `model_dir` to `output_dir/model.onnx`, with its tokenizer and config.json beside it.

    Args:
        model_dir: a saved causal LM, sequence classifier or token classifier (RNN, LSTM, GRU or Transformer).
        output_dir: a new or empty folder (a non-empty one is emptied only with `overwrite`); never the model's own.
        task: "text-generation", "text-classification" or "token-classification"; default the folder's head.
        opset: the ONNX opset version (17 or newer: the Transformer's LayerNorm is one operator from 17 on).
        with_cache: a Transformer LM takes and returns its key/value cache (a recurrent LM always carries its state).
        check: run the graph in onnxruntime on padded batches and raise ValueError if its outputs differ from the
            PyTorch model's by more than `atol`.
        trust_remote_code: load a folder whose model_type is neither hf-seq's nor transformers' (runs its code).

    Returns:
        An `OnnxExport`.
    """
    _require("onnx", "export to ONNX")
    if check:
        _require("onnxruntime", "check the exported graph (or pass check=False / --no_check)")
    if not os.path.isdir(model_dir):
        raise FileNotFoundError(f"model folder not found: {model_dir}")
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < 17:
        raise ValueError(f"opset must be a whole number >= 17, got {opset!r}")
    task = _task(model_dir, task, trust_remote_code)
    _prepare_output_dir(output_dir, model_dir, overwrite)
    tokenizer = load_tokenizer(model_dir, trust_remote_code=trust_remote_code)
    model = load_saved_model(model_dir, ONNX_TASKS[task], trust_remote_code=trust_remote_code).float().eval()
    if getattr(model.config, "bidirectional", False) and task == "text-generation":
        raise ValueError(f"{model_dir} is bidirectional: it has no causal LM to export")
    onnx_path = os.path.join(output_dir, ONNX_FILE_NAME)
    input_names, output_names = export_model(model, task, onnx_path, opset, with_cache)
    tokenizer.save_pretrained(output_dir)
    model.config.save_pretrained(output_dir)
    export = OnnxExport(onnx_path, task, input_names, output_names)
    if check:
        export.max_difference = compare_with_pytorch(onnx_path, model, task, with_cache)
        if not export.max_difference <= atol:
            raise ValueError(
                f"the exported graph's outputs differ from PyTorch's by {export.max_difference:.2e} (more than "
                f"{atol}): export with another opset, or report the model's configuration"
            )
    return export


def export_model(model, task, onnx_path, opset=17, with_cache=True):
    """Trace `model` (an fp32 model in memory, left unchanged) for `task` into the file `onnx_path`; returns the
    graph's input and output names. `export_onnx` does this for a saved folder, with its checks."""
    module = exportable_module(model, task, with_cache)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(
            module,
            example_inputs(model, module),
            onnx_path,
            input_names=module.input_names,
            output_names=module.output_names,
            dynamic_axes=module.dynamic_axes(),
            opset_version=opset,
            dynamo=False,
            # Folding would store a transposed copy of a tied output layer beside the embedding it shares;
            # onnxruntime folds such constants itself when it loads the graph, in memory.
            do_constant_folding=False,
        )
    return module.input_names, module.output_names


def _require(package, purpose):
    try:
        __import__(package)
    except ImportError:
        raise ImportError(
            f"{package} is needed to {purpose}: pip install 'hf-seq[onnx]' (onnx, onnxruntime)"
        ) from None


def _task(model_dir, task, trust_remote_code):
    config, _ = read_model_config(model_dir, trust_remote_code=trust_remote_code)
    if task is not None:
        if task not in ONNX_TASKS:
            raise ValueError(f"task must be one of {list(ONNX_TASKS)}, got {task!r}")
        return task
    architecture = (getattr(config, "architectures", None) or [""])[0]
    found = next((task for end, task in TASK_OF_ARCHITECTURE.items() if architecture.endswith(end)), None)
    if found is None:
        raise ValueError(
            f"{model_dir} holds a {architecture or 'model of no named architecture'}; ONNX export covers causal LMs, "
            f"sequence and token classifiers: give one of those, or task= one of {list(ONNX_TASKS)}"
        )
    return found


def _prepare_output_dir(output_dir, model_dir, overwrite):
    output, model = os.path.realpath(output_dir), os.path.realpath(model_dir)
    if output == model or model.startswith(output + os.sep):
        raise ValueError(f"the output folder {output_dir} is or holds the model folder {model_dir}: choose another")
    if os.path.isfile(output_dir):
        raise NotADirectoryError(f"{output_dir} is a file: give a folder for the ONNX export")
    if os.path.isdir(output_dir) and os.listdir(output_dir):
        if not overwrite:
            raise FileExistsError(
                f"{output_dir} is not empty: choose a new folder, or pass --overwrite (overwrite=True) to replace it"
            )
        shutil.rmtree(output_dir)
    os.makedirs(output_dir, exist_ok=True)


# ---------------------------------------------------------------------------------------------------------------------
# The exported modules
# ---------------------------------------------------------------------------------------------------------------------


def _real_tokens_first(attention_mask):
    """For each position, where its token goes when each row's real tokens are moved to the front (in order) and the
    padding behind them; and each row's number of real tokens. (A permutation per row, built from cumulative sums.)"""
    mask = attention_mask.long()
    lengths = mask.sum(dim=1)
    real_destination = mask.cumsum(dim=1) - 1
    padding_destination = lengths.unsqueeze(1) + (1 - mask).cumsum(dim=1) - 1
    return torch.where(mask.bool(), real_destination, padding_destination), lengths


class ExportableRecurrentModel(nn.Module):
    """`RecurrentModel.forward` (eval mode) in operations the ONNX exporter traces, on the same modules and weights.

    The real tokens of each row are scattered to its front, packed with their lengths (ONNX's RNN operators take
    per-row sequence lengths), run through the fused `nn.LSTM`/`nn.GRU`/`nn.RNN`, and gathered back to their
    positions, with zeros on padding; a row of padding only keeps its initial state, as in the model.
    """

    def __init__(self, model):
        super().__init__()
        self.config = model.config
        self.embed_tokens = model.embed_tokens
        self.ngram_embeddings = model.ngram_embeddings
        self.rnn = model.rnn

    def forward(self, input_ids=None, attention_mask=None, cache=None, inputs_embeds=None, use_cache=None, **kwargs):
        hidden_states = embedded_inputs(self, input_ids, attention_mask, inputs_embeds)
        if attention_mask is None:
            attention_mask = torch.ones(hidden_states.shape[:2], dtype=torch.long, device=hidden_states.device)
        attention_mask = attention_mask[:, -hidden_states.shape[1] :]
        is_lstm = self.config.rnn_type == "LSTM"
        initial_state = cache.as_tuple() if cache is not None else None

        destination, lengths = _real_tokens_first(attention_mask)
        index = destination.unsqueeze(-1).expand_as(hidden_states)
        compact = torch.zeros_like(hidden_states).scatter(1, index, hidden_states)
        packed = pack_padded_sequence(compact, lengths.clamp(min=1), batch_first=True, enforce_sorted=False)
        packed_outputs, final_state = self.rnn(packed, initial_state)
        outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True, total_length=hidden_states.shape[1])
        outputs = outputs.gather(1, destination.unsqueeze(-1).expand(-1, -1, outputs.shape[-1]))
        outputs = outputs * attention_mask.unsqueeze(-1).to(outputs.dtype)

        hidden, cell = final_state if is_lstm else (final_state, None)
        if initial_state is not None:  # a row of padding only was run on one dummy position: undo that
            empty_rows = (lengths == 0).view(1, -1, 1)
            initial_hidden, initial_cell = initial_state if is_lstm else (initial_state, None)
            hidden = torch.where(empty_rows, initial_hidden, hidden)
            cell = torch.where(empty_rows, initial_cell, cell) if is_lstm else None
        new_cache = None
        if use_cache:
            new_cache = RecurrentCache(self.config.num_hidden_layers, has_cell_state=is_lstm)
            new_cache.update_state(hidden, cell, hidden_states.shape[1])
        return BaseModelOutputWithPast(last_hidden_state=outputs, **cache_keyword(new_cache))


class RecurrentLanguageModelForOnnx(nn.Module):
    """A recurrent causal LM as a function of flat tensors: (ids, mask, h[, c]) -> (logits, h'[, c'])."""

    def __init__(self, model):
        super().__init__()
        self.model = copy.deepcopy(model)
        self.model.model = ExportableRecurrentModel(self.model.model)
        self.has_cell_state = model.config.rnn_type == "LSTM"
        states = ["hidden", "cell"] if self.has_cell_state else ["hidden"]
        self.input_names = ["input_ids", "attention_mask", *(f"past_{state}" for state in states)]
        self.output_names = ["logits", *(f"present_{state}" for state in states)]

    def dynamic_axes(self):
        axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}}
        axes["logits"] = {0: "batch", 1: "sequence"}
        axes.update({name: {1: "batch"} for name in self.input_names[2:] + self.output_names[1:]})
        return axes

    def forward(self, input_ids, attention_mask, past_hidden, past_cell=None):
        cache = RecurrentCache.from_state(past_hidden, past_cell)
        outputs = self.model(input_ids=input_ids, attention_mask=attention_mask, cache=cache, use_cache=True)
        state = cache_of(outputs)
        return (outputs.logits, state.hidden, state.cell) if self.has_cell_state else (outputs.logits, state.hidden)


class LogitsForOnnx(nn.Module):
    """A model as a function (ids, mask) -> logits: a classifier, or a Transformer LM without a cache."""

    input_names = ["input_ids", "attention_mask"]
    output_names = ["logits"]

    def __init__(self, model, task):
        super().__init__()
        self.model = copy.deepcopy(model)
        if self.model.config.model_type in RECURRENT_MODEL_TYPES:
            self.model.model = ExportableRecurrentModel(self.model.model)
        elif hasattr(self.model, "set_attn_implementation"):
            self.model.set_attn_implementation("eager")  # plain matmul and softmax: every runtime has them
        self.extra_arguments = {"use_cache": False} if task == "text-generation" else {}
        self.token_level = task != "text-classification"

    def dynamic_axes(self):
        axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}}
        axes["logits"] = {0: "batch", 1: "sequence"} if self.token_level else {0: "batch"}
        return axes

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask, **self.extra_arguments).logits


class TransformerLanguageModelForOnnx(nn.Module):
    """A Transformer LM with its key/value cache as flat tensors: (ids, mask, k_0, v_0, ...) -> (logits, k_0', ...).

    The mask covers the cached positions and the new ones; the returned cache holds both.
    """

    def __init__(self, model):
        super().__init__()
        self.model = copy.deepcopy(model)
        self.model.set_attn_implementation("eager")
        self.num_layers = model.config.num_hidden_layers
        cache_names = [f"{kind}_{layer}" for layer in range(self.num_layers) for kind in ("key", "value")]
        self.input_names = ["input_ids", "attention_mask", *(f"past_{name}" for name in cache_names)]
        self.output_names = ["logits", *(f"present_{name}" for name in cache_names)]

    def dynamic_axes(self):
        axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "total_sequence"}}
        axes["logits"] = {0: "batch", 1: "sequence"}
        axes.update({name: {0: "batch", 2: "past_sequence"} for name in self.input_names[2:]})
        axes.update({name: {0: "batch", 2: "total_sequence"} for name in self.output_names[1:]})
        return axes

    def forward(self, input_ids, attention_mask, *past):
        cache = DynamicCache(config=self.model.config)
        for layer in range(self.num_layers):
            cache.update(past[2 * layer], past[2 * layer + 1], layer)
        outputs = self.model(input_ids=input_ids, attention_mask=attention_mask, cache=cache, use_cache=True)
        present = [tensor for layer in cache_of(outputs).layers for tensor in (layer.keys, layer.values)]
        return (outputs.logits, *present)


def exportable_module(model, task, with_cache=True):
    """The module `export_onnx` traces for `model` (left unchanged: the module holds a copy)."""
    if task == "text-generation" and model.config.model_type in RECURRENT_MODEL_TYPES:
        return RecurrentLanguageModelForOnnx(model).eval()
    if task == "text-generation" and with_cache:
        return TransformerLanguageModelForOnnx(model).eval()
    return LogitsForOnnx(model, task).eval()


def _key_value_shape(config, batch_size, length):
    heads = config.num_attention_heads
    return (batch_size, heads, length, config.hidden_size // heads)


def _state_shape(config, batch_size):
    return (config.num_hidden_layers, batch_size, config.hidden_size)


def padded_batch(config, lengths, padding_side="right", seed=0):
    """Random token ids (not special ids) of the given lengths, padded on `padding_side`: (input_ids, mask)."""
    generator = torch.Generator().manual_seed(seed)
    longest = max(lengths)
    low = min(4, config.vocab_size - 1)
    input_ids = torch.randint(low, config.vocab_size, (len(lengths), longest), generator=generator)
    attention_mask = torch.zeros(len(lengths), longest, dtype=torch.long)
    for row, length in enumerate(lengths):
        if padding_side == "left":
            attention_mask[row, longest - length :] = 1
        else:
            attention_mask[row, :length] = 1
    pad = config.pad_token_id if config.pad_token_id is not None else 0
    return input_ids.masked_fill(attention_mask == 0, pad), attention_mask


def example_inputs(model, module):
    """The inputs the graph is traced with: a padded batch (so no shortcut for unpadded inputs is traced) and, for a
    recurrent LM, a non-zero state."""
    input_ids, attention_mask = padded_batch(model.config, [5, 3], "right")
    if isinstance(module, TransformerLanguageModelForOnnx):  # a non-empty cache, so its length is traced
        generator = torch.Generator().manual_seed(0)
        past = [torch.randn(_key_value_shape(model.config, 2, 2), generator=generator) for _ in module.input_names[2:]]
        return (input_ids, torch.cat([torch.ones(2, 2, dtype=torch.long), attention_mask], dim=1), *past)
    if not isinstance(module, RecurrentLanguageModelForOnnx):
        return (input_ids, attention_mask)
    state = torch.randn(_state_shape(model.config, 2), generator=torch.Generator().manual_seed(0))
    return (
        (input_ids, attention_mask, state, state.clone())
        if module.has_cell_state
        else (input_ids, attention_mask, state)
    )


# ---------------------------------------------------------------------------------------------------------------------
# Running and checking the graph in onnxruntime
# ---------------------------------------------------------------------------------------------------------------------


def onnx_session(onnx_path, num_threads=None):
    """An onnxruntime session on the CPU; `num_threads` threads per operator (default: onnxruntime's choice)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only
    if num_threads is not None:
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])


def _as_session(session_or_path):
    return onnx_session(session_or_path) if isinstance(session_or_path, (str, os.PathLike)) else session_or_path


def _state_inputs(session, batch_size):
    """What a first call starts from: zero recurrent states (their layer and size dimensions are fixed in the graph),
    or an empty key/value cache (length 0)."""
    states = {}
    for graph_input in session.get_inputs():
        if graph_input.name.startswith(("past_key_", "past_value_")):
            _, heads, _, head_dim = graph_input.shape
            states[graph_input.name] = np.zeros((batch_size, heads, 0, head_dim), dtype=np.float32)
        elif graph_input.name.startswith("past_"):
            layers, _, size = graph_input.shape
            states[graph_input.name] = np.zeros((layers, batch_size, size), dtype=np.float32)
    return states


def run_onnx(session_or_path, input_ids, attention_mask, state=None):
    """The graph's outputs as a dict of numpy arrays; a recurrent LM starts from `state` (a dict of `past_*`
    arrays) or zeros."""
    session = _as_session(session_or_path)
    feed = {"input_ids": np.asarray(input_ids, dtype=np.int64), "attention_mask": np.asarray(attention_mask, np.int64)}
    feed.update(state if state is not None else _state_inputs(session, feed["input_ids"].shape[0]))
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(names, feed)))


def greedy_generate(session_or_path, input_ids, attention_mask, max_new_tokens, eos_token_id=None, pad_token_id=0):
    """Greedy decoding in onnxruntime, as `model.generate(do_sample=False)` does it: returns the new tokens
    (batch x max_new_tokens; a row that has written eos goes on with `pad_token_id`).

    A recurrent LM reads the (left- or right-padded) prompts once, then one token per step with the state of the step
    before; so does a Transformer LM exported with its cache (its mask growing by one position a step); one exported
    without re-reads the whole sequence at each step.
    """
    session = _as_session(session_or_path)
    input_ids, attention_mask = np.asarray(input_ids, np.int64), np.asarray(attention_mask, np.int64)
    batch_size = input_ids.shape[0]
    input_names = [graph_input.name for graph_input in session.get_inputs()]
    carries_state = any(name.startswith("past_") for name in input_names)
    key_value_cache = any(name.startswith("past_key_") for name in input_names)
    outputs = run_onnx(session, input_ids, attention_mask)
    positions = np.arange(input_ids.shape[1])
    last_real = np.where(attention_mask.astype(bool), positions, -1).max(axis=1).clip(min=0)
    next_logits = outputs["logits"][np.arange(batch_size), last_real]
    finished = np.zeros(batch_size, dtype=bool)
    new_tokens = []
    for _ in range(max_new_tokens):
        tokens = next_logits.argmax(axis=-1).astype(np.int64)
        tokens = np.where(finished, pad_token_id, tokens)
        new_tokens.append(tokens)
        if eos_token_id is not None:
            finished |= tokens == eos_token_id
        step_ids, step_mask = tokens[:, None], np.ones((batch_size, 1), dtype=np.int64)
        if carries_state:
            state = {name.replace("present_", "past_"): value for name, value in outputs.items() if name != "logits"}
            if key_value_cache:
                attention_mask = np.concatenate([attention_mask, step_mask], axis=1)
            outputs = run_onnx(session, step_ids, attention_mask if key_value_cache else step_mask, state)
            next_logits = outputs["logits"][:, -1]
        else:
            input_ids = np.concatenate([input_ids, step_ids], axis=1)
            attention_mask = np.concatenate([attention_mask, step_mask], axis=1)
            next_logits = run_onnx(session, input_ids, attention_mask)["logits"][:, -1]
    return np.stack(new_tokens, axis=1)


@torch.no_grad()
def compare_with_pytorch(onnx_path, model, task, with_cache=True, lengths=(6, 2, 4)):
    """The largest difference between onnxruntime's outputs and the PyTorch model's, on right- and left-padded
    batches (and, for a recurrent LM, a non-zero initial state; for a Transformer LM's cache, one more step fed
    with the cache returned); token-level logits are compared at real tokens."""
    session = onnx_session(onnx_path)
    largest = 0.0
    for seed, padding_side in enumerate(("right", "left")):
        input_ids, attention_mask = padded_batch(model.config, list(lengths), padding_side, seed=seed)
        real = attention_mask.bool().numpy()
        if task == "text-generation" and model.config.model_type in RECURRENT_MODEL_TYPES:
            generator = torch.Generator().manual_seed(seed)
            hidden = torch.randn(_state_shape(model.config, len(lengths)), generator=generator)
            cell = torch.randn(hidden.shape, generator=generator) if model.config.rnn_type == "LSTM" else None
            cache = RecurrentCache.from_state(hidden.clone(), None if cell is None else cell.clone())
            expected = model(input_ids=input_ids, attention_mask=attention_mask, cache=cache, use_cache=True)
            state = {"past_hidden": hidden.numpy()}
            if cell is not None:
                state["past_cell"] = cell.numpy()
            got = run_onnx(session, input_ids, attention_mask, state)
            largest = max(largest, _difference(got["logits"][real], expected.logits.numpy()[real]))
            largest = max(largest, _difference(got["present_hidden"], cache_of(expected).hidden.numpy()))
            if cell is not None:
                largest = max(largest, _difference(got["present_cell"], cache_of(expected).cell.numpy()))
            continue
        arguments = {"use_cache": False} if task == "text-generation" else {}
        expected = model(input_ids=input_ids, attention_mask=attention_mask, **arguments).logits.numpy()
        outputs = run_onnx(session, input_ids, attention_mask)
        got = outputs["logits"]
        if task != "text-classification":
            got, expected = got[real], expected[real]
        largest = max(largest, _difference(got, expected))
        if task == "text-generation" and with_cache:
            largest = max(largest, _cached_step_difference(session, model, input_ids, attention_mask, outputs))
    return largest


def _cached_step_difference(session, model, input_ids, attention_mask, outputs):
    """One more token fed with the cache onnxruntime returned, against PyTorch reading the whole sequence."""
    next_ids = input_ids[:, -1:].flip(0)
    full_ids = torch.cat([input_ids, next_ids], dim=1)
    full_mask = torch.cat([attention_mask, torch.ones_like(next_ids)], dim=1)
    expected = model(input_ids=full_ids, attention_mask=full_mask, use_cache=False).logits[:, -1].numpy()
    state = {name.replace("present_", "past_"): value for name, value in outputs.items() if name != "logits"}
    got = run_onnx(session, next_ids, full_mask, state)["logits"][:, -1]
    return _difference(got, expected)


def _difference(got, expected):
    return float(np.abs(np.asarray(got, dtype=np.float64) - np.asarray(expected, dtype=np.float64)).max())
