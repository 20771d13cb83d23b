"""Tiny saved model folders for command-line tests: a tokenizer, an LSTM causal LM and an LSTM classifier, each a
folder as hf-seq saves it (weights, config, code, tokenizer files), built in a second on the CPU."""

import os

from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

import hf_seq
from hf_seq.data import sample_data_path
from tokenizer_training import model_config_kwargs, train_tokenizer


TINY_SIZES = {"embedding_size": 8, "hidden_size": 8, "num_hidden_layers": 1}


def save_tiny_models(directory, seed=0):
    """Write `tokenizer/`, `lm/` and `classifier/` under `directory`; return their paths as a dict of str."""
    import torch

    with open(sample_data_path("reviews_sample_train.txt"), encoding="utf-8") as handle:
        texts = handle.read().splitlines()[:500]
    folders = {name: os.path.join(directory, name) for name in ("tokenizer", "lm", "classifier")}
    tokenizer = train_tokenizer(texts=texts, vocab_size=600, limit_alphabet=200, output_dir=folders["tokenizer"])
    torch.manual_seed(seed)
    config_kwargs = {**model_config_kwargs(tokenizer), **TINY_SIZES}
    language_model = AutoModelForCausalLM.from_config(hf_seq.LSTMConfig(**config_kwargs))
    classifier = AutoModelForSequenceClassification.from_config(hf_seq.LSTMConfig(**config_kwargs, num_labels=2))
    for model, name in ((language_model, "lm"), (classifier, "classifier")):
        model.save_pretrained(folders[name])
        tokenizer.save_pretrained(folders[name])
    return folders
