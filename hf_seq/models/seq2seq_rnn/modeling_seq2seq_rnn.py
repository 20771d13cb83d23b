"""A recurrent encoder–decoder with attention (Seq2SeqRNN) as a Hugging Face seq2seq model.

The encoder (LSTM or GRU, uni- or bidirectional) reads the source's real tokens only (packed, wherever the padding
is). A bridge maps its final state to the decoder's initial state. At each target step t the decoder reads the
previous token (and, with input feeding, the previous attentional state h̃_{t-1}), updates its state to h_t, scores
every encoder output h_s against h_t, and forms

    a_t = softmax(score(h_t, h_s)) over the real source tokens,   c_t = Σ_s a_t(s) h_s,
    h̃_t = tanh(W_c [c_t; h_t]),                                    p(y_t | y_<t, x) = softmax(W_o h̃_t)

(Luong et al., 2015). With `attention="none"` h̃_t = h_t: the bridge is the only path from the source (Sutskever et
al., 2014).

In training, a decoder without input feeding runs the fused module over the whole target at once (cuDNN on a GPU)
and attends for all steps in one batched product. With input feeding, or scheduled sampling, each step depends on the
previous one's output, so the decoder runs step by step; a step runs the cell functions (`torch.lstm_cell`, ...) on
the fused module's weights, far cheaper than a fused call of length one. generate() runs the encoder once and passes
its outputs to every step; the decoder's state travels in a `Seq2SeqRNNCache`, so a decode step costs O(1) in the
output length.
"""

import math
import re
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.loss.loss_utils import ForMaskedLMLoss
from transformers.modeling_outputs import ModelOutput, Seq2SeqLMOutput, Seq2SeqModelOutput
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs, can_return_tuple

from .cache_seq2seq_rnn import Seq2SeqRNNCache, accepts_cache_aliases, cache_keyword
from .configuration_seq2seq_rnn import Seq2SeqRNNConfig


RNN_MODULES = {"lstm": nn.LSTM, "gru": nn.GRU}


@dataclass
class Seq2SeqRNNEncoderOutput(ModelOutput):
    r"""
    What the encoder passes to the decoder. Every tensor has the batch first, so generate() can expand it for beams.

    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(batch_size, source_length, encoder_output_size)`): the
            encoder's outputs (both directions side by side when bidirectional), 0 on padding.
        final_hidden (`torch.FloatTensor` of shape `(batch_size, encoder_layers * directions, encoder_state_size)`):
            h of every encoder layer and direction after its last real token, in `nn.LSTM`'s order.
        final_cell (`torch.FloatTensor` of the same shape, *optional*): c likewise (LSTM only).
        hidden_states (`tuple(torch.FloatTensor)`, *optional*): the embedded source, then every encoder layer's
            outputs (the last is `last_hidden_state`).
        attentions: always `None` (a recurrent encoder has no self-attention); kept for generate()'s sake.
    """

    last_hidden_state: torch.FloatTensor | None = None
    final_hidden: torch.FloatTensor | None = None
    final_cell: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class Seq2SeqRNNDecoderOutput(ModelOutput):
    r"""
    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(batch_size, target_length, hidden_size)`): the attentional
            hidden states h̃_t (the decoder's top-layer outputs h_t when `attention="none"`), after output dropout.
        cache (`Seq2SeqRNNCache`, *optional*): the decoder's state after these positions.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*): the embedded target, every decoder layer's h_t,
            then `last_hidden_state` (h̃_t).
        cross_attentions (`torch.FloatTensor` of shape `(batch_size, target_length, source_length)`, *optional*):
            the attention weights of every step.
    """

    last_hidden_state: torch.FloatTensor | None = None
    cache: Seq2SeqRNNCache | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    cross_attentions: torch.FloatTensor | None = None


# The keyword arguments transformers may pass any model (`num_items_in_batch`, `output_attentions`, ...).
# Copied from hf_seq.models.recurrent.modeling_recurrent.KNOWN_MODEL_KWARGS
KNOWN_MODEL_KWARGS = frozenset(TransformersKwargs.__annotations__)


# Copied from hf_seq.models.recurrent.modeling_recurrent._reject_unknown_kwargs
def _reject_unknown_kwargs(model_class, kwargs):
    """A misspelled argument must fail, not vanish into `**kwargs` (as a renamed cache argument once did)."""
    unknown = sorted(set(kwargs) - KNOWN_MODEL_KWARGS)
    if unknown:
        raise TypeError(f"{model_class.__name__}.forward() got unexpected keyword arguments: {', '.join(unknown)}")


