"""The recurrent encoder–decoder behaves as any transformers seq2seq model, for every cell x attention.

Cached generation (the decoder's state in a Seq2SeqRNNCache, under the cache name of the installed transformers) must
give what recomputing the whole target each step gives; source padding, left or right, must change nothing; the
attention must ignore padding.
"""

import pytest
import torch
from transformers import AutoModel, AutoModelForSeq2SeqLM

from hf_seq.models.seq2seq_rnn import (
    CACHE_NAME,
    Seq2SeqRNNCache,
    Seq2SeqRNNConfig,
    Seq2SeqRNNForConditionalGeneration,
    cache_of,
    register_seq2seq_rnn,
)


register_seq2seq_rnn()

VOCAB = 24
# Every cell x attention; input feeding on for half of them so both decoder paths (fused and step by step) run.
CASES = [
    (cell, attention, input_feeding)
    for cell in ("lstm", "gru")
    for attention in ("none", "dot", "general", "concat")
    for input_feeding in (True, False)
]
CASE_IDS = [f"{cell}-{attention}-{'feed' if feed else 'nofeed'}" for cell, attention, feed in CASES]


def small_model(cell="lstm", attention="general", input_feeding=True, seed=0, **overrides):
    torch.manual_seed(seed)
    arguments = {
        "vocab_size": VOCAB,
        "cell": cell,
        "attention": attention,
        "input_feeding": input_feeding,
        "embedding_size": 6,
        "hidden_size": 8,
        "encoder_layers": 2,
        "decoder_layers": 2,
        "bidirectional_encoder": True,
        "embedding_dropout": 0.0,
        "dropout": 0.0,
        "output_dropout": 0.0,
        "initializer_range": 0.5,  # wide weights: sharp, tie-free distributions
    }
    arguments.update(overrides)
    return Seq2SeqRNNForConditionalGeneration(Seq2SeqRNNConfig(**arguments)).eval()


def source(batch_size=3, length=7, seed=1):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, VOCAB, (batch_size, length), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, :2] = 0  # a left-padded row
    mask[2, -3:] = 0  # a right-padded row
    return ids.masked_fill(mask == 0, 0), mask


GENERATION_MODES = {
    "greedy": {"do_sample": False},
    "sampling": {"do_sample": True, "top_k": 0, "temperature": 1.0},
    "beam": {"num_beams": 3, "length_penalty": 0.7, "no_repeat_ngram_size": 2},
    "beam_return_2": {"num_beams": 3, "num_return_sequences": 2},
    "sampling_return_2": {"do_sample": True, "num_return_sequences": 2},
}


@pytest.mark.parametrize("cell, attention, input_feeding", CASES, ids=CASE_IDS)
def test_cached_generation_equals_uncached(cell, attention, input_feeding):
    model = small_model(cell, attention, input_feeding)
    ids, mask = source()
    for name, mode in GENERATION_MODES.items():
        outputs = {}
        for use_cache in (True, False):
            torch.manual_seed(7)
            outputs[use_cache] = model.generate(
                ids, attention_mask=mask, max_new_tokens=6, min_new_tokens=6, use_cache=use_cache, **mode
            )
        assert torch.equal(outputs[True], outputs[False]), name
        assert outputs[True].shape[1] == 7, name  # the start token and 6 new ones


