"""Every causal LM family keeps its cache across decode steps, under whatever name transformers passes it.

transformers 5.24 renamed the cache argument (`cache=`, read back from `outputs.cache`; `past_key_values` before). A
forward that lets the cache fall into `**kwargs` runs every decode step from an empty state, and generate() then
returns other text without any error. These tests fail in that case: cached generation must equal uncached generation,
and one cached step must give the logits of a full recompute. They run on the lowest and the newest supported
transformers alike (CI runs the suite on both).
"""

import inspect
import logging

import pytest
import torch
from transformers import AutoModelForCausalLM, PretrainedConfig
from transformers.cache_utils import Cache
from transformers.generation.utils import ALL_CACHE_NAMES
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

import hf_seq
from hf_seq.models.recurrent.cache_recurrent import CACHE_ALIASES, CACHE_NAME


VOCAB = 40

FAMILIES = {
    "rnn_tanh": lambda: hf_seq.RNNConfig(nonlinearity="tanh"),
    "rnn_relu": lambda: hf_seq.RNNConfig(nonlinearity="relu", initializer="orthogonal"),
    "lstm": lambda: hf_seq.LSTMConfig(),
    "gru": lambda: hf_seq.GRUConfig(),
    "transformer_rotary": lambda: hf_seq.TransformerLMConfig(num_attention_heads=2, position_embedding_type="rotary"),
    "transformer_learned": lambda: hf_seq.TransformerLMConfig(
        num_attention_heads=2, position_embedding_type="learned"
    ),
}
SMALL = {"vocab_size": VOCAB, "hidden_size": 16, "num_hidden_layers": 2}


def small_model(family):
    torch.manual_seed(0)
    config = FAMILIES[family]()
    for field, value in SMALL.items():
        setattr(config, field, value)
    if hasattr(config, "embedding_size"):
        config.embedding_size = 12  # differs from hidden_size: the tied head's projection is on the path too
    if hasattr(config, "intermediate_size"):
        config.intermediate_size = 32
    for field in ("dropout", "embedding_dropout", "output_dropout"):
        if hasattr(config, field):
            setattr(config, field, 0.0)
    return AutoModelForCausalLM.from_config(config).eval()


def prompt(batch_size=2, length=5, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(4, VOCAB, (batch_size, length), generator=generator)


def test_every_family_with_a_causal_lm_is_covered():
    """A family added later must join these tests: every hf_seq config class with a causal LM is listed.

    (The encoder-decoder family has its own cache tests, which also compare cached and uncached generation.)"""
    covered = {type(make()).model_type for make in FAMILIES.values()}
    registered = {
        value.model_type
        for value in vars(hf_seq).values()
        if inspect.isclass(value) and issubclass(value, PretrainedConfig) and value in MODEL_FOR_CAUSAL_LM_MAPPING
    }
    assert covered == registered


GENERATION_MODES = {
    "greedy": {"do_sample": False},
    "sample": {"do_sample": True, "top_k": 0, "temperature": 1.3},
    "beam": {"do_sample": False, "num_beams": 3, "num_return_sequences": 2},
}


@pytest.mark.parametrize("mode", GENERATION_MODES)
@pytest.mark.parametrize("family", FAMILIES)
def test_cached_generation_equals_uncached(family, mode):
    model = small_model(family)
    input_ids = prompt()
    options = dict(GENERATION_MODES[mode], max_new_tokens=8, min_new_tokens=8, pad_token_id=0)
    outputs = {}
    for use_cache in (True, False):
        torch.manual_seed(123)  # the same draws for sampling
        outputs[use_cache] = model.generate(
            input_ids, attention_mask=torch.ones_like(input_ids), use_cache=use_cache, **options
        )
    assert outputs[True].shape[1] == input_ids.shape[1] + 8
    assert torch.equal(outputs[True], outputs[False])


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("name", ["cache", *CACHE_ALIASES])
def test_one_cached_step_equals_a_full_recompute_under_every_cache_name(family, name):
    model = small_model(family)
    input_ids = prompt(length=7)
    with torch.no_grad():
        full = model(input_ids).logits[:, -1]
        prefix = model(input_ids[:, :-1], use_cache=True)
        cache = getattr(prefix, CACHE_NAME)
        assert isinstance(cache, Cache) and cache.get_seq_length() == 6
        step = model(input_ids[:, -1:], use_cache=True, **{name: cache})
    torch.testing.assert_close(step.logits[:, -1], full, atol=1e-5, rtol=1e-5)
    assert getattr(step, CACHE_NAME).get_seq_length() == 7


@pytest.mark.parametrize("family", FAMILIES)
def test_a_cache_passed_under_two_names_is_refused(family):
    model = small_model(family)
    input_ids = prompt()
    cache = getattr(model(input_ids[:, :-1], use_cache=True), CACHE_NAME)
    with pytest.raises(ValueError, match="passed twice"):
        model(input_ids[:, -1:], cache=cache, past_key_values=cache)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_misspelled_argument_is_an_error_not_ignored(family):
    model = small_model(family)
    with pytest.raises(TypeError, match="cach_params"):
        model(prompt(), cach_params=None)


def test_the_installed_name_is_the_one_generate_passes():
    """generate() passes and reads the cache under the first of its cache names: what the models return it as."""
    assert CACHE_NAME == ALL_CACHE_NAMES[0]
    assert set(ALL_CACHE_NAMES) - {"cache"} <= set(CACHE_ALIASES)


@pytest.mark.parametrize("family", FAMILIES)
def test_our_code_paths_raise_no_deprecation_warning(family, recwarn, caplog):
    """No FutureWarning nor deprecation log line from our forwards, generate, or the cache we return."""
    model = small_model(family)
    input_ids = prompt()
    logging.Logger.warning_once.cache_clear() if hasattr(logging.Logger, "warning_once") else None
    with caplog.at_level(logging.WARNING):
        outputs = model(input_ids, use_cache=True)
        model(input_ids[:, -1:], cache=getattr(outputs, CACHE_NAME))
        model.generate(
            input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=3, num_beams=2, pad_token_id=0
        )
    messages = [str(warning.message) for warning in recwarn] + [record.getMessage() for record in caplog.records]
    assert not [message for message in messages if "deprecat" in message.lower()], messages
