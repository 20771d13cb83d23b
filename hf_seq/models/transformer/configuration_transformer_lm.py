"""Configuration of the small decoder-only Transformer language model (`model_type="hf_seq_transformer_lm"`)."""

from huggingface_hub.dataclasses import as_validated_field, strict
from transformers import PretrainedConfig
from transformers.activations import ACT2FN


POSITION_EMBEDDING_TYPES = ("rotary", "learned")
POOLINGS = ("last", "mean", "max", "cls")


# Copied from hf_seq.models.recurrent.configuration_recurrent.positive_int
@as_validated_field
def positive_int(value: int):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"must be a positive integer, got {value!r}")


# Copied from hf_seq.models.recurrent.configuration_recurrent.probability
@as_validated_field
def probability(value: float):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"must be a probability in [0, 1), got {value!r}")


# Copied from hf_seq.models.recurrent.configuration_recurrent.positive_number
@as_validated_field
def positive_number(value: float):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"must be a positive number, got {value!r}")


# Copied from hf_seq.models.recurrent.configuration_recurrent.one_of
def one_of(choices):
    """A field validator accepting only `choices`."""

    @as_validated_field
    def validator(value: str):
        if value not in choices:
            raise ValueError(f"must be one of {choices}, got {value!r}")

    return validator


@as_validated_field
def activation_name(value: str):
    if value not in ACT2FN:
        raise ValueError(
            f"must be an activation known to transformers (e.g. 'gelu', 'gelu_new', 'relu', 'silu'), got {value!r}"
        )


@as_validated_field
def positive_int_or_none(value: int | None):
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"must be a positive integer (or None for 4 * hidden_size), got {value!r}")


