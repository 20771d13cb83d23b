"""Training the recurrent encoder–decoder: Seq2SeqTrainer with generated-text metrics, train_seq2seq on a pairs file
and its CLI adapter, the teacher-forcing schedule, attention maps, and the toy reversal task."""

import json

import pytest
import torch
from transformers import AutoModelForSeq2SeqLM, Seq2SeqTrainer, Seq2SeqTrainingArguments

from hf_seq.models.seq2seq_rnn import Seq2SeqRNNForConditionalGeneration
from hf_seq.seq2seq import (
    TOY_EOS,
    TOY_START,
    Seq2SeqCollator,
    TeacherForcingScheduleCallback,
    accuracy_by_length,
    generation_metrics,
    load_pairs,
    reversal_task,
    save_attention_map,
    sequence_accuracy,
    toy_config,
    train_on_reversal,
    train_seq2seq,
    train_seq2seq_cli,
)
from tests.training.helpers import train_tiny_tokenizer


@pytest.fixture(scope="module")
def tiny_tokenizer():
    return train_tiny_tokenizer()


def _arguments(tmp_path, steps, **overrides):
    arguments = {
        "output_dir": str(tmp_path),
        "max_steps": steps,
        "per_device_train_batch_size": 16,
        "per_device_eval_batch_size": 16,
        "learning_rate": 1e-2,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": [],
        "use_cpu": True,
        "seed": 0,
        "disable_tqdm": True,
        "predict_with_generate": True,
        "generation_max_length": 8,
    }
    arguments.update(overrides)
    return Seq2SeqTrainingArguments(**arguments)


def test_reversal_task_targets_are_the_reversed_sources_then_eos():
    dataset = reversal_task(20, 2, 5, num_symbols=6, seed=3)
    for example in dataset:
        assert example["labels"] == example["input_ids"][::-1] + [TOY_EOS]
        assert 2 <= len(example["input_ids"]) <= 5


def test_seq2seq_trainer_lowers_the_loss_and_reports_metrics_from_generated_text(tmp_path):
    torch.manual_seed(0)
    train, test = reversal_task(128, 2, 4, num_symbols=4, seed=0), reversal_task(16, 3, 3, num_symbols=4, seed=1)
    model = Seq2SeqRNNForConditionalGeneration(
        toy_config(num_symbols=4, hidden_size=16, embedding_size=8, attention="dot", input_feeding=False)
    )
    trainer = Seq2SeqTrainer(
        model=model,
        args=_arguments(tmp_path, 30),
        train_dataset=train,
        eval_dataset=test,
        data_collator=Seq2SeqCollator(0),
        compute_metrics=generation_metrics(None, TOY_EOS, 0),
    )
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert sum(losses[-5:]) / 5 < 0.85 * sum(losses[:5]) / 5
    metrics = trainer.evaluate()
    assert {"eval_loss", "eval_exact_match", "eval_char_accuracy"} <= set(metrics)
    assert 0.0 <= metrics["eval_exact_match"] <= 1.0


def test_teacher_forcing_schedule_goes_from_one_to_the_floor_and_restores_the_config(tmp_path):
    model = Seq2SeqRNNForConditionalGeneration(toy_config(num_symbols=4, hidden_size=8, embedding_size=8))
    callback = TeacherForcingScheduleCallback(floor=0.25)
    trainer = Seq2SeqTrainer(
        model=model,
        args=_arguments(tmp_path, 8, predict_with_generate=False),
        train_dataset=reversal_task(64, 2, 3, num_symbols=4),
        data_collator=Seq2SeqCollator(0),
        callbacks=[callback],
    )
    trainer.train()
    ratios = [
        entry["teacher_forcing_ratio"] for entry in trainer.state.log_history if "teacher_forcing_ratio" in entry
    ]
    assert ratios[0] == 1.0 and ratios == sorted(ratios, reverse=True) and ratios[-1] < 0.4
    assert callback.ratio_at(8, 8) == 0.25
    assert model.config.teacher_forcing_ratio == 1.0


@pytest.fixture
def pairs_file(tmp_path):
    path = tmp_path / "pairs.jsonl"
    words = ["abc", "bca", "cab", "aab", "bba", "cca", "acb", "bac"]
    with open(path, "w", encoding="utf-8") as handle:
        for word in words * 4:
            handle.write(json.dumps({"src": word, "tgt": word[::-1]}) + "\n")
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("source\ttarget\n" + "".join(f"{w}\t{w[::-1]}\n" for w in words), encoding="utf-8")
    return path, tsv


def test_load_pairs_reads_jsonl_and_tsv(pairs_file):
    jsonl, tsv = pairs_file
    dataset = load_pairs(jsonl, source_column="src", target_column="tgt")
    assert dataset.column_names == ["source", "target"] and dataset[0] == {"source": "abc", "target": "cba"}
    assert load_pairs(tsv)[1] == {"source": "bca", "target": "acb"}
    with pytest.raises(ValueError, match="no column"):
        load_pairs(jsonl)


def test_train_seq2seq_cli_trains_saves_and_the_folder_loads(tmp_path, pairs_file, tiny_tokenizer):
    jsonl, _ = pairs_file
    tiny_tokenizer.save_pretrained(tmp_path / "tokenizer")
    output = tmp_path / "out"
    run = train_seq2seq_cli(
        [
            str(jsonl),
            "--tokenizer",
            str(tmp_path / "tokenizer"),
            "--output-dir",
            str(output),
            "--source-column",
            "src",
            "--target-column",
            "tgt",
            "--max-steps",
            "4",
            "--batch-size",
            "8",
            "--set",
            "hidden_size=16",
            "--set",
            "embedding_size=8",
            "--set",
            "attention=concat",
            "--set",
            "encoder_layers=1",
            "--set",
            "decoder_layers=1",
            "--teacher-forcing-floor",
            "0.5",
            "--cpu",
            "--max-target-length",
            "6",
        ]
    )
    assert run.model.config.attention == "concat" and run.metrics["train_loss"] > 0
    reloaded = AutoModelForSeq2SeqLM.from_pretrained(output)
    assert reloaded.config.vocab_size == len(tiny_tokenizer)
    assert (output / "tokenizer.json").exists() and (output / "seq2seq_metrics.json").exists()