@pytest.mark.parametrize("cell, attention, input_feeding", CASES, ids=CASE_IDS)
def test_a_cached_step_gives_the_logits_of_a_full_recompute(cell, attention, input_feeding):
    model = small_model(cell, attention, input_feeding)
    ids, mask = source()
    targets = torch.randint(4, VOCAB, (3, 6), generator=torch.Generator().manual_seed(3))
    targets[:, 0] = model.config.decoder_start_token_id
    with torch.no_grad():
        full = model(ids, attention_mask=mask, decoder_input_ids=targets, use_cache=False).logits
        # A prefix of 3 positions at once, then one position at a time from the cache.
        encoder_outputs = model.get_encoder()(ids, attention_mask=mask)
        outputs = model(attention_mask=mask, encoder_outputs=encoder_outputs, decoder_input_ids=targets[:, :3])
        step_logits = [outputs.logits]
        cache = cache_of(outputs)
        assert isinstance(cache, Seq2SeqRNNCache) and cache.get_seq_length() == 3
        for t in range(3, 6):
            outputs = model(
                attention_mask=mask,
                encoder_outputs=encoder_outputs,
                decoder_input_ids=targets[:, t : t + 1],
                **{CACHE_NAME: cache},
            )
            cache = cache_of(outputs)
            step_logits.append(outputs.logits)
    assert cache.get_seq_length() == 6
    torch.testing.assert_close(torch.cat(step_logits, dim=1), full, atol=1e-5, rtol=0)


@pytest.mark.parametrize("cell, attention, input_feeding", CASES, ids=CASE_IDS)
def test_source_padding_left_or_right_changes_nothing(cell, attention, input_feeding):
    model = small_model(cell, attention, input_feeding)
    ids, mask = source()
    targets = torch.randint(4, VOCAB, (3, 5), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        batched = model(ids, attention_mask=mask, labels=targets).logits
        generated = model.generate(ids, attention_mask=mask, max_new_tokens=5, min_new_tokens=5, num_beams=2)
        for row in range(3):
            real = ids[row : row + 1, mask[row].bool()]
            alone = model(real, labels=targets[row : row + 1]).logits
            torch.testing.assert_close(batched[row : row + 1], alone, atol=1e-5, rtol=0)
            generated_alone = model.generate(real, max_new_tokens=5, min_new_tokens=5, num_beams=2)
            assert torch.equal(generated[row : row + 1], generated_alone)


@pytest.mark.parametrize("cell, attention", [(c, a) for c in ("lstm", "gru") for a in ("dot", "general", "concat")])
def test_attention_weights_are_zero_on_padding_and_sum_to_one(cell, attention):
    model = small_model(cell, attention)
    ids, mask = source()
    labels = torch.randint(4, VOCAB, (3, 4))
    outputs = model(ids, attention_mask=mask, labels=labels, output_attentions=True)
    (weights,) = outputs.cross_attentions
    assert weights.shape == (3, 1, 4, 7)
    padded = (mask == 0).view(3, 1, 1, 7).expand_as(weights)
    assert torch.all(weights[padded] == 0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 1, 4))
    # generate() returns the same weights step by step.
    generated = model.generate(
        ids, attention_mask=mask, max_new_tokens=3, output_attentions=True, return_dict_in_generate=True
    )
    for step in generated.cross_attentions:
        assert torch.all(step[0][(mask == 0).view(3, 1, 1, 7).expand_as(step[0])] == 0)


def test_without_attention_there_are_no_cross_attentions_and_the_bridge_is_the_only_path():
    model = small_model(attention="none", bridge="zeros")
    ids, mask = source()
    other = torch.randint(4, VOCAB, ids.shape)
    labels = torch.randint(4, VOCAB, (3, 4))
    outputs = model(ids, attention_mask=mask, labels=labels, output_attentions=True)
    assert outputs.cross_attentions is None
    # No attention and no bridge: nothing of the source reaches the decoder, the bottleneck at its extreme.
    torch.testing.assert_close(model(other, attention_mask=mask, labels=labels).logits, outputs.logits)
    with_bridge = small_model(attention="none")
    assert not torch.allclose(
        with_bridge(other, attention_mask=mask, labels=labels).logits,
        with_bridge(ids, attention_mask=mask, labels=labels).logits,
    )


def test_labels_are_shifted_right_with_the_start_token_and_minus_100_ignored():
    model = small_model()
    ids, mask = source()
    labels = torch.tensor([[5, 6, 7, 3], [8, 9, 3, -100], [10, 3, -100, -100]])
    decoder_input_ids = torch.tensor([[2, 5, 6, 7], [2, 8, 9, 3], [2, 10, 3, 0]])
    with_labels = model(ids, attention_mask=mask, labels=labels)
    explicit = model(ids, attention_mask=mask, decoder_input_ids=decoder_input_ids)
    torch.testing.assert_close(with_labels.logits, explicit.logits)
    keep = labels != -100
    expected = torch.nn.functional.cross_entropy(explicit.logits[keep], labels[keep])
    torch.testing.assert_close(with_labels.loss, expected)


