"""Recurrent language models (Elman RNN, LSTM, GRU) as Hugging Face models.

One implementation serves the three cells, as pytorch/examples' word_language_model does: the cell is chosen by
name (`nn.RNN`, `nn.LSTM`, `nn.GRU`). Training runs the fused module (cuDNN on a GPU); a single decode step runs the
cell functions (`torch.lstm_cell`, ...) on the same weights, which is far cheaper than a fused call of length one, and
on CPU reads each weight matrix from a transposed copy (see `_inference_weight`).
The recurrent state travels between calls in a `RecurrentCache` (`cache=`, returned as `outputs.cache`), so
`generate()` costs O(1) per new token. `output_hidden_states=True` and gradient checkpointing run the same weights
one layer at a time. A decode step compiles as one graph (`torch.compile(model, fullgraph=True)`) once Dynamo is
allowed to look at the recurrent module (`torch._dynamo.config.allow_rnn = True`): the step reads only its weights.

The per-cell classes at the end of the file (`LSTMForCausalLM`, ...) only bind the shared classes to their config.
"""

import math
import re

import torch
from torch import nn
from torch.func import functional_call
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import (
    BaseModelOutputWithPast,
    CausalLMOutputWithPast,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs, can_return_tuple
from transformers.utils.generic import merge_with_config_defaults

from .cache_recurrent import CACHE_NAME, RecurrentCache, accepts_cache_aliases, cache_keyword, cache_of
from .configuration_recurrent import GRUConfig, LSTMConfig, RecurrentConfig, RNNConfig


class RecurrentPreTrainedModel(PreTrainedModel):
    config_class = RecurrentConfig
    config: RecurrentConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _is_stateful = True  # the state cannot be rolled back, so assisted generation is refused
    _no_split_modules = []

    def __init__(self, config: RecurrentConfig, *inputs, **kwargs):
        # Fields set after construction were checked one by one when set; the rules tying fields together run here,
        # before any layer is built from them.
        config.validate()
        super().__init__(config, *inputs, **kwargs)

    @classmethod
    def _supports_default_dynamic_cache(cls):
        # generate() would otherwise build a DynamicCache, which cannot hold a recurrent state.
        return False

    def _apply(self, fn, recurse=True):
        # `.to()`, `.half()`, ... give the weights new tensors: drop the decode-time copies of the old ones now,
        # rather than holding their memory until the next forward remakes them.
        for module in self.modules():
            module.__dict__.pop("_transposed_weights", None)
        return super()._apply(fn, recurse)

    def _init_weights(self, module):
        config = self.config
        scheme, r = config.initializer, config.initializer_range
        if isinstance(module, nn.Embedding):
            if scheme == "uniform":
                init.uniform_(module.weight, -r, r)
            else:
                init.xavier_uniform_(module.weight)
            if module.padding_idx is not None and not getattr(module.weight, "_is_hf_initialized", False):
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.Linear):
            if scheme == "uniform":
                init.uniform_(module.weight, -r, r)
            elif scheme == "kaiming":
                init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            else:
                init.xavier_uniform_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, (nn.RNN, nn.LSTM, nn.GRU)):
            self._init_recurrent_weights(module, scheme)

    def _init_recurrent_weights(self, rnn, scheme):
        bound = 1.0 / math.sqrt(rnn.hidden_size)
        num_gates = rnn.weight_hh_l0.shape[0] // rnn.hidden_size  # 4 for LSTM, 3 for GRU, 1 for RNN
        for name, param in rnn.named_parameters():
            if getattr(param, "_is_hf_initialized", False):  # loaded from a checkpoint: keep it
                continue
            if scheme == "uniform":  # torch's own default, which pytorch/examples keeps for the recurrent layers
                init.uniform_(param, -bound, bound)
            elif name.startswith("bias"):
                init.zeros_(param)
                if isinstance(rnn, nn.LSTM):
                    with torch.no_grad():  # forget-gate bias 1 (split across b_ih and b_hh): remember by default
                        param[rnn.hidden_size : 2 * rnn.hidden_size].fill_(0.5)
            elif scheme == "kaiming":
                init.kaiming_uniform_(param, nonlinearity="relu")
            elif scheme == "orthogonal" and name.startswith("weight_hh"):
                # One orthogonal matrix per gate keeps the recurrent map norm-preserving (Saxe et al., 2014).
                for gate in param.view(num_gates, rnn.hidden_size, rnn.hidden_size).unbind(0):
                    init.orthogonal_(gate)
            else:
                init.xavier_uniform_(param)


def _validate_input_ids(config, input_ids, inputs_embeds, past_length):
    """Exactly one of `input_ids` and `inputs_embeds`; ids shaped (batch_size, sequence_length), in the vocabulary."""
    if (input_ids is None) == (inputs_embeds is None):
        raise ValueError("Pass exactly one of `input_ids` or `inputs_embeds`.")
    if input_ids is None:
        return
    if input_ids.dim() != 2:
        raise ValueError(f"`input_ids` must have shape (batch_size, sequence_length), got {tuple(input_ids.shape)}")
    # The range check reads the ids back from the device: done on a call's first step (no cache yet), where a wrong
    # tokenizer shows, not on every decode step, and never while compiling (it would break the graph).
    if input_ids.numel() and past_length == 0 and not torch.compiler.is_compiling():
        smallest, largest = torch.stack(torch.aminmax(input_ids)).tolist()  # one read-back, not two
        if smallest < 0 or largest >= config.vocab_size:
            raise ValueError(
                f"`input_ids` holds ids outside the vocabulary [0, {config.vocab_size}): min {smallest}, "
                f"max {largest}. Was the model built for this tokenizer?"
            )


