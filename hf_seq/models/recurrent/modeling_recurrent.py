"""Recurrent language models (Elman RNN, LSTM, GRU) as Hugging Face models.

One implementation serves the three cells, as pytorch/examples' word_language_model does: the cell is chosen by
name (`nn.RNN`, `nn.LSTM`, `nn.GRU`). Training runs the fused module (cuDNN on a GPU); a single decode step runs the
cell functions (`torch.lstm_cell`, ...) on the same weights, which is far cheaper than a fused call of length one.
The recurrent state travels between calls in a `RecurrentCache` under `past_key_values`, so `generate()` costs O(1)
per new token.

The per-cell classes at the end of the file (`LSTMForCausalLM`, ...) only bind the shared classes to their config.
"""

import math

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import (
    BaseModelOutputWithPast,
    CausalLMOutputWithPast,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)

from .cache_recurrent import RecurrentCache
from .configuration_recurrent import GRUConfig, LSTMConfig, RecurrentConfig, RNNConfig


class RecurrentPreTrainedModel(PreTrainedModel):
    config_class = RecurrentConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = False
    _is_stateful = True  # the state cannot be rolled back, so assisted generation is refused
    _no_split_modules = []

    @classmethod
    def _supports_default_dynamic_cache(cls):
        # generate() would otherwise build a DynamicCache, which cannot hold a recurrent state.
        return False

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


def _validate_inputs(config, input_ids, inputs_embeds, attention_mask, past_length=0):
    if (input_ids is None) == (inputs_embeds is None):
        raise ValueError("Pass exactly one of `input_ids` or `inputs_embeds`.")
    if input_ids is not None:
        if input_ids.dim() != 2:
            raise ValueError(f"`input_ids` must have shape (batch_size, sequence_length), got {tuple(input_ids.shape)}")
        if input_ids.numel() and (input_ids.min() < 0 or input_ids.max() >= config.vocab_size):
            raise ValueError(
                f"`input_ids` holds ids outside the vocabulary [0, {config.vocab_size}): "
                f"min {int(input_ids.min())}, max {int(input_ids.max())}. Was the model built for this tokenizer?"
            )
    shape = tuple((input_ids if input_ids is not None else inputs_embeds).shape[:2])
    # As in transformers' models, the mask may cover the cached positions too (generate passes it that way).
    allowed = {shape, (shape[0], past_length + shape[1])}
    if attention_mask is not None and tuple(attention_mask.shape) not in allowed:
        raise ValueError(
            f"`attention_mask` has shape {tuple(attention_mask.shape)} but the inputs have shape {shape}"
            + (f" after {past_length} cached positions" if past_length else "")
        )
    if shape[1] == 0:
        raise ValueError("The input sequence is empty (sequence_length 0).")


