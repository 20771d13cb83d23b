"""TransformerLMConfig: working defaults, a full auto_map, clear errors naming the bad field, JSON round trip."""

import pytest
from huggingface_hub.errors import StrictDataclassClassValidationError, StrictDataclassError
from transformers import AutoConfig, AutoModelForCausalLM

from hf_seq import TransformerLMConfig


def test_defaults_build_the_documented_small_model():
    config = TransformerLMConfig()
    assert (config.vocab_size, config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (
        16000,
        384,
        6,
        6,
    )
    assert config.intermediate_size == 4 * config.hidden_size
    assert config.position_embedding_type == "rotary"
    assert config.tie_word_embeddings is True


def test_auto_map_names_every_head_for_remote_code():
    auto_map = TransformerLMConfig().auto_map
    assert set(auto_map) == {
        "AutoConfig",
        "AutoModel",
        "AutoModelForCausalLM",
        "AutoModelForSequenceClassification",
        "AutoModelForTokenClassification",
    }
    for target in auto_map.values():
        module, _ = target.split(".")
        assert module in ("configuration_transformer_lm", "modeling_transformer_lm")


@pytest.mark.parametrize(
    "field, value",
    [
        ("vocab_size", 0),
        ("hidden_size", -8),
        ("num_hidden_layers", 1.5),
        ("num_attention_heads", 5),  # does not divide hidden_size 384
        ("intermediate_size", 0),
        ("max_position_embeddings", 0),
        ("position_embedding_type", "alibi"),
        ("hidden_act", "no_such_activation"),
        ("pooling", "first"),
        ("embedding_dropout", 1.0),
        ("attention_dropout", -0.1),
        ("hidden_dropout", "0.1"),
        ("classifier_dropout", 2),
        ("rope_theta", 0),
        ("layer_norm_eps", -1e-5),
        ("initializer_range", 0),
        ("pad_token_id", 16000),
        ("eos_token_id", [3, -1]),
    ],
)
def test_bad_values_raise_naming_the_field(field, value):
    with pytest.raises(StrictDataclassError, match=field):
        TransformerLMConfig(**{field: value})


def test_fields_set_after_construction_are_checked_before_a_model_is_built():
    config = TransformerLMConfig(vocab_size=50, hidden_size=16, num_attention_heads=2, num_hidden_layers=1)
    with pytest.raises(StrictDataclassError, match="attention_dropout"):
        config.attention_dropout = 1.5
    config.num_attention_heads = 3  # a valid number on its own, but it does not divide hidden_size 16
    with pytest.raises(StrictDataclassClassValidationError, match="num_attention_heads"):
        AutoModelForCausalLM.from_config(config)


def test_rotary_needs_an_even_head_size():
    with pytest.raises(StrictDataclassClassValidationError, match="rotary"):
        TransformerLMConfig(hidden_size=30, num_attention_heads=2)  # head size 15
    # Learned positions have no such constraint.
    learned = TransformerLMConfig(hidden_size=30, num_attention_heads=2, position_embedding_type="learned")
    assert learned.hidden_size == 30


def test_save_and_load_round_trip(tmp_path):
    config = TransformerLMConfig(
        vocab_size=100,
        hidden_size=48,
        num_attention_heads=3,
        position_embedding_type="learned",
        pooling="cls",
        hidden_dropout=0.1,
        num_labels=3,
        eos_token_id=[3, 4],
    )
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert type(loaded) is TransformerLMConfig
    for field in (
        "vocab_size",
        "hidden_size",
        "num_attention_heads",
        "intermediate_size",
        "position_embedding_type",
        "pooling",
        "hidden_dropout",
        "num_labels",
        "eos_token_id",
        "auto_map",
    ):
        assert getattr(loaded, field) == getattr(config, field), field
