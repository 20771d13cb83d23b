"""The TransformerLM family behaves like a transformers model: attention implementations, KV cache and generate,
padding on either side, classification pooling, position limits, save/load and remote code."""

import json

import pytest
import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    DynamicCache,
)

from hf_seq import (
    TransformerLMConfig,
    TransformerLMForCausalLM,
    TransformerLMForSequenceClassification,
    TransformerLMForTokenClassification,
    TransformerLMModel,
)
from hf_seq.models.transformer.cache_transformer_lm import cache_of
from hf_seq.models.transformer.modeling_transformer_lm import pool_hidden_states
from tests.support.remote_code import run_without_hf_seq


VOCAB = 64
PAD = 0
MAX_POSITIONS = 32
POSITIONS = ["rotary", "learned"]


def make_config(**overrides):
    fields = {
        "vocab_size": VOCAB,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_position_embeddings": MAX_POSITIONS,
        "pad_token_id": PAD,
        "bos_token_id": 1,
        "eos_token_id": 2,
    }
    fields.update(overrides)
    return TransformerLMConfig(**fields)


def make_model(model_class, seed=0, **overrides):
    torch.manual_seed(seed)
    return model_class(make_config(**overrides)).eval()


def random_ids(batch, length, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(3, VOCAB, (batch, length), generator=generator)


def pad_batch(sequences, side):
    """Pad a list of 1D id tensors to one batch; returns (input_ids, attention_mask)."""
    longest = max(len(sequence) for sequence in sequences)
    input_ids = torch.full((len(sequences), longest), PAD, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), longest), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        span = slice(longest - len(sequence), longest) if side == "left" else slice(0, len(sequence))
        input_ids[row, span] = sequence
        attention_mask[row, span] = 1
    return input_ids, attention_mask


def real_span(attention_mask, row):
    return attention_mask[row].nonzero().squeeze(-1)


# --- attention implementations -----------------------------------------------------------------------------------


@pytest.mark.parametrize("positions", POSITIONS)
def test_eager_and_sdpa_give_the_same_logits(positions):
    sdpa = make_model(TransformerLMForCausalLM, position_embedding_type=positions, attn_implementation="sdpa")
    eager = make_model(TransformerLMForCausalLM, position_embedding_type=positions, attn_implementation="eager")
    eager.load_state_dict(sdpa.state_dict())
    assert (sdpa.config._attn_implementation, eager.config._attn_implementation) == ("sdpa", "eager")

    sequences = [random_ids(1, 12, seed=2)[0], random_ids(1, 7, seed=3)[0], random_ids(1, 10, seed=4)[0]]
    input_ids, attention_mask = pad_batch(sequences, "left")
    with torch.no_grad():
        sdpa_logits = sdpa(input_ids, attention_mask=attention_mask).logits
        eager_logits = eager(input_ids, attention_mask=attention_mask).logits
    real = attention_mask.bool()
    torch.testing.assert_close(sdpa_logits[real], eager_logits[real], atol=1e-5, rtol=0)


def test_rotary_embedding_matches_the_llama_reference():
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb as llama_apply_rotary_pos_emb

    from hf_seq.models.transformer.modeling_transformer_lm import TransformerLMRotaryEmbedding, apply_rotary_pos_emb

    config = make_config()
    head_dim = config.hidden_size // config.num_attention_heads
    generator = torch.Generator().manual_seed(0)
    query, key = torch.randn(2, 2, config.num_attention_heads, 5, head_dim, generator=generator).unbind(0)
    position_ids = torch.tensor([[0, 1, 2, 3, 4], [0, 0, 1, 2, 9]])

    # The reference: llama's cos/sin tables (both halves share each frequency) and rotate_half.
    inv_freq = 1.0 / (config.rope_theta ** (torch.arange(0, head_dim, 2).float() / head_dim))
    angles = torch.cat([position_ids[..., None].float() * inv_freq] * 2, dim=-1)
    expected_query, expected_key = llama_apply_rotary_pos_emb(query, key, angles.cos(), angles.sin())

    cos, signed_sin = TransformerLMRotaryEmbedding(config)(query, position_ids)
    stacked = torch.stack([query, key], dim=2).transpose(1, 3)  # (batch, seq, 2, heads, head_dim)
    rotated_query, rotated_key = apply_rotary_pos_emb(stacked, cos, signed_sin).transpose(1, 3).unbind(2)
    torch.testing.assert_close(rotated_query, expected_query)
    torch.testing.assert_close(rotated_key, expected_key)


