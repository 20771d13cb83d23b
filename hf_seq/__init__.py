"""hf-seq: recurrent and small Transformer language models as first-class Hugging Face models.

Importing this package registers every model family with the transformers Auto classes, so
`AutoConfig`, `AutoModel`, `AutoModelForCausalLM`, `AutoModelForSequenceClassification`,
`AutoModelForTokenClassification` and (for the recurrent encoder-decoder) `AutoModelForSeq2SeqLM` build and load them
like any model in transformers.
"""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
)

from .models.recurrent import (
    GRUConfig,
    GRUForCausalLM,
    GRUForSequenceClassification,
    GRUForTokenClassification,
    GRUModel,
    LSTMConfig,
    LSTMForCausalLM,
    LSTMForSequenceClassification,
    LSTMForTokenClassification,
    LSTMModel,
    RecurrentCache,
    RNNConfig,
    RNNForCausalLM,
    RNNForSequenceClassification,
    RNNForTokenClassification,
    RNNModel,
)
from .models.seq2seq_rnn import (
    Seq2SeqRNNCache,
    Seq2SeqRNNConfig,
    Seq2SeqRNNForConditionalGeneration,
    Seq2SeqRNNModel,
    register_seq2seq_rnn,
)
from .models.transformer import (
    TransformerLMConfig,
    TransformerLMForCausalLM,
    TransformerLMForSequenceClassification,
    TransformerLMForTokenClassification,
    TransformerLMModel,
)
from .models.word2vec import Word2VecConfig, Word2VecModel, register_word2vec


__version__ = "0.1.0"


def _register_family(config_class, model, causal_lm, sequence_classification, token_classification):
    """Register one config and its four model classes with the Auto classes, locally and for remote code."""
    AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
    heads = {
        AutoModel: model,
        AutoModelForCausalLM: causal_lm,
        AutoModelForSequenceClassification: sequence_classification,
        AutoModelForTokenClassification: token_classification,
    }
    # register_for_auto_class makes save_pretrained copy the family's code next to the weights.
    config_class.register_for_auto_class()
    for auto_class, model_class in heads.items():
        auto_class.register(config_class, model_class, exist_ok=True)
        model_class.register_for_auto_class(auto_class.__name__)


_register_family(RNNConfig, RNNModel, RNNForCausalLM, RNNForSequenceClassification, RNNForTokenClassification)
_register_family(LSTMConfig, LSTMModel, LSTMForCausalLM, LSTMForSequenceClassification, LSTMForTokenClassification)
_register_family(GRUConfig, GRUModel, GRUForCausalLM, GRUForSequenceClassification, GRUForTokenClassification)
_register_family(
    TransformerLMConfig,
    TransformerLMModel,
    TransformerLMForCausalLM,
    TransformerLMForSequenceClassification,
    TransformerLMForTokenClassification,
)
register_seq2seq_rnn()
register_word2vec()

# `pipeline("text2text-generation", model=...)` for the encoder-decoders (transformers 5 dropped that task).
from .prediction import register_pipelines  # noqa: E402


register_pipelines()