def test_the_cache_is_returned_under_the_installed_name_and_old_names_still_work():
    model = small_model()
    ids, mask = source()
    start = torch.full((3, 1), 2)
    outputs = model(ids, attention_mask=mask, decoder_input_ids=start)
    assert isinstance(getattr(outputs, CACHE_NAME), Seq2SeqRNNCache)
    following = torch.full((3, 1), 5)
    by_alias = model(ids, attention_mask=mask, decoder_input_ids=following, past_key_values=cache_of(outputs))
    reference = model(ids, attention_mask=mask, decoder_input_ids=torch.cat([start, following], 1), use_cache=False)
    torch.testing.assert_close(by_alias.logits[:, -1], reference.logits[:, -1], atol=1e-5, rtol=0)
    with pytest.raises(TypeError, match="unexpected keyword arguments: decoder_input_idz"):
        model(ids, attention_mask=mask, decoder_input_idz=start)


def test_beam_search_reorders_the_cache_and_its_attention_keys():
    cache = Seq2SeqRNNCache(2, has_cell_state=True)
    hidden = torch.arange(2 * 3 * 2, dtype=torch.float).view(2, 3, 2)
    cache.update_state(hidden, -hidden, torch.arange(3.0).view(3, 1), 1)
    cache.set_attention_keys(torch.arange(3.0).view(3, 1, 1).expand(3, 4, 1))
    cache.reorder_cache(torch.tensor([2, 2, 0]))
    assert torch.equal(cache.hidden, hidden[:, [2, 2, 0]]) and torch.equal(cache.cell, -hidden[:, [2, 2, 0]])
    assert cache.input_feed.view(-1).tolist() == [2, 2, 0]
    assert cache.attention_keys[:, 0, 0].tolist() == [2, 2, 0]
    cache.batch_repeat_interleave(2)
    assert cache.input_feed.view(-1).tolist() == [2, 2, 2, 2, 0, 0]
    cache.batch_select_indices(torch.tensor([0, 5]))
    assert cache.attention_keys.shape == (2, 4, 1) and cache.hidden.shape == (2, 2, 2)


def test_scheduled_sampling_feeds_predictions_in_training_only():
    model = small_model(teacher_forcing_ratio=0.0)
    ids, mask = source()
    labels = torch.randint(4, VOCAB, (3, 6))
    forced = small_model(teacher_forcing_ratio=1.0)
    model.train(), forced.train()  # no dropout in these models: training differs only by the fed tokens
    sampled_logits = model(ids, attention_mask=mask, labels=labels).logits
    forced_logits = forced(ids, attention_mask=mask, labels=labels).logits
    torch.testing.assert_close(sampled_logits[:, 0], forced_logits[:, 0])  # the first input is the start token
    assert not torch.allclose(sampled_logits[:, 1:], forced_logits[:, 1:])
    # Fed its own argmax at every step, the decoder computes what greedy decoding computes.
    model.eval()
    greedy = model.generate(
        ids, attention_mask=mask, max_new_tokens=6, min_new_tokens=6, output_logits=True, return_dict_in_generate=True
    )
    torch.testing.assert_close(sampled_logits, torch.stack(greedy.logits, dim=1), atol=1e-5, rtol=0)
    torch.testing.assert_close(
        model(ids, attention_mask=mask, labels=labels).logits,
        forced.eval()(ids, attention_mask=mask, labels=labels).logits,
    )


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_save_and_load_are_exact_with_code_and_full_auto_map(tmp_path, cell):
    model = small_model(
        cell,
        "concat",
        encoder_layers=1,
        decoder_layers=2,
        encoder_hidden_size=5,
        bidirectional_encoder=False,
        embedding_size=7,
        tie_word_embeddings=True,
    )
    ids, mask = source()
    model.save_pretrained(tmp_path)
    files = {path.name for path in tmp_path.iterdir()}
    assert {
        "model.safetensors",
        "config.json",
        "configuration_seq2seq_rnn.py",
        "modeling_seq2seq_rnn.py",
        "cache_seq2seq_rnn.py",
    } <= files
    reloaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path).eval()
    assert type(reloaded) is Seq2SeqRNNForConditionalGeneration
    assert set(reloaded.config.auto_map) == {"AutoConfig", "AutoModel", "AutoModelForSeq2SeqLM"}
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, reloaded.state_dict()[name]), name
    assert reloaded.lm_head.weight.data_ptr() == reloaded.model.decoder.embed_tokens.weight.data_ptr()
    assert torch.equal(
        model.generate(ids, attention_mask=mask, max_new_tokens=5, num_beams=2),
        reloaded.generate(ids, attention_mask=mask, max_new_tokens=5, num_beams=2),
    )
    base = AutoModel.from_pretrained(tmp_path)
    assert type(base).__name__ == "Seq2SeqRNNModel"