def test_output_attentions_and_hidden_states():
    model = make_model(TransformerLMForCausalLM, attn_implementation="eager")
    input_ids = random_ids(2, 6)
    with torch.no_grad():
        outputs = model(input_ids, output_attentions=True, output_hidden_states=True)
    assert len(outputs.attentions) == model.config.num_hidden_layers
    assert outputs.attentions[0].shape == (2, model.config.num_attention_heads, 6, 6)
    # Causal: no weight on future positions; each row is a distribution.
    assert torch.all(outputs.attentions[0].triu(diagonal=1) == 0)
    torch.testing.assert_close(outputs.attentions[0].sum(-1), torch.ones(2, 4, 6))
    assert len(outputs.hidden_states) == model.config.num_hidden_layers + 1


# --- KV cache and generate -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("positions", POSITIONS)
def test_cached_steps_equal_one_full_forward(positions):
    model = make_model(TransformerLMForCausalLM, position_embedding_type=positions)
    input_ids = random_ids(2, 10)
    with torch.no_grad():
        full = model(input_ids, use_cache=False).logits
        outputs = model(input_ids[:, :6], use_cache=True)
        assert isinstance(outputs.past_key_values, DynamicCache)
        assert outputs.past_key_values.get_seq_length() == 6
        steps = [outputs.logits]
        for position in range(6, 10):
            outputs = model(input_ids[:, position : position + 1], past_key_values=outputs.past_key_values)
            steps.append(outputs.logits)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=0)


@pytest.mark.parametrize("positions", POSITIONS)
@pytest.mark.parametrize(
    "generation_kwargs",
    [
        {"do_sample": False},
        {"do_sample": False, "num_beams": 3},
        {"do_sample": True, "top_k": 10, "num_return_sequences": 2},
    ],
    ids=["greedy", "beam", "sample"],
)
def test_cached_generation_equals_uncached(positions, generation_kwargs):
    model = make_model(TransformerLMForCausalLM, position_embedding_type=positions)
    input_ids, attention_mask = pad_batch([random_ids(1, 8, seed=5)[0], random_ids(1, 5, seed=6)[0]], "left")
    common = {"attention_mask": attention_mask, "max_new_tokens": 10, "min_new_tokens": 10, "pad_token_id": PAD}
    torch.manual_seed(7)
    cached = model.generate(input_ids, use_cache=True, **common, **generation_kwargs)
    torch.manual_seed(7)
    uncached = model.generate(input_ids, use_cache=False, **common, **generation_kwargs)
    assert cached.shape[1] == input_ids.shape[1] + 10
    assert torch.equal(cached, uncached)


@pytest.mark.parametrize("positions", POSITIONS)
def test_left_padded_batch_generates_what_each_prompt_generates_alone(positions):
    model = make_model(TransformerLMForCausalLM, position_embedding_type=positions)
    prompts = [random_ids(1, 9, seed=8)[0], random_ids(1, 4, seed=9)[0]]
    input_ids, attention_mask = pad_batch(prompts, "left")
    common = {"max_new_tokens": 8, "min_new_tokens": 8, "do_sample": False, "pad_token_id": PAD}
    batched = model.generate(input_ids, attention_mask=attention_mask, **common)
    for row, prompt in enumerate(prompts):
        alone = model.generate(prompt[None], **common)
        assert torch.equal(batched[row, input_ids.shape[1] - len(prompt) :], alone[0])