def _validate_inputs(config, input_ids, inputs_embeds, attention_mask, past_length=0):
    _validate_input_ids(config, input_ids, inputs_embeds, past_length)
    shape = tuple((input_ids if input_ids is not None else inputs_embeds).shape[:2])
    # As in transformers' models, the mask may cover the cached positions too (generate passes it that way). (A tuple,
    # not a set: hashing would fix `past_length` to one value in a compiled graph, recompiling it at every step.)
    allowed = (shape, (shape[0], past_length + shape[1]))
    if attention_mask is not None and tuple(attention_mask.shape) not in allowed:
        raise ValueError(
            f"`attention_mask` has shape {tuple(attention_mask.shape)} but the inputs have shape {shape}"
            + (f" after {past_length} cached positions" if past_length else "")
        )
    if shape[1] == 0:
        raise ValueError("The input sequence is empty (sequence_length 0).")


# The keyword arguments transformers may pass any model (`num_items_in_batch`, `output_attentions`, ...).
KNOWN_MODEL_KWARGS = frozenset(TransformersKwargs.__annotations__)


def _reject_unknown_kwargs(model_class, kwargs):
    """A misspelled argument must fail, not vanish into `**kwargs` (as a renamed cache argument once did)."""
    unknown = sorted(set(kwargs) - KNOWN_MODEL_KWARGS)
    if unknown:
        raise TypeError(f"{model_class.__name__}.forward() got unexpected keyword arguments: {', '.join(unknown)}")