# Copied from hf_seq.models.recurrent.modeling_recurrent._packed_real_tokens
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


# Copied from hf_seq.models.recurrent.modeling_recurrent._unpack_to_token_positions
def _unpack_to_token_positions(packed_outputs, gather_index, attention_mask):
    """Undo `_packed_real_tokens` on a layer's outputs: each output back at its token's position, 0 on padding."""
    mask = attention_mask.bool()
    compact, _ = pad_packed_sequence(packed_outputs, batch_first=True, total_length=mask.shape[1])
    outputs = torch.zeros_like(compact).scatter(1, gather_index.expand_as(compact), compact)
    return outputs * mask.unsqueeze(-1).to(outputs.dtype)


def shift_tokens_right(labels: torch.Tensor, pad_token_id: int, decoder_start_token_id: int) -> torch.Tensor:
    """The decoder's inputs for `labels`: the start token, then the labels but the last; -100 becomes padding."""
    shifted = labels.new_zeros(labels.shape)
    shifted[:, 1:] = labels[:, :-1].clone()
    shifted[:, 0] = decoder_start_token_id
    return shifted.masked_fill(shifted == -100, pad_token_id)


def _check_token_ids(config: Seq2SeqRNNConfig, name: str, ids: torch.Tensor, check_range: bool = True) -> None:
    """Shape always; the vocabulary range (a read back to the host) only when asked and never while compiling:
    the decoder asks on a call's first step, not on every decode step."""
    if ids.dim() != 2:
        raise ValueError(f"`{name}` must have shape (batch_size, sequence_length), got {tuple(ids.shape)}")
    if ids.shape[1] == 0:
        raise ValueError(f"`{name}` is empty (sequence_length 0).")
    if not check_range or torch.compiler.is_compiling():
        return
    if ids.min() < 0 or ids.max() >= config.vocab_size:
        raise ValueError(
            f"`{name}` holds ids outside the vocabulary [0, {config.vocab_size}): "
            f"min {int(ids.min())}, max {int(ids.max())}. Was the model built for this tokenizer?"
        )


class Seq2SeqRNNPreTrainedModel(PreTrainedModel):
    config_class = Seq2SeqRNNConfig
    config: Seq2SeqRNNConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = False
    _is_stateful = True  # the decoder state cannot be rolled back, so assisted generation is refused
    _no_split_modules = []

    def __init__(self, config: Seq2SeqRNNConfig, *inputs, **kwargs):
        # Fields set after construction were checked one by one when set; the rules tying fields together run here,
        # before any layer is built from them.
        config.validate()
        super().__init__(config, *inputs, **kwargs)

    @classmethod
    def _supports_default_dynamic_cache(cls):
        # generate() would otherwise build an EncoderDecoderCache of DynamicCaches, which cannot hold a state.
        return False

    def _init_weights(self, module):
        scheme, r = self.config.initializer, self.config.initializer_range
        if isinstance(module, nn.Embedding):
            if scheme == "uniform":
                init.uniform_(module.weight, -r, r)
            else:
                init.xavier_uniform_(module.weight)
            if module.padding_idx is not None and not getattr(module.weight, "_is_hf_initialized", False):
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, AttentionScoreLinear):
            self._init_attention_score(module)
        elif isinstance(module, nn.Linear):
            if scheme == "uniform":
                init.uniform_(module.weight, -r, r)
            else:
                init.xavier_uniform_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, (nn.LSTM, nn.GRU)):
            self._init_recurrent_weights(module, scheme)

    def _init_attention_score(self, linear):
        """Score maps at U(-0.1, 0.1) give every source position a score near 0: the weights start uniform, their
        gradients are tiny, and the decoder learns to do without the source. So `general` starts as `dot` (W_a = I
        where square) and the other score maps start at xavier scale."""
        if linear.start_as_identity and linear.in_features == linear.out_features:
            init.eye_(linear.weight)
        else:
            init.xavier_uniform_(linear.weight)
        if linear.bias is not None:
            init.zeros_(linear.bias)

    # Copied from hf_seq.models.recurrent.modeling_recurrent.RecurrentPreTrainedModel._init_recurrent_weights
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


