"""Configuration of the recurrent encoder–decoder with attention (Seq2SeqRNN).

An encoder (uni- or bidirectional LSTM/GRU) reads the source; a bridge maps its final state to the decoder's initial
state; a decoder (LSTM/GRU) writes the target one token at a time, attending to the encoder outputs at each step with
Luong's `dot` / `general` or Bahdanau's `concat` (MLP) scores, or not at all (`none`: the plain bottleneck of Sutskever
et al., 2014, where everything about the source must pass through the bridge).

As the recurrent family's configs, this is a strict dataclass (`huggingface_hub.dataclasses.strict`): every field is
checked for its type and range when it is set, and the rules tying several fields together (`validate_*` methods)
run at construction, before a model is built from the config and when it is saved.
"""

from huggingface_hub.dataclasses import as_validated_field, strict
from transformers import PretrainedConfig


CELLS = ("lstm", "gru")
ATTENTIONS = ("none", "dot", "general", "concat")
BRIDGES = ("linear", "zeros")
INITIALIZERS = ("uniform", "xavier")


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
def ratio(value: float):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"must be a ratio in [0, 1], got {value!r}")


@as_validated_field
def optional_positive_int(value: int | None):
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"must be a positive integer or None, got {value!r}")


@strict
class Seq2SeqRNNConfig(PretrainedConfig):
    r"""
    Configuration of [`Seq2SeqRNNModel`] and [`Seq2SeqRNNForConditionalGeneration`]. The defaults give a working
    small model.

    Args:
        vocab_size (`int`, defaults to 16000): number of tokens in the (shared source and target) vocabulary.
        cell (`str`, defaults to `"lstm"`): the recurrent cell of encoder and decoder, `"lstm"` or `"gru"`.
        embedding_size (`int`, defaults to 256): size of the token embeddings (encoder and decoder each have theirs).
        hidden_size (`int`, defaults to 256): size of the decoder's state, of its attentional hidden state, and of
            the encoder's outputs (both directions side by side when bidirectional).
        encoder_hidden_size (`int`, *optional*): size of each encoder direction's state. By default `hidden_size`
            for a unidirectional encoder and `hidden_size // 2` for a bidirectional one, so that the encoder's
            outputs are `hidden_size` wide either way (OpenNMT's `brnn` convention) and `dot` attention applies.
        encoder_layers (`int`, defaults to 2): number of stacked encoder layers.
        decoder_layers (`int`, defaults to 2): number of stacked decoder layers (may differ from `encoder_layers`:
            the bridge maps every encoder layer's final state to every decoder layer's initial state).
        bidirectional_encoder (`bool`, defaults to `True`): read the source in both directions.
        bidirectional_decoder (`bool`, defaults to `False`): must stay `False`; a decoder writes left to right. The
            field exists so that the mistake gets a clear error instead of an unknown-argument warning.
        attention (`str`, defaults to `"general"`): the score between the decoder state h_t and each encoder output
            h_s: `"dot"` (h_t·h_s), `"general"` (h_t·W h_s, Luong et al., 2015), `"concat"` (v·tanh(W [h_t; h_s]),
            Bahdanau et al., 2015), or `"none"` (no attention: the bridge is the only path from source to target).
        input_feeding (`bool`, defaults to `True`): feed the previous attentional hidden state to the decoder
            together with the previous token (Luong et al., 2015; OpenNMT's default). Then the decoder must run
            one step at a time in training too.
        bridge (`str`, defaults to `"linear"`): how the decoder's initial state is made from the encoder's final
            state: `"linear"` (h0 = tanh(W [final states of all encoder layers and directions]), a linear map for the
            LSTM cell state), or `"zeros"` (the decoder starts from zeros and learns about the source only by
            attention).
        embedding_dropout (`float`, defaults to 0.1): dropout on the embedded tokens (encoder and decoder).
        dropout (`float`, defaults to 0.2): dropout between stacked recurrent layers.
        output_dropout (`float`, defaults to 0.2): dropout on the attentional hidden state before the output layer.
        teacher_forcing_ratio (`float`, defaults to 1.0): in training, the probability per step and sequence of
            feeding the decoder the reference token; otherwise it is fed its own previous prediction (scheduled
            sampling, Bengio et al., 2015). Evaluation and generation ignore it.
        tie_word_embeddings (`bool`, defaults to `True`): share the decoder's embedding matrix with the output layer.
            When `hidden_size != embedding_size`, a linear projection maps the attentional state to `embedding_size`
            first.
        initializer (`str`, defaults to `"uniform"`): `"uniform"` (U(-r, r) for embeddings and linear layers,
            torch's default for the recurrent layers) or `"xavier"`.
        initializer_range (`float`, defaults to 0.1): r of the uniform initialiser.
        pad_token_id, bos_token_id, eos_token_id (`int`, optional): special token ids, as in the tokenizer.
        decoder_start_token_id (`int`, defaults to 2): the first decoder input; `labels` are shifted right with it.
        use_cache (`bool`, defaults to `True`): return the decoder's state as the cache (`outputs.cache`).
    """

    model_type = "hf_seq_seq2seq_rnn"
    # Trainer's evaluation skips these output keys: the cache under its name before and after transformers 5.24, and
    # the encoder outputs (predict_with_generate compares generated ids; the logits alone are the prediction).
    keys_to_ignore_at_inference = ["cache", "past_key_values", "encoder_last_hidden_state"]

    vocab_size: int = positive_int(default=16000)
    cell: str = one_of(CELLS)(default="lstm")
    embedding_size: int = positive_int(default=256)
    hidden_size: int = positive_int(default=256)
    encoder_hidden_size: int | None = optional_positive_int(default=None)
    encoder_layers: int = positive_int(default=2)
    decoder_layers: int = positive_int(default=2)
    bidirectional_encoder: bool = True
    bidirectional_decoder: bool = False
    attention: str = one_of(ATTENTIONS)(default="general")
    input_feeding: bool = True
    bridge: str = one_of(BRIDGES)(default="linear")
    embedding_dropout: float | int = probability(default=0.1)
    dropout: float | int = probability(default=0.2)
    output_dropout: float | int = probability(default=0.2)
    teacher_forcing_ratio: float | int = ratio(default=1.0)
    tie_word_embeddings: bool = True
    initializer: str = one_of(INITIALIZERS)(default="uniform")
    initializer_range: float | int = positive_number(default=0.1)
    pad_token_id: int | None = 0
    bos_token_id: int | None = 2
    eos_token_id: int | list[int] | None = 3
    decoder_start_token_id: int | None = 2
    is_encoder_decoder: bool = True
    use_cache: bool = True

    def __post_init__(self, **kwargs):
        kwargs.setdefault("auto_map", self._auto_map())
        super().__post_init__(**kwargs)

    @classmethod
    def _auto_map(cls):
        """Where a machine without hf_seq finds this family's classes in the saved code (trust_remote_code)."""
        return {
            "AutoConfig": "configuration_seq2seq_rnn.Seq2SeqRNNConfig",
            "AutoModel": "modeling_seq2seq_rnn.Seq2SeqRNNModel",
            "AutoModelForSeq2SeqLM": "modeling_seq2seq_rnn.Seq2SeqRNNForConditionalGeneration",
        }

    @property
    def encoder_directions(self) -> int:
        return 2 if self.bidirectional_encoder else 1

    @property
    def encoder_state_size(self) -> int:
        """The size of each encoder direction's state (`encoder_hidden_size`, or its default)."""
        if self.encoder_hidden_size is not None:
            return self.encoder_hidden_size
        return self.hidden_size // self.encoder_directions

    @property
    def encoder_output_size(self) -> int:
        """The size of one encoder output: both directions side by side when bidirectional."""
        return self.encoder_state_size * self.encoder_directions

    def validate_decoder_direction(self):
        """A decoder predicts the next token from the ones before it: it cannot read the target backwards too."""
        if self.bidirectional_decoder:
            raise ValueError(
                f"{type(self).__name__}: `bidirectional_decoder=True` is impossible: the decoder generates left to "
                "right and would see the tokens it must predict. Use `bidirectional_encoder=True` for the source."
            )

    def validate_decoder_start_token_id(self):
        """generate() starts every target from it and `labels` are shifted right with it: it must be set."""
        if self.decoder_start_token_id is None:
            raise ValueError(
                f"{type(self).__name__}: `decoder_start_token_id` is missing. The decoder's first input is that token "
                "(labels are shifted right with it, generate() starts from it): set it, e.g. to the bos token id."
            )

    def validate_encoder_size(self):
        """By default the directions split `hidden_size`, which must then be even."""
        if self.encoder_hidden_size is None and self.hidden_size % self.encoder_directions:
            raise ValueError(
                f"{type(self).__name__}: a bidirectional encoder splits `hidden_size` between its two directions, so "
                f"`hidden_size` must be even (got {self.hidden_size}), or set `encoder_hidden_size`."
            )

    def validate_dot_attention(self):
        """A dot product needs the decoder state and the encoder outputs in the same space."""
        if self.attention == "dot" and self.encoder_output_size != self.hidden_size:
            raise ValueError(
                f"{type(self).__name__}: `attention='dot'` needs encoder outputs of size hidden_size={self.hidden_size}"
                f", got {self.encoder_output_size} (encoder_hidden_size x directions); use `attention='general'`, "
                "which learns a map between the two."
            )

    def validate_special_token_ids(self):
        """Special tokens must be ids of the vocabulary (transformers only warns; a wrong id breaks training here)."""
        for field in ("pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id"):
            value = getattr(self, field)
            ids = [] if value is None else value if isinstance(value, (list, tuple)) else [value]
            for token_id in ids:
                if isinstance(token_id, bool) or not isinstance(token_id, int) or not 0 <= token_id < self.vocab_size:
                    raise ValueError(
                        f"{type(self).__name__}: `{field}` must be a token id in [0, vocab_size={self.vocab_size}), "
                        f"got {value!r}"
                    )