def test_encoder_and_decoder_sizes_may_differ():
    model = small_model("gru", "general", encoder_layers=3, decoder_layers=1, encoder_hidden_size=3)
    ids, mask = source()
    out = model.generate(ids, attention_mask=mask, max_new_tokens=4, num_beams=2)
    assert out.shape == (3, 5)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("input_feeding", [True, False])
def test_hidden_states_hold_every_layer_and_change_no_output(cell, input_feeding):
    model = small_model(cell, "general", input_feeding, encoder_layers=3, decoder_layers=2)
    ids, mask = source()
    labels = torch.randint(4, VOCAB, (3, 5), generator=torch.Generator().manual_seed(2))
    plain = model(ids, attention_mask=mask, labels=labels)
    detailed = model(ids, attention_mask=mask, labels=labels, output_hidden_states=True)

    torch.testing.assert_close(detailed.logits, plain.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(detailed.encoder_last_hidden_state, plain.encoder_last_hidden_state)
    # As transformers' models: the embeddings first, then one entry per layer (the decoder adds h~ last).
    assert len(detailed.encoder_hidden_states) == 1 + 3
    assert len(detailed.decoder_hidden_states) == 1 + 2 + 1
    torch.testing.assert_close(detailed.encoder_hidden_states[-1], plain.encoder_last_hidden_state)
    bidirectional_width = 2 * model.config.encoder_state_size
    assert all(layer.shape[-1] == bidirectional_width for layer in detailed.encoder_hidden_states[1:])
    assert all(layer.shape == (3, 5, 8) for layer in detailed.decoder_hidden_states[1:])
    padded = mask == 0
    assert all(bool((layer[padded] == 0).all()) for layer in detailed.encoder_hidden_states[1:])


def test_each_encoder_layer_runs_on_its_own_weights():
    model = small_model("lstm", "general", encoder_layers=2)
    ids, mask = source()
    before = model(ids, attention_mask=mask, labels=ids, output_hidden_states=True).encoder_hidden_states
    with torch.no_grad():
        model.model.encoder.rnn.weight_hh_l1_reverse.add_(0.5)  # the second layer's backward direction only
    after = model(ids, attention_mask=mask, labels=ids, output_hidden_states=True).encoder_hidden_states
    torch.testing.assert_close(after[1], before[1])
    assert not torch.allclose(after[2], before[2])


def test_ids_outside_the_vocabulary_raise_an_error_naming_the_input():
    model = small_model()
    ids, mask = source()
    with pytest.raises(ValueError, match="`input_ids` holds ids outside the vocabulary"):
        model(ids + VOCAB, attention_mask=mask, labels=ids)
    with pytest.raises(ValueError, match="`decoder_input_ids` holds ids outside the vocabulary"):
        model(ids, attention_mask=mask, decoder_input_ids=torch.full((3, 2), VOCAB))
