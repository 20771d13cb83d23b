"""What a run checks about its model before any work: the family, the config overrides, the tokenizer it was trained
with, and the positions a learned-position Transformer has."""

import json
import os
import shutil

import pytest

from hf_seq.data import sample_data_path
from hf_seq.training import config_for_tokenizer, finetune, pretrain
from hf_seq.training.common import tokenizer_fingerprint
from tests.training.helpers import training_arguments
from tokenizer_training import train_tokenizer


LEARNED_POSITIONS = (
    "hidden_size=16,num_hidden_layers=1,num_attention_heads=2,max_position_embeddings=32,"
    "position_embedding_type=learned"
)


@pytest.fixture(scope="module")
def other_tokenizer(tiny_tokenizer):
    """A tokenizer of the same size as tiny_tokenizer, trained on other reviews: the same ids, other tokens."""
    with open(sample_data_path("reviews_sample_train.txt"), encoding="utf-8") as handle:
        texts = handle.read().splitlines()[1000:2000]
    tokenizer = train_tokenizer(texts=texts, vocab_size=600, limit_alphabet=200)
    assert len(tokenizer) == len(tiny_tokenizer) and tokenizer.get_vocab() != tiny_tokenizer.get_vocab()
    return tokenizer


def test_only_the_project_families_are_built(tiny_tokenizer, text_files, tmp_path):
    assert config_for_tokenizer("lstm", tiny_tokenizer).model_type == "hf_seq_lstm"
    assert config_for_tokenizer("hf_seq_gru", tiny_tokenizer).model_type == "hf_seq_gru"
    assert config_for_tokenizer("transformer", tiny_tokenizer).model_type == "hf_seq_transformer_lm"
    # transformers knows xlstm, and would build a full-size one.
    with pytest.raises(ValueError, match="unknown model_type 'xlstm'.*: rnn, lstm, gru, transformer"):
        config_for_tokenizer("xlstm", tiny_tokenizer)
    with pytest.raises(ValueError, match="unknown model_type 'gpt2'"):
        pretrain(training_arguments(tmp_path / "lm"), text_files[0], tiny_tokenizer, model_type="gpt2")
    with pytest.raises(ValueError, match="'lsmt' \\(did you mean 'lstm'\\?\\)"):
        config_for_tokenizer("lsmt", tiny_tokenizer)
    assert not os.path.exists(tmp_path / "lm")


def test_a_misspelt_config_override_names_the_nearest_field(tiny_tokenizer, text_files, nsmc_dir, tmp_path):
    with pytest.raises(ValueError, match="'hiden_size' is not a field of LSTMConfig \\(did you mean 'hidden_size'"):
        pretrain(
            training_arguments(tmp_path / "lm"),
            text_files[0],
            tiny_tokenizer,
            model_type="lstm",
            config_overrides="hiden_size=16",
        )
    with pytest.raises(
        ValueError,
        match="'num_atention_heads' is not a field of TransformerLMConfig \\(did you mean 'num_attention_heads'",
    ):
        finetune(
            training_arguments(tmp_path / "classifier"),
            tiny_tokenizer,
            model_type="transformer",
            config_overrides="num_atention_heads=2",
            dataset=nsmc_dir,
        )
    assert not os.path.exists(tmp_path / "lm") and not os.path.exists(tmp_path / "classifier")
    with pytest.raises(ValueError, match="config_overrides: .*'hidden_size'.* expected int"):  # one line, a ValueError
        config_for_tokenizer("lstm", tiny_tokenizer, hidden_size="abc")
    config = config_for_tokenizer("lstm", tiny_tokenizer, hidden_size=16, num_labels=3)  # real fields still work
    assert config.hidden_size == 16 and config.num_labels == 3


