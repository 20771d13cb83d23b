"""Trainer trains the recurrent models as it trains any transformers model: a few steps lower the loss."""

import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, Trainer

import hf_seq
from tests.support.trainer import logged_losses, training_arguments


def test_trainer_lowers_causal_lm_loss(tmp_path):
    torch.manual_seed(0)
    # A language with structure to learn: each row counts upwards from a random start (mod 20).
    starts = torch.randint(3, 23, (64, 1))
    ids = (starts + torch.arange(12)) % 20 + 3
    dataset = Dataset.from_dict({"input_ids": ids.tolist(), "labels": ids.tolist()})
    config = hf_seq.LSTMConfig(vocab_size=24, embedding_size=16, hidden_size=32, num_hidden_layers=1)
    model = AutoModelForCausalLM.from_config(config)
    trainer = Trainer(model=model, args=training_arguments(tmp_path, 40, learning_rate=0.03), train_dataset=dataset)
    trainer.train()
    losses = logged_losses(trainer)
    assert len(losses) == 40
    assert sum(losses[-5:]) / 5 < 0.6 * sum(losses[:5]) / 5


def test_trainer_lowers_classification_loss(tmp_path):
    torch.manual_seed(0)
    # Label 1 when token 5 appears anywhere in the sequence: the model must carry it through its state.
    ids = torch.randint(6, 30, (96, 10))
    labels = torch.randint(0, 2, (96,))
    positions = torch.randint(0, 10, (96,))
    ids[labels == 1, positions[labels == 1]] = 5
    dataset = Dataset.from_dict({"input_ids": ids.tolist(), "labels": labels.tolist()})
    config = hf_seq.GRUConfig(vocab_size=30, embedding_size=16, hidden_size=32, num_hidden_layers=1, num_labels=2)
    model = AutoModelForSequenceClassification.from_config(config)
    trainer = Trainer(model=model, args=training_arguments(tmp_path, 40, learning_rate=0.03), train_dataset=dataset)
    trainer.train()
    losses = logged_losses(trainer)
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5
