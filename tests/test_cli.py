"""The hf-seq training commands end to end: train-tokenizer -> pretrain -> finetune -> evaluate -> generate, demo."""

import json
import os

import pytest

import hf_seq.training
from hf_seq.cli import main
from hf_seq.data import sample_data_path


QUIET = [
    "--report_to",
    "none",
    "--disable_tqdm",
    "true",
    "--save_strategy",
    "no",
    "--use_cpu",
    "true",
    "--dataloader_pin_memory",
    "false",
]
TINY_MODEL = "embedding_size=16,hidden_size=16,num_hidden_layers=1"


@pytest.fixture
def nsmc_dir(tmp_path):
    with open(sample_data_path("nsmc_sample_train.txt"), encoding="utf-8") as handle:
        header, *rows = handle.read().splitlines()
    directory = tmp_path / "nsmc"
    directory.mkdir()
    (directory / "ratings_train.txt").write_text("\n".join([header, *rows[:120]]) + "\n", encoding="utf-8")
    (directory / "ratings_test.txt").write_text("\n".join([header, *rows[120:161]]) + "\n", encoding="utf-8")
    return directory


def last_json_line(capsys):
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    return json.loads(lines[-1])


def test_pretrain_finetune_evaluate_generate(tmp_path, nsmc_dir, capsys):
    tokenizer_dir, lm_dir, classifier_dir = (str(tmp_path / name) for name in ("tok", "lm", "classifier"))
    text_file = sample_data_path("reviews_sample_valid.txt")
    assert (
        main(
            [
                "train-tokenizer",
                "--train_files",
                text_file,
                "--output_dir",
                tokenizer_dir,
                "--vocab_size",
                "600",
                "--limit_alphabet",
                "200",
            ]
        )
        == 0
    )

    # TrainingArguments flags (--max_steps, --learning_rate, ...) work as in any transformers script.
    assert (
        main(
            [
                "pretrain",
                "--train_file",
                text_file,
                "--validation_file",
                text_file,
                "--tokenizer",
                tokenizer_dir,
                "--config_overrides",
                TINY_MODEL,
                "--bptt",
                "8",
                "--output_dir",
                lm_dir,
                "--max_steps",
                "3",
                "--per_device_train_batch_size",
                "4",
                "--learning_rate",
                "0.01",
                *QUIET,
            ]
        )
        == 0
    )
    lm_metrics = last_json_line(capsys)
    assert lm_metrics["global_step"] == 3 and lm_metrics["eval_perplexity"] > 1
    assert json.load(open(os.path.join(lm_dir, "run_info.json")))["hyperparameters"]["learning_rate"] == 0.01

    assert (
        main(
            [
                "finetune",
                "--model_name_or_path",
                lm_dir,
                "--data",
                str(nsmc_dir),
                "--output_dir",
                classifier_dir,
                "--max_steps",
                "3",
                "--per_device_train_batch_size",
                "8",
                "--layerwise_lr_decay",
                "0.5",
                "--subword_dropout",
                "0.1",
                "--gradual_unfreezing",
                "0.5",
                "--weight_averaging",
                "0.25",
                *QUIET,
            ]
        )
        == 0
    )
    classifier_metrics = last_json_line(capsys)
    assert classifier_metrics["eval_n"] == 41
    recorded = json.load(open(os.path.join(classifier_dir, "run_info.json")))["hyperparameters"]
    flags = ("layerwise_lr_decay", "subword_dropout", "gradual_unfreezing", "weight_averaging")
    assert [recorded[flag] for flag in flags] == [0.5, 0.1, 0.5, 0.25]

    assert main(["evaluate", "--model", classifier_dir, "--test_file", str(nsmc_dir / "ratings_test.txt")]) == 0
    metrics = last_json_line(capsys)
    assert set(metrics) == {"accuracy", "n"} and metrics["n"] == 41
    assert metrics["accuracy"] == pytest.approx(classifier_metrics["eval_accuracy"])
    assert (
        main(
            [
                "evaluate",
                "--model",
                classifier_dir,
                "--test_file",
                str(nsmc_dir / "ratings_test.txt"),
                "--subword_samples",
                "2",
                "--subword_dropout",
                "0.3",
            ]
        )
        == 0
    )
    assert last_json_line(capsys)["subword_samples"] == 2
    # Several --model folders: one ensemble (here a classifier with itself, so the same accuracy).
    assert (
        main(
            ["evaluate", "--model", classifier_dir, classifier_dir, "--test_file", str(nsmc_dir / "ratings_test.txt")]
        )
        == 0
    )
    ensemble = last_json_line(capsys)
    assert ensemble["n"] == 41 and ensemble["accuracy"] == pytest.approx(metrics["accuracy"])
    assert [member["model"] for member in ensemble["members"]] == [classifier_dir, classifier_dir]

    assert main(["evaluate", "--model", lm_dir, "--test_file", text_file]) == 0
    assert set(last_json_line(capsys)) == {"loss", "perplexity", "n_tokens"}

    assert main(["generate", "--model", lm_dir, "--prompt", "영화", "배우", "--max_new_tokens", "5"]) == 0
    generated = capsys.readouterr().out.splitlines()
    assert len(generated) == 2 and generated[0].startswith("영화") and generated[1].startswith("배우")


