"""A recurrent encoder–decoder with attention (LSTM/GRU, Luong/Bahdanau): one flat folder, so it ships as remote code."""

from .cache_seq2seq_rnn import CACHE_NAME, Seq2SeqRNNCache, cache_keyword, cache_of
from .configuration_seq2seq_rnn import Seq2SeqRNNConfig
from .modeling_seq2seq_rnn import (
    Seq2SeqRNNEncoderOutput,
    Seq2SeqRNNForConditionalGeneration,
    Seq2SeqRNNModel,
    Seq2SeqRNNPreTrainedModel,
    shift_tokens_right,
)


def register_seq2seq_rnn() -> None:
    """Register the family with the Auto classes, locally and for remote code (save_pretrained copies the code).

    `AutoConfig`, `AutoModel` and `AutoModelForSeq2SeqLM` then build and load `Seq2SeqRNNConfig` models. Safe to call
    more than once.
    """
    from transformers import AutoConfig, AutoModel, AutoModelForSeq2SeqLM

    AutoConfig.register(Seq2SeqRNNConfig.model_type, Seq2SeqRNNConfig, exist_ok=True)
    Seq2SeqRNNConfig.register_for_auto_class()
    for auto_class, model_class in (
        (AutoModel, Seq2SeqRNNModel),
        (AutoModelForSeq2SeqLM, Seq2SeqRNNForConditionalGeneration),
    ):
        auto_class.register(Seq2SeqRNNConfig, model_class, exist_ok=True)
        model_class.register_for_auto_class(auto_class.__name__)
