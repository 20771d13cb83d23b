from pathlib import Path

import pytest
from transformers import AutoTokenizer

import hf_seq
from hf_seq.cli import main


NSMC_TRAIN = Path(hf_seq.__file__).parent / "sample_data" / "nsmc_sample_train.txt"


def test_train_tokenizer_command_saves_a_folder_autotokenizer_loads(tmp_path, capsys):
    output_dir = tmp_path / "tok"
    exit_code = main(
        [
            "train-tokenizer",
            "--train_files",
            str(NSMC_TRAIN),
            "--text_column",
            "document",
            "--vocab_size",
            "2200",
            "--algorithm",
            "bpe",
            "--output_dir",
            str(output_dir),
            "--mask_token",
            "<mask>",
            "--padding_side",
            "left",
        ]
    )

    tokenizer = AutoTokenizer.from_pretrained(output_dir)
    assert exit_code == 0
    assert "2200 tokens" in capsys.readouterr().out
    assert len(tokenizer) == 2200 and tokenizer.mask_token_id == 4 and tokenizer.padding_side == "left"


def test_train_tokenizer_command_reports_bad_input_without_traceback(tmp_path):
    output_dir = tmp_path / "tok"
    with pytest.raises(SystemExit, match="train-tokenizer: error: Training file not found: .*missing.txt"):
        main(["train-tokenizer", "--train_files", str(tmp_path / "missing.txt"), "--output_dir", str(output_dir)])
    assert not output_dir.exists()