class Seq2SeqRNNEncoder(nn.Module):
    """Source embeddings, then a stack of (bi)LSTM/GRU layers over each source's real tokens."""

    main_input_name = "input_ids"

    def __init__(self, config: Seq2SeqRNNConfig):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.embedding_size, padding_idx=config.pad_token_id)
        self.embedding_dropout = nn.Dropout(config.embedding_dropout)
        self.rnn = RNN_MODULES[config.cell](
            input_size=config.embedding_size,
            hidden_size=config.encoder_state_size,
            num_layers=config.encoder_layers,
            dropout=config.dropout if config.encoder_layers > 1 else 0.0,
            bidirectional=config.bidirectional_encoder,
            batch_first=True,
        )

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> Seq2SeqRNNEncoderOutput:
        r"""
        labels: not read. generate() hands the encoder every model input it was given, and Seq2SeqTrainer's
            `predict_with_generate` gives it the labels.
        """
        _reject_unknown_kwargs(type(self), kwargs)
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of `input_ids` or `inputs_embeds` to the encoder.")
        if input_ids is not None:
            _check_token_ids(self.config, "input_ids", input_ids)
            inputs_embeds = self.embed_tokens(input_ids)
        hidden_states = self.embedding_dropout(inputs_embeds)
        if attention_mask is not None and tuple(attention_mask.shape) != tuple(hidden_states.shape[:2]):
            raise ValueError(
                f"`attention_mask` has shape {tuple(attention_mask.shape)} but the source has shape "
                f"{tuple(hidden_states.shape[:2])}"
            )

        output_hidden_states = bool(kwargs.get("output_hidden_states"))
        if output_hidden_states and not isinstance(self.rnn, nn.RNNBase):
            raise ValueError(
                "`output_hidden_states` runs the encoder one layer at a time on its fp32 weights; this model's are "
                f"{type(self.rnn).__name__} (quantised): use the fp32 model for them."
            )
        if output_hidden_states:
            layer_outputs, final_state = self._run_layer_by_layer(hidden_states, attention_mask)
            outputs = layer_outputs[-1]
        elif attention_mask is None or bool(attention_mask.all()):
            outputs, final_state = self.rnn(hidden_states)
        else:
            # Packing runs each direction over the real tokens only: the backward direction starts at the last real
            # token, not at padding, and the final state is the one after each source's own last token.
            packed, gather_index = _packed_real_tokens(hidden_states, attention_mask)
            packed_outputs, final_state = self.rnn(packed)
            outputs = _unpack_to_token_positions(packed_outputs, gather_index, attention_mask)
        final_hidden, final_cell = final_state if isinstance(final_state, tuple) else (final_state, None)

        all_hidden_states = (hidden_states, *layer_outputs) if output_hidden_states else None
        return Seq2SeqRNNEncoderOutput(
            last_hidden_state=outputs,
            final_hidden=final_hidden.transpose(0, 1),  # batch first, so generate() expands it with the rest
            final_cell=None if final_cell is None else final_cell.transpose(0, 1),
            hidden_states=all_hidden_states,
        )

    def _run_layer_by_layer(self, inputs, attention_mask):
        """The stack one layer at a time on the fused module's own weights, giving every layer's outputs
        (`output_hidden_states`). Padding is handled as in the fused path: each layer runs over the real tokens."""
        has_padding = attention_mask is not None and not bool(attention_mask.all())
        packed, gather_index = _packed_real_tokens(inputs, attention_mask) if has_padding else (None, None)
        layer_data = inputs if packed is None else packed.data
        layer_outputs, final_hidden, final_cell = [], [], []
        for layer in range(self.config.encoder_layers):
            if layer > 0:  # as nn.LSTM(dropout=...): between layers, not after the last
                layer_data = nn.functional.dropout(layer_data, self.rnn.dropout, self.training)
            layer_data, final = self._run_one_layer(layer, packed, layer_data)
            hidden, cell = final if isinstance(final, tuple) else (final, None)
            final_hidden.append(hidden)
            final_cell.append(cell)
            if packed is None:
                layer_outputs.append(layer_data)
            else:
                layer_packed = PackedSequence(
                    layer_data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices
                )
                layer_outputs.append(_unpack_to_token_positions(layer_packed, gather_index, attention_mask))
        if self.config.cell == "lstm":
            return layer_outputs, (torch.cat(final_hidden), torch.cat(final_cell))
        return layer_outputs, torch.cat(final_hidden)

    def _run_one_layer(self, layer, packed, layer_data):
        """Layer `layer` of the stack on its inputs (a padded batch, or the data of `packed`'s layout)."""
        inputs = layer_data
        if packed is not None:
            inputs = PackedSequence(layer_data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices)
        outputs, final_state = _run_stack_layer(self.rnn, layer, inputs)
        return (outputs if packed is None else outputs.data), final_state


# Copied from hf_seq.models.recurrent.modeling_recurrent._run_stack_layer
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