# --- padding -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("positions", POSITIONS)
@pytest.mark.parametrize("side", ["left", "right"])
def test_padded_batch_logits_equal_unpadded(positions, side):
    model = make_model(TransformerLMForCausalLM, position_embedding_type=positions)
    sequences = [random_ids(1, 11, seed=10)[0], random_ids(1, 4, seed=11)[0], random_ids(1, 8, seed=12)[0]]
    input_ids, attention_mask = pad_batch(sequences, side)
    with torch.no_grad():
        batched = model(input_ids, attention_mask=attention_mask).logits
        assert not torch.isnan(batched).any()
        for row, sequence in enumerate(sequences):
            alone = model(sequence[None]).logits[0]
            torch.testing.assert_close(batched[row, real_span(attention_mask, row)], alone, atol=1e-5, rtol=0)


@pytest.mark.parametrize("positions", POSITIONS)
@pytest.mark.parametrize("pooling", ["last", "mean", "max", "cls"])
@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_sequence_classification_ignores_padding(positions, pooling, side, bidirectional):
    model = make_model(
        TransformerLMForSequenceClassification,
        position_embedding_type=positions,
        pooling=pooling,
        num_labels=3,
        bidirectional=bidirectional,
    )
    sequences = [random_ids(1, 9, seed=13)[0], random_ids(1, 3, seed=14)[0], random_ids(1, 6, seed=15)[0]]
    input_ids, attention_mask = pad_batch(sequences, side)
    with torch.no_grad():
        batched = model(input_ids, attention_mask=attention_mask).logits
        alone = torch.cat([model(sequence[None]).logits for sequence in sequences])
    assert batched.shape == (3, 3)
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=0)


def test_poolings_summarise_differently():
    # Same weights, three poolings: each must actually look at something different.
    input_ids = random_ids(2, 7)
    logits = {}
    for pooling in ("last", "mean", "max", "cls"):
        model = make_model(TransformerLMForSequenceClassification, pooling=pooling)
        with torch.no_grad():
            logits[pooling] = model(input_ids).logits
    assert not torch.allclose(logits["last"], logits["mean"])
    assert not torch.allclose(logits["last"], logits["cls"])
    assert not torch.allclose(logits["mean"], logits["max"])


def test_max_pooling_is_the_elementwise_maximum_over_real_tokens():
    hidden_states = torch.tensor([[[1.0, -5.0], [3.0, -2.0], [100.0, 100.0]], [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]])
    attention_mask = torch.tensor([[1, 1, 0], [0, 0, 0]])
    pooled = pool_hidden_states(hidden_states, attention_mask, "max")
    torch.testing.assert_close(pooled, torch.tensor([[3.0, -2.0], [0.0, 0.0]]))


