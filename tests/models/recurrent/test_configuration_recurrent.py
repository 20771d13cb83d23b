"""Recurrent configs: valid defaults, and a clear error naming the field for each bad value.

As transformers' own configs, they are strict dataclasses: a bad field raises `StrictDataclassFieldValidationError`
(at construction or when set later), a bad combination `StrictDataclassClassValidationError`.
"""

import pytest
from huggingface_hub.errors import StrictDataclassClassValidationError, StrictDataclassFieldValidationError
from transformers import AutoConfig, AutoModelForCausalLM

import hf_seq


@pytest.mark.parametrize("config_class", [hf_seq.RNNConfig, hf_seq.LSTMConfig, hf_seq.GRUConfig])
def test_defaults_build_a_working_model_and_round_trip(tmp_path, config_class):
    config = config_class()
    assert config.model_type.startswith("hf_seq_")
    model = AutoModelForCausalLM.from_config(config)
    assert model.config.vocab_size == 16000
    config.save_pretrained(tmp_path)
    reloaded = AutoConfig.from_pretrained(tmp_path)
    assert type(reloaded) is config_class
    assert reloaded.to_diff_dict() == config.to_diff_dict()
    assert reloaded.hidden_size == config.hidden_size and reloaded.auto_map == config.auto_map


def test_model_types_are_distinct():
    types = {hf_seq.RNNConfig.model_type, hf_seq.LSTMConfig.model_type, hf_seq.GRUConfig.model_type}
    assert len(types) == 3


@pytest.mark.parametrize(
    "field, value",
    [
        ("vocab_size", 0),
        ("vocab_size", 12.5),
        ("embedding_size", -4),
        ("hidden_size", 0),
        ("num_hidden_layers", 0),
        ("num_hidden_layers", True),
        ("dropout", 1.0),
        ("embedding_dropout", -0.1),
        ("output_dropout", "high"),
        ("bidirectional", "yes"),
        ("reading_direction", "reverse"),
        ("initializer", "normal"),
        ("initializer_range", 0),
        ("pooling", "first"),
        ("token_classifier_context", "first"),
        ("ngram_orders", [1]),
        ("ngram_orders", 2),
        ("ngram_buckets", 0),
        ("ngram_buckets", 2**30),
        ("pad_token_id", 16000),
        ("eos_token_id", -1),
    ],
)
def test_bad_values_raise_an_error_naming_the_field(field, value):
    error = StrictDataclassClassValidationError if field.endswith("token_id") else StrictDataclassFieldValidationError
    with pytest.raises(error, match=field):
        hf_seq.LSTMConfig(**{field: value})


@pytest.mark.parametrize("field, value", [("dropout", 1.5), ("hidden_size", 0), ("pooling", "median")])
def test_a_field_set_after_construction_is_checked_when_set(field, value):
    config = hf_seq.LSTMConfig()
    with pytest.raises(StrictDataclassFieldValidationError, match=field):
        setattr(config, field, value)


def test_a_bad_combination_set_after_construction_is_refused_before_a_model_is_built():
    config = hf_seq.LSTMConfig(vocab_size=20, hidden_size=8, embedding_size=8)
    config.pad_token_id = 50  # a token id outside the vocabulary: only the class rules can see it
    with pytest.raises(StrictDataclassClassValidationError, match="pad_token_id"):
        AutoModelForCausalLM.from_config(config)


def test_rnn_nonlinearity_is_checked():
    assert hf_seq.RNNConfig(nonlinearity="relu").nonlinearity == "relu"
    with pytest.raises(StrictDataclassFieldValidationError, match="nonlinearity"):
        hf_seq.RNNConfig(nonlinearity="sigmoid")


def test_a_bad_value_in_a_saved_config_is_refused_on_load(tmp_path):
    hf_seq.GRUConfig().save_pretrained(tmp_path)
    path = tmp_path / "config.json"
    path.write_text(path.read_text().replace('"pooling": "last"', '"pooling": "median"'))
    with pytest.raises(StrictDataclassFieldValidationError, match="pooling"):
        AutoConfig.from_pretrained(tmp_path)


def test_a_backward_model_cannot_also_be_bidirectional():
    assert hf_seq.GRUConfig(reading_direction="backward").reading_direction == "backward"
    with pytest.raises(StrictDataclassClassValidationError, match="`reading_direction`"):
        hf_seq.GRUConfig(reading_direction="backward", bidirectional=True)


def test_causal_lm_refuses_bidirectional():
    config = hf_seq.LSTMConfig(vocab_size=20, hidden_size=8, embedding_size=8, bidirectional=True)
    with pytest.raises(ValueError, match="bidirectional"):
        AutoModelForCausalLM.from_config(config)
