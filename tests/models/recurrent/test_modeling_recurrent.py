"""The recurrent family behaves like a transformers model: cache, generate, padding, save/load, remote code."""

import json
import os

import pytest
import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
)

import hf_seq
from hf_seq import RecurrentCache
from hf_seq.models.recurrent.cache_recurrent import CACHE_NAME
from hf_seq.models.recurrent.modeling_recurrent import _boundary_ngram_ids
from tests.support.remote_code import run_without_hf_seq


VOCAB = 50
PAD = 0

# (name, config class, extra config fields): every cell the family offers.
CELLS = {
    "rnn_tanh": (hf_seq.RNNConfig, {"nonlinearity": "tanh"}),
    "rnn_relu": (hf_seq.RNNConfig, {"nonlinearity": "relu"}),
    "lstm": (hf_seq.LSTMConfig, {}),
    "gru": (hf_seq.GRUConfig, {}),
}


def make_config(cell, **overrides):
    config_class, extra = CELLS[cell]
    fields = {
        "vocab_size": VOCAB,
        "embedding_size": 12,
        "hidden_size": 16,
        "num_hidden_layers": 2,
        "pad_token_id": PAD,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "embedding_dropout": 0.0,
        "dropout": 0.0,
        "output_dropout": 0.0,
    }
    fields.update(extra)
    fields.update(overrides)
    return config_class(**fields)


def make_model(auto_class, cell, seed=0, **overrides):
    torch.manual_seed(seed)
    return auto_class.from_config(make_config(cell, **overrides)).eval()


def random_ids(batch, length, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(3, VOCAB, (batch, length), generator=generator)


@pytest.mark.parametrize("cell", CELLS)
def test_auto_classes_build_the_cell_classes(cell):
    config = make_config(cell)
    prefix = type(config).__name__[: -len("Config")]
    assert type(AutoConfig.for_model(config.model_type)) is type(config)
    assert type(AutoModel.from_config(config)).__name__ == f"{prefix}Model"
    assert type(AutoModelForCausalLM.from_config(config)).__name__ == f"{prefix}ForCausalLM"
    assert (
        type(AutoModelForSequenceClassification.from_config(config)).__name__ == f"{prefix}ForSequenceClassification"
    )
    assert type(AutoModelForTokenClassification.from_config(config)).__name__ == f"{prefix}ForTokenClassification"
    rnn = AutoModel.from_config(config).rnn
    assert type(rnn).__name__ == config.rnn_type
    if config.rnn_type == "RNN":
        assert rnn.nonlinearity == config.nonlinearity


@pytest.mark.parametrize("cell", CELLS)
def test_cached_steps_match_full_recompute(cell):
    model = make_model(AutoModelForCausalLM, cell)
    ids = random_ids(3, 9)
    with torch.no_grad():
        full = model(ids, use_cache=False).logits
        prefix = model(ids[:, :4], use_cache=True)
        cache, step_logits = prefix.past_key_values, [prefix.logits]
        assert isinstance(cache, RecurrentCache) and cache.get_seq_length() == 4
        for position in range(4, 9):  # one token at a time through the cell functions
            step = model(ids[:, position : position + 1], past_key_values=cache, use_cache=True)
            cache = step.past_key_values
            step_logits.append(step.logits)
    assert cache.get_seq_length() == 9
    torch.testing.assert_close(torch.cat(step_logits, dim=1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cell", CELLS)
def test_a_padded_decode_step_keeps_that_rows_state_and_outputs_zeros(cell):
    model = make_model(AutoModel, cell)
    ids = random_ids(2, 5)
    with torch.no_grad():
        prompt = model(ids[:, :4], use_cache=True)
        before = prompt.past_key_values.as_tuple()
        mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]])  # row 1's new position is padding
        step = model(ids[:, 4:], attention_mask=mask, past_key_values=prompt.past_key_values, use_cache=True)
        row_alone = model(ids[:1, 4:], past_key_values=RecurrentCache.from_state(*_first_row(before), seen_tokens=4))
    after = step.past_key_values.as_tuple()
    for state_before, state_after in zip(_as_pair(before), _as_pair(after)):
        torch.testing.assert_close(state_after[:, 1], state_before[:, 1], atol=0, rtol=0)
    assert not step.last_hidden_state[1].any()
    torch.testing.assert_close(step.last_hidden_state[:1], row_alone.last_hidden_state, atol=1e-6, rtol=1e-6)