def test_generate_prints_one_result_per_line_whatever_was_sampled(monkeypatch, capsys):
    # Byte-fallback tokens can decode to line breaks; each result must still be one line of the output.
    monkeypatch.setattr(hf_seq.training, "generate_text", lambda *args, **kwargs: ["영화\n좋다", "배우\x1c연기", "끝"])
    assert main(["generate", "--model", "unused", "--prompt", "영화", "배우", "끝"]) == 0
    assert capsys.readouterr().out.splitlines() == ["영화 좋다", "배우 연기", "끝"]


def test_errors_are_reported_without_a_traceback(tmp_path):
    with pytest.raises(SystemExit, match="hf-seq evaluate: error: model folder not found"):
        main(["evaluate", "--model", str(tmp_path / "none"), "--test_file", sample_data_path("nsmc_sample_test.txt")])
    with pytest.raises(SystemExit, match="hf-seq evaluate: error: model folder not found"):
        main(
            [
                "evaluate",
                "--model",
                str(tmp_path / "none"),
                str(tmp_path / "other"),
                "--test_file",
                sample_data_path("nsmc_sample_test.txt"),
            ]
        )
    with pytest.raises(SystemExit, match="hf-seq pretrain: error: .*not found"):
        main(
            [
                "pretrain",
                "--train_file",
                str(tmp_path / "none.txt"),
                "--tokenizer",
                str(tmp_path),
                "--output_dir",
                str(tmp_path / "out"),
            ]
        )
    with pytest.raises(SystemExit, match="--tokenizer"):
        main(["finetune", "--output_dir", str(tmp_path / "out")])


def test_demo_runs_the_whole_pipeline_and_protects_other_folders(tmp_path, capsys):
    output_dir = tmp_path / "demo"
    tiny = [
        "--vocab_size",
        "1800",
        "--lm_epochs",
        "0.05",
        "--classifier_epochs",
        "0.05",
        "--hidden_size",
        "16",
        "--embedding_size",
        "16",
    ]
    assert main(["demo", "--output_dir", str(output_dir), *tiny]) == 0
    results = json.loads((output_dir / "demo_results.json").read_text())
    assert results["classifier_test_examples"] == 1000
    assert 0.0 <= results["classifier_test_accuracy"] <= 1.0 and len(results["generated"]) == 3
    for name in ("README.md", "run_info.json", "model.safetensors", "tokenizer.json", "config.json"):
        assert (output_dir / "classifier" / name).is_file(), name
    card = (output_dir / "classifier" / "README.md").read_text()
    assert f"{results['classifier_test_accuracy']:.4f}" in card  # the card shows the measured accuracy
    assert "test accuracy" in capsys.readouterr().out

    # Running it again replaces the previous demo; a folder holding anything else is refused and left as it was.
    assert main(["demo", "--output_dir", str(output_dir), *tiny, "--seed", "7"]) == 0
    assert json.loads((output_dir / "demo_results.json").read_text())["wall_time_seconds"] > 0
    other = tmp_path / "precious"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(SystemExit, match="not a demo folder"):
        main(["demo", "--output_dir", str(other), *tiny])
    assert os.listdir(other) == ["notes.txt"]
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".demo-")]  # no leftovers


def test_each_command_passes_its_arguments_to_parameters_of_its_function():
    import inspect
    from dataclasses import asdict

    from hf_seq.training import (
        DemoArguments,
        FinetuneArguments,
        GenerateArguments,
        PretrainArguments,
        finetune,
        generate_text,
        pretrain,
        run_demo,
    )
    from hf_seq_cli import RemoteCodeArguments

    remote_code = asdict(RemoteCodeArguments())
    commands = [
        (pretrain, {**PretrainArguments(train_file="train.txt", tokenizer="tok").as_keywords(), **remote_code}),
        (finetune, {**FinetuneArguments(tokenizer="tok").as_keywords(), **remote_code}),
        (generate_text, {**GenerateArguments(model="lm").as_keywords(), **remote_code}),
        (run_demo, asdict(DemoArguments())),
    ]
    for function, keywords in commands:
        inspect.signature(function).bind_partial(**keywords)  # a TypeError names a flag the function lacks
