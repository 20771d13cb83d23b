"""word2vec (CBOW and SkipGram with negative sampling) as a Hugging Face model.

Two matrices, as in word2vec.c and gensim: the input vectors `embed_tokens` (the word vectors users keep; gensim's
`wv`, word2vec.c's syn0) and the output vectors `output_embeddings` (gensim's `syn1neg`). For a bag of input ids
(CBOW: the context of a centre token; SkipGram: the centre token alone) and a row of target ids (one positive target
then `negative` sampled ones), the logits are the dot products of the bag's mean input vector with each target's
output vector, and the loss is negative sampling's -log s(x_pos) - sum log s(-x_neg) (s the logistic function).

Pad ids in a bag fill contexts cut by a sentence edge: `embedding_bag(..., padding_idx=pad)` leaves them out of the
mean (they are neither summed nor counted), so an edge token's CBOW context is the mean of its real neighbours only.

The fast training loop (`hf_seq.word2vec.train_word2vec`) updates these two matrices in place with the closed-form
gradients of the same loss; this forward is the reference it is tested against, and what `Trainer` would use.
"""

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .configuration_word2vec import Word2VecConfig


@dataclass
class Word2VecOutput(ModelOutput):
    """
    Args:
        loss (`torch.FloatTensor` of shape `()`, returned with `labels`): the negative-sampling loss, summed over the
            targets of a row and averaged over the rows.
        logits (`torch.FloatTensor` of shape `(batch_size, num_targets)`): the score of each target.
        context_embeddings (`torch.FloatTensor` of shape `(batch_size, embedding_size)`): each row's mean input vector.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    context_embeddings: torch.FloatTensor | None = None


class Word2VecPreTrainedModel(PreTrainedModel):
    config_class = Word2VecConfig
    config: Word2VecConfig
    base_model_prefix = "word2vec"
    main_input_name = "input_ids"
    _no_split_modules = []

    def __init__(self, config: Word2VecConfig, *inputs, **kwargs):
        # Fields set after construction were checked one by one; the rules tying them together run here.
        config.validate()
        super().__init__(config, *inputs, **kwargs)

    def _init_weights(self, module):
        # gensim's initialisation: small uniform input vectors, zero output vectors (the first updates then move
        # the output vectors toward the contexts), and the pad row at zero.
        if module is getattr(self, "embed_tokens", None):
            bound = self.config.initializer_range / self.config.embedding_size
            init.uniform_(module.weight, -bound, bound)
            if module.padding_idx is not None and not getattr(module.weight, "_is_hf_initialized", False):
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        elif module is getattr(self, "output_embeddings", None):
            init.zeros_(module.weight)
        if module is self and not getattr(self.token_counts, "_is_hf_initialized", False):
            init.zeros_(self.token_counts)


class Word2VecModel(Word2VecPreTrainedModel):
    """Input and output vectors of a word2vec model, and the token counts its negatives and subsampling came from."""

    def __init__(self, config: Word2VecConfig):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.embedding_size, padding_idx=config.pad_token_id)
        self.output_embeddings = nn.Embedding(config.vocab_size, config.embedding_size)
        # How often each token occurred in the training corpus: the unigram distribution of the negatives and the
        # subsampling rates. Saved with the weights, so a loaded model can be trained further with the same recipe.
        self.register_buffer("token_counts", torch.zeros(config.vocab_size, dtype=torch.int64), persistent=True)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding):
        self.embed_tokens = value

    def embed_bags(self, input_ids: torch.LongTensor) -> torch.FloatTensor:
        """The mean input vector of each row of `input_ids` (batch, bag_size), pad ids left out (all-pad row: 0)."""
        return F.embedding_bag(input_ids, self.embed_tokens.weight, mode="mean", padding_idx=self.config.pad_token_id)

    def forward(
        self,
        input_ids: torch.LongTensor,
        target_ids: torch.LongTensor,
        labels: torch.FloatTensor | None = None,
        **kwargs,
    ) -> Word2VecOutput:
        r"""
        input_ids (`torch.LongTensor` of shape `(batch_size, bag_size)`): CBOW: the context ids of each centre token,
            pad where the window crosses a sentence edge; SkipGram: the centre id (`bag_size` 1).
        target_ids (`torch.LongTensor` of shape `(batch_size, num_targets)`): the ids to score against each bag;
            in training, the positive target first, then the negatives.
        labels (`torch.FloatTensor` of shape `(batch_size, num_targets)`, optional): 1 for a positive target, 0 for a
            negative one; gives the loss.
        """
        if input_ids.dim() != 2 or target_ids.dim() != 2 or input_ids.shape[0] != target_ids.shape[0]:
            raise ValueError(
                "`input_ids` and `target_ids` must be (batch_size, n) tensors with the same batch size, got "
                f"{tuple(input_ids.shape)} and {tuple(target_ids.shape)}"
            )
        context_embeddings = self.embed_bags(input_ids)
        target_vectors = self.output_embeddings(target_ids)
        logits = torch.einsum("bd,btd->bt", context_embeddings, target_vectors)
        loss = None
        if labels is not None:
            loss = F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype), reduction="none").sum(-1).mean()
        return Word2VecOutput(loss=loss, logits=logits, context_embeddings=context_embeddings)
