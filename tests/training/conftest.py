"""Fixtures for the training tests: a tiny tokenizer, tiny model configs, small text/NSMC files."""

import pytest

from hf_seq.data import sample_data_path
from tests.training.helpers import tiny_lstm_config, train_tiny_tokenizer, training_arguments


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return train_tiny_tokenizer()


@pytest.fixture(scope="session")
def tokenizer_dir(tiny_tokenizer, tmp_path_factory):
    path = tmp_path_factory.mktemp("tokenizer") / "tok"
    tiny_tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def text_files(tmp_path_factory):
    """(train, valid) text files: 300 and 60 shipped reviews."""
    directory = tmp_path_factory.mktemp("text")
    with open(sample_data_path("reviews_sample_train.txt"), encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    train, valid = directory / "train.txt", directory / "valid.txt"
    train.write_text("\n".join(lines[:300]) + "\n", encoding="utf-8")
    valid.write_text("\n".join(lines[300:360]) + "\n", encoding="utf-8")
    return str(train), str(valid)


@pytest.fixture(scope="session")
def nsmc_dir(tmp_path_factory):
    """A folder in the published layout: ratings_train.txt (200 reviews) and ratings_test.txt (62); each has an
    empty document, and 62 test reviews do not split evenly into batches on 2 processes."""
    directory = tmp_path_factory.mktemp("nsmc")
    with open(sample_data_path("nsmc_sample_train.txt"), encoding="utf-8") as handle:
        header, *rows = handle.read().splitlines()
    (directory / "ratings_train.txt").write_text("\n".join([header, "1\t\t0", *rows[:199]]) + "\n", encoding="utf-8")
    test_rows = [header, "2\t\t1", *rows[1000:1061]]
    (directory / "ratings_test.txt").write_text("\n".join(test_rows) + "\n", encoding="utf-8")
    return str(directory)


@pytest.fixture(scope="session")
def lm_dir(tiny_tokenizer, text_files, tmp_path_factory):
    """A tiny LSTM LM pretrained for a few TBPTT steps and saved with its tokenizer."""
    from hf_seq.training import pretrain

    output_dir = tmp_path_factory.mktemp("lm") / "lm"
    pretrain(
        training_arguments(output_dir, max_steps=6),
        text_files[0],
        tiny_tokenizer,
        model=tiny_lstm_config(tiny_tokenizer),
        loop="tbptt",
        bptt=8,
    )
    return str(output_dir)