class RecurrentModel(RecurrentPreTrainedModel):
    """Embeddings, then a stack of recurrent layers. Returns the last layer's outputs and the final state."""

    def __init__(self, config):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.embedding_size, padding_idx=config.pad_token_id)
        self.embedding_dropout = nn.Dropout(config.embedding_dropout)
        rnn_class = getattr(nn, config.rnn_type)  # nn.RNN, nn.LSTM or nn.GRU
        rnn_kwargs = {"nonlinearity": config.nonlinearity} if config.rnn_type == "RNN" else {}
        self.rnn = rnn_class(
            input_size=config.embedding_size,
            hidden_size=config.hidden_size,
            num_layers=config.num_hidden_layers,
            dropout=config.dropout if config.num_hidden_layers > 1 else 0.0,
            bidirectional=config.bidirectional,
            batch_first=True,
            **rnn_kwargs,
        )
        self.output_dropout = nn.Dropout(config.output_dropout)
        self.post_init()

    def get_input_embeddings(self):
        return self.embed_tokens

    def set_input_embeddings(self, value):
        self.embed_tokens = value

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        past_key_values=None,
        inputs_embeds=None,
        use_cache=None,
        return_dict=None,
        **kwargs,
    ):
        past_length = past_key_values.get_seq_length() if past_key_values is not None else 0
        _validate_inputs(self.config, input_ids, inputs_embeds, attention_mask, past_length)
        use_cache = use_cache if use_cache is not None else self.config.use_cache
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if self.config.bidirectional:
            if past_length > 0:
                raise ValueError("A bidirectional model reads the whole sequence at once: it cannot continue a state.")
            use_cache = False

        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)
        hidden_states = self.embedding_dropout(inputs_embeds)
        batch_size, sequence_length = hidden_states.shape[:2]
        if attention_mask is not None:
            attention_mask = attention_mask[:, -sequence_length:]  # the cached positions are in the state already

        initial_state = past_key_values.as_tuple() if past_key_values is not None else None
        if initial_state is not None and past_key_values.hidden.shape[1] != batch_size:
            raise ValueError(
                f"`past_key_values` holds a state for batch size {past_key_values.hidden.shape[1]}, "
                f"but the inputs have batch size {batch_size}"
            )
        if attention_mask is not None and bool(attention_mask.all()):
            attention_mask = None  # nothing is padded: take the plain fused path

        if sequence_length == 1 and not self.config.bidirectional:
            hidden_states, final_state = self._single_step(hidden_states[:, 0], initial_state, attention_mask)
        elif attention_mask is None:
            hidden_states, final_state = self.rnn(hidden_states, initial_state)
        else:
            hidden_states, final_state = self._run_padded(hidden_states, attention_mask, initial_state)
        hidden_states = self.output_dropout(hidden_states)

        if use_cache:
            if past_key_values is None:
                past_key_values = RecurrentCache()
            hidden, cell = final_state if isinstance(final_state, tuple) else (final_state, None)
            past_key_values.update_state(hidden, cell, sequence_length)
        else:
            past_key_values = None

        output = BaseModelOutputWithPast(last_hidden_state=hidden_states, past_key_values=past_key_values)
        return output if return_dict else output.to_tuple()

    def _single_step(self, inputs, initial_state, step_mask):
        """One position through every layer with the cell functions: h_t = cell(x_t, h_{t-1}) per layer."""
        rnn, config = self.rnn, self.config
        batch_size = inputs.shape[0]
        if initial_state is None:
            zeros = inputs.new_zeros(config.num_hidden_layers, batch_size, config.hidden_size)
            initial_state = (zeros, zeros) if config.rnn_type == "LSTM" else zeros
        is_lstm = config.rnn_type == "LSTM"
        hidden_in, cell_in = initial_state if is_lstm else (initial_state, None)

        layer_input, new_hidden, new_cell = inputs, [], []
        for layer in range(config.num_hidden_layers):
            weights = (
                getattr(rnn, f"weight_ih_l{layer}"),
                getattr(rnn, f"weight_hh_l{layer}"),
                getattr(rnn, f"bias_ih_l{layer}"),
                getattr(rnn, f"bias_hh_l{layer}"),
            )
            if is_lstm:
                hidden, cell = torch.lstm_cell(layer_input, (hidden_in[layer], cell_in[layer]), *weights)
                new_cell.append(cell)
            elif config.rnn_type == "GRU":
                hidden = torch.gru_cell(layer_input, hidden_in[layer], *weights)
            elif config.nonlinearity == "relu":
                hidden = torch.rnn_relu_cell(layer_input, hidden_in[layer], *weights)
            else:
                hidden = torch.rnn_tanh_cell(layer_input, hidden_in[layer], *weights)
            new_hidden.append(hidden)
            layer_input = hidden
            if layer < config.num_hidden_layers - 1:  # as nn.LSTM(dropout=...): between layers, not after the last
                layer_input = nn.functional.dropout(layer_input, rnn.dropout, self.training)

        hidden_out = torch.stack(new_hidden)
        cell_out = torch.stack(new_cell) if is_lstm else None
        if step_mask is not None:  # a padded step leaves the state as it was
            keep = step_mask[:, -1].bool().view(1, -1, 1)
            hidden_out = torch.where(keep, hidden_out, hidden_in)
            cell_out = torch.where(keep, cell_out, cell_in) if is_lstm else None
            layer_input = layer_input * keep[0]
        final_state = (hidden_out, cell_out) if is_lstm else hidden_out
        return layer_input.unsqueeze(1), final_state

    def _run_padded(self, inputs, attention_mask, initial_state):
        """Run only the real tokens of each row, wherever the padding is (left, right or both).

        The real tokens of each row are moved to the front (keeping their order), run as a packed sequence so that
        padding never touches the state, and the outputs are put back where the tokens were; padding outputs are 0.
        """
        mask = attention_mask.bool()
        lengths = mask.sum(dim=1)
        sequence_length = inputs.shape[1]
        # A stable sort of "is padding" lists each row's real positions first, in order.
        order = torch.sort((~mask).to(torch.int8), dim=1, stable=True).indices
        gather_index = order.unsqueeze(-1)
        compact = inputs.gather(1, gather_index.expand_as(inputs))
        packed = pack_padded_sequence(compact, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
        packed_outputs, final_state = self.rnn(packed, initial_state)
        compact_outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True, total_length=sequence_length)
        outputs = torch.zeros_like(compact_outputs).scatter(1, gather_index.expand_as(compact_outputs), compact_outputs)
        outputs = outputs * mask.unsqueeze(-1).to(outputs.dtype)

        empty_rows = lengths == 0
        if bool(empty_rows.any()):  # a row of padding only: its state stays the initial one
            def restore(final, initial):
                initial = torch.zeros_like(final) if initial is None else initial
                return torch.where(empty_rows.view(1, -1, 1), initial, final)

            if isinstance(final_state, tuple):
                initial = initial_state if initial_state is not None else (None, None)
                final_state = (restore(final_state[0], initial[0]), restore(final_state[1], initial[1]))
            else:
                final_state = restore(final_state, initial_state)
        return outputs, final_state


