import io
import json
import sys

import pytest

from hf_seq.models.recurrent import GRUConfig
from hf_seq.spacing import remove_spaces
from hf_seq.spacing.cli import space
from tests.spacing.conftest import SPACED_TEXTS


def test_space_writes_one_line_per_input_line(tiny_tagger, tmp_path):
    lines = [remove_spaces(text) for text in SPACED_TEXTS] + ["", "가\u2028나"]
    input_path, output_path = tmp_path / "in.txt", tmp_path / "out.txt"
    input_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    space(["--model", str(tiny_tagger), "--input", str(input_path), "--output", str(output_path)])
    written = output_path.read_text(encoding="utf-8").split("\n")
    assert written[-1] == "" and len(written) - 1 == len(lines)
    assert [remove_spaces(line) for line in written[:-1]] == [remove_spaces(line) for line in lines]


def test_space_int8_restores_the_learned_spaces(tiny_tagger, tmp_path):
    input_path, output_path = tmp_path / "in.txt", tmp_path / "out.txt"
    input_path.write_text("".join(remove_spaces(text) + "\n" for text in SPACED_TEXTS), encoding="utf-8")
    space(["--model", str(tiny_tagger), "--input", str(input_path), "--output", str(output_path), "--int8"])
    assert output_path.read_text(encoding="utf-8").splitlines() == SPACED_TEXTS


def test_space_passes_the_decision_on(tiny_tagger, tmp_path, monkeypatch):
    import hf_seq.spacing.restore as restore

    decisions, original = [], restore.restore_spacing

    def recording_restore(*args, **kwargs):
        decisions.append(kwargs["decision"])
        return original(*args, **kwargs)

    monkeypatch.setattr(restore, "restore_spacing", recording_restore)
    input_path = tmp_path / "in.txt"
    input_path.write_text("".join(remove_spaces(text) + "\n" for text in SPACED_TEXTS), encoding="utf-8")
    for decision in ("expected_f1", None):
        output_path = tmp_path / f"out-{decision}.txt"
        options = ["--decision", decision] if decision else []
        space(["--model", str(tiny_tagger), "--input", str(input_path), "--output", str(output_path), *options])
        written = output_path.read_text(encoding="utf-8").splitlines()
        assert [remove_spaces(line) for line in written] == [remove_spaces(text) for text in SPACED_TEXTS]
    assert decisions == ["expected_f1", "argmax"]
    with pytest.raises(SystemExit, match="unknown decision 'best'"):
        space(["--model", str(tiny_tagger), "--input", str(input_path), "--decision", "best"])


def test_space_reads_stdin_and_writes_stdout(tiny_tagger, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO("이영화정말재밌어요\r\n".encode())))
    space(["--model", str(tiny_tagger)])
    assert remove_spaces(capsys.readouterr().out) == "이영화정말재밌어요"


def test_space_never_overwrites_an_existing_file(tiny_tagger, tmp_path):
    input_path, output_path = tmp_path / "in.txt", tmp_path / "out.txt"
    input_path.write_text("가나다\n", encoding="utf-8")
    output_path.write_text("keep me", encoding="utf-8")
    with pytest.raises(SystemExit, match="exists: choose another file, or pass --overwrite"):
        space(["--model", str(tiny_tagger), "--input", str(input_path), "--output", str(output_path)])
    assert output_path.read_text(encoding="utf-8") == "keep me"
    space(["--model", str(tiny_tagger), "--input", str(input_path), "--output", str(output_path), "--overwrite"])
    assert remove_spaces(output_path.read_text(encoding="utf-8")) == "가나다"


def test_space_names_bad_inputs(tiny_tagger, tmp_path):
    (tmp_path / "in.txt").write_text("가나다\n", encoding="utf-8")
    not_utf8 = tmp_path / "latin1.txt"
    not_utf8.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(SystemExit, match="is not UTF-8"):
        space(["--model", str(tiny_tagger), "--input", str(not_utf8)])
    with pytest.raises(SystemExit, match="is not a file"):
        space(["--model", str(tiny_tagger), "--input", str(tmp_path / "missing.txt")])
    with pytest.raises(SystemExit, match="model folder not found"):
        space(["--model", str(tmp_path / "no-model"), "--input", str(not_utf8.with_name("in.txt"))])


