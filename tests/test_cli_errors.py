"""Bad input to the `hf-seq` commands: a one-line error naming the file (and line) and the fix, never a traceback,
and never code from a model folder run without --trust_remote_code."""

import io
import json
import shutil
import struct

import pytest

from hf_seq.cli import main
from hf_seq.data import sample_data_path
from tests.support.tiny_models import save_tiny_models


TEXT_FILE = sample_data_path("reviews_sample_valid.txt")
NSMC_FILE = sample_data_path("nsmc_sample_test.txt")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return save_tiny_models(str(tmp_path_factory.mktemp("models")))


def run(argv, capsys):
    """(exit status, stdout, stderr) of `hf-seq argv`, as a shell would see them."""
    try:
        status = main(argv)
    except SystemExit as stop:
        status = stop.code
    captured = capsys.readouterr()
    if isinstance(status, str):  # SystemExit("hf-seq x: error: ..."): Python prints it and exits with status 1
        return 1, captured.out, captured.err + status + "\n"
    return status or 0, captured.out, captured.err


def assert_one_line_error(status, err, *expected):
    assert status != 0 and "Traceback" not in err
    error_lines = [line for line in err.splitlines() if ": error: " in line]
    assert len(error_lines) == 1, err
    for text in expected:
        assert text in error_lines[0], error_lines[0]


def copy_model(models, name, tmp_path):
    return shutil.copytree(models[name], tmp_path / name)


def test_generate_refuses_a_model_without_a_language_model_head(models, capsys):
    status, out, err = run(["generate", "--model", models["classifier"], "--max_new_tokens", "3"], capsys)
    assert_one_line_error(status, err, "LSTMForSequenceClassification", "no language-model head")
    assert out == ""


@pytest.mark.parametrize(
    "flags, expected",
    [
        (["--top_p", "1.5"], "top_p must be in (0, 1]"),
        (["--top_p", "0"], "top_p must be in (0, 1]"),
        (["--num_return_sequences", "0"], "num_return_sequences must be a whole number >= 1"),
        (["--max_new_tokens", "-5"], "max_new_tokens must be a whole number >= 1"),
        (["--temperature", "0"], "temperature must be a positive number"),
        (["--max_length", "5"], "unrecognized arguments: --max_length 5"),
    ],
)
def test_generate_refuses_bad_settings(models, capsys, flags, expected):
    status, out, err = run(["generate", "--model", models["lm"], *flags], capsys)
    assert_one_line_error(status, err, expected)
    assert out == ""


def test_non_finite_metrics_are_printed_as_null_with_a_warning(models, tmp_path, capsys):
    model_dir = copy_model(models, "lm", tmp_path)
    weights = model_dir / "model.safetensors"
    data = bytearray(weights.read_bytes())
    header_length = struct.unpack("<Q", data[:8])[0]
    data[8 + header_length :] = b"\xff" * (len(data) - 8 - header_length)  # every float becomes NaN
    weights.write_bytes(bytes(data))

    status, out, err = run(["evaluate", "--model", str(model_dir), "--test_file", TEXT_FILE], capsys)

    def refuse(constant):
        raise AssertionError(f"not JSON: {constant}")

    metrics = json.loads(out.splitlines()[-1], parse_constant=refuse)
    assert status == 0 and metrics["perplexity"] is None and metrics["loss"] is None
    assert "hf-seq evaluate: warning: perplexity is nan" in err and "printed as null" in err


