"""Recurrent language models (RNN tanh/relu, LSTM, GRU): one flat folder, so it can ship as remote code."""

from .cache_recurrent import CACHE_NAME, RecurrentCache, RecurrentLayerCache, cache_keyword, cache_of
from .configuration_recurrent import GRUConfig, LSTMConfig, RecurrentConfig, RNNConfig
from .modeling_recurrent import (
    GRUForCausalLM,
    GRUForSequenceClassification,
    GRUForTokenClassification,
    GRUModel,
    LSTMForCausalLM,
    LSTMForSequenceClassification,
    LSTMForTokenClassification,
    LSTMModel,
    RecurrentForCausalLM,
    RecurrentForSequenceClassification,
    RecurrentForTokenClassification,
    RecurrentModel,
    RecurrentPreTrainedModel,
    RNNForCausalLM,
    RNNForSequenceClassification,
    RNNForTokenClassification,
    RNNModel,
)