class Seq2SeqRNNBridge(nn.Module):
    """The decoder's initial state from the encoder's final state: every encoder layer and direction feeds every
    decoder layer, so the two stacks may differ in depth, width and direction (OpenNMT's `bridge`)."""

    def __init__(self, config: Seq2SeqRNNConfig):
        super().__init__()
        self.config = config
        in_features = config.encoder_layers * config.encoder_directions * config.encoder_state_size
        out_features = config.decoder_layers * config.hidden_size
        self.hidden = nn.Linear(in_features, out_features)
        self.cell = nn.Linear(in_features, out_features) if config.cell == "lstm" else None

    def _to_decoder_layers(self, state: torch.Tensor) -> torch.Tensor:
        """(batch, decoder_layers * hidden) -> (decoder_layers, batch, hidden), as nn.LSTM takes its state."""
        state = state.view(state.shape[0], self.config.decoder_layers, self.config.hidden_size)
        return state.transpose(0, 1).contiguous()

    def forward(self, final_hidden: torch.Tensor, final_cell: torch.Tensor | None):
        batch_size = final_hidden.shape[0]
        # h lives in (-1, 1) as the cell's own outputs do; c is unbounded, so its map stays linear.
        hidden = self._to_decoder_layers(torch.tanh(self.hidden(final_hidden.reshape(batch_size, -1))))
        if self.cell is None:
            return hidden
        return hidden, self._to_decoder_layers(self.cell(final_cell.reshape(batch_size, -1)))


