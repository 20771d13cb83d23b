"""Fixtures for the data tests: a tiny BPE tokenizer (the project's own trainer)."""

import pytest

from hf_seq.data import sample_data_path
from tokenizer_training import train_tokenizer


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """A BPE tokenizer of 600 tokens trained on 1,000 shipped reviews (pad 0, unk 1, bos 2, eos 3)."""
    with open(sample_data_path("reviews_sample_train.txt"), encoding="utf-8") as handle:
        texts = handle.read().splitlines()[:1000]
    return train_tokenizer(texts=texts, vocab_size=600, limit_alphabet=200)