@pytest.mark.parametrize("damage", ["empty", "truncated", "broken header"])
def test_unreadable_weights_name_the_file(models, tmp_path, capsys, damage):
    model_dir = copy_model(models, "lm", tmp_path)
    weights = model_dir / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(
        {"empty": b"", "truncated": data[: len(data) // 2], "broken header": data[:8] + b"{not json" + data[17:]}[
            damage
        ]
    )
    status, _, err = run(["evaluate", "--model", str(model_dir), "--test_file", TEXT_FILE], capsys)
    assert_one_line_error(status, err, f"{weights} cannot be read", "save the model again")


def test_a_config_whose_vocab_no_longer_fits_the_weights_names_both_files(models, tmp_path, capsys):
    model_dir = copy_model(models, "lm", tmp_path)
    config = json.loads((model_dir / "config.json").read_text())
    (model_dir / "config.json").write_text(json.dumps({**config, "vocab_size": config["vocab_size"] + 100}))
    status, _, err = run(["generate", "--model", str(model_dir)], capsys)
    assert_one_line_error(
        status, err, f"{model_dir}/model.safetensors does not fit {model_dir}/config.json", "restore the config.json"
    )


def test_a_model_folder_without_tokenizer_files_names_them(models, tmp_path, capsys):
    model_dir = copy_model(models, "lm", tmp_path)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (model_dir / name).unlink()
    status, _, err = run(["evaluate", "--model", str(model_dir), "--test_file", TEXT_FILE], capsys)
    assert_one_line_error(status, err, "tokenizer.json and tokenizer_config.json are missing")
    assert "sentencepiece" not in err


@pytest.fixture
def untrusted_model(models, tmp_path):
    """A model folder naming an unknown model_type, whose code (run by transformers) would write a marker file."""
    model_dir = copy_model(models, "lm", tmp_path)
    marker = tmp_path / "code_ran"
    config = json.loads((model_dir / "config.json").read_text())
    (model_dir / "config.json").write_text(json.dumps({**config, "model_type": "someone_elses_lstm"}))
    code = model_dir / "configuration_recurrent.py"
    code.write_text(f"open({str(marker)!r}, 'w').close()\n" + code.read_text())
    return model_dir, marker


@pytest.mark.parametrize(
    "command",
    [
        ["evaluate", "--model", "{model}", "--test_file", TEXT_FILE],
        ["generate", "--model", "{model}"],
        [
            "pretrain",
            "--model_name_or_path",
            "{model}",
            "--train_file",
            TEXT_FILE,
            "--tokenizer",
            "{model}",
            "--output_dir",
            "{out}",
            "--max_steps",
            "1",
        ],
        ["finetune", "--model_name_or_path", "{model}", "--output_dir", "{out}", "--max_steps", "1"],
    ],
    ids=["evaluate", "generate", "pretrain", "finetune"],
)
def test_a_folder_s_code_never_runs_without_trust_remote_code(untrusted_model, capsys, monkeypatch, tmp_path, command):
    model_dir, marker = untrusted_model
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))  # were there a question, this would answer yes
    argv = [part.format(model=model_dir, out=tmp_path / "out") for part in command]
    status, _, err = run(argv, capsys)
    assert_one_line_error(status, err, "someone_elses_lstm", "--trust_remote_code")
    assert "[y/N]" not in err and not marker.exists()


def test_trust_remote_code_lets_the_folder_s_code_run_without_a_question(untrusted_model, capsys, monkeypatch):
    model_dir, marker = untrusted_model
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))  # a question would get a no
    _, out, err = run(["generate", "--model", str(model_dir), "--max_new_tokens", "2", "--trust_remote_code"], capsys)
    assert marker.exists() and "[y/N]" not in out + err


def test_a_text_file_that_is_not_utf8_names_the_file_and_line(models, tmp_path, capsys):
    text_file = tmp_path / "cp949.txt"
    text_file.write_bytes("첫 줄\n".encode() + "둘째 줄".encode("cp949") + b"\n")
    status, _, err = run(
        [
            "pretrain",
            "--train_file",
            str(text_file),
            "--tokenizer",
            models["tokenizer"],
            "--output_dir",
            str(tmp_path / "out"),
            "--max_steps",
            "1",
            "--report_to",
            "none",
            "--use_cpu",
            "true",
        ],
        capsys,
    )
    assert_one_line_error(status, err, f"{text_file} is not UTF-8 text", "(line 2)", "iconv")


@pytest.mark.parametrize(
    "content, expected",
    [
        ("id\tdocument\tlabel\n1\t좋다\t1\n2\t탭이\t들어간\t0\n", "line 3 has 4 tab-separated fields"),
        ("id\tdocument\tlabel\n", "has no rows"),
    ],
)
def test_bad_nsmc_files_name_the_file_and_line(models, tmp_path, capsys, content, expected):
    test_file = tmp_path / "ratings.txt"
    test_file.write_text(content, encoding="utf-8")
    status, _, err = run(["evaluate", "--model", models["classifier"], "--test_file", str(test_file)], capsys)
    assert_one_line_error(status, err, str(test_file), expected)


