import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer

import hf_seq
from tokenizer_training import TRAINING_INFO_FILE, save_tokenizer, train_tokenizer


REVIEWS_TRAIN = Path(hf_seq.__file__).parent / "sample_data" / "reviews_sample_train.txt"


@pytest.fixture(scope="module")
def small_tokenizer():
    lines = REVIEWS_TRAIN.read_text(encoding="utf-8").splitlines()[:1500]
    return train_tokenizer(texts=lines, vocab_size=1500, algorithm="char")


def test_non_empty_output_folder_is_kept_unless_overwrite(tmp_path, small_tokenizer):
    output_dir = tmp_path / "tok"
    output_dir.mkdir()
    (output_dir / "precious.txt").write_text("keep me", encoding="utf-8")

    # Refused before training starts, and the folder is untouched.
    with pytest.raises(FileExistsError, match="not empty.*overwrite"):
        train_tokenizer(files=[REVIEWS_TRAIN], vocab_size=2000, output_dir=output_dir)
    assert [path.name for path in output_dir.iterdir()] == ["precious.txt"]

    save_tokenizer(small_tokenizer, output_dir, overwrite=True)
    assert not (output_dir / "precious.txt").exists()
    assert len(AutoTokenizer.from_pretrained(output_dir)) == len(small_tokenizer)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["tok"]  # no staging or backup folder left


def test_existing_empty_folder_and_missing_parents_are_fine(tmp_path, small_tokenizer):
    empty = tmp_path / "empty"
    empty.mkdir()
    save_tokenizer(small_tokenizer, empty)
    nested = tmp_path / "a" / "b" / "tok"
    save_tokenizer(small_tokenizer, nested)

    assert (empty / "tokenizer.json").is_file() and (nested / "tokenizer.json").is_file()


def test_output_path_that_is_a_file(tmp_path, small_tokenizer):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x", encoding="utf-8")
    with pytest.raises(NotADirectoryError, match="not a folder"):
        save_tokenizer(small_tokenizer, not_a_folder)


def test_failed_save_leaves_old_folder_and_no_staging(tmp_path, small_tokenizer, monkeypatch):
    output_dir = tmp_path / "tok"
    save_tokenizer(small_tokenizer, output_dir)
    before = {path.name: path.read_bytes() for path in output_dir.iterdir()}

    def failing_save_pretrained(save_directory, **kwargs):
        (Path(save_directory) / "tokenizer.json").write_text("{half", encoding="utf-8")
        raise OSError("disk full")

    monkeypatch.setattr(small_tokenizer, "save_pretrained", failing_save_pretrained)
    with pytest.raises(OSError, match="disk full"):
        save_tokenizer(small_tokenizer, output_dir, overwrite=True)

    assert {path.name: path.read_bytes() for path in output_dir.iterdir()} == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["tok"]


def test_training_info_records_the_settings(tmp_path):
    output_dir = tmp_path / "tok"
    tokenizer = train_tokenizer(files=[REVIEWS_TRAIN], vocab_size=2000, output_dir=output_dir, min_frequency=3)
    info = json.loads((output_dir / TRAINING_INFO_FILE).read_text(encoding="utf-8"))

    assert info["algorithm"] == "bpe" and info["min_frequency"] == 3 and info["normalization"] == "nfc"
    assert info["vocab_size"] == len(tokenizer) == 2000
    assert info["special_token_ids"] == {"pad_token": 0, "unk_token": 1, "bos_token": 2, "eos_token": 3}
    assert info["corpus"] == {"files": [str(REVIEWS_TRAIN)]}