def test_cls_pooling_learns_its_token_and_sees_the_whole_sequence():
    model = make_model(TransformerLMForSequenceClassification, pooling="cls", num_labels=2)
    assert model.cls_embedding.shape == (model.config.hidden_size,)
    input_ids = random_ids(2, 6)
    outputs = model(input_ids, labels=torch.tensor([0, 1]))
    outputs.loss.backward()
    assert model.cls_embedding.grad is not None and model.cls_embedding.grad.abs().sum() > 0
    # Changing the first token changes the summary: the appended token attends to every real token.
    changed = input_ids.clone()
    changed[:, 0] = (changed[:, 0] + 1 - 3) % (VOCAB - 3) + 3
    with torch.no_grad():
        assert not torch.allclose(model(input_ids).logits, model(changed).logits)


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_token_classification_ignores_padding(side, bidirectional):
    model = make_model(TransformerLMForTokenClassification, num_labels=4, bidirectional=bidirectional)
    sequences = [random_ids(1, 8, seed=16)[0], random_ids(1, 5, seed=17)[0]]
    input_ids, attention_mask = pad_batch(sequences, side)
    labels = torch.where(attention_mask.bool(), input_ids % 4, -100)
    with torch.no_grad():
        outputs = model(input_ids, attention_mask=attention_mask, labels=labels)
        assert outputs.logits.shape == (2, input_ids.shape[1], 4)
        assert torch.isfinite(outputs.loss)
        for row, sequence in enumerate(sequences):
            alone = model(sequence[None]).logits[0]
            torch.testing.assert_close(outputs.logits[row, real_span(attention_mask, row)], alone, atol=1e-5, rtol=0)


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_bidirectional_tokens_see_the_tokens_after_them(attn_implementation):
    input_ids = random_ids(2, 6)
    changed = input_ids.clone()
    changed[:, -1] = (changed[:, -1] + 1 - 3) % (VOCAB - 3) + 3  # only the last token differs
    for bidirectional in (False, True):
        model = make_model(
            TransformerLMForTokenClassification, bidirectional=bidirectional, attn_implementation=attn_implementation
        )
        with torch.no_grad():
            first, first_changed = model(input_ids).logits[:, 0], model(changed).logits[:, 0]
        # A causal first token cannot see the last one; an encoder's can.
        assert torch.allclose(first, first_changed, atol=1e-6) != bidirectional


@pytest.mark.parametrize("positions", POSITIONS)
def test_bidirectional_eager_and_sdpa_agree_on_a_padded_batch(positions):
    sequences = [random_ids(1, 7, seed=21)[0], random_ids(1, 4, seed=22)[0]]
    input_ids, attention_mask = pad_batch(sequences, "left")
    logits = {}
    for implementation in ("eager", "sdpa"):
        model = make_model(
            TransformerLMForSequenceClassification,
            position_embedding_type=positions,
            pooling="cls",
            bidirectional=True,
            attn_implementation=implementation,
        )
        with torch.no_grad():
            logits[implementation] = model(input_ids, attention_mask=attention_mask).logits
    torch.testing.assert_close(logits["eager"], logits["sdpa"], atol=1e-5, rtol=0)


def test_bidirectional_cls_token_goes_first_and_is_the_summary():
    model = make_model(TransformerLMForSequenceClassification, pooling="cls", bidirectional=True, num_labels=2)
    assert model.cls_position == 0
    input_ids = random_ids(2, 5)
    with torch.no_grad():
        outputs = model(input_ids, output_hidden_states=True)
        last_hidden_state = outputs.hidden_states[-1]  # transformers puts the normed output last
    assert last_hidden_state.shape[1] == input_ids.shape[1] + 1  # the summary token joined the input
    torch.testing.assert_close(outputs.logits, model.classifier(last_hidden_state[:, 0]))


def test_bidirectional_models_refuse_to_be_language_models_or_to_use_a_cache():
    with pytest.raises(ValueError, match="needs causal attention: set bidirectional=False"):
        make_model(TransformerLMForCausalLM, bidirectional=True)
    encoder = make_model(TransformerLMModel, bidirectional=True)
    with torch.no_grad():
        outputs = encoder(random_ids(1, 4))
        assert cache_of(outputs) is None  # use_cache (True in the config) does not apply to an encoder
        with pytest.raises(ValueError, match="cannot decode with a cache"):
            encoder(random_ids(1, 1), cache=DynamicCache(config=encoder.config))


# --- positions and bad inputs --------------------------------------------------------------------------------------


