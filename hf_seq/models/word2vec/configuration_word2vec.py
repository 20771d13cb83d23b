"""Configuration of word2vec (CBOW and SkipGram with negative sampling, Mikolov et al., 2013).

The fields are the model's shape (`vocab_size`, `embedding_size`) and the training recipe that shaped the vectors
(`architecture`, `window`, `negative`, `ns_exponent`, `subsample`, `shrink_windows`), named and defaulted as in
gensim 4's `Word2Vec` (`vector_size`, `window`, `negative`, `ns_exponent`, `sample`, `shrink_windows`), so a
saved folder records how its vectors were trained. The optimiser's settings (learning rate, epochs) are arguments of
`hf_seq.word2vec.train_word2vec`, as they are of `Trainer` for the other families.

As transformers' own configs, this is a strict dataclass (`huggingface_hub.dataclasses.strict`): every field is
checked when it is set; the rules tying fields together (`validate_*`) run at construction and before a model is
built.
"""

import math

from huggingface_hub.dataclasses import as_validated_field, strict
from transformers import PretrainedConfig


ARCHITECTURES = ("cbow", "skipgram")


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
def finite_number(value: float):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {value!r}")


@strict
class Word2VecConfig(PretrainedConfig):
    r"""
    Configuration of a [`Word2VecModel`]. The defaults are gensim 4's.

    Args:
        architecture (`str`, defaults to `"cbow"`): `"cbow"` predicts a token from the mean of its context's vectors;
            `"skipgram"` predicts each context token from the centre token's vector.
        vocab_size (`int`, defaults to 16000): number of tokens in the vocabulary (the tokenizer's `len()`).
        embedding_size (`int`, defaults to 100): size of the word vectors (gensim's `vector_size`).
        window (`int`, defaults to 5): the largest distance between the centre token and a context token.
        shrink_windows (`bool`, defaults to `True`): draw each centre's window uniformly from 1..`window`, as word2vec
            and gensim do (near tokens then count more than far ones).
        negative (`int`, defaults to 5): negative samples per positive target. Only negative sampling is implemented
            (no hierarchical softmax).
        ns_exponent (`float`, defaults to 0.75): negatives are drawn from the unigram distribution raised to this
            power.
        subsample (`float`, defaults to 1e-3): frequent-token downsampling threshold (gensim's `sample`): a token of
            frequency f is kept with probability (sqrt(f / subsample) + 1) * subsample / f. 0 keeps every token.
        initializer_range (`float`, defaults to 1.0): the input vectors start uniform in
            (-initializer_range / embedding_size, +initializer_range / embedding_size), as in gensim 4 (word2vec.c
            used 0.5); the output vectors start at zero.
        pad_token_id (`int`, defaults to 0): the id filling contexts cut by a sentence edge. Its vector is zero and
            never enters the CBOW mean. bos/eos ids are recorded to match the tokenizer's; they are not trained on.
    """

    model_type = "hf_seq_word2vec"

    architecture: str = one_of(ARCHITECTURES)(default="cbow")
    vocab_size: int = positive_int(default=16000)
    embedding_size: int = positive_int(default=100)
    window: int = positive_int(default=5)
    shrink_windows: bool = True
    negative: int = positive_int(default=5)
    ns_exponent: float | int = finite_number(default=0.75)
    subsample: float | int = probability(default=1e-3)
    initializer_range: float | int = positive_number(default=1.0)
    pad_token_id: int | None = 0
    bos_token_id: int | None = 2
    eos_token_id: int | list[int] | None = 3

    def __post_init__(self, **kwargs):
        # Where a machine without hf_seq finds the classes in the saved code (trust_remote_code).
        kwargs.setdefault(
            "auto_map",
            {"AutoConfig": "configuration_word2vec.Word2VecConfig", "AutoModel": "modeling_word2vec.Word2VecModel"},
        )
        super().__post_init__(**kwargs)

    def validate_pad_token_id(self):
        """Contexts cut by a sentence edge are filled with the pad id, so it must be a token id of the vocabulary."""
        if self.pad_token_id is None:
            raise ValueError(
                f"{type(self).__name__}: `pad_token_id` is required (it fills contexts at sentence edges)"
            )
        if isinstance(self.pad_token_id, bool) or not 0 <= self.pad_token_id < self.vocab_size:
            raise ValueError(
                f"{type(self).__name__}: `pad_token_id` must be a token id in [0, vocab_size={self.vocab_size}), "
                f"got {self.pad_token_id!r}"
            )
