"""word2vec (CBOW and SkipGram): one flat folder, so it can ship as remote code."""

from transformers import AutoConfig, AutoModel

from .configuration_word2vec import Word2VecConfig
from .modeling_word2vec import Word2VecModel, Word2VecOutput, Word2VecPreTrainedModel


def register_word2vec() -> None:
    """Register the word2vec config and model with AutoConfig / AutoModel, locally and for remote code."""
    AutoConfig.register(Word2VecConfig.model_type, Word2VecConfig, exist_ok=True)
    AutoModel.register(Word2VecConfig, Word2VecModel, exist_ok=True)
    # register_for_auto_class makes save_pretrained copy this folder's code next to the weights.
    Word2VecConfig.register_for_auto_class()
    Word2VecModel.register_for_auto_class("AutoModel")
