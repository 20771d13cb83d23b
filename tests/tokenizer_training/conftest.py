"""Shared fixtures: a small BPE tokenizer trained once per session on the shipped review sample."""

from pathlib import Path

import pytest

import hf_seq
from tokenizer_training import train_tokenizer


SAMPLE_DATA = Path(hf_seq.__file__).parent / "sample_data"
REVIEWS_TRAIN = SAMPLE_DATA / "reviews_sample_train.txt"
REVIEWS_VALID = SAMPLE_DATA / "reviews_sample_valid.txt"

# Big enough for the sample's alphabet (~1,500 characters) + 4 special + 256 byte tokens, and some merges.
SMALL_VOCAB = 2500


@pytest.fixture(scope="session")
def saved_bpe(tmp_path_factory):
    """(in-memory tokenizer, folder it was saved to)."""
    output_dir = tmp_path_factory.mktemp("tokenizers") / "bpe"
    tokenizer = train_tokenizer(files=[REVIEWS_TRAIN], vocab_size=SMALL_VOCAB, output_dir=output_dir)
    return tokenizer, output_dir


@pytest.fixture(scope="session")
def valid_reviews():
    return REVIEWS_VALID.read_text(encoding="utf-8").splitlines()
