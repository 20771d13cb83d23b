"""The small decoder-only Transformer LM family (one flat folder, so it can travel as remote code)."""

from .configuration_transformer_lm import TransformerLMConfig
from .modeling_transformer_lm import (
    TransformerLMForCausalLM,
    TransformerLMForSequenceClassification,
    TransformerLMForTokenClassification,
    TransformerLMModel,
    TransformerLMPreTrainedModel,
)


__all__ = [
    "TransformerLMConfig",
    "TransformerLMPreTrainedModel",
    "TransformerLMModel",
    "TransformerLMForCausalLM",
    "TransformerLMForSequenceClassification",
    "TransformerLMForTokenClassification",
]
