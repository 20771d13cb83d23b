"""`hf-seq predict` and `hf-seq export-onnx` (hf_seq_cli.predict): every head from the command line, ensembles given
either way, the NSMC output format, and one-line errors for bad inputs."""

import json

import pytest

from hf_seq_cli.predict import _merge_repeated_flag, export_onnx, predict
from tests.test_prediction import TEXTS, nsmc_file, save_model, tokenizer, write_lines  # noqa: F401


def _error(call):
    with pytest.raises(SystemExit) as raised:
        call()
    return raised.value


@pytest.mark.parametrize(
    "family, task, columns",
    [
        ("lstm", "text-classification", ["id", "label", "prob_LABEL_0", "prob_LABEL_1", "prob_LABEL_2"]),
        ("gru", "token-classification", ["id", "tokens", "tags"]),
        ("transformer", "text-generation", ["id", "generated_text"]),
        ("seq2seq_rnn", "text2text-generation", ["id", "generated_text"]),
    ],
)
def test_every_head_writes_one_row_per_input_with_its_id(tmp_path, tokenizer, capsys, family, task, columns):  # noqa: F811
    folder, _ = save_model(tmp_path / "model", tokenizer, family, task)
    output = tmp_path / "out.tsv"
    predict(["--model", folder, "--input", nsmc_file(tmp_path), "--output", str(output), "--max_new_tokens", "3"])
    header, *rows = output.read_text(encoding="utf-8").splitlines()
    assert header.split("\t") == columns
    assert [row.split("\t")[0] for row in rows] == [str(100 + index) for index in range(len(TEXTS))]
    assert all(len(row.split("\t")) == len(columns) for row in rows)
    unit = "reviews" if task == "text-classification" else "texts"
    error_output = capsys.readouterr().err
    assert f"{len(TEXTS)} {unit} to {output}" in error_output and f"{unit}/s)" in error_output


def test_nsmc_format_and_the_speed_figure(tmp_path, tokenizer, capsys):  # noqa: F811
    folder, _ = save_model(tmp_path / "model", tokenizer, "lstm", "text-classification", num_labels=2)
    predict(
        [
            "--model", folder, "--input", nsmc_file(tmp_path), "--class_names", "negative,positive",
            "--columns", "id,label,prob_positive", "--no_progress",
        ]
    )  # fmt: skip
    captured = capsys.readouterr()
    header, *rows = captured.out.splitlines()
    assert header == "id\tlabel\tprob_positive"
    assert len(rows) == len(TEXTS)
    last_line = captured.err.strip().splitlines()[-1]  # after the saving bars of save_model
    assert last_line.startswith(f"hf-seq predict: {len(TEXTS)} reviews in ") and last_line.endswith(" reviews/s)")


def test_int8_flag_runs_the_quantised_model(tmp_path, tokenizer, capsys):  # noqa: F811
    folder, _ = save_model(tmp_path / "model", tokenizer, "lstm", "text-classification", num_labels=2)
    outputs = {}
    for name, flags in (("fp32", []), ("int8", ["--int8"])):
        predict(["--model", folder, "--input", nsmc_file(tmp_path), "--no_progress", "--batch_size", "1", *flags])
        outputs[name] = capsys.readouterr().out.splitlines()
    assert len(outputs["int8"]) == len(outputs["fp32"]) == len(TEXTS) + 1
    assert outputs["int8"][1:] != outputs["fp32"][1:]  # the probabilities moved: int8 ran


def test_an_ensemble_is_given_as_one_flag_or_repeated(tmp_path, tokenizer, capsys):  # noqa: F811
    first, _ = save_model(tmp_path / "a", tokenizer, "lstm", "text-classification", seed=0)
    second, _ = save_model(tmp_path / "b", tokenizer, "gru", "text-classification", seed=1)
    input_file = nsmc_file(tmp_path)
    predict(["--model", first, second, "--input", input_file, "--no_progress"])
    together = capsys.readouterr().out
    predict(["--model", first, "--input", input_file, "--model", second, "--no_progress"])
    repeated = capsys.readouterr().out
    predict(["--model", first, "--input", input_file, "--no_progress"])
    alone = capsys.readouterr().out
    assert together == repeated != alone


def test_merge_repeated_flag():
    argv = ["--model", "a", "--input", "x", "--model=b", "--model", "c", "d"]
    assert _merge_repeated_flag(argv, "--model") == ["--model", "a", "b", "c", "d", "--input", "x"]
    assert _merge_repeated_flag(["--input", "x"], "--model") == ["--input", "x"]


def test_an_existing_output_is_refused_in_one_line_and_kept(tmp_path, tokenizer):  # noqa: F811
    folder, _ = save_model(tmp_path / "model", tokenizer, "lstm", "text-classification")
    output = tmp_path / "out.jsonl"
    output.write_text("mine\n", encoding="utf-8")
    arguments = ["--model", folder, "--input", nsmc_file(tmp_path), "--output", str(output), "--no_progress"]
    error = _error(lambda: predict(arguments))
    assert str(error.code).startswith("hf-seq predict: error: ") and "--overwrite" in str(error.code)
    assert "\n" not in str(error.code)
    assert output.read_text(encoding="utf-8") == "mine\n"
    predict([*arguments, "--overwrite"])
    assert len([json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]) == len(TEXTS)


@pytest.mark.parametrize(
    "make_arguments, message",
    [
        (lambda folder, path: ["--model", path + "/missing", "--input", path + "/in.txt"], "model folder not found"),
        (lambda folder, path: ["--model", folder, "--input", path + "/nothing.txt"], "input file not found"),
        (lambda folder, path: ["--model", folder, "--input", path + "/in.txt", "--batch_size", "0"], "batch_size"),
        (
            lambda folder, path: ["--model", folder, "--input", path + "/in.txt", "--columns", "id,nope"],
            "no output column",
        ),
    ],
)
def test_bad_inputs_end_in_one_error_line(tmp_path, tokenizer, make_arguments, message):  # noqa: F811
    folder, _ = save_model(tmp_path / "model", tokenizer, "lstm", "text-classification")
    write_lines(tmp_path / "in.txt", TEXTS)
    error = _error(lambda: predict([*make_arguments(folder, str(tmp_path)), "--no_progress"]))
    assert str(error.code).startswith("hf-seq predict: error: ") and message in str(error.code)
    assert "\n" not in str(error.code)


def test_an_unknown_flag_is_a_usage_error():
    error = _error(lambda: predict(["--model", "m", "--input", "i", "--bogus"]))
    assert error.code == 2


def test_export_onnx_command(tmp_path, tokenizer, capsys):  # noqa: F811
    pytest.importorskip("onnxruntime")
    folder, _ = save_model(tmp_path / "model", tokenizer, "gru", "text-generation")
    output_dir = str(tmp_path / "onnx")
    export_onnx(["--model", folder, "--output_dir", output_dir])
    printed = capsys.readouterr().out
    assert printed.startswith("Exported a text-generation model to ") and "past_hidden" in printed
    assert "onnxruntime matches PyTorch" in printed
    error = _error(lambda: export_onnx(["--model", folder, "--output_dir", output_dir]))
    assert str(error.code).startswith("hf-seq export-onnx: error: ") and "--overwrite" in str(error.code)
    export_onnx(["--model", folder, "--output_dir", output_dir, "--overwrite", "--no_check"])
    assert "matches" not in capsys.readouterr().out
