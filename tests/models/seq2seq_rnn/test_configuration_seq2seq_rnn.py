"""Seq2SeqRNNConfig: working defaults, a clear error for each bad value or combination, and a round trip."""

import pytest
from huggingface_hub.errors import StrictDataclassClassValidationError, StrictDataclassFieldValidationError
from transformers import AutoConfig, AutoModelForSeq2SeqLM

from hf_seq.models.seq2seq_rnn import Seq2SeqRNNConfig, Seq2SeqRNNForConditionalGeneration, register_seq2seq_rnn


register_seq2seq_rnn()


def test_the_documented_example_builds_the_model_through_the_auto_class(tmp_path):
    config = Seq2SeqRNNConfig(
        vocab_size=80,
        cell="lstm",
        encoder_layers=2,
        decoder_layers=2,
        hidden_size=16,
        embedding_size=16,
        bidirectional_encoder=True,
        attention="general",
        input_feeding=True,
        tie_word_embeddings=True,
        decoder_start_token_id=2,
    )
    model = AutoModelForSeq2SeqLM.from_config(config)
    assert type(model) is Seq2SeqRNNForConditionalGeneration
    assert model.config.is_encoder_decoder and config.encoder_output_size == 16
    config.save_pretrained(tmp_path)
    reloaded = AutoConfig.from_pretrained(tmp_path)
    assert type(reloaded) is Seq2SeqRNNConfig and reloaded.to_diff_dict() == config.to_diff_dict()


@pytest.mark.parametrize(
    "field, value",
    [
        ("attention", "bilinear"),
        ("cell", "rnn"),
        ("bridge", "mean"),
        ("hidden_size", 0),
        ("encoder_layers", 0),
        ("teacher_forcing_ratio", 1.5),
        ("dropout", 1.0),
        ("encoder_hidden_size", 0),
    ],
)
def test_bad_values_raise_an_error_naming_the_field(field, value):
    with pytest.raises(StrictDataclassFieldValidationError, match=field):
        Seq2SeqRNNConfig(**{field: value})


def test_a_field_set_later_is_checked_when_set():
    config = Seq2SeqRNNConfig()
    with pytest.raises(StrictDataclassFieldValidationError, match="attention"):
        config.attention = "luong"


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"decoder_start_token_id": None}, "decoder_start_token_id` is missing"),
        ({"bidirectional_decoder": True}, "bidirectional_decoder=True` is impossible"),
        ({"attention": "dot", "encoder_hidden_size": 100}, "attention='dot'` needs encoder outputs"),
        ({"hidden_size": 15}, "must be even"),
        ({"decoder_start_token_id": 16000}, "decoder_start_token_id` must be a token id"),
    ],
)
def test_bad_combinations_raise_a_clear_error(arguments, message):
    with pytest.raises(StrictDataclassClassValidationError, match=message):
        Seq2SeqRNNConfig(**arguments)


def test_a_combination_broken_after_construction_is_refused_when_the_model_is_built():
    config = Seq2SeqRNNConfig(vocab_size=40, hidden_size=8, embedding_size=8)
    config.decoder_start_token_id = None
    with pytest.raises(StrictDataclassClassValidationError, match="decoder_start_token_id"):
        Seq2SeqRNNForConditionalGeneration(config)