def _packed_real_tokens(inputs, attention_mask):
    """The real tokens of each row moved to the front (keeping their order) and packed, wherever the padding is.

    Returns the packed sequence and the index that puts each compacted position back where its token was.
    """
    mask = attention_mask.bool()
    lengths = mask.sum(dim=1)
    # A stable sort of "is padding" lists each row's real positions first, in order.
    order = torch.sort((~mask).to(torch.int8), dim=1, stable=True).indices
    gather_index = order.unsqueeze(-1)
    compact = inputs.gather(1, gather_index.expand_as(inputs))
    packed = pack_padded_sequence(compact, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
    return packed, gather_index


def _unpack_to_token_positions(packed_outputs, gather_index, attention_mask):
    """Undo `_packed_real_tokens` on a layer's outputs: each output back at its token's position, 0 on padding."""
    mask = attention_mask.bool()
    compact, _ = pad_packed_sequence(packed_outputs, batch_first=True, total_length=mask.shape[1])
    outputs = torch.zeros_like(compact).scatter(1, gather_index.expand_as(compact), compact)
    return outputs * mask.unsqueeze(-1).to(outputs.dtype)


def _keep_initial_state_of_empty_rows(final_state, initial_state, attention_mask):
    """A row of padding only was run on one dummy position (packing needs length >= 1): give it back its old state."""
    empty_rows = ~attention_mask.bool().any(dim=1)
    if not bool(empty_rows.any()):
        return final_state

    def restore(final, initial):
        initial = torch.zeros_like(final) if initial is None else initial
        return torch.where(empty_rows.view(1, -1, 1), initial, final)

    if isinstance(final_state, tuple):
        initial = initial_state if initial_state is not None else (None, None)
        return restore(final_state[0], initial[0]), restore(final_state[1], initial[1])
    return restore(final_state, initial_state)


# A product with at most this many rows (one position of a small batch: a decode step) reads its weight from a
# transposed copy; a longer one (a whole sequence) is a matrix-matrix product that MKL runs as fast on either layout.
FEW_ROWS = 32


def _reads_transposed(weight: torch.Tensor, rows: int) -> bool:
    """Whether a product of `rows` rows with `weight` takes its weight from `_inference_weight`: on CPU, outside
    compilation, when no gradient must reach the weight (`torch.no_grad()`, `generate()`, or a frozen weight)."""
    return (
        not torch.compiler.is_compiling()  # first: the checks below would break a compiled graph
        and rows <= FEW_ROWS
        and weight.device.type == "cpu"
        and not (weight.requires_grad and torch.is_grad_enabled())
        and not weight.is_inference()
    )


def _inference_weight(module: nn.Module, name: str, parts: int = 1) -> torch.Tensor:
    """The weight `module.<name>` (out, in), as the transposed view of a contiguous (in, out) copy of it; with
    `parts` > 1, that copy cut by columns into `parts` equal blocks, shaped (parts, in, out / parts rounded up) and
    zero-padded, for `_split_linear` (a bias (out,) is cut the same way, shaped (parts, 1, out / parts rounded up)).

    A decode step multiplies one row per sequence by every weight matrix, so its speed is how fast the weights stream
    from memory. On CPU (torch 2.13, MKL) `F.linear(x, W)` with W stored (out, in) ran such products at about a quarter
    of the memory bandwidth, and the same product on W stored (in, out) near it (the Transformer family stores its
    projections that way for this reason). The copy is made on first use and made again whenever the weight changes:
    an in-place change (an optimizer step, `load_state_dict`) bumps its version counter, a new tensor has a new address
    (the entry holds the old tensor, so no new one can take that address). Copies are not saved: checkpoints keep the
    (out, in) layout. They cost the memory of the weights they copy.
    """
    weight = getattr(module, name)
    copies = module.__dict__.setdefault("_transposed_weights", {})
    entry = copies.get(name)
    if entry is None or entry[0].data_ptr() != weight.data_ptr() or entry[1] != (weight._version, parts):
        with torch.inference_mode(False):  # a plain tensor, usable later with autograd on (e.g. a frozen model)
            source = weight.detach()
            entry = copies[name] = (source, (weight._version, parts), _decode_layout(source, parts))
    return entry[2]


def _decode_layout(weight: torch.Tensor, parts: int) -> torch.Tensor:
    if parts == 1:
        return weight.t().contiguous().t()
    out_features = weight.shape[0]
    width = -(-out_features // parts)
    padded = weight.new_zeros(parts * width, *weight.shape[1:])
    padded[:out_features] = weight
    if weight.dim() == 1:  # a bias, added to each block's products by `torch.baddbmm`
        return padded.view(parts, 1, width)
    return padded.view(parts, width, -1).transpose(1, 2).contiguous()


# A `_linear` weight of at least this many elements (4 MB in fp32: an output layer), or a recurrent layer whose two
# weights hold as many together, is streamed by every thread at once in a few-row product, a block of its columns
# each: MKL runs a one-row product on one thread, which reads memory at about half the rate two threads reach on the
# 2-core machine of docs/benchmarks.md.
SPLIT_MIN_ELEMENTS = 2**20


def _product_parts(weight: torch.Tensor) -> int:
    threads = torch.get_num_threads()
    return threads if threads > 1 and weight.numel() >= SPLIT_MIN_ELEMENTS else 1


def _split_linear(
    hidden_states: torch.Tensor, blocks: torch.Tensor, bias_blocks: torch.Tensor | None, out_features: int
):
    """`F.linear(hidden_states, W, b)` from the column blocks of W and b (`_inference_weight(..., parts)`): one batched
    product, which torch spreads over its threads, a block each (the sums agree with one product's to rounding)."""
    rows = hidden_states.reshape(-1, hidden_states.shape[-1])
    rows = rows.expand(blocks.shape[0], *rows.shape)
    if bias_blocks is None:
        products = torch.bmm(rows, blocks)  # (parts, rows, width)
    else:
        products = torch.baddbmm(bias_blocks, rows, blocks)
    outputs = products.transpose(0, 1).reshape(rows.shape[1], -1)[:, :out_features]  # a view for one row
    return outputs.view(*hidden_states.shape[:-1], out_features)


def _linear(layer: nn.Module, hidden_states: torch.Tensor) -> torch.Tensor:
    """`layer(hidden_states)`; for a plain `nn.Linear` and a product with few rows, on the decode-time weight copy."""
    if (
        type(layer) is nn.Linear  # not a subclass or a quantised layer, and no hooks: those run as themselves
        and not (layer._forward_hooks or layer._forward_pre_hooks)
        and _reads_transposed(layer.weight, hidden_states.numel() // hidden_states.shape[-1])
    ):
        parts = _product_parts(layer.weight)
        if parts > 1:
            blocks = _inference_weight(layer, "weight", parts)
            bias_blocks = None if layer.bias is None else _inference_weight(layer, "bias", parts)
            return _split_linear(hidden_states, blocks, bias_blocks, layer.out_features)
        return nn.functional.linear(hidden_states, _inference_weight(layer, "weight"), layer.bias)
    return layer(hidden_states)


# One step of each cell, on the weights of one layer of the fused module (keyed by `nn.RNNBase.mode`).
CELL_FUNCTIONS = {
    "LSTM": torch.lstm_cell,
    "GRU": torch.gru_cell,
    "RNN_TANH": torch.rnn_tanh_cell,
    "RNN_RELU": torch.rnn_relu_cell,
}


# The n-gram hash: h = (h * NGRAM_HASH_MULTIPLIER + token) mod buckets, token by token, from the order itself (so the
# orders hash apart). With buckets <= 2**24 and token ids < 2**38, no product leaves int64.
NGRAM_HASH_MULTIPLIER = 1_000_003


def _boundary_ngram_ids(input_ids, attention_mask, orders, buckets: int, filler: int) -> torch.Tensor:
    """For every position t, the hash bucket of each n-gram (n in `orders`) holding both token t and token t+1:
    the n-1 windows [t-n+2, t+1] ... [t, t+n-1] per order. Shaped (batch, sequence_length, windows).

    Positions before the first token, after the last and under the mask's zeros read as `filler`, so a padded row
    hashes as the same row alone, wherever its padding is.
    """
    if attention_mask is not None:
        input_ids = input_ids.masked_fill(attention_mask == 0, filler)
    reach = max(orders) - 1
    length = input_ids.shape[1]
    padded = nn.functional.pad(input_ids, (reach, reach), value=filler)  # token t at index t + reach
    windows = []
    for order in orders:
        for start in range(2 - order, 1):
            bucket = torch.full_like(input_ids, order)
            for offset in range(start, start + order):
                token = padded[:, reach + offset : reach + offset + length]
                bucket = (bucket * NGRAM_HASH_MULTIPLIER + token) % buckets
            windows.append(bucket)
    return torch.stack(windows, dim=2)


def embedded_inputs(model: nn.Module, input_ids, attention_mask, inputs_embeds) -> torch.Tensor:
    """The first layer's inputs before dropout: the token embeddings, plus at each position the sum of the
    embeddings of the n-grams crossing the boundary after its token when the config has `ngram_orders`.

    `model` is a `RecurrentModel`, or a module holding its `config`, `embed_tokens` and `ngram_embeddings`."""
    if model.ngram_embeddings is None:
        return model.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds
    if inputs_embeds is not None:
        raise ValueError(
            "This model adds n-gram features computed from `input_ids` (`config.ngram_orders`): pass `input_ids`, "
            "not `inputs_embeds`."
        )
    config = model.config
    ngram_ids = _boundary_ngram_ids(
        input_ids, attention_mask, config.ngram_orders, config.ngram_buckets, config.pad_token_id or 0
    )
    return model.embed_tokens(input_ids) + model.ngram_embeddings(ngram_ids).sum(dim=2)


def _layer_product_parts(rnn: nn.RNNBase, layer: int) -> int:
    """As `_product_parts`, for the two products of a step of one recurrent layer taken together: on several
    threads, a layer whose weights hold >= SPLIT_MIN_ELEMENTS (an LSTM or GRU of hidden size 512) reads them in column
    blocks, a block per thread, where MKL would run each one-row product on one thread."""
    threads = torch.get_num_threads()
    size = getattr(rnn, f"weight_ih_l{layer}").numel() + getattr(rnn, f"weight_hh_l{layer}").numel()
    return threads if threads > 1 and size >= SPLIT_MIN_ELEMENTS else 1


def _cell_step_in_column_blocks(rnn: nn.RNNBase, layer: int, parts: int, inputs, hidden, cell=None):
    """One step of layer `layer`, its products x W_ih^T + b_ih and h W_hh^T + b_hh read in `parts` column blocks
    (`_split_linear`), then the cell's elementwise part written out as torch's CPU cell functions compute it.
    Returns the new h and (LSTM) c."""
    gate_size = getattr(rnn, f"weight_hh_l{layer}").shape[0]
    gates_x = _split_linear(
        inputs,
        _inference_weight(rnn, f"weight_ih_l{layer}", parts),
        _inference_weight(rnn, f"bias_ih_l{layer}", parts),
        gate_size,
    )
    gates_h = _split_linear(
        hidden,
        _inference_weight(rnn, f"weight_hh_l{layer}", parts),
        _inference_weight(rnn, f"bias_hh_l{layer}", parts),
        gate_size,
    )
    if rnn.mode == "LSTM":
        input_gate, forget_gate, cell_gate, output_gate = (gates_x + gates_h).chunk(4, dim=1)
        cell = forget_gate.sigmoid() * cell + input_gate.sigmoid() * cell_gate.tanh()
        return output_gate.sigmoid() * cell.tanh(), cell
    if rnn.mode == "GRU":
        reset_x, update_x, new_x = gates_x.chunk(3, dim=1)
        reset_h, update_h, new_h = gates_h.chunk(3, dim=1)
        reset_gate, update_gate = (reset_x + reset_h).sigmoid(), (update_x + update_h).sigmoid()
        new_gate = (new_x + reset_gate * new_h).tanh()
        return (hidden - new_gate) * update_gate + new_gate, None
    activation = torch.tanh if rnn.mode == "RNN_TANH" else torch.relu
    return activation(gates_x + gates_h), None


class RecurrentModel(RecurrentPreTrainedModel):
    """Embeddings, then a stack of recurrent layers. Returns the last layer's outputs and the final state."""

    def __init__(self, config: RecurrentConfig):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.embedding_size, padding_idx=config.pad_token_id)
        self.ngram_embeddings = (
            nn.Embedding(config.ngram_buckets, config.embedding_size) if config.ngram_orders else None
        )
        self.embedding_dropout = nn.Dropout(config.embedding_dropout)
        self.rnn = getattr(nn, config.rnn_type)(**self._rnn_arguments(config, config.num_hidden_layers))
        self.output_dropout = nn.Dropout(config.output_dropout)
        self.gradient_checkpointing = False
        self.post_init()

    @staticmethod
    def _rnn_arguments(config: RecurrentConfig, num_layers: int, input_size: int | None = None) -> dict:
        """Arguments of `nn.RNN` / `nn.LSTM` / `nn.GRU` for a stack of `num_layers` layers of this config."""
        arguments = {
            "input_size": config.embedding_size if input_size is None else input_size,
            "hidden_size": config.hidden_size,
            "num_layers": num_layers,
            "dropout": config.dropout if num_layers > 1 else 0.0,
            "bidirectional": config.bidirectional,
            "batch_first": True,
        }
        if config.rnn_type == "RNN":
            arguments["nonlinearity"] = config.nonlinearity
        return arguments

    def get_input_embeddings(self):
        return self.embed_tokens

    def set_input_embeddings(self, value):
        self.embed_tokens = value

    @merge_with_config_defaults
    @can_return_tuple
    @accepts_cache_aliases
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        cache: RecurrentCache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BaseModelOutputWithPast:
        r"""
        cache (`RecurrentCache`, *optional*): the state after the tokens already seen; the inputs continue it.
        output_hidden_states (`bool`, *optional*): also return the embedded inputs and every layer's outputs (both
            directions side by side when bidirectional). Each layer's final h (and c) is in the returned cache.
        """
        _reject_unknown_kwargs(type(self), kwargs)
        past_length = cache.get_seq_length() if cache is not None else 0
        _validate_inputs(self.config, input_ids, inputs_embeds, attention_mask, past_length)
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        if self.config.bidirectional:
            if past_length > 0:
                raise ValueError("A bidirectional model reads the whole sequence at once: it cannot continue a state.")
            use_cache = False
        if self.ngram_embeddings is not None:  # the last token's n-grams read past the end: a state would not continue
            if past_length > 0:
                raise ValueError(
                    "A model with `ngram_orders` reads the whole sequence at once: it cannot continue a state."
                )
            use_cache = False

        hidden_states = embedded_inputs(self, input_ids, attention_mask, inputs_embeds)
        if self.training:  # dropout is the identity at inference: no module call on a decode step
            hidden_states = self.embedding_dropout(hidden_states)
        batch_size, sequence_length = hidden_states.shape[:2]
        if attention_mask is not None:
            attention_mask = attention_mask[:, -sequence_length:]  # the cached positions are in the state already
            if bool(attention_mask.all()):
                attention_mask = None  # nothing is padded: take the plain fused path
        if cache is not None and cache.batch_size not in (None, batch_size):
            raise ValueError(
                f"The cache holds a state for batch size {cache.batch_size}, but the inputs have batch size {batch_size}"
            )

        checkpointing = self.gradient_checkpointing and self.training and torch.is_grad_enabled()
        # fp32 layers step with the cell functions; int8 ones (`hf_seq.quantization`) run as modules, also for one step.
        cell_weights = isinstance(self.rnn, nn.RNNBase)
        if (output_hidden_states or checkpointing) and not cell_weights:
            raise ValueError(
                "`output_hidden_states` and gradient checkpointing run the recurrent layers one at a time on their fp32 "
                f"weights; this model's are {type(self.rnn).__name__} (quantised): use the fp32 model for them."
            )
        single_step = sequence_length == 1 and not self.config.bidirectional and cell_weights
        # A step reads the state layer by layer, as the cache holds it; the fused module takes it stacked.
        initial_state = None if cache is None else cache.layer_states() if single_step else cache.as_tuple()
        if single_step:
            layer_outputs, final_state = self._single_step(hidden_states[:, 0], initial_state, attention_mask)
        elif output_hidden_states or checkpointing:
            layer_outputs, final_state = self._run_layer_by_layer(hidden_states, initial_state, attention_mask)
        elif attention_mask is None:
            last_layer_outputs, final_state = self.rnn(hidden_states, initial_state)
            layer_outputs = [last_layer_outputs]
        else:
            packed, gather_index = _packed_real_tokens(hidden_states, attention_mask)
            packed_outputs, final_state = self.rnn(packed, initial_state)
            layer_outputs = [_unpack_to_token_positions(packed_outputs, gather_index, attention_mask)]
            final_state = _keep_initial_state_of_empty_rows(final_state, initial_state, attention_mask)
        last_hidden_state = self.output_dropout(layer_outputs[-1]) if self.training else layer_outputs[-1]

        if use_cache:
            if cache is None:
                cache = RecurrentCache(self.config.num_hidden_layers, has_cell_state=self.config.rnn_type == "LSTM")
            hidden, cell = final_state if isinstance(final_state, tuple) else (final_state, None)
            cache.update_state(hidden, cell, sequence_length)
        else:
            cache = None

        all_hidden_states = None
        if output_hidden_states:  # as transformers' models: the embedding output first, the returned output last
            all_hidden_states = (hidden_states, *layer_outputs[:-1], last_hidden_state)
        return BaseModelOutputWithPast(
            last_hidden_state=last_hidden_state, hidden_states=all_hidden_states, **cache_keyword(cache)
        )

    def _single_step(self, inputs, initial_state, step_mask):
        """One position through every layer with the cell functions: h_t = cell(x_t, h_{t-1}) per layer.

        `initial_state` is h (and c) as a list of one (batch, hidden) tensor per layer (`RecurrentCache.layer_states`),
        or `None` for zeros. Returns each layer's output at this position, shaped (batch, 1, hidden), and the new
        state in the same per-layer form.
        """
        rnn = self.rnn
        num_layers, is_lstm, cell_function = rnn.num_layers, rnn.mode == "LSTM", CELL_FUNCTIONS[rnn.mode]
        if initial_state is None:
            zeros = [inputs.new_zeros(inputs.shape[0], rnn.hidden_size)] * num_layers
            initial_state = (zeros, zeros) if is_lstm else zeros
        hidden_in, cell_in = initial_state if is_lstm else (initial_state, None)

        transposed = _reads_transposed(rnn.weight_hh_l0, inputs.shape[0])
        weight = _inference_weight if transposed else getattr
        dropout = rnn.dropout if self.training else 0.0
        layer_input, hidden_out, cell_out = inputs, [], []
        for layer in range(num_layers):
            parts = _layer_product_parts(rnn, layer) if transposed else 1
            if parts > 1:
                hidden, cell = _cell_step_in_column_blocks(
                    rnn, layer, parts, layer_input, hidden_in[layer], cell_in[layer] if is_lstm else None
                )
            else:
                weights = (
                    weight(rnn, f"weight_ih_l{layer}"),
                    weight(rnn, f"weight_hh_l{layer}"),
                    getattr(rnn, f"bias_ih_l{layer}"),
                    getattr(rnn, f"bias_hh_l{layer}"),
                )
                if is_lstm:
                    hidden, cell = cell_function(layer_input, (hidden_in[layer], cell_in[layer]), *weights)
                else:
                    hidden = cell_function(layer_input, hidden_in[layer], *weights)
            if is_lstm:
                cell_out.append(cell)
            hidden_out.append(hidden)
            layer_input = hidden
            if dropout and layer < num_layers - 1:  # as nn.LSTM(dropout=...): between layers, not after the last
                layer_input = nn.functional.dropout(layer_input, dropout, training=True)

        layer_outputs = hidden_out
        if step_mask is not None:  # a padded step leaves the state as it was and outputs zeros
            keep = step_mask[:, -1:].bool()
            layer_outputs = [hidden * keep for hidden in hidden_out]
            hidden_out = [torch.where(keep, new, old) for new, old in zip(hidden_out, hidden_in)]
            cell_out = [torch.where(keep, new, old) for new, old in zip(cell_out, cell_in)] if is_lstm else None
        final_state = (hidden_out, cell_out) if is_lstm else hidden_out
        return [output.unsqueeze(1) for output in layer_outputs], final_state

    def _run_layer_by_layer(self, inputs, initial_state, attention_mask):
        """The stack one layer at a time, on the fused module's own weights.

        Gives each layer's outputs (for `output_hidden_states`) and lets gradient checkpointing recompute a layer in
        the backward pass instead of storing its activations. Padding is handled as in the fused path.
        """
        config = self.config
        directions = 2 if config.bidirectional else 1
        is_lstm = config.rnn_type == "LSTM"
        if initial_state is None:
            zeros = inputs.new_zeros(config.num_hidden_layers * directions, inputs.shape[0], config.hidden_size)
            initial_state = (zeros, zeros) if is_lstm else zeros
        hidden_in, cell_in = initial_state if is_lstm else (initial_state, None)

        packed, gather_index = (None, None) if attention_mask is None else _packed_real_tokens(inputs, attention_mask)
        layer_data = inputs if packed is None else packed.data
        layer_outputs, final_hidden, final_cell = [], [], []
        for layer in range(config.num_hidden_layers):
            if layer > 0:  # as nn.LSTM(dropout=...): between layers, not after the last
                layer_data = nn.functional.dropout(layer_data, config.dropout, self.training)
            state_rows = slice(layer * directions, (layer + 1) * directions)
            state = (hidden_in[state_rows], cell_in[state_rows]) if is_lstm else (hidden_in[state_rows],)
            if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
                layer_data, *final = self._gradient_checkpointing_func(
                    self._run_one_layer, layer, packed, layer_data, *state
                )
            else:
                layer_data, *final = self._run_one_layer(layer, packed, layer_data, *state)
            final_hidden.append(final[0])
            if is_lstm:
                final_cell.append(final[1])
            if packed is None:
                layer_outputs.append(layer_data)
            else:
                layer_packed = PackedSequence(
                    layer_data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices
                )
                layer_outputs.append(_unpack_to_token_positions(layer_packed, gather_index, attention_mask))

        final_state = (torch.cat(final_hidden), torch.cat(final_cell)) if is_lstm else torch.cat(final_hidden)
        if attention_mask is not None:
            final_state = _keep_initial_state_of_empty_rows(final_state, initial_state, attention_mask)
        return layer_outputs, final_state

    def _run_one_layer(self, layer, packed, layer_data, *state):
        """Layer `layer` of the stack on its inputs (a padded batch, or the data of `packed`'s layout)."""
        inputs = (
            layer_data
            if packed is None
            else PackedSequence(layer_data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices)
        )
        outputs, final_state = _run_stack_layer(self.rnn, layer, inputs, state if len(state) > 1 else state[0])
        outputs = outputs if packed is None else outputs.data
        return (outputs, *final_state) if isinstance(final_state, tuple) else (outputs, final_state)


def _run_stack_layer(rnn: nn.RNNBase, layer: int, inputs, state=None):
    """Layer `layer` of the fused stack `rnn` on `inputs` (a padded batch or a `PackedSequence`), from `state` (zeros
    when `None`). Returns the layer's outputs and final state, as `rnn` would for a stack of this layer alone.

    A one-layer module of the same kind, built on the meta device (no memory), runs with the stack's weights of that
    layer swapped in, so the computation is the fused module's own kernel on the same parameters.
    """
    directions = 2 if rnn.bidirectional else 1
    arguments = {
        "input_size": rnn.input_size if layer == 0 else rnn.hidden_size * directions,
        "hidden_size": rnn.hidden_size,
        "num_layers": 1,
        "bias": rnn.bias,
        "batch_first": rnn.batch_first,
        "bidirectional": rnn.bidirectional,
    }
    if isinstance(rnn, nn.RNN):
        arguments["nonlinearity"] = rnn.nonlinearity
    one_layer = type(rnn)(**arguments, device="meta")
    of_this_layer = re.compile(rf"(\w+)_l{layer}(_reverse)?")  # e.g. weight_hh_l1, weight_hh_l1_reverse
    weights = {}
    for name, parameter in rnn.named_parameters():
        match = of_this_layer.fullmatch(name)
        if match:
            weights[f"{match[1]}_l0{match[2] or ''}"] = parameter
    return functional_call(one_layer, weights, (inputs,) if state is None else (inputs, state))


# What generate() keeps in its model kwargs that a decode step does not pass on (see `prepare_inputs_for_generation`).
GENERATION_ONLY_KWARGS = frozenset(("attention_mask", "inputs_embeds", "is_first_iteration", "position_ids", "labels"))


class RecurrentForCausalLM(RecurrentPreTrainedModel, GenerationMixin):
    """A recurrent language model: p(x_t | x_<t) = softmax(W h_t)."""

    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}

    def __init__(self, config: RecurrentConfig):
        if config.bidirectional:
            raise ValueError(
                f"{type(self).__name__} is a causal language model: `bidirectional=True` would let it see the tokens "
                "it must predict. Use a classification head for a bidirectional encoder."
            )
        if config.ngram_orders:
            raise ValueError(
                f"{type(self).__name__} is a causal language model: `ngram_orders` hashes the tokens after each one, "
                "which it must predict. Leave `ngram_orders` empty, or use a classification head."
            )
        super().__init__(config)
        self.model = RecurrentModel(config)
        # Tying the output and input embeddings (Press & Wolf, 2017; Inan et al., 2017) needs the last hidden state in
        # the embedding space; when sizes differ a projection maps it there, as AWD-LSTM does.
        needs_projection = config.tie_word_embeddings and config.hidden_size != config.embedding_size
        self.output_projection = (
            nn.Linear(config.hidden_size, config.embedding_size, bias=False) if needs_projection else None
        )
        head_input_size = config.embedding_size if config.tie_word_embeddings else config.hidden_size
        self.lm_head = nn.Linear(head_input_size, config.vocab_size)
        self.post_init()

    @can_return_tuple
    @accepts_cache_aliases
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        cache: RecurrentCache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int = 0,
        **kwargs: Unpack[TransformersKwargs],
    ) -> CausalLMOutputWithPast:
        r"""
        labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            Token ids to predict; shifted inside (position t predicts label t+1). Positions set to -100 are ignored.
        logits_to_keep (`int`, defaults to 0): compute logits for the last this many positions only (0: all).
        """
        outputs: BaseModelOutputWithPast = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            cache=cache,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            **kwargs,
        )
        hidden_states = outputs.last_hidden_state
        if logits_to_keep:
            hidden_states = hidden_states[:, -logits_to_keep:]
        if self.output_projection is not None:
            hidden_states = _linear(self.output_projection, hidden_states)
        logits = _linear(self.lm_head, hidden_states)

        loss = None
        if labels is not None:
            # kwargs may carry `num_items_in_batch` from Trainer, which makes the loss a correct mean across devices.
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.vocab_size, **kwargs)
        return CausalLMOutputWithPast(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, **cache_keyword(cache_of(outputs))
        )

    def prepare_inputs_for_generation(
        self, input_ids: torch.LongTensor, next_sequence_length: int | None = None, **kwargs
    ):
        """The inputs of `generate()`'s next forward. A decode step needs only the newest token and the state.

        The state holds the whole past, and the tokens generate appends are never padding, so a decode step leaves
        out the attention mask (all ones at the new position: the forward would drop it after checking it) and the
        tensor copies the general version makes. The first step (the prompt) goes through transformers' version.
        """
        cache = kwargs.get(CACHE_NAME)
        first = kwargs.get("is_first_iteration")  # the prompt: it may hold padding, even after a cache passed in
        if first or next_sequence_length != 1 or cache is None or not kwargs.get("use_cache", True):
            return super().prepare_inputs_for_generation(
                input_ids, next_sequence_length=next_sequence_length, **kwargs
            )
        model_inputs = {key: value for key, value in kwargs.items() if key not in GENERATION_ONLY_KWARGS}
        model_inputs["input_ids"] = input_ids[:, -1:]
        return model_inputs