def test_finetune_refuses_another_tokenizer_than_the_lm_was_trained_with(
    lm_dir, tiny_tokenizer, other_tokenizer, nsmc_dir, text_files, tmp_path
):
    run_info = json.loads(open(os.path.join(lm_dir, "run_info.json"), encoding="utf-8").read())
    assert run_info["tokenizer_fingerprint"] == tokenizer_fingerprint(tiny_tokenizer)  # recorded at save time
    with pytest.raises(ValueError, match="the tokenizer is not the one .* was trained with"):
        finetune(
            training_arguments(tmp_path / "classifier", max_steps=1), other_tokenizer, model=lm_dir, dataset=nsmc_dir
        )
    with pytest.raises(ValueError, match="the tokenizer is not the one .* was trained with"):
        pretrain(training_arguments(tmp_path / "lm", max_steps=1), text_files[0], other_tokenizer, model=lm_dir)
    # The record wins over tokenizer files put beside the model later.
    relabelled_lm = tmp_path / "relabelled-lm"
    shutil.copytree(lm_dir, relabelled_lm)
    other_tokenizer.save_pretrained(relabelled_lm)
    with pytest.raises(ValueError, match="allow_tokenizer_mismatch"):
        finetune(
            training_arguments(tmp_path / "classifier", max_steps=1),
            other_tokenizer,
            model=str(relabelled_lm),
            dataset=nsmc_dir,
        )
    assert not os.path.exists(tmp_path / "classifier") and not os.path.exists(tmp_path / "lm")

    run = finetune(
        training_arguments(tmp_path / "classifier", max_steps=1),
        other_tokenizer,
        model=lm_dir,
        dataset=nsmc_dir,
        allow_tokenizer_mismatch=True,
    )
    assert run.metrics["eval_n"] == 62
    recorded = json.loads((tmp_path / "classifier" / "run_info.json").read_text())["tokenizer_fingerprint"]
    assert recorded == tokenizer_fingerprint(other_tokenizer)  # what the classifier was trained with


def test_learned_position_limits_are_checked_before_any_work(tiny_tokenizer, text_files, nsmc_dir, tmp_path):
    with pytest.raises(
        ValueError, match="max_length=64 is too long.*max_position_embeddings=32; use max_length <= 32"
    ):
        finetune(
            training_arguments(tmp_path / "classifier"),
            tiny_tokenizer,
            model_type="transformer",
            config_overrides=LEARNED_POSITIONS,
            dataset=nsmc_dir,
            max_length=64,
        )
    # A "cls" pooling classifier appends a token of its own after the text.
    with pytest.raises(ValueError, match="max_length=32 is too long.*use max_length <= 31"):
        finetune(
            training_arguments(tmp_path / "classifier"),
            tiny_tokenizer,
            model_type="transformer",
            config_overrides=LEARNED_POSITIONS + ",pooling=cls",
            dataset=nsmc_dir,
            max_length=32,
        )
    with pytest.raises(ValueError, match="block_size=48 is too long.*use block_size <= 32"):
        pretrain(
            training_arguments(tmp_path / "lm"),
            text_files[0],
            tiny_tokenizer,
            model_type="transformer",
            config_overrides=LEARNED_POSITIONS,
            block_size=48,
        )
    assert not os.path.exists(tmp_path / "classifier") and not os.path.exists(tmp_path / "lm")
    # Rotary positions have no table to run past.
    rotary = LEARNED_POSITIONS.replace("learned", "rotary")
    run = pretrain(
        training_arguments(tmp_path / "lm", max_steps=1),
        text_files[0],
        tiny_tokenizer,
        model_type="transformer",
        config_overrides=rotary,
        block_size=48,
    )
    assert run.metrics["train_loss"] > 0


def test_lengths_must_be_positive_before_any_work(tiny_tokenizer, text_files, nsmc_dir, tmp_path):
    with pytest.raises(ValueError, match="max_length must be a positive integer, got -5"):
        finetune(
            training_arguments(tmp_path / "classifier"),
            tiny_tokenizer,
            model_type="lstm",
            dataset=nsmc_dir,
            max_length=-5,
        )
    for setting in ("block_size", "bptt"):
        with pytest.raises(ValueError, match=f"{setting} must be a positive integer, got 0"):
            pretrain(training_arguments(tmp_path / "lm"), text_files[0], tiny_tokenizer, **{setting: 0})
    assert os.listdir(tmp_path) == []
