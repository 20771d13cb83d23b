"""The output folder of a run: a non-empty one is refused unless overwritten (then emptied first) or resumed, a folder
the run reads is never written, and no secret is written into it."""

import os
import shutil

import pytest
import torch
from transformers import HfArgumentParser, TrainingArguments

import hf_seq
from hf_seq.training import FinetuneArguments, PretrainArguments, finetune, pretrain, train_tbptt
from tests.training.helpers import tiny_lstm_config, training_arguments


def folder_contents(folder):
    """{relative path: bytes} of every file under `folder`."""
    contents = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                contents[os.path.relpath(path, folder)] = handle.read()
    return contents


def test_finetune_never_writes_into_the_lm_it_reads(lm_dir, nsmc_dir, tmp_path):
    lm_copy = str(tmp_path / "lm")
    shutil.copytree(lm_dir, lm_copy)
    before = folder_contents(lm_copy)
    # `hf-seq finetune --model_name_or_path lm --output_dir lm` (the tokenizer defaults to the model folder)
    for overwrite in (False, True):
        with pytest.raises(ValueError, match="output_dir .* is the model, which this run reads"):
            finetune(
                training_arguments(lm_copy, max_steps=1),
                lm_copy,
                model=lm_copy,
                dataset=nsmc_dir,
                overwrite_output_dir=overwrite,
            )
    with pytest.raises(ValueError, match="lies inside the model"):
        finetune(
            training_arguments(os.path.join(lm_copy, "classifier"), max_steps=1),
            lm_copy,
            model=lm_copy,
            dataset=nsmc_dir,
        )
    assert folder_contents(lm_copy) == before


@pytest.mark.parametrize("loop", ["trainer", "tbptt"])
def test_a_non_empty_output_dir_is_refused_and_emptied_when_overwritten(tiny_tokenizer, text_files, tmp_path, loop):
    output_dir = tmp_path / "lm"
    os.makedirs(output_dir / "checkpoint-99")
    (output_dir / "eval_results.json").write_text("{}")  # stale files a push would publish beside the new model
    config = tiny_lstm_config(tiny_tokenizer)
    with pytest.raises(ValueError, match="is not empty \\(checkpoint-99, eval_results.json\\).*overwrite_output_dir"):
        pretrain(
            training_arguments(output_dir, max_steps=2),
            text_files[0],
            tiny_tokenizer,
            model=config,
            loop=loop,
            bptt=8,
            block_size=16,
        )
    assert sorted(os.listdir(output_dir)) == ["checkpoint-99", "eval_results.json"]

    pretrain(
        training_arguments(output_dir, max_steps=2),
        text_files[0],
        tiny_tokenizer,
        model=config,
        loop=loop,
        bptt=8,
        block_size=16,
        overwrite_output_dir=True,
    )
    names = os.listdir(output_dir)
    assert "model.safetensors" in names
    assert "checkpoint-99" not in names and "eval_results.json" not in names


def test_train_tbptt_checks_its_output_dir_too(tiny_tokenizer, tmp_path):
    (tmp_path / "stale.txt").write_text("from another run")
    token_ids = torch.randint(4, len(tiny_tokenizer), (200,), generator=torch.Generator().manual_seed(0))
    model = hf_seq.LSTMForCausalLM(tiny_lstm_config(tiny_tokenizer))
    with pytest.raises(ValueError, match="is not empty \\(stale.txt\\)"):
        train_tbptt(model, token_ids, training_arguments(tmp_path, max_steps=1), bptt=8)
    train_tbptt(model, token_ids, training_arguments(tmp_path, max_steps=1), bptt=8, overwrite_output_dir=True)
    assert not os.path.exists(tmp_path / "stale.txt") and os.path.isfile(tmp_path / "model.safetensors")


def test_overwriting_never_deletes_what_the_run_reads_nor_a_run_it_should_resume(tiny_tokenizer, tmp_path):
    output_dir = tmp_path / "run"
    output_dir.mkdir()
    train_file = output_dir / "train.txt"
    train_file.write_text("배우 연기가 정말 최고의 영화\n" * 50, encoding="utf-8")
    config = tiny_lstm_config(tiny_tokenizer)
    with pytest.raises(ValueError, match="holds the training file"):
        pretrain(
            training_arguments(output_dir, max_steps=1),
            str(train_file),
            tiny_tokenizer,
            model=config,
            overwrite_output_dir=True,
        )
    assert train_file.is_file()
    other_train_file = shutil.copy(train_file, tmp_path / "train.txt")
    with pytest.raises(ValueError, match="pass only one of them"):
        pretrain(
            training_arguments(output_dir, max_steps=1, resume_from_checkpoint="latest"),
            other_train_file,
            tiny_tokenizer,
            model=config,
            overwrite_output_dir=True,
        )
    assert sorted(os.listdir(output_dir)) == ["train.txt"]


def test_the_command_line_flags_parse_beside_training_arguments():
    for arguments_class, required in (
        (FinetuneArguments, []),
        (PretrainArguments, ["--train_file", "t.txt", "--tokenizer", "tok"]),
    ):
        parser = HfArgumentParser((arguments_class, TrainingArguments))
        args, training_args = parser.parse_args_into_dataclasses(
            args=[*required, "--output_dir", "out", "--overwrite_output_dir", "--allow_tokenizer_mismatch"]
        )
        assert args.overwrite_output_dir and args.allow_tokenizer_mismatch
        assert not hasattr(training_args, "overwrite_output_dir")  # removed from TrainingArguments in transformers 5


@pytest.mark.parametrize("command", ["finetune", "pretrain"])
def test_the_hub_token_is_written_nowhere(tiny_tokenizer, nsmc_dir, text_files, tmp_path, command):
    token = "hf_SecretTokenThatMustNotBeSavedAnywhere"
    args = training_arguments(tmp_path / "run", max_steps=2, save_strategy="steps", save_steps=1, hub_token=token)
    if command == "finetune":
        finetune(args, tiny_tokenizer, model=tiny_lstm_config(tiny_tokenizer), dataset=nsmc_dir)
    else:
        pretrain(
            args, text_files[0], tiny_tokenizer, model=tiny_lstm_config(tiny_tokenizer), loop="trainer", block_size=16
        )
    written = folder_contents(tmp_path / "run")
    assert "training_args.bin" in written and "checkpoint-1/training_args.bin" in written
    assert [path for path, content in written.items() if token.encode() in content] == []
    assert args.hub_token == token  # the caller's arguments are left as they were


def test_run_records_stay_valid_json_when_a_metric_is_not_finite(tmp_path, caplog):
    import json
    import logging

    from hf_seq.training.common import write_json_atomically

    path = tmp_path / "run_info.json"
    with caplog.at_level(logging.WARNING):
        write_json_atomically(path, {"metrics": [{"name": "perplexity", "value": float("inf")}], "loss": float("nan")})
    record = json.loads(path.read_text(), parse_constant=lambda name: pytest.fail(f"{name} in {path}"))
    assert record == {"metrics": [{"name": "perplexity", "value": None}], "loss": None}
    assert "metrics[0].value is inf" in caplog.text and "loss is nan" in caplog.text