def _as_pair(state):
    return state if isinstance(state, tuple) else (state,)


def _first_row(state):
    return tuple(tensor[:, :1] for tensor in _as_pair(state))


@pytest.mark.parametrize("cell", CELLS)
def test_continuing_a_cache_with_a_chunk_matches_full_recompute(cell):
    model = make_model(AutoModelForCausalLM, cell)
    ids = random_ids(2, 10)
    with torch.no_grad():
        full = model(ids).logits
        first = model(ids[:, :6])
        second = model(ids[:, 6:], past_key_values=first.past_key_values)
    torch.testing.assert_close(torch.cat([first.logits, second.logits], dim=1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cell", CELLS)
def test_generate_with_cache_equals_without(cell):
    model = make_model(AutoModelForCausalLM, cell)
    prompt = random_ids(2, 5)
    common = {"max_new_tokens": 12, "pad_token_id": PAD, "eos_token_id": None}

    greedy_cached = model.generate(prompt, do_sample=False, **common)
    greedy_recomputed = model.generate(prompt, do_sample=False, use_cache=False, **common)
    assert greedy_cached.shape == (2, 17)
    assert torch.equal(greedy_cached, greedy_recomputed)

    sampling = dict(do_sample=True, temperature=0.8, top_k=20, top_p=0.9, **common)
    torch.manual_seed(123)
    sampled_cached = model.generate(prompt, **sampling)
    torch.manual_seed(123)
    sampled_recomputed = model.generate(prompt, use_cache=False, **sampling)
    assert torch.equal(sampled_cached, sampled_recomputed)
    torch.manual_seed(124)
    assert not torch.equal(model.generate(prompt, **sampling), sampled_cached)  # the seed matters: really sampling


@pytest.mark.parametrize("cell", CELLS)
def test_beam_search_and_num_return_sequences_agree_with_recompute(cell):
    model = make_model(AutoModelForCausalLM, cell)
    prompt = random_ids(2, 4)
    common = {
        "max_new_tokens": 6,
        "num_beams": 3,
        "num_return_sequences": 2,
        "pad_token_id": PAD,
        "eos_token_id": None,
    }
    cached = model.generate(prompt, **common)
    recomputed = model.generate(prompt, use_cache=False, **common)
    assert cached.shape == (4, 10)
    assert torch.equal(cached, recomputed)
    # each prompt's two returned beams start with that prompt
    assert torch.equal(cached[:, :4], prompt.repeat_interleave(2, dim=0))

    torch.manual_seed(5)
    sampled = model.generate(prompt, do_sample=True, num_return_sequences=3, max_new_tokens=6, pad_token_id=PAD)
    torch.manual_seed(5)
    sampled_recomputed = model.generate(
        prompt, do_sample=True, num_return_sequences=3, max_new_tokens=6, pad_token_id=PAD, use_cache=False
    )
    assert sampled.shape[0] == 6 and torch.equal(sampled, sampled_recomputed)


def pad_batch(sequences, side, pad_id=PAD):
    """A padded batch and its attention mask, padding on the `side` given."""
    length = max(len(sequence) for sequence in sequences)
    ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), length), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        span = slice(length - len(sequence), length) if side == "left" else slice(0, len(sequence))
        ids[row, span] = torch.tensor(sequence)
        mask[row, span] = 1
    return ids, mask


def real_positions(mask, row):
    return mask[row].nonzero().squeeze(-1)