@strict
class TransformerLMConfig(PretrainedConfig):
    r"""
    Configuration of a pre-norm, decoder-only Transformer language model and its heads. The defaults give a working
    small model (6 layers, 384 hidden, 6 heads, 1024 positions, rotary positions, tied embeddings).

    Args:
        vocab_size (`int`, defaults to 16000): number of tokens in the vocabulary.
        hidden_size (`int`, defaults to 384): width of the residual stream (and of the token embeddings).
        num_hidden_layers (`int`, defaults to 6): number of decoder blocks.
        num_attention_heads (`int`, defaults to 6): attention heads per block; must divide `hidden_size`.
        intermediate_size (`int`, *optional*): width of the feed-forward layer; `None` means `4 * hidden_size`.
        hidden_act (`str`, defaults to `"gelu"`): feed-forward activation, a name from `transformers.activations`.
        max_position_embeddings (`int`, defaults to 1024): the longest input with learned positions (longer input
            raises a `ValueError`); with rotary positions, the length the model is meant for.
        position_embedding_type (`str`, defaults to `"rotary"`): `"rotary"` (RoPE on queries and keys, Su et al.
            2021) or `"learned"` (a learned absolute position embedding added to the tokens, as GPT-2).
        rope_theta (`float`, defaults to 10000.0): base of the rotary frequencies.
        layer_norm_eps (`float`, defaults to 1e-5): epsilon of the layer norms.
        embedding_dropout (`float`, defaults to 0.0): dropout on the embeddings (tokens + positions).
        attention_dropout (`float`, defaults to 0.0): dropout on the attention probabilities.
        hidden_dropout (`float`, defaults to 0.0): dropout on each attention / MLP output before the residual sum.
        classifier_dropout (`float`, defaults to 0.0): dropout before the classification heads.
        initializer_range (`float`, defaults to 0.02): standard deviation of the normal weight initialisation.
        tie_word_embeddings (`bool`, defaults to `True`): share the input embedding matrix with the LM head.
        pooling (`str`, defaults to `"last"`): how a sequence-classification head summarises the sequence: the last
            real token (`"last"`), the mean or the element-wise maximum over real tokens (`"mean"`, `"max"`), or a
            learned [CLS]-like token (`"cls"`) that sees the whole sequence: appended after the last real token with
            causal attention, put first (as BERT's) with `bidirectional=True`.
        bidirectional (`bool`, defaults to `False`): every token attends to the tokens on both sides (an encoder, as
            BERT) instead of only to those before it. For the classification heads; the causal LM needs `False`, and
            a bidirectional model has no cache to decode with.
        pad_token_id, bos_token_id, eos_token_id (`int`, optional): special token ids, as in the tokenizer.
        use_cache (`bool`, defaults to `True`): return the key/value cache (`outputs.cache`).

    Example:

    ```python
    >>> from hf_seq import TransformerLMConfig, TransformerLMForCausalLM
    >>> model = TransformerLMForCausalLM(TransformerLMConfig(vocab_size=8000, hidden_size=256, num_attention_heads=4))
    ```
    """

    model_type = "hf_seq_transformer_lm"

    # Trainer's evaluation skips these output keys: the cache under its name before and after transformers 5.24.
    keys_to_ignore_at_inference = ["cache", "past_key_values"]

    # A strict dataclass, as transformers' own configs: each field is checked for its type and range whenever it is
    # set; the rules tying fields together are the `validate_*` methods below.
    vocab_size: int = positive_int(default=16000)
    hidden_size: int = positive_int(default=384)
    num_hidden_layers: int = positive_int(default=6)
    num_attention_heads: int = positive_int(default=6)
    intermediate_size: int | None = positive_int_or_none(default=None)
    hidden_act: str = activation_name(default="gelu")
    max_position_embeddings: int = positive_int(default=1024)
    position_embedding_type: str = one_of(POSITION_EMBEDDING_TYPES)(default="rotary")
    rope_theta: float | int = positive_number(default=10000.0)
    layer_norm_eps: float = positive_number(default=1e-5)
    embedding_dropout: float | int = probability(default=0.0)
    attention_dropout: float | int = probability(default=0.0)
    hidden_dropout: float | int = probability(default=0.0)
    classifier_dropout: float | int = probability(default=0.0)
    initializer_range: float = positive_number(default=0.02)
    tie_word_embeddings: bool = True
    pooling: str = one_of(POOLINGS)(default="last")
    bidirectional: bool = False
    pad_token_id: int | None = 0
    bos_token_id: int | None = 2
    eos_token_id: int | list[int] | None = 3
    use_cache: bool = True

    def __post_init__(self, **kwargs):
        if self.intermediate_size is None:
            self.intermediate_size = 4 * self.hidden_size if isinstance(self.hidden_size, int) else None
        # Where a machine without hf_seq finds every head in the saved code (trust_remote_code).
        kwargs.setdefault(
            "auto_map",
            {
                "AutoConfig": "configuration_transformer_lm.TransformerLMConfig",
                "AutoModel": "modeling_transformer_lm.TransformerLMModel",
                "AutoModelForCausalLM": "modeling_transformer_lm.TransformerLMForCausalLM",
                "AutoModelForSequenceClassification": "modeling_transformer_lm.TransformerLMForSequenceClassification",
                "AutoModelForTokenClassification": "modeling_transformer_lm.TransformerLMForTokenClassification",
            },
        )
        super().__post_init__(**kwargs)

    def validate_attention_heads(self):
        """The heads split the width evenly; rotary positions rotate pairs of dimensions, so a head size is even."""
        name = type(self).__name__
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"{name}: `hidden_size` ({self.hidden_size}) must be divisible by `num_attention_heads` "
                f"({self.num_attention_heads})"
            )
        head_size = self.hidden_size // self.num_attention_heads
        if self.position_embedding_type == "rotary" and head_size % 2 != 0:
            raise ValueError(
                f"{name}: rotary positions need an even head size, but `hidden_size` / `num_attention_heads` = "
                f"{head_size}"
            )

    # Copied from hf_seq.models.recurrent.configuration_recurrent.RecurrentConfig.validate_special_token_ids
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


__all__ = ["TransformerLMConfig"]
