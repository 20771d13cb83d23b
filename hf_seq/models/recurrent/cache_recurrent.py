"""The recurrent state as a transformers `Cache`, so `generate()` carries it from step to step.

An RNN's whole past is its state: h (and c for an LSTM) per layer, of a fixed size. Feeding the next token needs only
that state, so a decode step costs the same at position 10 as at position 10,000. `DynamicCache` cannot hold it:
it stores growing key/value tensors and asks its layers for a sequence length that a state does not have.
"""

import torch
from transformers.cache_utils import Cache


class RecurrentCache(Cache):
    """
    Holds the state of every recurrent layer after the tokens seen so far.

    Attributes:
        hidden (`torch.Tensor` of shape `(num_layers, batch_size, hidden_size)`): h of each layer.
        cell (`torch.Tensor` of the same shape, or `None`): c of each LSTM layer; `None` for RNN and GRU.
        seen_tokens (`int`): how many positions have been fed (what generate asks through `get_seq_length`).
    """

    is_compileable = False
    is_croppable = False  # a state cannot be rolled back by some tokens

    def __init__(self, hidden=None, cell=None, seen_tokens=0):
        super().__init__(layers=[])
        self.hidden = hidden
        self.cell = cell
        self.seen_tokens = seen_tokens

    def __len__(self):
        return 0 if self.hidden is None else self.hidden.shape[0]

    def __repr__(self):
        shape = None if self.hidden is None else tuple(self.hidden.shape)
        return f"RecurrentCache(hidden={shape}, cell={self.cell is not None}, seen_tokens={self.seen_tokens})"

    def get_seq_length(self, layer_idx=0):
        return self.seen_tokens

    def get_max_length(self, layer_idx=None):
        return -1  # no limit: the state does not grow

    def update_state(self, hidden, cell, num_new_tokens):
        """Replace the state by the one after `num_new_tokens` more positions."""
        self.hidden = hidden
        self.cell = cell
        self.seen_tokens += num_new_tokens

    def as_tuple(self):
        """The state in the form `nn.RNN`/`nn.GRU` (h) or `nn.LSTM` ((h, c)) take and return, or `None` if empty."""
        if self.hidden is None:
            return None
        return self.hidden if self.cell is None else (self.hidden, self.cell)

    def detach(self):
        """A copy of this cache cut from the autograd graph: truncated backpropagation through time."""
        return RecurrentCache(
            hidden=None if self.hidden is None else self.hidden.detach(),
            cell=None if self.cell is None else self.cell.detach(),
            seen_tokens=self.seen_tokens,
        )

    def _apply_to_batch(self, fn):
        if self.hidden is not None:
            self.hidden = fn(self.hidden)
        if self.cell is not None:
            self.cell = fn(self.cell)

    # What generate() needs for beam search and num_return_sequences: the batch is dimension 1 of the state.
    def reorder_cache(self, beam_idx):
        self._apply_to_batch(lambda state: state.index_select(1, beam_idx.to(state.device)))

    def batch_repeat_interleave(self, repeats):
        self._apply_to_batch(lambda state: state.repeat_interleave(repeats, dim=1))

    def batch_select_indices(self, indices):
        self._apply_to_batch(lambda state: state[:, indices])

    def reset(self):
        self.hidden, self.cell, self.seen_tokens = None, None, 0

    def crop(self, tokens_to_remove):
        raise NotImplementedError("A recurrent state cannot be cropped: it does not keep one entry per token.")

    @property
    def is_sliding(self):
        return [False] * len(self)

    @property
    def is_linear(self):
        return [True] * len(self)

    @property
    def is_dummy(self):
        return [False] * len(self)
