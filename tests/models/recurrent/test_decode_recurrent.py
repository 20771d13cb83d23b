"""The fast decode path of the recurrent LMs: transposed weight copies, the lean generate inputs, compiled steps.

A decode step on CPU without gradients reads each weight matrix from a contiguous transposed copy. These tests check
that the copies are used, follow every change of the weights (training, loading, tied embeddings, dtype), never reach
a checkpoint, and leave training's gradients alone; and that a decode step compiles as one graph.
"""

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

import hf_seq
from hf_seq.models.recurrent import cache_of


VOCAB = 40
CELLS = {"lstm": hf_seq.LSTMConfig, "gru": hf_seq.GRUConfig, "rnn": hf_seq.RNNConfig}


def make_model(cell="lstm", seed=0, **overrides):
    torch.manual_seed(seed)
    fields = {"vocab_size": VOCAB, "embedding_size": 12, "hidden_size": 16, "num_hidden_layers": 2, **overrides}
    return AutoModelForCausalLM.from_config(CELLS[cell](**fields)).eval()


def reference_step(model, token, state):
    """A decode step written out on the stored (out, in) weights: the arithmetic the copies must reproduce."""
    rnn = model.model.rnn
    cell_function = {"LSTM": torch.lstm_cell, "GRU": torch.gru_cell, "RNN_TANH": torch.rnn_tanh_cell}[rnn.mode]
    layer_input = model.model.embed_tokens(token)[:, 0]
    for layer in range(rnn.num_layers):
        weights = [getattr(rnn, f"{kind}_l{layer}") for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        output = cell_function(layer_input, state[layer], *weights)
        layer_input = output[0] if rnn.mode == "LSTM" else output
    if model.output_projection is not None:
        layer_input = F.linear(layer_input, model.output_projection.weight)
    return F.linear(layer_input, model.lm_head.weight, model.lm_head.bias)


def prompt_and_state(model, batch_size=2):
    prompt = torch.randint(4, VOCAB, (batch_size, 5), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        cache = cache_of(model(prompt, use_cache=True))
    state = [
        (cache.hidden[layer], cache.cell[layer]) if cache.has_cell_state else cache.hidden[layer]
        for layer in range(len(cache.layers))
    ]
    return cache, state


def decode_step(model, cache, token):
    with torch.no_grad():
        return model(token, cache=cache.detach(), use_cache=True).logits[:, 0]


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("tied", [True, False])
def test_a_decode_step_uses_the_transposed_copies_and_matches_the_stored_weights(cell, tied):
    model = make_model(cell, tie_word_embeddings=tied, embedding_size=12 if tied else 16)
    cache, state = prompt_and_state(model)
    token = torch.tensor([[5], [7]])
    logits = decode_step(model, cache, token)
    with torch.no_grad():
        torch.testing.assert_close(logits, reference_step(model, token, state))
    assert "_transposed_weights" in model.lm_head.__dict__
    assert {"weight_ih_l0", "weight_hh_l1"} <= set(model.model.rnn.__dict__["_transposed_weights"])


@pytest.fixture
def two_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("tied", [True, False])
def test_with_several_threads_the_output_layer_streams_in_column_blocks(two_threads, monkeypatch, tied):
    from hf_seq.models.recurrent import modeling_recurrent

    monkeypatch.setattr(modeling_recurrent, "SPLIT_MIN_ELEMENTS", 0)  # this small head too: a block per thread
    model = make_model(vocab_size=VOCAB + 1, tie_word_embeddings=tied, embedding_size=12 if tied else 16)
    cache, state = prompt_and_state(model)
    token = torch.tensor([[5], [7]])
    logits = decode_step(model, cache, token)
    blocks = model.lm_head.__dict__["_transposed_weights"]["weight"][2]
    assert blocks.shape == (2, model.lm_head.in_features, (VOCAB + 2) // 2)  # 41 columns: padded to 2 x 21
    with torch.no_grad():
        torch.testing.assert_close(logits, reference_step(model, token, state))

        model.lm_head.weight.mul_(2.0)  # the blocks follow a change of the weights
        torch.testing.assert_close(decode_step(model, cache, token), reference_step(model, token, state))
    torch.set_num_threads(1)  # one thread: one product on the transposed copy again
    torch.testing.assert_close(decode_step(model, cache, token), reference_step(model, token, state))
    assert model.lm_head.__dict__["_transposed_weights"]["weight"][2].dim() == 2


@pytest.mark.parametrize("cell", list(CELLS))
def test_with_several_threads_the_recurrent_layers_stream_in_column_blocks(two_threads, monkeypatch, cell):
    from hf_seq.models.recurrent import modeling_recurrent

    model = make_model(cell, hidden_size=17)  # 17 rows a gate: the blocks are padded
    cache, state = prompt_and_state(model)
    token = torch.tensor([[5], [7]])
    prompt = torch.randint(4, VOCAB, (2, 4), generator=torch.Generator().manual_seed(2))
    settings = {"max_new_tokens": 8, "do_sample": False, "pad_token_id": 0}
    with torch.no_grad():
        one_product_each = model.generate(prompt, **settings)
    monkeypatch.setattr(modeling_recurrent, "SPLIT_MIN_ELEMENTS", 0)  # these small layers too: a block per thread
    logits = decode_step(model, cache, token)
    copies = model.model.rnn.__dict__["_transposed_weights"]
    assert copies["weight_hh_l1"][2].shape[0] == 2  # (parts, in, out / parts)
    with torch.no_grad():
        torch.testing.assert_close(logits, reference_step(model, token, state))
        assert torch.equal(model.generate(prompt, **settings), one_product_each)


def test_the_copies_follow_training_steps_loading_and_the_tied_embedding():
    model, other = make_model(seed=0), make_model(seed=1)
    cache, state = prompt_and_state(model)
    token = torch.tensor([[5], [7]])
    decode_step(model, cache, token)  # makes the copies

    # A training step changes the weights in place (the LM head through the embedding it is tied to).
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    inputs = torch.randint(4, VOCAB, (2, 6))
    model(inputs, labels=inputs).loss.backward()
    optimizer.step()
    model.eval()
    with torch.no_grad():
        model.model.embed_tokens.weight[token.flatten()] += 1.0  # and once more, by hand, on the tied matrix
    torch.testing.assert_close(decode_step(model, cache, token), reference_step(model, token, state).detach())

    # Loading other weights (in place) gives the other model's step.
    model.load_state_dict(other.state_dict())
    torch.testing.assert_close(decode_step(model, cache, token), decode_step(other, cache, token))


def test_the_copies_follow_a_change_of_dtype_and_new_weight_tensors():
    model = make_model()
    cache, state = prompt_and_state(model)
    token = torch.tensor([[5], [7]])
    decode_step(model, cache, token)
    model.to(torch.float64)
    assert "_transposed_weights" not in model.lm_head.__dict__  # dropped with the old weights
    cache64 = cache.detach()
    cache64.update_state(cache.hidden.double(), cache.cell.double(), 0)
    state64 = [(h.double(), c.double()) for h, c in state]
    torch.testing.assert_close(decode_step(model, cache64, token), reference_step(model, token, state64).detach())

    with torch.no_grad():  # a new tensor under the same parameter
        model.lm_head.bias.data = torch.randn_like(model.lm_head.bias)
        model.model.rnn.weight_hh_l1.data = torch.randn_like(model.model.rnn.weight_hh_l1)
    torch.testing.assert_close(decode_step(model, cache64, token), reference_step(model, token, state64).detach())


def test_decoding_changes_neither_the_checkpoint_nor_the_gradients(tmp_path):
    model, untouched = make_model(), make_model()
    cache, _ = prompt_and_state(model)
    for _ in range(2):
        decode_step(model, cache, torch.tensor([[5], [7]]))
    assert set(model.state_dict()) == set(untouched.state_dict())
    model.save_pretrained(tmp_path / "decoded")
    untouched.save_pretrained(tmp_path / "untouched")
    saved, expected = (
        load_file(tmp_path / "decoded" / "model.safetensors"),
        load_file(tmp_path / "untouched" / "model.safetensors"),
    )
    assert set(saved) == set(expected)
    for key in expected:
        assert saved[key].shape == expected[key].shape and saved[key].stride() == expected[key].stride()
        torch.testing.assert_close(saved[key], expected[key])

    # With gradients on, a one-token step (in eval mode: no dropout) reaches the stored weights themselves.
    inputs = torch.randint(4, VOCAB, (2, 1))
    for candidate in (model, untouched):
        candidate(inputs, cache=cache.detach(), use_cache=True).logits.square().sum().backward()
    for (name, parameter), (_, expected_parameter) in zip(model.named_parameters(), untouched.named_parameters()):
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
        torch.testing.assert_close(parameter.grad, expected_parameter.grad)


def test_a_frozen_model_decoding_with_gradients_on_gives_input_gradients():
    model = make_model().requires_grad_(False)
    cache, _ = prompt_and_state(model)
    embeds = model.model.embed_tokens(torch.tensor([[5], [7]])).clone().requires_grad_(True)
    model(inputs_embeds=embeds, cache=cache.detach(), use_cache=True).logits.sum().backward()
    assert embeds.grad is not None and embeds.grad.abs().sum() > 0
    assert "_transposed_weights" in model.lm_head.__dict__  # no gradient reaches the weights: the copies serve


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_generate_decodes_only_the_newest_token_from_the_state(cell):
    model = make_model(cell)
    seen = []

    def spy(module, args, kwargs):
        seen.append((kwargs["input_ids"].shape[1], kwargs.get("attention_mask") is None))

    handle = model.register_forward_pre_hook(spy, with_kwargs=True)
    prompt = torch.randint(4, VOCAB, (2, 5), generator=torch.Generator().manual_seed(2))
    mask = torch.ones_like(prompt)
    mask[0, :2] = 0  # left padding on the first row: the prompt keeps its mask
    output = model.generate(
        prompt, attention_mask=mask, max_new_tokens=4, min_new_tokens=4, do_sample=False, pad_token_id=0
    )
    handle.remove()
    assert seen[0] == (5, False) and seen[1:] == [(1, True)] * 3
    expected = model.generate(
        prompt,
        attention_mask=mask,
        max_new_tokens=4,
        min_new_tokens=4,
        do_sample=False,
        pad_token_id=0,
        use_cache=False,
    )
    assert torch.equal(output, expected)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_decode_steps_compile_as_one_graph_that_later_steps_reuse(cell):
    # Dynamo refuses any access to an nn.LSTM/GRU unless allowed; the step only reads the module's weights. The
    # position (the cache's token count) changes every step: after one recompilation it must be symbolic, not fixed.
    model = make_model(cell)
    cache, _ = prompt_and_state(model)
    tokens = torch.tensor([[5, 6, 8, 9, 11], [7, 4, 4, 12, 30]])
    expected, eager_cache = [], cache.detach()
    with torch.no_grad():
        for position in range(tokens.shape[1]):
            output = model(tokens[:, position : position + 1], cache=eager_cache, use_cache=True)
            expected.append(output.logits[:, 0])
    torch._dynamo.reset()
    limits = {"allow_rnn": True, "recompile_limit": 2, "fail_on_recompile_limit_hit": True}
    with torch._dynamo.config.patch(**limits), torch.no_grad():
        compiled, compiled_cache = torch.compile(model, fullgraph=True, backend="eager"), cache.detach()
        for position in range(tokens.shape[1]):
            output = compiled(tokens[:, position : position + 1], cache=compiled_cache, use_cache=True)
            torch.testing.assert_close(output.logits[:, 0], expected[position])
    torch._dynamo.reset()
    assert compiled_cache.get_seq_length() == cache.get_seq_length() + tokens.shape[1]
