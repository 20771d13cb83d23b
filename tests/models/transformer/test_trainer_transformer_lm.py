"""Trainer trains the TransformerLM heads as it trains any transformers model: a few steps lower the loss."""

import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, Trainer

from hf_seq import TransformerLMConfig
from tests.support.trainer import logged_losses, training_arguments


def tiny_config(**overrides):
    fields = {
        "vocab_size": 32,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_position_embeddings": 16,
    }
    fields.update(overrides)
    return TransformerLMConfig(**fields)


def test_trainer_lowers_causal_lm_loss(tmp_path):
    torch.manual_seed(0)
    # A language with structure to learn: each row counts upwards from a random start (mod 24).
    starts = torch.randint(0, 24, (64, 1))
    ids = (starts + torch.arange(12)) % 24 + 4
    dataset = Dataset.from_dict({"input_ids": ids.tolist(), "labels": ids.tolist()})
    model = AutoModelForCausalLM.from_config(tiny_config())
    trainer = Trainer(model=model, args=training_arguments(tmp_path, 20, learning_rate=1e-2), train_dataset=dataset)
    trainer.train()
    losses = logged_losses(trainer)
    assert len(losses) == 20
    assert sum(losses[-5:]) / 5 < 0.6 * sum(losses[:5]) / 5


def test_trainer_lowers_classification_loss_with_cls_pooling(tmp_path):
    torch.manual_seed(0)
    # Label 1 sequences draw their tokens from the lower half of the vocabulary, label 0 ones from the upper half:
    # the appended [CLS] token must gather that from the whole sequence.
    labels = torch.randint(0, 2, (96,))
    low = torch.randint(4, 18, (96, 10))
    high = torch.randint(18, 32, (96, 10))
    ids = torch.where(labels[:, None] == 1, low, high)
    dataset = Dataset.from_dict({"input_ids": ids.tolist(), "labels": labels.tolist()})
    model = AutoModelForSequenceClassification.from_config(tiny_config(pooling="cls", num_labels=2))
    trainer = Trainer(model=model, args=training_arguments(tmp_path, 25, learning_rate=1e-2), train_dataset=dataset)
    trainer.train()
    losses = logged_losses(trainer)
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5