class AttentionScoreLinear(nn.Linear):
    """A linear map inside an attention score; only its initialisation differs (see `_init_attention_score`)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, start_as_identity: bool = False):
        super().__init__(in_features, out_features, bias=bias)
        self.start_as_identity = start_as_identity


class Seq2SeqRNNAttention(nn.Module):
    """Global attention over the encoder outputs: scores, softmax over real source tokens, context, h̃_t.

    score(h_t, h_s) = h_t·h_s (`dot`), h_t·W_a h_s (`general`), or v·tanh(W_q h_t + W_k h_s) (`concat`). The
    encoder-side products (W_a h_s, W_k h_s) do not depend on t: `keys()` computes them once per source.
    """

    def __init__(self, config: Seq2SeqRNNConfig):
        super().__init__()
        self.config = config
        self.score = config.attention
        source_size, hidden_size = config.encoder_output_size, config.hidden_size
        self.key_projection = (
            None
            if self.score == "dot"
            else AttentionScoreLinear(source_size, hidden_size, bias=False, start_as_identity=self.score == "general")
        )
        if self.score == "concat":
            self.query_projection = AttentionScoreLinear(hidden_size, hidden_size)
            self.v = AttentionScoreLinear(hidden_size, 1, bias=False)
        self.output_projection = nn.Linear(source_size + hidden_size, hidden_size, bias=False)

    def keys(self, encoder_outputs: torch.Tensor) -> torch.Tensor:
        """The encoder outputs as the scores read them: (batch, source_length, hidden_size)."""
        return encoder_outputs if self.key_projection is None else self.key_projection(encoder_outputs)

    def forward(
        self,
        query: torch.Tensor,
        keys: torch.Tensor,
        encoder_outputs: torch.Tensor,
        encoder_attention_mask: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """query: (batch, target_length, hidden). Returns h̃ (batch, target_length, hidden) and the weights
        (batch, target_length, source_length), exactly 0 on padded source positions."""
        if self.score == "concat":
            # (batch, target, 1, hidden) + (batch, 1, source, hidden) -> (batch, target, source)
            scores = self.v(torch.tanh(self.query_projection(query).unsqueeze(2) + keys.unsqueeze(1))).squeeze(-1)
        else:
            scores = torch.bmm(query, keys.transpose(1, 2))
        if encoder_attention_mask is not None:
            mask = encoder_attention_mask.bool().unsqueeze(1)
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=-1)
        if encoder_attention_mask is not None:
            # exp(min - max) is already 0; this also makes a source of padding only attend to nothing (no NaN).
            weights = weights * mask.to(weights.dtype)
        context = torch.bmm(weights, encoder_outputs)
        attentional = torch.tanh(self.output_projection(torch.cat([context, query], dim=-1)))
        return attentional, weights


class Seq2SeqRNNDecoder(nn.Module):
    """Target embeddings, a stack of LSTM/GRU layers started by the bridge, and attention at every step."""

    def __init__(self, config: Seq2SeqRNNConfig):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.embedding_size, padding_idx=config.pad_token_id)
        self.embedding_dropout = nn.Dropout(config.embedding_dropout)
        input_size = config.embedding_size + (config.hidden_size if config.input_feeding else 0)
        self.rnn = RNN_MODULES[config.cell](
            input_size=input_size,
            hidden_size=config.hidden_size,
            num_layers=config.decoder_layers,
            dropout=config.dropout if config.decoder_layers > 1 else 0.0,
            batch_first=True,
        )
        self.bridge = Seq2SeqRNNBridge(config) if config.bridge == "linear" else None
        self.attention = Seq2SeqRNNAttention(config) if config.attention != "none" else None
        self.output_dropout = nn.Dropout(config.output_dropout)

    def forward(
        self,
        input_ids: torch.LongTensor | None,
        encoder_outputs: Seq2SeqRNNEncoderOutput,
        encoder_attention_mask: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        cache: Seq2SeqRNNCache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool = True,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        logits_of=None,
    ) -> Seq2SeqRNNDecoderOutput:
        r"""
        attention_mask (`torch.Tensor` of shape `(batch_size, target_length)`, *optional*): the decoder's own mask
            (`decoder_attention_mask`); a padded position leaves the state as it was. It may cover cached positions.
        logits_of (callable, *optional*): maps attentional states to logits; with it, training with
            `teacher_forcing_ratio < 1` feeds the decoder its own previous prediction (scheduled sampling).
        """
        config = self.config
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of `decoder_input_ids` or `decoder_inputs_embeds`.")
        if input_ids is not None:
            first_step = cache is None or cache.get_seq_length() == 0
            _check_token_ids(config, "decoder_input_ids", input_ids, check_range=first_step)
            inputs_embeds = self.embed_tokens(input_ids)
        embeds = self.embedding_dropout(inputs_embeds)
        batch_size, target_length = embeds.shape[:2]
        if attention_mask is not None:
            attention_mask = attention_mask[:, -target_length:]  # the cached positions are in the state already
            if bool(attention_mask.all()):
                attention_mask = None

        state, input_feed, keys = self._initial_state(encoder_outputs, cache, batch_size, embeds)
        values = encoder_outputs.last_hidden_state
        scheduled_sampling = (
            self.training and config.teacher_forcing_ratio < 1.0 and logits_of is not None and target_length > 1
        )
        step_by_step = (
            target_length == 1
            or config.input_feeding
            or scheduled_sampling
            or attention_mask is not None
            or output_hidden_states  # the fused module gives its top layer's outputs only
        )
        if step_by_step:
            layer_outputs, attentional, weights, state, input_feed = self._run_step_by_step(
                embeds,
                state,
                input_feed,
                keys,
                values,
                encoder_attention_mask,
                attention_mask,
                logits_of if scheduled_sampling else None,
            )
            top_outputs = layer_outputs[-1]
        else:
            # Without input feeding the recurrence does not depend on attention: one fused call over the target,
            # then every step's attention in one batched product.
            top_outputs, state = self.rnn(embeds, state)
            if self.attention is None:
                attentional, weights = top_outputs, None
            else:
                attentional, weights = self.attention(top_outputs, keys, values, encoder_attention_mask)
            input_feed = attentional[:, -1]

        if use_cache:
            if cache is None:
                cache = Seq2SeqRNNCache(config.decoder_layers, has_cell_state=config.cell == "lstm")
            if keys is not None and cache.attention_keys is None:
                cache.set_attention_keys(keys)
            hidden, cell = state if isinstance(state, tuple) else (state, None)
            cache.update_state(hidden, cell, input_feed, target_length)
        else:
            cache = None

        last_hidden_state = self.output_dropout(attentional)
        return Seq2SeqRNNDecoderOutput(
            last_hidden_state=last_hidden_state,
            cache=cache,
            hidden_states=(embeds, *layer_outputs, last_hidden_state) if output_hidden_states else None,
            cross_attentions=weights if output_attentions else None,
        )

    def _initial_state(self, encoder_outputs, cache, batch_size, embeds):
        """The decoder's state, input-feeding vector and attention keys before these positions: from the cache
        when it holds them, else from the bridge (or zeros), a zero vector and the encoder outputs."""
        config = self.config
        keys = None
        if self.attention is not None:
            keys = cache.attention_keys if cache is not None else None
            if keys is None:
                keys = self.attention.keys(encoder_outputs.last_hidden_state)
        if cache is not None and cache.get_seq_length() > 0:
            state = cache.as_tuple()
            # h as the state holds it (the cache stacks its layers on each read: read it once per step).
            hidden = state[0] if isinstance(state, tuple) else state
            if hidden.shape[1] != batch_size:
                raise ValueError(
                    f"The cache holds a state for batch size {hidden.shape[1]}, "
                    f"but the decoder inputs have batch size {batch_size}"
                )
            return state, cache.input_feed, keys
        if self.bridge is not None:
            state = self.bridge(encoder_outputs.final_hidden, encoder_outputs.final_cell)
        else:
            zeros = embeds.new_zeros(config.decoder_layers, batch_size, config.hidden_size)
            state = (zeros, zeros) if config.cell == "lstm" else zeros
        input_feed = embeds.new_zeros(batch_size, config.hidden_size)
        return state, input_feed, keys

    def _cell_step(self, inputs: torch.Tensor, state):
        """One position through every layer with the cell functions on the fused module's weights:
        h_t = cell(x_t, h_{t-1}) per layer. Returns every layer's h_t (bottom first) and the new state."""
        rnn, config = self.rnn, self.config
        is_lstm = config.cell == "lstm"
        if not isinstance(rnn, nn.RNNBase):  # int8 layers (`hf_seq.quantization`) step as the module itself
            _, new_state = rnn(inputs.unsqueeze(1), state)
            return list((new_state[0] if is_lstm else new_state).unbind(0)), new_state
        hidden_in, cell_in = state if is_lstm else (state, None)
        layer_input, new_hidden, new_cell = inputs, [], []
        for layer in range(config.decoder_layers):
            weights = (
                getattr(rnn, f"weight_ih_l{layer}"),
                getattr(rnn, f"weight_hh_l{layer}"),
                getattr(rnn, f"bias_ih_l{layer}"),
                getattr(rnn, f"bias_hh_l{layer}"),
            )
            if is_lstm:
                hidden, cell = torch.lstm_cell(layer_input, (hidden_in[layer], cell_in[layer]), *weights)
                new_cell.append(cell)
            else:
                hidden = torch.gru_cell(layer_input, hidden_in[layer], *weights)
            new_hidden.append(hidden)
            layer_input = hidden
            if layer < config.decoder_layers - 1:  # as nn.LSTM(dropout=...): between layers, not after the last
                layer_input = nn.functional.dropout(layer_input, rnn.dropout, self.training)
        new_state = (torch.stack(new_hidden), torch.stack(new_cell)) if is_lstm else torch.stack(new_hidden)
        return new_hidden, new_state

    def _run_step_by_step(
        self, embeds, state, input_feed, keys, values, encoder_attention_mask, attention_mask, logits_of
    ):
        """The decoder one target position at a time (input feeding, scheduled sampling, masks, cached decoding).

        Returns every layer's outputs (bottom first), the attentional states and the attention weights of every
        position, and the state and input-feeding vector after the last one.
        """
        config = self.config
        is_lstm = config.cell == "lstm"
        layer_steps, attentional_states, all_weights = [], [], []
        for t in range(embeds.shape[1]):
            step_embeds = embeds[:, t]
            if logits_of is not None and t > 0:
                step_embeds = self._scheduled_sampling_input(step_embeds, attentional_states[-1], logits_of)
            step_input = torch.cat([step_embeds, input_feed], dim=-1) if config.input_feeding else step_embeds
            layer_hidden, new_state = self._cell_step(step_input, state)
            top = layer_hidden[-1]
            if self.attention is None:
                attentional, weights = top, None
            else:
                attentional, weights = self.attention(top.unsqueeze(1), keys, values, encoder_attention_mask)
                attentional, weights = attentional.squeeze(1), weights.squeeze(1)
            if attention_mask is not None:  # a padded position leaves the state (and the input feed) as it was
                keep = attention_mask[:, t].bool().view(-1, 1)
                if is_lstm:
                    new_state = tuple(torch.where(keep.unsqueeze(0), new, old) for new, old in zip(new_state, state))
                else:
                    new_state = torch.where(keep.unsqueeze(0), new_state, state)
                attentional = torch.where(keep, attentional, input_feed)
            state, input_feed = new_state, attentional
            layer_steps.append(layer_hidden)
            attentional_states.append(attentional)
            all_weights.append(weights)
        weights = None if self.attention is None else torch.stack(all_weights, dim=1)
        layer_outputs = [torch.stack(steps, dim=1) for steps in zip(*layer_steps)]
        return layer_outputs, torch.stack(attentional_states, dim=1), weights, state, input_feed

    def _scheduled_sampling_input(self, reference_embeds, previous_attentional, logits_of):
        """With probability 1 - teacher_forcing_ratio per sequence, the embedding of the decoder's own previous
        prediction instead of the reference token's (Bengio et al., 2015). The prediction is not differentiated."""
        with torch.no_grad():
            predicted = logits_of(self.output_dropout(previous_attentional)).argmax(dim=-1)
        predicted_embeds = self.embedding_dropout(self.embed_tokens(predicted))
        use_reference = torch.rand(reference_embeds.shape[0], 1, device=reference_embeds.device)
        use_reference = use_reference < self.config.teacher_forcing_ratio
        return torch.where(use_reference, reference_embeds, predicted_embeds)