def _masked_mean(hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The mean over each row's real tokens (zeros for a row without any)."""
    is_real = attention_mask.to(device=hidden_states.device, dtype=torch.bool)
    # masked_fill rather than multiply: outputs at padded positions may be anything, even NaN.
    summed = hidden_states.masked_fill(~is_real[..., None], 0.0).sum(dim=1)
    return summed / is_real.sum(dim=1, keepdim=True).clamp(min=1).to(hidden_states.dtype)


def _masked_max(hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The element-wise maximum over each row's real tokens (zeros for a row without any)."""
    is_real = attention_mask.to(device=hidden_states.device, dtype=torch.bool)
    masked = hidden_states.masked_fill(~is_real[..., None], torch.finfo(hidden_states.dtype).min)
    # A row with no real token at all pools to zeros rather than the dtype's minimum.
    return torch.where(is_real.any(dim=1, keepdim=True), masked.max(dim=1).values, 0.0)


def _pool(hidden_states, attention_mask, pooling, bidirectional):
    """Summarise each sequence from its real tokens only, so padding never changes the result."""
    batch_size, sequence_length, _ = hidden_states.shape
    if attention_mask is None:
        attention_mask = hidden_states.new_ones(batch_size, sequence_length)
    if pooling == "concat":  # ULMFiT's concat pooling: the last state, then the max and the mean over real tokens
        parts = [_pool(hidden_states, attention_mask, part, bidirectional) for part in ("last", "max", "mean")]
        return torch.cat(parts, dim=-1)
    if pooling == "mean":
        return _masked_mean(hidden_states, attention_mask)
    if pooling == "max":
        return _masked_max(hidden_states, attention_mask)
    # "last": the state after the last real token; a backward direction ends at the first real token.
    positions = torch.arange(sequence_length, device=hidden_states.device).expand(batch_size, -1)
    real = attention_mask.bool()
    last_index = torch.where(real, positions, -1).max(dim=1).values.clamp(min=0)
    rows = torch.arange(batch_size, device=hidden_states.device)
    if not bidirectional:
        return hidden_states[rows, last_index]
    first_index = torch.where(real, positions, sequence_length).min(dim=1).values.clamp(max=sequence_length - 1)
    half = hidden_states.shape[-1] // 2
    return torch.cat([hidden_states[rows, last_index, :half], hidden_states[rows, first_index, half:]], dim=-1)


def _pooled_size(size: int, pooling: str) -> int:
    """The width of `_pool`'s summary of states of width `size`: "concat" puts last, max and mean side by side."""
    return 3 * size if pooling == "concat" else size


def _reverse_real_tokens(tensor, attention_mask):
    """Each row's real positions in reverse order, padding left where it is (applying it twice restores the input).

    Works on ids, masks, embeddings and hidden states alike (the first two dimensions are batch and time). The real
    positions run from the first to the last unmasked one, so left and right padding are both handled.
    """
    if attention_mask is None:
        return tensor.flip(1)
    batch_size, sequence_length = tensor.shape[:2]
    positions = torch.arange(sequence_length, device=tensor.device).expand(batch_size, -1)
    real = attention_mask.bool()
    first = torch.where(real, positions, sequence_length).min(dim=1, keepdim=True).values
    last = torch.where(real, positions, -1).max(dim=1, keepdim=True).values
    inside = (positions >= first) & (positions <= last)
    source = torch.where(inside, first + last - positions, positions)
    if tensor.dim() == 3:
        source = source.unsqueeze(-1).expand(-1, -1, tensor.shape[-1])
    return tensor.gather(1, source)


class RecurrentClassifierBase(RecurrentPreTrainedModel):
    """What both classification heads share: a recurrent encoder (uni- or bidirectional) and a linear classifier."""

    # The loss is a plain mean over the batch: Trainer must not expect it to be normalised by num_items_in_batch.
    accepts_loss_kwargs = False

    def __init__(self, config: RecurrentConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = RecurrentModel(config)
        self.classifier = nn.Linear(self._classifier_input_size(config), config.num_labels)
        self.post_init()

    def _classifier_input_size(self, config: RecurrentConfig) -> int:
        """The size of one position's output: both directions' hidden states side by side when bidirectional."""
        return config.hidden_size * (2 if config.bidirectional else 1)

    def _encode(self, input_ids, attention_mask, inputs_embeds, **kwargs):
        """The encoder's outputs in reading order, the attention mask in that order too, and the hidden states.

        A backward model (`reading_direction="backward"`) reads each sequence's real tokens from last to first: its
        outputs, and the mask returned, run in that order (pooling reads them as it reads a forward model's). The
        hidden states (with `output_hidden_states=True`) are put back at their tokens' own positions.
        """
        backward = self.config.reading_direction == "backward"
        reading_mask = attention_mask
        if backward:
            if input_ids is not None:
                input_ids = _reverse_real_tokens(input_ids, attention_mask)
            if inputs_embeds is not None:
                inputs_embeds = _reverse_real_tokens(inputs_embeds, attention_mask)
            if attention_mask is not None:
                reading_mask = _reverse_real_tokens(attention_mask, attention_mask)
        outputs: BaseModelOutputWithPast = self.model(
            input_ids=input_ids, attention_mask=reading_mask, inputs_embeds=inputs_embeds, use_cache=False, **kwargs
        )
        hidden_states = outputs.hidden_states
        if backward and hidden_states is not None:
            hidden_states = tuple(_reverse_real_tokens(states, reading_mask) for states in hidden_states)
        return outputs.last_hidden_state, reading_mask, hidden_states


class RecurrentForSequenceClassification(RecurrentClassifierBase):
    """A recurrent encoder, a pooling of its outputs (`config.pooling`) and a linear classifier."""

    def _classifier_input_size(self, config: RecurrentConfig) -> int:
        return _pooled_size(super()._classifier_input_size(config), config.pooling)

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> SequenceClassifierOutput:
        r"""
        labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*): class indices (or floats for regression).
        """
        last_hidden_state, reading_mask, hidden_states = self._encode(
            input_ids, attention_mask, inputs_embeds, **kwargs
        )
        pooled = _pool(last_hidden_state, reading_mask, self.config.pooling, self.config.bidirectional)
        logits = self.classifier(pooled)

        loss = None
        if labels is not None:
            loss = self.loss_function(labels=labels, pooled_logits=logits, config=self.config)
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=hidden_states)


class RecurrentForTokenClassification(RecurrentClassifierBase):
    """A recurrent encoder with a linear classifier on every position (many-to-many, e.g. tagging); with
    `config.token_classifier_context`, each position's classifier also reads a pooling of the whole sequence."""

    def _classifier_input_size(self, config: RecurrentConfig) -> int:
        size = super()._classifier_input_size(config)
        if config.token_classifier_context is None:
            return size
        return size + _pooled_size(size, config.token_classifier_context)

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> TokenClassifierOutput:
        r"""
        labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*): a class per position;
            -100 (e.g. on padding) is ignored.
        """
        last_hidden_state, reading_mask, hidden_states = self._encode(
            input_ids, attention_mask, inputs_embeds, **kwargs
        )
        context = None  # pooled in reading order, as sequence classification pools
        if self.config.token_classifier_context is not None:
            context = _pool(
                last_hidden_state, reading_mask, self.config.token_classifier_context, self.config.bidirectional
            )
        if self.config.reading_direction == "backward":  # back to the tokens' own positions, where the labels are
            last_hidden_state = _reverse_real_tokens(last_hidden_state, reading_mask)
        if context is not None:
            context = context[:, None, :].expand(-1, last_hidden_state.shape[1], -1)
            last_hidden_state = torch.cat([last_hidden_state, context], dim=-1)
        logits = self.classifier(last_hidden_state)

        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels, config=self.config)
        return TokenClassifierOutput(loss=loss, logits=logits, hidden_states=hidden_states)


# The per-cell classes: the shared implementation bound to each config (and so to its model_type).
class RNNModel(RecurrentModel):
    config_class = RNNConfig


class RNNForCausalLM(RecurrentForCausalLM):
    config_class = RNNConfig


class RNNForSequenceClassification(RecurrentForSequenceClassification):
    config_class = RNNConfig


class RNNForTokenClassification(RecurrentForTokenClassification):
    config_class = RNNConfig


class LSTMModel(RecurrentModel):
    config_class = LSTMConfig


class LSTMForCausalLM(RecurrentForCausalLM):
    config_class = LSTMConfig


class LSTMForSequenceClassification(RecurrentForSequenceClassification):
    config_class = LSTMConfig


class LSTMForTokenClassification(RecurrentForTokenClassification):
    config_class = LSTMConfig


class GRUModel(RecurrentModel):
    config_class = GRUConfig


class GRUForCausalLM(RecurrentForCausalLM):
    config_class = GRUConfig


class GRUForSequenceClassification(RecurrentForSequenceClassification):
    config_class = GRUConfig


class GRUForTokenClassification(RecurrentForTokenClassification):
    config_class = GRUConfig
