"""The decoder's state as a transformers `Cache`, so `generate()` carries it from step to step.

A recurrent decoder's whole past is its state: h (and c for an LSTM) per layer, plus, with input feeding, the last
attentional hidden state. Feeding the next token needs only that state and the encoder's outputs, so a decode step
costs the same at output position 10 as at 10,000. generate() runs the encoder once and passes its outputs
(`encoder_outputs`) to every step; the cache keeps what the decoder derives from them once: the attention keys (the
encoder outputs projected by `general` / `concat` attention).

`Seq2SeqRNNCache.layers` holds one `RecurrentLayerCache` per decoder layer (recurrent state 0: h, 1: c) and, last, one
for the attention (state 0: the input-feeding vector, state 1: the attention keys). Every state has the batch as its
first dimension, so beam search's reordering (`reorder_cache`) and `num_return_sequences`' expansion
(`batch_repeat_interleave`) apply to the decoder state and to the keys alike.

As in the recurrent family, the helpers at the top follow the cache's name across transformers releases: generate()
passes and reads it as `cache` from transformers 5.24 on, as `past_key_values` before.
"""

import functools

import torch
from transformers.cache_utils import Cache, LinearAttentionCacheLayerMixin
from transformers.generation.utils import ALL_CACHE_NAMES
from transformers.utils import logging


logger = logging.get_logger(__name__)

# The name under which the installed transformers passes the cache to `forward` and reads it from the outputs.
# Copied from hf_seq.models.recurrent.cache_recurrent.CACHE_NAME
CACHE_NAME = ALL_CACHE_NAMES[0]
# Every other name transformers has given a cache.
# Copied from hf_seq.models.recurrent.cache_recurrent.CACHE_ALIASES
CACHE_ALIASES = ("past_key_values", "cache_params", "state", "mems", "past_buckets_states")


# Copied from hf_seq.models.recurrent.cache_recurrent.accepts_cache_aliases
def accepts_cache_aliases(forward):
    """Decorate a `forward(..., cache=None, ...)` so that it also takes the cache under transformers' other names.

    A cache passed under any name reaches `cache`; it is never dropped. Passing it twice is an error; passing it under
    a name that the installed transformers calls deprecated warns once, as transformers' own models do.
    """

    @functools.wraps(forward)
    def wrapper(self, *args, **kwargs):
        for alias in CACHE_ALIASES:
            if alias not in kwargs:
                continue
            value = kwargs.pop(alias)
            if value is None:
                continue
            if kwargs.get("cache") is not None:
                raise ValueError(f"The cache was passed twice, as `cache` and as `{alias}`: pass it once, as `cache`.")
            if alias != CACHE_NAME:
                logger.warning_once(f"`{alias}` is deprecated for this model: pass the cache as `cache`.")
            kwargs["cache"] = value
        return forward(self, *args, **kwargs)

    return wrapper


# Copied from hf_seq.models.recurrent.cache_recurrent.cache_keyword
def cache_keyword(cache):
    """The cache as a keyword argument under the installed transformers' name for it, for its output classes and
    functions (`BaseModelOutputWithPast(cache=...)` from 5.24, `past_key_values=...` before)."""
    return {CACHE_NAME: cache}


# Copied from hf_seq.models.recurrent.cache_recurrent.cache_of
def cache_of(outputs):
    """The cache a forward returned, whatever the installed transformers calls it (`outputs.cache` from 5.24)."""
    return getattr(outputs, CACHE_NAME, None)


# Copied from hf_seq.models.recurrent.cache_recurrent.RecurrentLayerCache
class RecurrentLayerCache(LinearAttentionCacheLayerMixin):
    """The state of one recurrent layer: h as recurrent state 0 and, for an LSTM, c as recurrent state 1.

    States are replaced, not copied in place as transformers' `LinearAttentionLayer` does: truncated backpropagation
    through time keeps the previous state in the autograd graph, and an in-place write would corrupt it.
    """

    is_compileable = False
    is_sliding = False

    def lazy_initialization(self, conv_states=None, recurrent_states=None, state_idx: int = 0) -> None:
        self.device, self.dtype = recurrent_states.device, recurrent_states.dtype
        self.is_recurrent_states_initialized[state_idx] = True

    def update_conv_state(self, conv_states: torch.Tensor, state_idx: int = 0, **kwargs) -> torch.Tensor:
        raise NotImplementedError("A recurrent layer keeps no convolution state.")

    def update_recurrent_state(self, recurrent_states: torch.Tensor, state_idx: int = 0, **kwargs) -> torch.Tensor:
        if not self.is_recurrent_states_initialized[state_idx]:
            self.lazy_initialization(recurrent_states=recurrent_states, state_idx=state_idx)
        self.recurrent_states[state_idx] = recurrent_states
        self.has_previous_state[state_idx] = True
        return recurrent_states

    def _apply_to_batch(self, fn) -> None:
        for state_idx, state in self.recurrent_states.items():
            if state is not None:
                self.recurrent_states[state_idx] = fn(state)

    # What generate() needs for beam search and num_return_sequences: the batch is dimension 0 of each state.
    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        self._apply_to_batch(lambda state: state.index_select(0, beam_idx.to(state.device)))

    def batch_repeat_interleave(self, repeats: int) -> None:
        self._apply_to_batch(lambda state: state.repeat_interleave(repeats, dim=0))

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self._apply_to_batch(lambda state: state[indices])

    def reset(self) -> None:
        """Forget the state: the next forward starts from zeros again."""
        for state_idx in range(self.number_of_states):
            self.recurrent_states[state_idx] = None
            self.is_recurrent_states_initialized[state_idx] = False
            self.has_previous_state[state_idx] = False