def test_learned_positions_refuse_input_past_the_limit():
    model = make_model(TransformerLMForCausalLM, position_embedding_type="learned")
    with torch.no_grad():
        assert model(random_ids(1, MAX_POSITIONS)).logits.shape[1] == MAX_POSITIONS  # exactly at the limit is fine
        with pytest.raises(ValueError, match="max_position_embeddings"):
            model(random_ids(1, MAX_POSITIONS + 1))
        # Continuing a cache past the limit fails the same way.
        outputs = model(random_ids(1, MAX_POSITIONS))
        with pytest.raises(ValueError, match="max_position_embeddings"):
            model(random_ids(1, 1), past_key_values=outputs.past_key_values)
        with pytest.raises(ValueError, match="max_position_embeddings"):
            model(random_ids(1, 4), position_ids=torch.tensor([[0, 1, 2, MAX_POSITIONS]]))
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model.generate(random_ids(1, MAX_POSITIONS - 2), max_new_tokens=5, min_new_tokens=5, pad_token_id=PAD)
    # The classifier's appended [CLS] token needs one position too.
    classifier = make_model(TransformerLMForSequenceClassification, position_embedding_type="learned", pooling="cls")
    with pytest.raises(ValueError, match="max_position_embeddings"):
        classifier(random_ids(1, MAX_POSITIONS))


def test_rotary_positions_run_past_the_nominal_length():
    model = make_model(TransformerLMForCausalLM, position_embedding_type="rotary")
    with torch.no_grad():
        logits = model(random_ids(1, MAX_POSITIONS + 8)).logits
    assert logits.shape[1] == MAX_POSITIONS + 8 and torch.isfinite(logits).all()


@pytest.mark.parametrize(
    "make_inputs, message",
    [
        (lambda: {"input_ids": torch.tensor([[3, VOCAB]])}, "outside the vocabulary"),
        (lambda: {"input_ids": torch.tensor([[-1, 3]])}, "outside the vocabulary"),
        (lambda: {"input_ids": torch.tensor([3, 4])}, "shape"),
        (lambda: {"input_ids": random_ids(2, 5), "attention_mask": torch.ones(2, 4)}, "attention_mask"),
        (lambda: {}, "exactly one"),
        (lambda: {"input_ids": random_ids(1, 3), "inputs_embeds": torch.zeros(1, 3, 32)}, "exactly one"),
        (lambda: {"inputs_embeds": torch.zeros(1, 3, 31)}, "inputs_embeds"),
        (lambda: {"input_ids": torch.zeros(1, 0, dtype=torch.long)}, "empty"),
    ],
)
@pytest.mark.parametrize("model_class", [TransformerLMForCausalLM, TransformerLMForSequenceClassification])
def test_bad_inputs_raise_clear_errors(model_class, make_inputs, message):
    model = make_model(model_class)
    with pytest.raises(ValueError, match=message):
        model(**make_inputs())


# --- weights, dropout, gradient checkpointing ----------------------------------------------------------------------


def test_tied_and_untied_embeddings():
    tied = make_model(TransformerLMForCausalLM)
    assert tied.lm_head.weight is tied.model.embed_tokens.weight
    untied = make_model(TransformerLMForCausalLM, tie_word_embeddings=False)
    assert untied.lm_head.weight is not untied.model.embed_tokens.weight
    assert sum(p.numel() for p in untied.parameters()) == sum(p.numel() for p in tied.parameters()) + VOCAB * 32


def test_dropout_is_active_in_training_only():
    model = make_model(TransformerLMForCausalLM, embedding_dropout=0.2, attention_dropout=0.2, hidden_dropout=0.2)
    input_ids = random_ids(2, 8)
    with torch.no_grad():
        model.train()
        assert not torch.allclose(model(input_ids).logits, model(input_ids).logits)
        model.eval()
        torch.testing.assert_close(model(input_ids).logits, model(input_ids).logits)


def test_gradient_checkpointing_gives_the_same_gradients():
    input_ids = random_ids(2, 8)
    gradients = []
    for checkpointing in (False, True):
        model = make_model(TransformerLMForCausalLM).train()
        if checkpointing:
            model.activation_checkpointing_enable()
        model(input_ids, labels=input_ids).loss.backward()
        gradients.append(model.model.layers[0].self_attn.qkv_proj.weight.grad.clone())
    torch.testing.assert_close(gradients[0], gradients[1])