class RecurrentForCausalLM(RecurrentPreTrainedModel, GenerationMixin):
    """A recurrent language model: p(x_t | x_<t) = softmax(W h_t)."""

    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}

    def __init__(self, config):
        if config.bidirectional:
            raise ValueError(
                f"{type(self).__name__} is a causal language model: `bidirectional=True` would let it see the tokens "
                "it must predict. Use a classification head for a bidirectional encoder."
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

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        past_key_values=None,
        inputs_embeds=None,
        labels=None,
        use_cache=None,
        return_dict=None,
        logits_to_keep=0,
        **kwargs,
    ):
        r"""
        labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            Token ids to predict; shifted inside (position t predicts label t+1). Positions set to -100 are ignored.
        logits_to_keep (`int`, defaults to 0): compute logits for the last this many positions only (0: all).
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            past_key_values=past_key_values,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            return_dict=True,
        )
        hidden_states = outputs.last_hidden_state
        if logits_to_keep:
            hidden_states = hidden_states[:, -logits_to_keep:]
        if self.output_projection is not None:
            hidden_states = self.output_projection(hidden_states)
        logits = self.lm_head(hidden_states)

        loss = None
        if labels is not None:
            # kwargs may carry `num_items_in_batch` from Trainer, which makes the loss a correct mean across devices.
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.vocab_size, **kwargs)

        output = CausalLMOutputWithPast(loss=loss, logits=logits, past_key_values=outputs.past_key_values)
        return output if return_dict else output.to_tuple()


def _pool(hidden_states, attention_mask, pooling, bidirectional):
    """Summarise each sequence from its real tokens only, so padding never changes the result."""
    batch_size, sequence_length, _ = hidden_states.shape
    if attention_mask is None:
        attention_mask = hidden_states.new_ones(batch_size, sequence_length)
    if pooling == "concat":  # ULMFiT's concat pooling: the last state, then the max and the mean over real tokens
        parts = [_pool(hidden_states, attention_mask, part, bidirectional) for part in ("last", "max", "mean")]
        return torch.cat(parts, dim=-1)
    mask = attention_mask.to(hidden_states.dtype).unsqueeze(-1)
    lengths = mask.sum(dim=1)
    if pooling == "mean":
        return (hidden_states * mask).sum(dim=1) / lengths.clamp(min=1)
    if pooling == "max":
        masked = hidden_states.masked_fill(mask == 0, torch.finfo(hidden_states.dtype).min)
        return torch.where(lengths > 0, masked.max(dim=1).values, torch.zeros_like(masked[:, 0]))
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

    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = RecurrentModel(config)
        self.classifier = nn.Linear(self._classifier_input_size(config), config.num_labels)
        self.post_init()

    def _classifier_input_size(self, config):
        """The size of one position's output: both directions' hidden states side by side when bidirectional."""
        return config.hidden_size * (2 if config.bidirectional else 1)

    def _encode(self, input_ids, attention_mask, inputs_embeds):
        """The encoder's outputs in reading order, with the attention mask in that order too.

        A backward model (`reading_direction="backward"`) reads each sequence's real tokens from last to first: its
        outputs, and the mask returned, run in that order (pooling reads them as it reads a forward model's).
        """
        if self.config.reading_direction == "backward":
            if input_ids is not None:
                input_ids = _reverse_real_tokens(input_ids, attention_mask)
            if inputs_embeds is not None:
                inputs_embeds = _reverse_real_tokens(inputs_embeds, attention_mask)
            if attention_mask is not None:
                attention_mask = _reverse_real_tokens(attention_mask, attention_mask)
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            inputs_embeds=inputs_embeds,
            use_cache=False,
            return_dict=True,
        )
        return outputs.last_hidden_state, attention_mask


class RecurrentForSequenceClassification(RecurrentClassifierBase):
    """A recurrent encoder, a pooling of its outputs (`config.pooling`) and a linear classifier."""

    def _classifier_input_size(self, config):
        size = super()._classifier_input_size(config)
        return 3 * size if config.pooling == "concat" else size  # last, max and mean side by side

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, labels=None, return_dict=None):
        r"""
        labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*): class indices (or floats for regression).
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        hidden_states, attention_mask = self._encode(input_ids, attention_mask, inputs_embeds)
        pooled = _pool(hidden_states, attention_mask, self.config.pooling, self.config.bidirectional)
        logits = self.classifier(pooled)

        loss = None
        if labels is not None:
            loss = self.loss_function(labels=labels, pooled_logits=logits, config=self.config)

        output = SequenceClassifierOutput(loss=loss, logits=logits)
        return output if return_dict else output.to_tuple()


class RecurrentForTokenClassification(RecurrentClassifierBase):
    """A recurrent encoder with a linear classifier on every position (many-to-many, e.g. tagging)."""

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, labels=None, return_dict=None):
        r"""
        labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*): a class per position;
            -100 (e.g. on padding) is ignored.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        hidden_states, reading_mask = self._encode(input_ids, attention_mask, inputs_embeds)
        if self.config.reading_direction == "backward":  # back to the tokens' own positions, where the labels are
            hidden_states = _reverse_real_tokens(hidden_states, reading_mask)
        logits = self.classifier(hidden_states)

        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels, config=self.config)

        output = TokenClassifierOutput(loss=loss, logits=logits)
        return output if return_dict else output.to_tuple()


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