@pytest.mark.parametrize("content", ["", "\ufeff"])
def test_an_empty_text_file_says_it_has_no_text(models, tmp_path, capsys, content):
    text_file = tmp_path / "empty.txt"
    text_file.write_text(content, encoding="utf-8")
    status, _, err = run(["evaluate", "--model", models["lm"], "--test_file", str(text_file)], capsys)
    assert_one_line_error(status, err, f"{text_file} has no text")


def test_evaluate_refuses_a_negative_max_length(models, capsys):
    status, _, err = run(
        ["evaluate", "--model", models["classifier"], "--test_file", NSMC_FILE, "--max_length", "-5"], capsys
    )
    assert_one_line_error(status, err, "max_length must be a whole number >= 1, got -5")


def test_an_unknown_flag_is_a_usage_error(models, capsys):
    status, _, err = run(["evaluate", "--model", models["lm"], "--test_file", TEXT_FILE, "--no_such_flag"], capsys)
    assert status == 2 and "unrecognized arguments: --no_such_flag" in err and "Traceback" not in err


def test_pretrain_without_output_dir_is_a_usage_error_and_writes_nothing(models, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # transformers' own default would be ./trainer_output
    status, _, err = run(
        [
            "pretrain",
            "--train_file",
            TEXT_FILE,
            "--tokenizer",
            models["tokenizer"],
            "--max_steps",
            "1",
            "--report_to",
            "none",
            "--use_cpu",
            "true",
        ],
        capsys,
    )
    assert status == 2 and "required: --output_dir" in err and list(tmp_path.iterdir()) == []


def test_a_misspelt_override_of_a_saved_model_names_the_field(models, tmp_path, capsys):
    status, _, err = run(
        [
            "pretrain",
            "--train_file",
            TEXT_FILE,
            "--tokenizer",
            models["tokenizer"],
            "--model_name_or_path",
            models["lm"],
            "--config_overrides",
            "hiden_size=4",
            "--output_dir",
            str(tmp_path / "out"),
            "--max_steps",
            "1",
            "--report_to",
            "none",
            "--use_cpu",
            "true",
        ],
        capsys,
    )
    assert_one_line_error(status, err, "'hiden_size' is not a field of LSTMConfig", "did you mean 'hidden_size'")


def test_finetune_refuses_a_negative_max_length(models, tmp_path, capsys):
    with open(NSMC_FILE, encoding="utf-8") as handle:
        header, *rows = handle.read().splitlines()
    data = tmp_path / "nsmc"
    data.mkdir()
    for name, part in (("ratings_train.txt", rows[:20]), ("ratings_test.txt", rows[20:30])):
        (data / name).write_text("\n".join([header, *part]) + "\n", encoding="utf-8")
    status, _, err = run(
        [
            "finetune",
            "--model_name_or_path",
            models["lm"],
            "--data",
            str(data),
            "--max_length",
            "-5",
            "--output_dir",
            str(tmp_path / "out"),
            "--max_steps",
            "1",
            "--report_to",
            "none",
            "--use_cpu",
            "true",
        ],
        capsys,
    )
    assert_one_line_error(status, err, "max_length")


def test_an_nsmc_file_that_is_not_utf8_names_the_line(models, tmp_path, capsys):
    test_file = tmp_path / "ratings.txt"
    test_file.write_bytes(b"id\tdocument\tlabel\n" + "1\t가\t1\n".encode("cp949"))
    status, _, err = run(["evaluate", "--model", models["classifier"], "--test_file", str(test_file)], capsys)
    assert_one_line_error(status, err, f"{test_file} is not UTF-8 text", "line 2", "iconv")


def test_an_nsmc_file_with_a_byte_order_mark_is_evaluated(models, tmp_path, capsys):
    with open(NSMC_FILE, encoding="utf-8") as handle:
        lines = handle.read().splitlines()[:11]
    test_file = tmp_path / "ratings.txt"
    test_file.write_text("\ufeff" + "\n".join(lines) + "\n", encoding="utf-8")
    status, out, _ = run(["evaluate", "--model", models["classifier"], "--test_file", str(test_file)], capsys)
    assert status == 0 and json.loads(out.splitlines()[-1])["n"] == 10
