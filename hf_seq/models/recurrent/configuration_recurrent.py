"""Configuration of the recurrent language models (Elman RNN, LSTM, GRU).

One configuration class serves the three cells; `RNNConfig`, `LSTMConfig` and `GRUConfig` only name the cell and
the `model_type` under which the Auto classes find them.
"""

from transformers import PretrainedConfig

INITIALIZERS = ("uniform", "xavier", "kaiming", "orthogonal")
POOLINGS = ("last", "mean", "max", "concat")
NONLINEARITIES = ("tanh", "relu")
READING_DIRECTIONS = ("forward", "backward")


class RecurrentConfig(PretrainedConfig):
    r"""
    Configuration shared by [`RNNConfig`], [`LSTMConfig`] and [`GRUConfig`]. The defaults give a working small model.

    Args:
        vocab_size (`int`, defaults to 16000): number of tokens in the vocabulary.
        embedding_size (`int`, defaults to 256): size of the token embeddings.
        hidden_size (`int`, defaults to 512): size of the recurrent state of each layer (and direction).
        num_hidden_layers (`int`, defaults to 2): number of stacked recurrent layers.
        embedding_dropout (`float`, defaults to 0.1): dropout on the embedded inputs.
        dropout (`float`, defaults to 0.2): dropout between stacked recurrent layers.
        output_dropout (`float`, defaults to 0.2): dropout on the last layer's outputs, before any head.
        bidirectional (`bool`, defaults to `False`): read the sequence in both directions. Encoder heads only
            (sequence and token classification); a causal LM refuses it, since it would see the future.
        tie_word_embeddings (`bool`, defaults to `True`): share the input embedding matrix with the LM head. When
            `hidden_size != embedding_size`, a linear projection maps the last hidden state to `embedding_size`
            first, as AWD-LSTM does.
        initializer (`str`, defaults to `"uniform"`): how the weights are initialised: `"uniform"` (U(-r, r) with
            r = `initializer_range`, as pytorch/examples' word_language_model), `"xavier"`, `"kaiming"`, or
            `"orthogonal"` (orthogonal recurrent matrices, xavier input matrices; helps plain RNNs keep gradients).
        initializer_range (`float`, defaults to 0.1): r of the uniform initialiser.
        pooling (`str`, defaults to `"last"`): how a sequence-classification head summarises the sequence: the last
            real token (`"last"`; bidirectional models join the ends of both directions), `"mean"` or `"max"` over
            the real tokens, or all three side by side (`"concat"`, ULMFiT's concat pooling: last, max, mean).
        pad_token_id, bos_token_id, eos_token_id (`int`, optional): special token ids, as in the tokenizer.
        use_cache (`bool`, defaults to `True`): return the recurrent state as `past_key_values`.
    """

    rnn_type = None  # "RNN", "LSTM" or "GRU": the name of the torch.nn module, set by the subclasses
    keys_to_ignore_at_inference = ["past_key_values"]

    # The config is a dataclass (transformers 5): each field below is a constructor argument with its default.
    vocab_size: int = 16000
    embedding_size: int = 256
    hidden_size: int = 512
    num_hidden_layers: int = 2
    embedding_dropout: float = 0.1
    dropout: float = 0.2
    output_dropout: float = 0.2
    bidirectional: bool = False
    reading_direction: str = "forward"
    tie_word_embeddings: bool = True
    initializer: str = "uniform"
    initializer_range: float = 0.1
    pooling: str = "last"
    pad_token_id: int | None = 0
    bos_token_id: int | None = 2
    eos_token_id: int | list[int] | None = 3
    use_cache: bool = True

    def __post_init__(self, **kwargs):
        kwargs.setdefault("auto_map", self._auto_map())
        super().__post_init__(**kwargs)
        self._validate()

    @classmethod
    def _auto_map(cls):
        """Where a machine without hf_seq finds this family's classes in the saved code (trust_remote_code)."""
        if cls.rnn_type is None:
            return None
        prefix = cls.__name__[: -len("Config")]
        return {
            "AutoConfig": f"configuration_recurrent.{cls.__name__}",
            "AutoModel": f"modeling_recurrent.{prefix}Model",
            "AutoModelForCausalLM": f"modeling_recurrent.{prefix}ForCausalLM",
            "AutoModelForSequenceClassification": f"modeling_recurrent.{prefix}ForSequenceClassification",
            "AutoModelForTokenClassification": f"modeling_recurrent.{prefix}ForTokenClassification",
        }

    def _validate(self):
        name = type(self).__name__
        for field in ("vocab_size", "embedding_size", "hidden_size", "num_hidden_layers"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: `{field}` must be a positive integer, got {value!r}")
        for field in ("embedding_dropout", "dropout", "output_dropout"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ValueError(f"{name}: `{field}` must be a probability in [0, 1), got {value!r}")
        if not isinstance(self.bidirectional, bool):
            raise ValueError(f"{name}: `bidirectional` must be True or False, got {self.bidirectional!r}")
        if self.reading_direction not in READING_DIRECTIONS:
            raise ValueError(
                f"{name}: `reading_direction` must be one of {READING_DIRECTIONS}, got {self.reading_direction!r}"
            )
        if self.bidirectional and self.reading_direction == "backward":
            raise ValueError(
                f"{name}: a bidirectional model reads both ways already; leave `reading_direction` forward"
            )
        if self.initializer not in INITIALIZERS:
            raise ValueError(f"{name}: `initializer` must be one of {INITIALIZERS}, got {self.initializer!r}")
        if isinstance(self.initializer_range, bool) or not (
            isinstance(self.initializer_range, (int, float)) and self.initializer_range > 0
        ):
            raise ValueError(f"{name}: `initializer_range` must be a positive number, got {self.initializer_range!r}")
        if self.rnn_type == "RNN" and self.nonlinearity not in NONLINEARITIES:
            raise ValueError(f"{name}: `nonlinearity` must be one of {NONLINEARITIES}, got {self.nonlinearity!r}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"{name}: `pooling` must be one of {POOLINGS}, got {self.pooling!r}")
        for field in ("pad_token_id", "bos_token_id", "eos_token_id"):
            value = getattr(self, field)
            if value is None:
                continue
            ids = value if isinstance(value, (list, tuple)) else [value]
            for token_id in ids:
                if isinstance(token_id, bool) or not isinstance(token_id, int) or not 0 <= token_id < self.vocab_size:
                    raise ValueError(
                        f"{name}: `{field}` must be a token id in [0, vocab_size={self.vocab_size}), got {value!r}"
                    )


class RNNConfig(RecurrentConfig):
    r"""
    Configuration of an Elman RNN: h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh) (or relu).

    Args:
        nonlinearity (`str`, defaults to `"tanh"`): `"tanh"` or `"relu"`. A relu RNN needs gradient clipping.
        All other arguments: see [`RecurrentConfig`].
    """

    model_type = "hf_seq_rnn"
    rnn_type = "RNN"

    nonlinearity: str = "tanh"


class LSTMConfig(RecurrentConfig):
    """Configuration of an LSTM language model (gates i, f, g, o; state h and c). See [`RecurrentConfig`]."""

    model_type = "hf_seq_lstm"
    rnn_type = "LSTM"


class GRUConfig(RecurrentConfig):
    """Configuration of a GRU language model (gates r, z, n; state h). See [`RecurrentConfig`]."""

    model_type = "hf_seq_gru"
    rnn_type = "GRU"