def _as_encoder_output(encoder_outputs, config: Seq2SeqRNNConfig) -> Seq2SeqRNNEncoderOutput:
    """Encoder outputs given as a tuple (`return_dict=False`) read back into their fields."""
    if isinstance(encoder_outputs, Seq2SeqRNNEncoderOutput):
        return encoder_outputs
    if isinstance(encoder_outputs, ModelOutput):
        return Seq2SeqRNNEncoderOutput(**dict(encoder_outputs.items()))
    has_cell = config.cell == "lstm"
    return Seq2SeqRNNEncoderOutput(
        last_hidden_state=encoder_outputs[0],
        final_hidden=encoder_outputs[1] if len(encoder_outputs) > 1 else None,
        final_cell=encoder_outputs[2] if has_cell and len(encoder_outputs) > 2 else None,
    )


class Seq2SeqRNNModel(Seq2SeqRNNPreTrainedModel):
    """The encoder and the decoder, without an output layer. Returns the attentional states of the target."""

    def __init__(self, config: Seq2SeqRNNConfig):
        super().__init__(config)
        self.encoder = Seq2SeqRNNEncoder(config)
        self.decoder = Seq2SeqRNNDecoder(config)
        self.post_init()

    def get_input_embeddings(self):
        return self.encoder.embed_tokens

    def set_input_embeddings(self, value):
        self.encoder.embed_tokens = value

    def get_encoder(self, modality: str | None = None):
        return self.encoder

    def get_decoder(self):
        return self.decoder

    @can_return_tuple
    @accepts_cache_aliases
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs: Seq2SeqRNNEncoderOutput | tuple | None = None,
        cache: Seq2SeqRNNCache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        decoder_inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> Seq2SeqModelOutput:
        r"""
        decoder_input_ids (`torch.LongTensor` of shape `(batch_size, target_length)`): the decoder's inputs, starting
            with `decoder_start_token_id` (or continuing the `cache`).
        encoder_outputs (`Seq2SeqRNNEncoderOutput`, *optional*): the encoder's outputs, when already computed
            (generate() computes them once); `input_ids` are then not read.
        cache (`Seq2SeqRNNCache`, *optional*): the decoder state after the target tokens already seen.
        """
        outputs = self._encode_and_decode(
            input_ids,
            attention_mask,
            decoder_input_ids,
            decoder_attention_mask,
            encoder_outputs,
            cache,
            inputs_embeds,
            decoder_inputs_embeds,
            use_cache,
            logits_of=None,
            **kwargs,
        )
        encoder_outputs, decoder_outputs = outputs
        return Seq2SeqModelOutput(
            last_hidden_state=decoder_outputs.last_hidden_state,
            decoder_hidden_states=decoder_outputs.hidden_states,
            cross_attentions=_per_layer(decoder_outputs.cross_attentions),
            encoder_last_hidden_state=encoder_outputs.last_hidden_state,
            encoder_hidden_states=encoder_outputs.hidden_states,
            **cache_keyword(decoder_outputs.cache),
        )

    def _encode_and_decode(
        self,
        input_ids,
        attention_mask,
        decoder_input_ids,
        decoder_attention_mask,
        encoder_outputs,
        cache,
        inputs_embeds,
        decoder_inputs_embeds,
        use_cache,
        logits_of,
        **kwargs,
    ) -> tuple[Seq2SeqRNNEncoderOutput, Seq2SeqRNNDecoderOutput]:
        """The encoder (unless its outputs are given), then the decoder: what the model and its LM head share."""
        _reject_unknown_kwargs(type(self), kwargs)
        use_cache = self.config.use_cache if use_cache is None else use_cache
        output_attentions = kwargs.get("output_attentions") or self.config.output_attentions
        output_hidden_states = kwargs.get("output_hidden_states") or self.config.output_hidden_states
        if encoder_outputs is None:
            encoder_outputs = self.encoder(
                input_ids=input_ids,
                attention_mask=attention_mask,
                inputs_embeds=inputs_embeds,
                output_hidden_states=output_hidden_states,
                return_dict=True,
            )
        encoder_outputs = _as_encoder_output(encoder_outputs, self.config)
        if attention_mask is not None and tuple(attention_mask.shape) != tuple(
            encoder_outputs.last_hidden_state.shape[:2]
        ):
            raise ValueError(
                f"`attention_mask` has shape {tuple(attention_mask.shape)} but the encoder outputs cover "
                f"{tuple(encoder_outputs.last_hidden_state.shape[:2])}"
            )
        decoder_outputs = self.decoder(
            input_ids=decoder_input_ids,
            encoder_outputs=encoder_outputs,
            encoder_attention_mask=attention_mask,
            attention_mask=decoder_attention_mask,
            cache=cache,
            inputs_embeds=decoder_inputs_embeds,
            use_cache=use_cache,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            logits_of=logits_of,
        )
        return encoder_outputs, decoder_outputs