def test_train_spacing_trains_a_tagger_then_a_seq2seq_model_on_its_tokenizer(tmp_path, capsys):
    from hf_seq.spacing.cli import train_spacing

    train_file = tmp_path / "train.txt"
    train_file.write_text("\n".join(SPACED_TEXTS) + "\n", encoding="utf-8")
    small = ["--embedding_size", "8", "--hidden_size", "8", "--max_steps", "2", "--batch_size", "4"]
    tagger_dir, seq2seq_dir = tmp_path / "tagger", tmp_path / "seq2seq"
    ngrams = ["--ngram_orders", "2", "3", "--ngram_buckets", "64"]
    dropouts = ["--embedding_dropout", "0", "--output_dropout", "0.3"]
    review_level = ["--token_classifier_context", "mean", "--loss_weighting", "review"]
    train_spacing(
        ["--train_file", str(train_file), "--output_dir", str(tagger_dir), "--vocab_size", "300"]
        + [*ngrams, *dropouts, *review_level, *small]
    )
    tagger_config = json.loads((tagger_dir / "config.json").read_text())
    assert (tagger_config["ngram_orders"], tagger_config["ngram_buckets"]) == ([2, 3], 64)
    assert tagger_config["token_classifier_context"] == "mean"
    assert json.loads((tagger_dir / "run_info.json").read_text())["hyperparameters"]["loss_weighting"] == "review"
    # the dropouts given are set; the one left out keeps the config's default
    assert (tagger_config["embedding_dropout"], tagger_config["output_dropout"]) == (0.0, 0.3)
    assert tagger_config["dropout"] == GRUConfig().dropout
    space(["--model", str(tagger_dir), "--input", str(train_file), "--output", str(tmp_path / "tagged.txt")])
    tagged = (tmp_path / "tagged.txt").read_text(encoding="utf-8").splitlines()
    assert [remove_spaces(line) for line in tagged] == [remove_spaces(text) for text in SPACED_TEXTS]
    train_spacing(
        [
            "--train_file",
            str(train_file),
            "--output_dir",
            str(seq2seq_dir),
            "--architecture",
            "seq2seq",
            "--tokenizer",
            str(tagger_dir),
            "--attention",
            "dot",
            *small,
        ]
    )
    assert (tagger_dir / "model.safetensors").is_file() and (seq2seq_dir / "model.safetensors").is_file()
    space(["--model", str(seq2seq_dir), "--input", str(train_file), "--output", str(tmp_path / "out.txt")])
    written = (tmp_path / "out.txt").read_text(encoding="utf-8").splitlines()
    assert [remove_spaces(line) for line in written] == [remove_spaces(text) for text in SPACED_TEXTS]


def test_train_spacing_distils_teachers(tiny_tagger, tmp_path):
    from hf_seq.spacing.cli import train_spacing

    train_file = tmp_path / "train.txt"
    train_file.write_text("\n".join(SPACED_TEXTS) + "\n", encoding="utf-8")
    small = ["--embedding_size", "8", "--hidden_size", "8", "--max_steps", "2", "--batch_size", "4"]
    for name, weight in [("default", []), ("weighted", ["--distillation_weight", "0.8"])]:
        output_dir = tmp_path / name
        train_spacing(
            ["--train_file", str(train_file), "--output_dir", str(output_dir), "--teachers", str(tiny_tagger)]
            + [*weight, *small]
        )
        run_info = json.loads((output_dir / "run_info.json").read_text())["hyperparameters"]
        assert run_info["teachers"] == [str(tiny_tagger)]
        assert run_info["distillation_weight"] == (0.8 if weight else 0.5)
        # the teacher's tokenizer, not one trained anew (--vocab_size is left at 3000)
        assert (output_dir / "tokenizer.json").read_text() == (tiny_tagger / "tokenizer.json").read_text()


def test_train_spacing_refuses_bad_tagger_options_before_any_work(tmp_path, monkeypatch):
    from hf_seq.spacing import tagger
    from hf_seq.spacing.cli import train_spacing

    monkeypatch.setattr(tagger, "train_character_tokenizer", lambda *args, **kwargs: pytest.fail("work was done"))

    train_file = tmp_path / "train.txt"
    train_file.write_text("\n".join(SPACED_TEXTS) + "\n", encoding="utf-8")
    output_dir = tmp_path / "tagger"
    with pytest.raises(
        SystemExit, match=r"train-spacing: error: config_overrides: .*ngram_orders.*from 2 to 5"
    ) as error:
        train_spacing(["--train_file", str(train_file), "--output_dir", str(output_dir), "--ngram_orders", "1"])
    assert "\n" not in str(error.value) and not output_dir.exists()
    with pytest.raises(SystemExit, match="--ngram_orders is a tagger option"):
        train_spacing(
            ["--train_file", str(train_file), "--output_dir", str(output_dir), "--architecture", "seq2seq"]
            + ["--tokenizer", "x", "--ngram_orders", "2"]
        )
    with pytest.raises(SystemExit, match="--dropout is a tagger option"):
        train_spacing(
            ["--train_file", str(train_file), "--output_dir", str(output_dir), "--architecture", "seq2seq"]
            + ["--tokenizer", "x", "--dropout", "0"]
        )
    tagger_options = [("--token_classifier_context", "mean"), ("--loss_weighting", "review"), ("--teachers", "t")]
    for option, value in tagger_options:
        with pytest.raises(SystemExit, match=f"{option} is a tagger option"):
            train_spacing(
                ["--train_file", str(train_file), "--output_dir", str(output_dir), "--architecture", "seq2seq"]
                + ["--tokenizer", "x", option, value]
            )
    with pytest.raises(SystemExit, match="--distillation_weight needs --teachers"):
        train_spacing(["--train_file", str(train_file), "--output_dir", str(output_dir), "--distillation_weight", "1"])
    with pytest.raises(SystemExit, match="train-spacing: error: .*unknown loss_weighting 'token'"):
        train_spacing(["--train_file", str(train_file), "--output_dir", str(output_dir), "--loss_weighting", "token"])
    assert not output_dir.exists()
    with pytest.raises(SystemExit, match=r"train-spacing: error: config_overrides: .*dropout.*probability") as error:
        train_spacing(["--train_file", str(train_file), "--output_dir", str(output_dir), "--dropout", "1.5"])
    assert "\n" not in str(error.value) and not output_dir.exists()


def test_train_spacing_names_a_seq2seq_run_without_tokenizer(tmp_path):
    from hf_seq.spacing.cli import train_spacing

    with pytest.raises(SystemExit, match="needs --tokenizer"):
        train_spacing(["--train_file", "x.txt", "--output_dir", str(tmp_path / "o"), "--architecture", "seq2seq"])
