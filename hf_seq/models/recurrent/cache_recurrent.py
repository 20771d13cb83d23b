"""The recurrent state as a transformers `Cache`, so `generate()` carries it from step to step.

An RNN's whole past is its state: h (and c for an LSTM) per layer, of a fixed size. Feeding the next token needs only
that state, so a decode step costs the same at position 10 as at position 10,000. `DynamicCache` cannot hold it:
it stores growing key/value tensors. Like transformers' caches for Mamba-style layers, `RecurrentCache` holds one
linear-attention layer per recurrent layer (`cache.layers[i]`, `cache.get_recurrent_state(i, state_idx)`), whose
recurrent states are h (`state_idx=0`) and, for an LSTM, c (`state_idx=1`), each of shape (batch, hidden_size).

This file also holds what lets the family follow the cache's name across transformers releases: generate() passes
and reads the cache as `cache` from transformers 5.24 on, as `past_key_values` before.
"""

import functools

import torch
from transformers.cache_utils import Cache, LinearAttentionCacheLayerMixin
from transformers.generation.utils import ALL_CACHE_NAMES
from transformers.utils import logging


logger = logging.get_logger(__name__)

# The name under which the installed transformers passes the cache to `forward` and reads it from the outputs:
# generate()'s own list of cache names puts it first ("cache" from 5.24, "past_key_values" before).
CACHE_NAME = ALL_CACHE_NAMES[0]
# Every other name transformers has given a cache (Mamba's `cache_params`, RWKV's `state`, XLNet's `mems`, ...).
CACHE_ALIASES = ("past_key_values", "cache_params", "state", "mems", "past_buckets_states")


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


def cache_keyword(cache):
    """The cache as a keyword argument under the installed transformers' name for it, for its output classes and
    functions (`BaseModelOutputWithPast(cache=...)` from 5.24, `past_key_values=...` before)."""
    return {CACHE_NAME: cache}


def cache_of(outputs):
    """The cache a forward returned, whatever the installed transformers calls it (`outputs.cache` from 5.24)."""
    return getattr(outputs, CACHE_NAME, None)


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


class RecurrentCache(Cache):
    """
    Holds the state of every recurrent layer after the tokens seen so far.

    Args:
        num_hidden_layers (`int`): number of recurrent layers (one cache layer each).
        has_cell_state (`bool`): whether each layer also has a cell state c (LSTM).

    Attributes:
        hidden (`torch.Tensor` of shape `(num_layers, batch_size, hidden_size)`, or `None` while empty): h of each
            layer, stacked as `nn.RNN` / `nn.GRU` / `nn.LSTM` take and return it.
        cell (`torch.Tensor` of the same shape, or `None`): c of each LSTM layer; `None` for RNN and GRU.
        seen_tokens (`int`): how many positions have been fed (what generate asks through `get_seq_length`).
    """

    is_compileable = False
    is_croppable = False  # a state cannot be rolled back by some tokens

    def __init__(self, num_hidden_layers: int, has_cell_state: bool = False, seen_tokens: int = 0):
        number_of_states = 2 if has_cell_state else 1
        super().__init__(layers=[RecurrentLayerCache(number_of_states) for _ in range(num_hidden_layers)])
        self.has_cell_state = has_cell_state
        self.seen_tokens = seen_tokens

    @classmethod
    def from_state(cls, hidden: torch.Tensor, cell: torch.Tensor | None = None, seen_tokens: int = 0):
        """A cache holding a given state (h and c as `nn.LSTM` returns them: (num_layers, batch, hidden))."""
        cache = cls(hidden.shape[0], has_cell_state=cell is not None)
        cache.update_state(hidden, cell, seen_tokens)
        return cache

    def __repr__(self):
        shape = None if self.hidden is None else tuple(self.hidden.shape)
        return f"RecurrentCache(hidden={shape}, cell={self.has_cell_state}, seen_tokens={self.seen_tokens})"

    def _stacked(self, state_idx: int) -> torch.Tensor | None:
        states = [layer.recurrent_states[state_idx] for layer in self.layers]
        return None if any(state is None for state in states) else torch.stack(states)

    @property
    def hidden(self) -> torch.Tensor | None:
        return self._stacked(0)

    @property
    def cell(self) -> torch.Tensor | None:
        return self._stacked(1) if self.has_cell_state else None

    @property
    def batch_size(self) -> int | None:
        """The batch size of the state held, or `None` while empty."""
        state = self.layers[0].recurrent_states[0] if self.layers else None
        return None if state is None else state.shape[0]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.seen_tokens

    def get_max_length(self, layer_idx: int | None = None) -> int:
        return -1  # no limit: the state does not grow

    def get_mask_sizes(self, query_length: int, layer_idx: int = 0) -> tuple[int, int]:
        return self.seen_tokens + query_length, 0

    def update_state(self, hidden: torch.Tensor, cell: torch.Tensor | None, num_new_tokens: int) -> None:
        """Replace the state by the one after `num_new_tokens` more positions: h (and c) stacked, (num_layers, batch,
        hidden), or a list of each layer's (batch, hidden) as `layer_states` gives it."""
        for layer_idx, layer in enumerate(self.layers):
            layer.update_recurrent_state(hidden[layer_idx], 0)
            if self.has_cell_state:
                layer.update_recurrent_state(cell[layer_idx], 1)
        self.seen_tokens += num_new_tokens

    def layer_states(self):
        """The state layer by layer, unstacked: a list of each layer's h (batch, hidden), with the list of c for an
        LSTM as `(hidden, cell)`; `None` if empty. What a decode step reads, without the copy that stacking makes."""
        if self.batch_size is None:
            return None
        hidden = [layer.recurrent_states[0] for layer in self.layers]
        if self.has_cell_state:
            return hidden, [layer.recurrent_states[1] for layer in self.layers]
        return hidden

    def as_tuple(self):
        """The state in the form `nn.RNN`/`nn.GRU` (h) or `nn.LSTM` ((h, c)) take and return, or `None` if empty."""
        hidden = self.hidden
        if hidden is None:
            return None
        return (hidden, self.cell) if self.has_cell_state else hidden

    def detach(self) -> "RecurrentCache":
        """A copy of this cache cut from the autograd graph: truncated backpropagation through time."""
        hidden, cell = self.hidden, self.cell
        if hidden is None:
            return RecurrentCache(len(self.layers), self.has_cell_state, self.seen_tokens)
        return RecurrentCache.from_state(hidden.detach(), None if cell is None else cell.detach(), self.seen_tokens)

    def reset(self) -> None:
        super().reset()
        self.seen_tokens = 0

    def crop(self, tokens_to_remove: int):
        raise NotImplementedError("A recurrent state cannot be cropped: it does not keep one entry per token.")