def _per_layer(weights: torch.Tensor | None):
    """Attention weights as transformers returns cross-attentions: one tensor per attention layer (there is one)
    of shape (batch, heads, target_length, source_length) (one head)."""
    return None if weights is None else (weights.unsqueeze(1),)


class Seq2SeqRNNForConditionalGeneration(Seq2SeqRNNPreTrainedModel, GenerationMixin):
    """The encoder–decoder with an output layer: p(y_t | y_<t, x) = softmax(W_o h̃_t)."""

    _tied_weights_keys = {"lm_head.weight": "model.decoder.embed_tokens.weight"}

    def __init__(self, config: Seq2SeqRNNConfig):
        super().__init__(config)
        self.model = Seq2SeqRNNModel(config)
        # Tying the output layer to the decoder embeddings (Press & Wolf, 2017; Inan et al., 2017) needs h̃_t in the
        # embedding space; when sizes differ a projection maps it there, as AWD-LSTM does.
        needs_projection = config.tie_word_embeddings and config.hidden_size != config.embedding_size
        self.output_projection = (
            nn.Linear(config.hidden_size, config.embedding_size, bias=False) if needs_projection else None
        )
        head_input_size = config.embedding_size if config.tie_word_embeddings else config.hidden_size
        self.lm_head = nn.Linear(head_input_size, config.vocab_size)
        self.post_init()

    def get_encoder(self, modality: str | None = None):
        return self.model.encoder

    def get_decoder(self):
        return self.model.decoder

    def get_output_embeddings(self):
        return self.lm_head

    def set_output_embeddings(self, new_embeddings):
        self.lm_head = new_embeddings

    def prepare_decoder_input_ids_from_labels(self, labels: torch.Tensor) -> torch.Tensor:
        return shift_tokens_right(labels, self.config.pad_token_id, self.config.decoder_start_token_id)

    def _logits(self, attentional_states: torch.Tensor) -> torch.Tensor:
        if self.output_projection is not None:
            attentional_states = self.output_projection(attentional_states)
        return self.lm_head(attentional_states)

    @can_return_tuple
    @accepts_cache_aliases
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs: Seq2SeqRNNEncoderOutput | tuple | None = None,
        cache: Seq2SeqRNNCache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        decoder_inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> Seq2SeqLMOutput:
        r"""
        labels (`torch.LongTensor` of shape `(batch_size, target_length)`, *optional*): the target token ids. Without
            `decoder_input_ids` they are shifted right with `decoder_start_token_id` to make them; positions set to
            -100 are ignored by the loss.
        output_attentions (`bool`, *optional*): return the attention weights as `cross_attentions` (one tensor of
            shape (batch, 1, target_length, source_length)).
        """
        if labels is not None and decoder_input_ids is None and decoder_inputs_embeds is None:
            decoder_input_ids = self.prepare_decoder_input_ids_from_labels(labels)
        num_items_in_batch = kwargs.pop("num_items_in_batch", None)
        encoder_outputs, decoder_outputs = self.model._encode_and_decode(
            input_ids,
            attention_mask,
            decoder_input_ids,
            decoder_attention_mask,
            encoder_outputs,
            cache,
            inputs_embeds,
            decoder_inputs_embeds,
            use_cache,
            logits_of=self._logits,
            **kwargs,
        )
        logits = self._logits(decoder_outputs.last_hidden_state)

        loss = None
        if labels is not None:
            # `num_items_in_batch` from Trainer makes the loss a correct mean over gradient-accumulation steps.
            loss = ForMaskedLMLoss(logits, labels, self.config.vocab_size, num_items_in_batch=num_items_in_batch)
        return Seq2SeqLMOutput(
            loss=loss,
            logits=logits,
            decoder_hidden_states=decoder_outputs.hidden_states,
            cross_attentions=_per_layer(decoder_outputs.cross_attentions),
            encoder_last_hidden_state=encoder_outputs.last_hidden_state,
            encoder_hidden_states=encoder_outputs.hidden_states,
            **cache_keyword(decoder_outputs.cache),
        )