SEQUENCES = [[5, 9, 13, 7, 21, 8, 30], [11, 4], [17, 19, 23, 29]]


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("pooling", ["last", "mean", "max", "concat"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell", CELLS)
def test_sequence_classification_is_padding_invariant(cell, bidirectional, pooling, side):
    model = make_model(
        AutoModelForSequenceClassification, cell, num_labels=3, pooling=pooling, bidirectional=bidirectional
    )
    ids, mask = pad_batch(SEQUENCES, side)
    with torch.no_grad():
        batched = model(ids, attention_mask=mask).logits
        alone = torch.cat([model(torch.tensor([sequence])).logits for sequence in SEQUENCES])
        # other ids (hence other embeddings) at the padded positions change nothing
        noisy_ids = torch.where(mask.bool(), ids, random_ids(*ids.shape, seed=7))
        noisy = model(noisy_ids, attention_mask=mask).logits
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(noisy, batched, atol=1e-6, rtol=1e-6)
    assert not torch.allclose(model(noisy_ids).logits, batched)  # without the mask, padding would matter


@pytest.mark.parametrize("bidirectional", [False, True])
def test_concat_pooling_sets_last_max_and_mean_side_by_side(bidirectional):
    concat = make_model(
        AutoModelForSequenceClassification, "lstm", num_labels=3, pooling="concat", bidirectional=bidirectional
    )
    ids, mask = pad_batch(SEQUENCES, "right")
    logits_by_part = []
    with torch.no_grad():
        for part, pooling in enumerate(("last", "max", "mean")):
            # the concat model's body, and the slice of its classifier that reads this part
            single = make_model(
                AutoModelForSequenceClassification, "lstm", num_labels=3, pooling=pooling, bidirectional=bidirectional
            )
            single.model.load_state_dict(concat.model.state_dict())
            width = single.classifier.in_features
            single.classifier.weight.copy_(concat.classifier.weight[:, part * width : (part + 1) * width])
            single.classifier.bias.zero_()
            logits_by_part.append(single(ids, attention_mask=mask).logits)
        logits = concat(ids, attention_mask=mask).logits
    assert concat.classifier.in_features == 3 * width
    torch.testing.assert_close(logits, sum(logits_by_part) + concat.classifier.bias, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("ngram_orders", [[], [2, 3]], ids=["tokens", "ngrams"])
@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell", CELLS)
def test_token_classification_is_padding_invariant(cell, bidirectional, side, ngram_orders):
    model = make_model(
        AutoModelForTokenClassification, cell, num_labels=4, bidirectional=bidirectional, ngram_orders=ngram_orders
    )
    ids, mask = pad_batch(SEQUENCES, side)
    with torch.no_grad():
        batched = model(ids, attention_mask=mask).logits
        noisy_ids = torch.where(mask.bool(), ids, random_ids(*ids.shape, seed=9))
        noisy = model(noisy_ids, attention_mask=mask).logits
        for row, sequence in enumerate(SEQUENCES):
            alone = model(torch.tensor([sequence])).logits[0]
            torch.testing.assert_close(batched[row, real_positions(mask, row)], alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(noisy, batched, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize(
    "context, reading",
    [("last", "bidirectional"), ("mean", "bidirectional"), ("max", "bidirectional"), ("concat", "bidirectional")]
    + [("last", "forward"), ("last", "backward")],
)
def test_token_classifier_context_is_padding_invariant(context, reading, side):
    direction = {"bidirectional": True} if reading == "bidirectional" else {"reading_direction": reading}
    model = make_model(
        AutoModelForTokenClassification, "gru", num_labels=3, token_classifier_context=context, **direction
    )
    ids, mask = pad_batch(SEQUENCES, side)
    with torch.no_grad():
        batched = model(ids, attention_mask=mask).logits
        for row, sequence in enumerate(SEQUENCES):
            alone = model(torch.tensor([sequence])).logits[0]
            torch.testing.assert_close(batched[row, real_positions(mask, row)], alone, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("context", ["last", "mean", "max"])
def test_token_classifier_context_puts_the_pooled_sequence_beside_each_position(context):
    model = make_model(AutoModelForTokenClassification, "lstm", num_labels=2, bidirectional=True)
    with_context = make_model(
        AutoModelForTokenClassification, "lstm", num_labels=2, bidirectional=True, token_classifier_context=context
    )
    width = model.classifier.in_features
    assert with_context.classifier.in_features == 2 * width
    with_context.model.load_state_dict(model.model.state_dict())
    ids = torch.tensor([SEQUENCES[0]])
    with torch.no_grad():
        states = model.model(ids).last_hidden_state
        pooled = {"last": torch.cat([states[:, -1, :16], states[:, 0, 16:]], -1), "mean": states.mean(1)}
        pooled["max"] = states.max(1).values
        position_weight, context_weight = with_context.classifier.weight.split(width, dim=1)
        expected = (
            states @ position_weight.T + pooled[context][:, None] @ context_weight.T + with_context.classifier.bias
        )
        torch.testing.assert_close(with_context(ids).logits, expected, atol=1e-5, rtol=1e-5)
        # each position reads the whole sequence: changing its last token changes the first position's logits
        changed = ids.clone()
        changed[0, -1] = 40
        unidirectional = make_model(
            AutoModelForTokenClassification, "lstm", num_labels=2, token_classifier_context=context
        )
        plain = make_model(AutoModelForTokenClassification, "lstm", num_labels=2)
        assert not torch.allclose(unidirectional(ids).logits[0, 0], unidirectional(changed).logits[0, 0])
        torch.testing.assert_close(plain(ids).logits[0, 0], plain(changed).logits[0, 0])


def test_ngram_ids_at_a_position_are_the_windows_around_the_boundary_after_it():
    orders, buckets = [2, 3], 97
    ids = torch.tensor([[5, 9, 13, 7, 21, 8]])
    windows = _boundary_ngram_ids(ids, None, orders, buckets, filler=PAD)  # (1, 6, 3): [t, t+1], [t-1..t+1], [t..t+2]
    assert windows.shape == (1, 6, 3)
    # The same tokens hash alike wherever they are: a bigram at t is the bigram at 0 of the sequence starting at t.
    for position in range(5):
        alone = _boundary_ngram_ids(ids[:, position : position + 2], None, orders, buckets, filler=PAD)
        assert windows[0, position, 0] == alone[0, 0, 0]
    assert torch.equal(windows[0, 1:, 1], windows[0, :-1, 2])  # [t-1..t+1] at t is [t..t+2] at t-1
    # Changing token 3 changes every window holding it and no other.
    changed = _boundary_ngram_ids(ids.index_fill(1, torch.tensor([3]), 40), None, orders, buckets, filler=PAD)
    holding = torch.zeros_like(windows, dtype=torch.bool)
    holding[0, 2, 0] = holding[0, 1, 2] = holding[0, 2, 1] = holding[0, 2, 2] = holding[0, 3, 1] = True
    holding[0, 3, 0] = holding[0, 3, 2] = holding[0, 4, 1] = True
    assert torch.equal(changed != windows, holding)
    assert int(windows.min()) >= 0 and int(windows.max()) < buckets


def test_ngram_features_add_to_the_token_embeddings_and_need_input_ids():
    model = make_model(AutoModelForTokenClassification, "gru", num_labels=2, bidirectional=True, ngram_orders=[2])
    plain = make_model(AutoModelForTokenClassification, "gru", num_labels=2, bidirectional=True)
    plain.load_state_dict(model.state_dict(), strict=False)
    ids = random_ids(2, 6)
    with torch.no_grad():
        assert not torch.allclose(model(ids).logits, plain(ids).logits)
        model.model.ngram_embeddings.weight.zero_()
        torch.testing.assert_close(model(ids).logits, plain(ids).logits)
    with pytest.raises(ValueError, match="pass `input_ids`"):
        model(inputs_embeds=model.get_input_embeddings()(ids))
    with pytest.raises(ValueError, match="ngram_orders"):
        make_model(AutoModelForCausalLM, "lstm", ngram_orders=[2])


def forward_twin(model):
    """The same weights in a forward-reading model: what a backward model must equal on reversed inputs."""
    config = model.config.to_dict()
    config["reading_direction"] = "forward"
    twin = type(model)(type(model.config).from_dict(config)).eval()
    twin.load_state_dict(model.state_dict())
    return twin


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("pooling", ["last", "mean", "max", "concat"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_backward_classifier_reads_each_sequence_from_its_end(cell, pooling, side):
    model = make_model(
        AutoModelForSequenceClassification, cell, num_labels=3, pooling=pooling, reading_direction="backward"
    )
    forward = forward_twin(model)
    ids, mask = pad_batch(SEQUENCES, side)
    with torch.no_grad():
        batched = model(ids, attention_mask=mask).logits
        from_embeddings = model(inputs_embeds=model.get_input_embeddings()(ids), attention_mask=mask).logits
        reversed_alone = torch.cat([forward(torch.tensor([sequence[::-1]])).logits for sequence in SEQUENCES])
        as_given = torch.cat([forward(torch.tensor([sequence])).logits for sequence in SEQUENCES])
    torch.testing.assert_close(batched, reversed_alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(from_embeddings, batched, atol=1e-6, rtol=1e-6)
    if pooling in ("last", "concat"):  # mean and max pool over a forward and backward pass alike only by chance
        assert not torch.allclose(batched, as_given, atol=1e-4)


@pytest.mark.parametrize("side", ["left", "right"])
def test_backward_token_classifier_puts_each_logit_at_its_token(side):
    model = make_model(AutoModelForTokenClassification, "lstm", num_labels=4, reading_direction="backward")
    forward = forward_twin(model)
    ids, mask = pad_batch(SEQUENCES, side)
    with torch.no_grad():
        batched = model(ids, attention_mask=mask).logits
        for row, sequence in enumerate(SEQUENCES):
            reversed_logits = forward(torch.tensor([sequence[::-1]])).logits[0]
            torch.testing.assert_close(
                batched[row, real_positions(mask, row)], reversed_logits.flip(0), atol=1e-5, rtol=1e-5
            )


@pytest.mark.parametrize("cell", CELLS)
def test_causal_lm_with_left_padding_matches_unpadded_and_generates_the_same(cell):
    model = make_model(AutoModelForCausalLM, cell)
    ids, mask = pad_batch(SEQUENCES, "left")
    with torch.no_grad():
        batched = model(ids, attention_mask=mask).logits
        for row, sequence in enumerate(SEQUENCES):
            alone = model(torch.tensor([sequence])).logits[0]
            torch.testing.assert_close(batched[row, real_positions(mask, row)], alone, atol=1e-5, rtol=1e-5)
    generated = model.generate(ids, attention_mask=mask, max_new_tokens=5, do_sample=False, pad_token_id=PAD)
    for row, sequence in enumerate(SEQUENCES):
        alone = model.generate(torch.tensor([sequence]), max_new_tokens=5, do_sample=False, pad_token_id=PAD)
        assert torch.equal(generated[row, -5:], alone[0, -5:])


def test_a_row_of_padding_only_keeps_the_initial_state():
    model = make_model(AutoModelForSequenceClassification, "lstm", pooling="mean")
    ids = torch.tensor([[5, 6, 7], [0, 0, 0]])
    mask = torch.tensor([[1, 1, 1], [0, 0, 0]])
    with torch.no_grad():
        logits = model(ids, attention_mask=mask).logits
    torch.testing.assert_close(logits[1], model.classifier.bias.detach())  # pooled vector is zero
    torch.testing.assert_close(logits[0], model(ids[:1]).logits[0])


def test_labels_are_shifted_inside_and_minus_100_is_ignored():
    model = make_model(AutoModelForCausalLM, "gru")
    ids = random_ids(2, 8)
    labels = ids.clone()
    labels[:, 5:] = -100
    with torch.no_grad():
        output = model(ids, labels=labels)
        expected = torch.nn.functional.cross_entropy(output.logits[:, :4].reshape(-1, VOCAB), ids[:, 1:5].reshape(-1))
    torch.testing.assert_close(output.loss, expected)


@pytest.mark.parametrize("embedding_size", [16, 12])  # equal to hidden_size, and different (needs a projection)
def test_save_load_round_trip_keeps_logits_and_tied_weights(tmp_path, embedding_size):
    model = make_model(AutoModelForCausalLM, "lstm", embedding_size=embedding_size, tie_word_embeddings=True)
    assert (model.output_projection is not None) == (embedding_size != 16)
    model.save_pretrained(tmp_path)
    files = set(os.listdir(tmp_path))
    assert "model.safetensors" in files and not any(name.endswith(".bin") for name in files)
    assert {"configuration_recurrent.py", "modeling_recurrent.py", "cache_recurrent.py"} <= files
    auto_map = json.loads((tmp_path / "config.json").read_text())["auto_map"]
    assert set(auto_map) == {
        "AutoConfig",
        "AutoModel",
        "AutoModelForCausalLM",
        "AutoModelForSequenceClassification",
        "AutoModelForTokenClassification",
    }

    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    ids = random_ids(2, 6)
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, model(ids).logits, atol=0, rtol=0)
    assert loaded.lm_head.weight is loaded.model.embed_tokens.weight
    with torch.no_grad():
        loaded.model.embed_tokens.weight[7].add_(1.0)
    assert torch.equal(loaded.lm_head.weight[7], loaded.model.embed_tokens.weight[7])


def test_untied_model_keeps_its_own_head(tmp_path):
    model = make_model(AutoModelForCausalLM, "gru", tie_word_embeddings=False, embedding_size=12)
    assert model.lm_head.weight is not model.model.embed_tokens.weight
    assert model.lm_head.in_features == 16 and model.output_projection is None
    model.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert torch.equal(loaded.lm_head.weight, model.lm_head.weight)


def test_classification_head_loads_on_the_pretrained_body(tmp_path):
    lm = make_model(AutoModelForCausalLM, "lstm")
    lm.save_pretrained(tmp_path)
    classifier = AutoModelForSequenceClassification.from_pretrained(tmp_path, num_labels=2)
    assert type(classifier).__name__ == "LSTMForSequenceClassification"
    for name, parameter in lm.model.state_dict().items():
        assert torch.equal(classifier.model.state_dict()[name], parameter), name
    body = AutoModel.from_pretrained(tmp_path)
    assert torch.equal(body.rnn.weight_hh_l1, lm.model.rnn.weight_hh_l1)


@pytest.mark.parametrize("cell", ["rnn_relu", "gru"])
def test_remote_code_loads_without_hf_seq(tmp_path, cell):
    lm = make_model(AutoModelForCausalLM, cell)
    lm.save_pretrained(tmp_path / "lm")
    ids = random_ids(2, 6)
    with torch.no_grad():
        expected_logits = lm(ids).logits
        expected_generation = lm.generate(ids, max_new_tokens=4, do_sample=False, pad_token_id=PAD)
    result = run_without_hf_seq(
        f"""
        import json, torch
        from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification
        ids = torch.tensor({ids.tolist()})
        model = AutoModelForCausalLM.from_pretrained("lm", trust_remote_code=True).eval()
        with torch.no_grad():
            logits = model(ids).logits
        generated = model.generate(ids, max_new_tokens=4, do_sample=False, pad_token_id={PAD})
        classifier = AutoModelForSequenceClassification.from_pretrained("lm", num_labels=2, trust_remote_code=True)
        print(json.dumps({{"class": type(model).__module__ + "." + type(model).__name__,
                          "classifier": type(classifier).__name__,
                          "logits": logits.tolist(), "generated": generated.tolist()}}))
        """,
        workdir=tmp_path,
    )
    assert "hf_seq" not in result["class"] and result["class"].startswith("transformers_modules.")
    assert result["classifier"].endswith("ForSequenceClassification")
    torch.testing.assert_close(torch.tensor(result["logits"]), expected_logits, atol=1e-6, rtol=1e-6)
    assert result["generated"] == expected_generation.tolist()


def test_a_tagger_with_ngram_features_and_a_context_loads_without_hf_seq(tmp_path):
    tagger = make_model(
        AutoModelForTokenClassification,
        "gru",
        num_labels=2,
        bidirectional=True,
        ngram_orders=[2, 3],
        token_classifier_context="concat",
    )
    tagger.save_pretrained(tmp_path / "tagger")
    ids, mask = pad_batch(SEQUENCES, "right")
    with torch.no_grad():
        expected = tagger(ids, attention_mask=mask).logits
    result = run_without_hf_seq(
        f"""
        import json, torch
        from transformers import AutoModelForTokenClassification
        model = AutoModelForTokenClassification.from_pretrained("tagger", trust_remote_code=True).eval()
        with torch.no_grad():
            logits = model(torch.tensor({ids.tolist()}), attention_mask=torch.tensor({mask.tolist()})).logits
        print(json.dumps({{"logits": logits.tolist()}}))
        """,
        workdir=tmp_path,
    )
    torch.testing.assert_close(torch.tensor(result["logits"]), expected, atol=1e-6, rtol=1e-6)


def test_bad_inputs_raise_clear_errors():
    model = make_model(AutoModelForCausalLM, "lstm")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model(torch.tensor([[1, VOCAB + 3]]))
    with pytest.raises(ValueError, match="attention_mask"):
        model(torch.tensor([[1, 2, 3]]), attention_mask=torch.ones(1, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="exactly one"):
        model()
    cache = model(random_ids(2, 3)).past_key_values
    with pytest.raises(ValueError, match="batch size"):
        model(random_ids(3, 1), past_key_values=cache)


# --- output_hidden_states, gradient checkpointing, the cache's layers -------------------------------------------------


def padded_batch():
    input_ids = random_ids(3, 7)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, :3] = 0  # left padding
    attention_mask[2, 5:] = 0  # right padding
    return input_ids.masked_fill(attention_mask == 0, PAD), attention_mask


@pytest.mark.parametrize("bidirectional", [False, True], ids=["unidirectional", "bidirectional"])
@pytest.mark.parametrize("cell", CELLS)
def test_hidden_states_are_the_embeddings_then_every_layer_and_reproduce_the_fused_output(cell, bidirectional):
    model = make_model(AutoModel, cell, num_hidden_layers=3, bidirectional=bidirectional)
    input_ids, attention_mask = padded_batch()
    with torch.no_grad():
        fused = model(input_ids, attention_mask=attention_mask)
        outputs = model(input_ids, attention_mask=attention_mask, output_hidden_states=True)
    directions = 2 if bidirectional else 1
    assert fused.hidden_states is None
    assert len(outputs.hidden_states) == 1 + 3
    assert outputs.hidden_states[0].shape == (3, 7, 12)  # the embedding output
    for layer_output in outputs.hidden_states[1:]:
        assert layer_output.shape == (3, 7, 16 * directions)
        assert torch.all(layer_output[attention_mask == 0] == 0)  # padding has no output
    torch.testing.assert_close(outputs.hidden_states[-1], fused.last_hidden_state, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(outputs.last_hidden_state, fused.last_hidden_state, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("cell", CELLS)
def test_each_layer_output_is_the_next_layers_input(cell):
    """Layer k's hidden states, fed to a one-layer model holding layer k+1's weights, give layer k+1's states."""
    model = make_model(AutoModel, cell, num_hidden_layers=2)
    input_ids = random_ids(2, 6)
    with torch.no_grad():
        hidden_states = model(input_ids, output_hidden_states=True).hidden_states
        second_layer = getattr(torch.nn, model.config.rnn_type)(
            16, 16, batch_first=True, **({"nonlinearity": model.config.nonlinearity} if cell.startswith("rnn") else {})
        )
        second_layer.load_state_dict(
            {name.replace("_l1", "_l0"): value for name, value in model.rnn.state_dict().items() if "_l1" in name}
        )
        expected, _ = second_layer(hidden_states[1])
    torch.testing.assert_close(hidden_states[2], expected, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("cell", CELLS)
def test_every_head_returns_hidden_states_and_a_decode_step_returns_them_too(cell):
    input_ids, attention_mask = padded_batch()
    for auto_class, overrides in [
        (AutoModelForCausalLM, {}),
        (AutoModelForSequenceClassification, {"bidirectional": True}),
        (AutoModelForTokenClassification, {"reading_direction": "backward"}),
    ]:
        model = make_model(auto_class, cell, **overrides)
        with torch.no_grad():
            outputs = model(input_ids, attention_mask=attention_mask, output_hidden_states=True)
        assert len(outputs.hidden_states) == 3, auto_class.__name__
        as_tuple = model(input_ids, attention_mask=attention_mask, output_hidden_states=True, return_dict=False)
        assert isinstance(as_tuple, tuple) and len(as_tuple[-1]) == 3
    model = make_model(AutoModelForCausalLM, cell)
    with torch.no_grad():
        prefix = model(input_ids[:, :-1], use_cache=True)
        step = model(input_ids[:, -1:], cache=getattr(prefix, CACHE_NAME), output_hidden_states=True)
        full = model(input_ids, output_hidden_states=True)
    for step_states, full_states in zip(step.hidden_states, full.hidden_states):
        torch.testing.assert_close(step_states[:, -1], full_states[:, -1], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cell", CELLS)
def test_gradient_checkpointing_gives_the_same_loss_and_gradients(cell):
    input_ids, attention_mask = padded_batch()
    labels = input_ids.masked_fill(attention_mask == 0, -100)
    gradients = {}
    for checkpointing in (False, True):
        model = make_model(AutoModelForCausalLM, cell, num_hidden_layers=3).train()
        assert model.supports_gradient_checkpointing
        if checkpointing:
            model.activation_checkpointing_enable()
            assert model.model.gradient_checkpointing
        loss = model(input_ids, attention_mask=attention_mask, labels=labels).loss
        loss.backward()
        gradients[checkpointing] = (loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters()})
    torch.testing.assert_close(gradients[True][0], gradients[False][0])
    assert gradients[True][1].keys() == gradients[False][1].keys()
    for name, gradient in gradients[False][1].items():
        torch.testing.assert_close(gradients[True][1][name], gradient, atol=1e-6, rtol=1e-5, msg=name)


@pytest.mark.parametrize("cell", CELLS)
def test_the_cache_looks_like_transformers_caches_to_its_callers(cell):
    model = make_model(AutoModelForCausalLM, cell, num_hidden_layers=3)
    input_ids = random_ids(2, 4)
    cache = getattr(model(input_ids, use_cache=True), CACHE_NAME)
    is_lstm = cell == "lstm"
    assert len(cache) == len(cache.layers) == 3
    assert cache.is_linear == [True] * 3 and cache.is_sliding == [False] * 3
    assert cache.get_seq_length() == 4 and not cache.is_compileable
    for layer_idx in range(3):
        hidden = cache.get_recurrent_state(layer_idx, 0)
        assert hidden.shape == (2, 16)
        torch.testing.assert_close(hidden, cache.hidden[layer_idx])
        if is_lstm:
            torch.testing.assert_close(cache.get_recurrent_state(layer_idx, 1), cache.cell[layer_idx])
    # Beam search's reordering goes through the layers, as for transformers' own caches.
    before = cache.hidden.clone()
    cache.reorder_cache(torch.tensor([1, 1]))
    torch.testing.assert_close(cache.hidden, before[:, [1, 1]])
    cache.batch_repeat_interleave(2)
    assert cache.hidden.shape == (3, 4, 16)
    cache.reset()
    assert cache.hidden is None and cache.get_seq_length() == 0