def test_residual_projections_start_smaller():
    # GPT-2's initialisation: the layers writing into the residual stream get std / sqrt(2 * layers).
    model = make_model(TransformerLMForCausalLM, hidden_size=64, intermediate_size=256, num_hidden_layers=8)
    block = model.model.layers[0]
    assert block.self_attn.o_proj.weight.std() < 0.5 * block.self_attn.qkv_proj.weight.std()
    assert block.mlp.down_proj.weight.std() < 0.5 * block.mlp.up_proj.weight.std()


# --- Auto classes, save/load, remote code --------------------------------------------------------------------------

HEADS = [
    (AutoModel, TransformerLMModel),
    (AutoModelForCausalLM, TransformerLMForCausalLM),
    (AutoModelForSequenceClassification, TransformerLMForSequenceClassification),
    (AutoModelForTokenClassification, TransformerLMForTokenClassification),
]


def first_output(outputs):
    return outputs.logits if hasattr(outputs, "logits") else outputs.last_hidden_state


@pytest.mark.parametrize("auto_class, model_class", HEADS, ids=[head.__name__ for head, _ in HEADS])
def test_auto_classes_build_save_and_load(tmp_path, auto_class, model_class):
    torch.manual_seed(0)
    model = auto_class.from_config(make_config(pooling="cls", position_embedding_type="learned")).eval()
    assert type(model) is model_class
    model.save_pretrained(tmp_path)

    saved = {path.name for path in tmp_path.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "configuration_transformer_lm.py",
        "modeling_transformer_lm.py",
    } <= saved
    config_json = json.loads((tmp_path / "config.json").read_text())
    assert config_json["model_type"] == "hf_seq_transformer_lm"
    assert set(config_json["auto_map"]) == {
        "AutoConfig",
        "AutoModel",
        "AutoModelForCausalLM",
        "AutoModelForSequenceClassification",
        "AutoModelForTokenClassification",
    }

    loaded = auto_class.from_pretrained(tmp_path).eval()
    assert type(loaded) is model_class
    assert type(AutoConfig.from_pretrained(tmp_path)) is TransformerLMConfig
    input_ids, attention_mask = pad_batch([random_ids(1, 7)[0], random_ids(1, 4, seed=2)[0]], "left")
    with torch.no_grad():
        expected = first_output(model(input_ids, attention_mask=attention_mask))
        actual = first_output(loaded(input_ids, attention_mask=attention_mask))
    torch.testing.assert_close(actual, expected, atol=0, rtol=0)
    if model_class is TransformerLMForCausalLM:
        assert loaded.lm_head.weight is loaded.model.embed_tokens.weight


def test_remote_code_loads_without_hf_seq(tmp_path):
    model = make_model(TransformerLMForCausalLM)
    model.save_pretrained(tmp_path / "model")
    input_ids = [[5, 9, 17, 33, 4, 12, 40, 8]]
    with torch.no_grad():
        expected = model(torch.tensor(input_ids)).logits

    result = run_without_hf_seq(
        f"""
        import json, torch
        from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification
        path = {str(tmp_path / "model")!r}
        model = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True).eval()
        with torch.no_grad():
            logits = model(torch.tensor({input_ids})).logits
        generated = model.generate(torch.tensor({input_ids}), max_new_tokens=4, min_new_tokens=4, do_sample=False)
        classifier = AutoModelForSequenceClassification.from_pretrained(path, trust_remote_code=True, num_labels=2)
        print(json.dumps({{
            "module": type(model).__module__,
            "classifier": type(classifier).__name__,
            "classifier_module": type(classifier).__module__,
            "logits": logits.tolist(),
            "generated": generated.tolist(),
        }}))
        """,
        str(tmp_path),
        extra_env={"OMP_NUM_THREADS": "1"},  # a tiny model: threads only wait for each other on a busy machine
    )
    assert result["module"].startswith("transformers_modules.")
    assert result["classifier"] == "TransformerLMForSequenceClassification"
    assert result["classifier_module"].startswith("transformers_modules.")
    torch.testing.assert_close(torch.tensor(result["logits"]), expected, atol=1e-6, rtol=0)
    expected_generation = model.generate(torch.tensor(input_ids), max_new_tokens=4, min_new_tokens=4, do_sample=False)
    assert result["generated"] == expected_generation.tolist()