class Seq2SeqRNNCache(Cache):
    """
    Holds the decoder's state after the target tokens seen so far, and the attention keys computed once per source.

    Args:
        decoder_layers (`int`): number of decoder layers (one cache layer each, then one for the attention).
        has_cell_state (`bool`): whether each layer also has a cell state c (LSTM).

    Attributes:
        hidden (`torch.Tensor` of shape `(decoder_layers, batch_size, hidden_size)`, or `None` while empty): h of
            each decoder layer, stacked as `nn.LSTM` / `nn.GRU` take and return it.
        cell (`torch.Tensor` of the same shape, or `None`): c of each LSTM layer; `None` for a GRU.
        input_feed (`torch.Tensor` of shape `(batch_size, hidden_size)`, or `None`): the last attentional hidden
            state, the decoder's next extra input when `input_feeding` is on.
        attention_keys (`torch.Tensor` of shape `(batch_size, source_length, key_size)`, or `None`): the encoder
            outputs as the attention scores read them (projected for `general` / `concat`, as they are for `dot`).
        seen_tokens (`int`): how many target positions have been fed (what generate asks through `get_seq_length`).
    """

    is_compileable = False
    is_croppable = False  # a state cannot be rolled back by some tokens

    def __init__(self, decoder_layers: int, has_cell_state: bool = False, seen_tokens: int = 0):
        number_of_states = 2 if has_cell_state else 1
        layers = [RecurrentLayerCache(number_of_states) for _ in range(decoder_layers)]
        super().__init__(layers=layers + [RecurrentLayerCache(2)])  # the last layer: input feed and attention keys
        self.decoder_layers = decoder_layers
        self.has_cell_state = has_cell_state
        self.seen_tokens = seen_tokens

    def __repr__(self):
        shape = None if self.hidden is None else tuple(self.hidden.shape)
        return f"Seq2SeqRNNCache(hidden={shape}, cell={self.has_cell_state}, seen_tokens={self.seen_tokens})"

    @property
    def _attention_layer(self) -> RecurrentLayerCache:
        return self.layers[self.decoder_layers]

    def _stacked(self, state_idx: int) -> torch.Tensor | None:
        states = [layer.recurrent_states[state_idx] for layer in self.layers[: self.decoder_layers]]
        return None if any(state is None for state in states) else torch.stack(states)

    @property
    def hidden(self) -> torch.Tensor | None:
        return self._stacked(0)

    @property
    def cell(self) -> torch.Tensor | None:
        return self._stacked(1) if self.has_cell_state else None

    @property
    def input_feed(self) -> torch.Tensor | None:
        return self._attention_layer.recurrent_states[0]

    @property
    def attention_keys(self) -> torch.Tensor | None:
        return self._attention_layer.recurrent_states[1]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.seen_tokens

    def get_max_length(self, layer_idx: int | None = None) -> int:
        return -1  # no limit: the state does not grow

    def get_mask_sizes(self, query_length: int, layer_idx: int = 0) -> tuple[int, int]:
        return self.seen_tokens + query_length, 0

    def update_state(
        self,
        hidden: torch.Tensor,
        cell: torch.Tensor | None,
        input_feed: torch.Tensor | None,
        num_new_tokens: int,
    ) -> None:
        """Replace the decoder's state by the one after `num_new_tokens` more target positions."""
        for layer_idx in range(self.decoder_layers):
            self.layers[layer_idx].update_recurrent_state(hidden[layer_idx], 0)
            if self.has_cell_state:
                self.layers[layer_idx].update_recurrent_state(cell[layer_idx], 1)
        if input_feed is not None:
            self._attention_layer.update_recurrent_state(input_feed, 0)
        self.seen_tokens += num_new_tokens

    def set_attention_keys(self, attention_keys: torch.Tensor) -> None:
        """Keep the projected encoder outputs, computed once per source, for every later step."""
        self._attention_layer.update_recurrent_state(attention_keys, 1)

    def as_tuple(self):
        """The decoder state in the form `nn.GRU` (h) or `nn.LSTM` ((h, c)) take, or `None` while empty."""
        hidden = self.hidden
        if hidden is None:
            return None
        return (hidden, self.cell) if self.has_cell_state else hidden

    def reset(self) -> None:
        super().reset()
        self.seen_tokens = 0

    def crop(self, tokens_to_remove: int):
        raise NotImplementedError("A recurrent state cannot be cropped: it does not keep one entry per token.")
