"""Configuration of the recurrent language models (Elman RNN, LSTM, GRU).

One configuration class serves the three cells; `RNNConfig`, `LSTMConfig` and `GRUConfig` only name the cell and
the `model_type` under which the Auto classes find them.

As transformers' own configs, these are strict dataclasses (`huggingface_hub.dataclasses.strict`): every field is
checked for its type and range when it is set, at construction or later (`config.dropout = 1.5` raises at once), and
the rules that tie several fields together (`validate_*` methods) run at construction, before a model is built from
the config and when it is saved.
"""

from huggingface_hub.dataclasses import as_validated_field, strict
from transformers import PretrainedConfig


INITIALIZERS = ("uniform", "xavier", "kaiming", "orthogonal")
POOLINGS = ("last", "mean", "max", "concat")
NONLINEARITIES = ("tanh", "relu")
READING_DIRECTIONS = ("forward", "backward")
RECURRENT_MODEL_TYPES = ("hf_seq_rnn", "hf_seq_lstm", "hf_seq_gru")
MAX_NGRAM_ORDER = 5
MAX_NGRAM_BUCKETS = 2**24  # keeps the n-gram hash's products inside int64 (see modeling_recurrent._boundary_ngram_ids)


@as_validated_field
def positive_int(value: int):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"must be a positive integer, got {value!r}")


@as_validated_field
def ngram_orders(value: list):
    if not isinstance(value, (list, tuple)) or any(
        isinstance(order, bool) or not isinstance(order, int) or not 2 <= order <= MAX_NGRAM_ORDER for order in value
    ):
        raise ValueError(f"must be a list of n-gram orders from 2 to {MAX_NGRAM_ORDER}, got {value!r}")


@as_validated_field
def ngram_buckets(value: int):
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_NGRAM_BUCKETS:
        raise ValueError(f"must be an integer from 1 to {MAX_NGRAM_BUCKETS}, got {value!r}")


@as_validated_field
def probability(value: float):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"must be a probability in [0, 1), got {value!r}")


@as_validated_field
def positive_number(value: float):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"must be a positive number, got {value!r}")


def one_of(choices):
    """A field validator accepting only `choices`."""

    @as_validated_field
    def validator(value: str):
        if value not in choices:
            raise ValueError(f"must be one of {choices}, got {value!r}")

    return validator


@strict
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
        reading_direction (`str`, defaults to `"forward"`): `"backward"` makes a classifier read each sequence's real
            tokens from last to first (the backward half of a forward + backward ensemble).
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
        token_classifier_context (`str`, optional): a token-classification head also reads, beside each position's
            output, this pooling of the whole sequence (the choices of `pooling`): what the review as a whole says,
            e.g. its writer's style, at every position. Left out, each position reads its own output only.
        ngram_orders (`list[int]`, defaults to `[]`): add to each token's embedding hashed embeddings of the n-grams
            of these orders that cross the boundary after it (order 2: tokens t, t+1; order 3: t-1..t+1 and t..t+2):
            cheap extra capacity for a tagger of what follows a token (e.g. a space), as the character-bigram
            features of word segmenters. Reads ahead, so encoder heads only; needs `input_ids`.
        ngram_buckets (`int`, defaults to 131072): rows of the n-gram embedding table (n-grams hash into them).
        pad_token_id, bos_token_id, eos_token_id (`int`, optional): special token ids, as in the tokenizer.
        use_cache (`bool`, defaults to `True`): return the recurrent state as the cache (`outputs.cache`).
    """

    rnn_type = None  # "RNN", "LSTM" or "GRU": the name of the torch.nn module, set by the subclasses
    # Trainer's evaluation skips these output keys: the cache under its name before and after transformers 5.24.
    keys_to_ignore_at_inference = ["cache", "past_key_values"]

    vocab_size: int = positive_int(default=16000)
    embedding_size: int = positive_int(default=256)
    hidden_size: int = positive_int(default=512)
    num_hidden_layers: int = positive_int(default=2)
    embedding_dropout: float | int = probability(default=0.1)
    dropout: float | int = probability(default=0.2)
    output_dropout: float | int = probability(default=0.2)
    bidirectional: bool = False
    reading_direction: str = one_of(READING_DIRECTIONS)(default="forward")
    tie_word_embeddings: bool = True
    initializer: str = one_of(INITIALIZERS)(default="uniform")
    initializer_range: float | int = positive_number(default=0.1)
    pooling: str = one_of(POOLINGS)(default="last")
    token_classifier_context: str | None = one_of((None, *POOLINGS))(default=None)
    ngram_orders: list[int] = ngram_orders(default_factory=list)
    ngram_buckets: int = ngram_buckets(default=2**17)
    pad_token_id: int | None = 0
    bos_token_id: int | None = 2
    eos_token_id: int | list[int] | None = 3
    use_cache: bool = True

    def __post_init__(self, **kwargs):
        kwargs.setdefault("auto_map", self._auto_map())
        super().__post_init__(**kwargs)

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

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """Load a saved config; the shared class reads it as the cell's own class, named by its `model_type`.

        So `RecurrentForCausalLM.from_pretrained(folder)` works as `LSTMForCausalLM.from_pretrained(folder)` does,
        instead of warning that a `hf_seq_lstm` checkpoint instantiates a model of type ``.
        """
        if cls.rnn_type is None:
            config_dict, _ = cls.get_config_dict(pretrained_model_name_or_path, **kwargs)
            cell_classes = {config_class.model_type: config_class for config_class in cls.__subclasses__()}
            if config_dict.get("model_type") in cell_classes:
                return cell_classes[config_dict["model_type"]].from_pretrained(pretrained_model_name_or_path, **kwargs)
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    def validate_reading_direction(self):
        """A bidirectional model already reads both ways."""
        if self.bidirectional and self.reading_direction == "backward":
            raise ValueError(
                f"{type(self).__name__}: a bidirectional model reads both ways already; leave `reading_direction` "
                "forward"
            )

    def validate_special_token_ids(self):
        """Special tokens must be ids of the vocabulary (transformers only warns; a wrong id breaks training here)."""
        for field in ("pad_token_id", "bos_token_id", "eos_token_id"):
            value = getattr(self, field)
            ids = [] if value is None else value if isinstance(value, (list, tuple)) else [value]
            for token_id in ids:
                if isinstance(token_id, bool) or not isinstance(token_id, int) or not 0 <= token_id < self.vocab_size:
                    raise ValueError(
                        f"{type(self).__name__}: `{field}` must be a token id in [0, vocab_size={self.vocab_size}), "
                        f"got {value!r}"
                    )


@strict
class RNNConfig(RecurrentConfig):
    r"""
    Configuration of an Elman RNN: h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh) (or relu).

    Args:
        nonlinearity (`str`, defaults to `"tanh"`): `"tanh"` or `"relu"`. A relu RNN needs gradient clipping.
        All other arguments: see [`RecurrentConfig`].
    """

    model_type = "hf_seq_rnn"
    rnn_type = "RNN"

    nonlinearity: str = one_of(NONLINEARITIES)(default="tanh")


@strict
class LSTMConfig(RecurrentConfig):
    """Configuration of an LSTM language model (gates i, f, g, o; state h and c). See [`RecurrentConfig`]."""

    model_type = "hf_seq_lstm"
    rnn_type = "LSTM"


@strict
class GRUConfig(RecurrentConfig):
    """Configuration of a GRU language model (gates r, z, n; state h). See [`RecurrentConfig`]."""

    model_type = "hf_seq_gru"
    rnn_type = "GRU"