def test_left_padding_does_not_count_toward_the_learned_position_limit():
    model = make_model(TransformerLMForCausalLM, position_embedding_type="learned")
    real = random_ids(1, MAX_POSITIONS)
    padded = torch.cat([torch.full((1, 3), PAD), real], dim=1)
    mask = torch.cat([torch.zeros(1, 3, dtype=torch.long), torch.ones_like(real)], dim=1)
    with torch.no_grad():
        alone = model(real).logits
        left_padded = model(padded, attention_mask=mask).logits  # MAX_POSITIONS + 3 columns, MAX_POSITIONS real
    torch.testing.assert_close(left_padded[:, 3:], alone, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("intermediate_size", [128, 16])  # an MLP that widens (the default 4x) and one that narrows
def test_a_decode_step_reads_only_the_narrowing_projections_from_an_out_in_copy(intermediate_size):
    model = make_model(TransformerLMForCausalLM, intermediate_size=intermediate_size)
    prompt, token = random_ids(2, 20), torch.tensor([[5], [7]])
    with torch.no_grad():
        full = model(torch.cat([prompt, token], dim=1)).logits[:, -1:]  # 42 rows: the stored layout everywhere
        assert all("_transposed_weights" not in layer.mlp.down_proj.__dict__ for layer in model.model.layers)
        step = model(token, cache=cache_of(model(prompt, use_cache=True)), use_cache=True).logits
    torch.testing.assert_close(step, full, atol=1e-5, rtol=1e-5)
    mlp = model.model.layers[0].mlp
    narrowing = mlp.down_proj if intermediate_size > 32 else mlp.up_proj
    widening = mlp.up_proj if intermediate_size > 32 else mlp.down_proj
    copy = narrowing.__dict__["_transposed_weights"]["weight"][2]
    assert copy.shape == narrowing.weight.shape and copy.t().is_contiguous()
    assert "_transposed_weights" not in widening.__dict__
    assert "_transposed_weights" not in model.model.layers[0].self_attn.o_proj.__dict__  # square: stored layout


@pytest.mark.parametrize("threads, split_min_elements", [(1, 2**20), (2, 0)])
def test_a_decode_step_reads_the_output_layer_from_its_decode_copy(monkeypatch, threads, split_min_elements):
    """One thread: a transposed copy; two (and a head counted as large): column blocks, one per thread."""
    from hf_seq.models.transformer import modeling_transformer_lm

    monkeypatch.setattr(modeling_transformer_lm, "SPLIT_MIN_ELEMENTS", split_min_elements)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = make_model(TransformerLMForCausalLM, vocab_size=VOCAB + 1)  # an odd vocabulary: padded blocks
        prompt, token = random_ids(2, 5), torch.tensor([[5], [7]])

        def stored_weight_logits():
            hidden = model.model(torch.cat([prompt, token], dim=1)).last_hidden_state[:, -1:]
            return torch.nn.functional.linear(hidden, model.lm_head.weight)

        with torch.no_grad():
            cache = cache_of(model(prompt, use_cache=True))
            torch.testing.assert_close(model(token, cache=cache, use_cache=True).logits, stored_weight_logits())
            assert model.lm_head.__dict__["_transposed_weights"]["weight"][2].dim() == (2 if threads == 1 else 3)
            model.model.embed_tokens.weight.mul_(2.0)  # the tied head changes with the embedding: the copy follows
            cache = cache_of(model(prompt, use_cache=True))
            torch.testing.assert_close(model(token, cache=cache, use_cache=True).logits, stored_weight_logits())
    finally:
        torch.set_num_threads(previous_threads)