def test_train_seq2seq_evaluates_with_generation(tmp_path, tiny_tokenizer, pairs_file):
    _, tsv = pairs_file
    run = train_seq2seq(
        tsv,
        validation_file=tsv,
        tokenizer=tiny_tokenizer,
        output_dir=tmp_path,
        max_steps=3,
        batch_size=8,
        config_overrides={
            "hidden_size": 8,
            "embedding_size": 8,
            "encoder_layers": 1,
            "decoder_layers": 1,
            "cell": "gru",
        },
        max_target_length=6,
        use_cpu=True,
        save=False,
    )
    assert "eval_exact_match" in run.metrics and "eval_char_accuracy" in run.metrics


def test_save_attention_map_writes_a_png(tmp_path):
    torch.manual_seed(0)
    model = Seq2SeqRNNForConditionalGeneration(toy_config(num_symbols=6, hidden_size=8, embedding_size=8))
    path = save_attention_map(model, [4, 5, 6, 7, 8], tmp_path / "map.png", max_new_tokens=6)
    with open(path, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="no attention"):
        save_attention_map(
            Seq2SeqRNNForConditionalGeneration(toy_config(attention="none")), [4, 5], tmp_path / "none.png"
        )


def test_sequence_accuracy_counts_exact_outputs():
    model = Seq2SeqRNNForConditionalGeneration(toy_config(num_symbols=4, hidden_size=8, embedding_size=8))
    accuracy = sequence_accuracy(model, reversal_task(8, 2, 3, num_symbols=4))
    assert 0.0 <= accuracy <= 1.0


def test_hf_seq_generate_runs_a_seq2seq_folder(tmp_path, tiny_tokenizer, capsys):
    from hf_seq_cli import main

    torch.manual_seed(0)
    config = toy_config(
        vocab_size=len(tiny_tokenizer),
        hidden_size=8,
        embedding_size=8,
        pad_token_id=tiny_tokenizer.pad_token_id,
        eos_token_id=tiny_tokenizer.eos_token_id,
        bos_token_id=tiny_tokenizer.bos_token_id,
    )
    model = Seq2SeqRNNForConditionalGeneration(config).eval()
    model.save_pretrained(tmp_path)
    tiny_tokenizer.save_pretrained(tmp_path)

    main(
        [
            "generate",
            "--model",
            str(tmp_path),
            "--prompt",
            "abc",
            "cab",
            "--do_sample",
            "false",
            "--max_new_tokens",
            "5",
        ]
    )
    printed = capsys.readouterr().out.splitlines()

    expected = []
    for source in ("abc", "cab"):
        input_ids = tiny_tokenizer(source, add_special_tokens=False, return_tensors="pt")["input_ids"]
        output = model.generate(input_ids, max_new_tokens=5, do_sample=False)
        expected.append(" ".join(tiny_tokenizer.decode(output[0], skip_special_tokens=True).splitlines()))
    assert printed == expected
    with pytest.raises(SystemExit, match="non-empty source"):
        main(["generate", "--model", str(tmp_path), "--do_sample", "false"])


@pytest.fixture(scope="module")
def reversal_models():
    """The toy task's models with and without attention, same size and recipe (400 steps, a few seconds each)."""
    models = {}
    for attention in ("general", "none"):
        config = toy_config(hidden_size=64, embedding_size=32, attention=attention, input_feeding=False, cell="gru")
        models[attention] = train_on_reversal(config, steps=400, min_length=2, max_length=8, seed=0)
    return models


def test_attention_solves_reversal_at_every_length(reversal_models):
    accuracy = accuracy_by_length(reversal_models["general"], [2, 4, 8])
    assert min(result["token"] for result in accuracy.values()) >= 0.95, accuracy


def test_without_attention_accuracy_falls_with_length(reversal_models):
    with_attention = accuracy_by_length(reversal_models["general"], [8])
    bottleneck = accuracy_by_length(reversal_models["none"], [2, 4, 8])
    assert bottleneck[2]["token"] > bottleneck[4]["token"] > bottleneck[8]["token"], bottleneck
    assert bottleneck[8]["token"] < with_attention[8]["token"] - 0.4, (bottleneck, with_attention)


class _Reverser:
    """Stands in for a model: generates each source reversed (the right answer), or the source itself."""

    def __init__(self, config, wrong=False):
        self.config, self.wrong = config, wrong

    def generate(self, input_ids, attention_mask, max_new_tokens, do_sample):
        rows = []
        for ids, mask in zip(input_ids.tolist(), attention_mask.tolist()):
            source = [token for token, keep in zip(ids, mask) if keep]
            rows.append([TOY_START, *(source if self.wrong else source[::-1]), TOY_EOS])
        return torch.tensor(rows)


def test_accuracy_by_length_scores_right_and_wrong_outputs():
    config = toy_config(num_symbols=6)
    perfect = {"sequence": 1.0, "token": 1.0}
    assert accuracy_by_length(_Reverser(config), [3, 5]) == {3: perfect, 5: perfect}
    copied = accuracy_by_length(_Reverser(config, wrong=True), [4])[4]
    # The source itself is right only where a symbol equals its mirror image: by chance, 1 in 6.
    assert copied["sequence"] < 0.1 and 0.05 < copied["token"] < 0.35, copied
