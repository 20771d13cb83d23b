"""hf_seq.inspection: numbers checked against known answers; each figure command writes a PNG and its JSON."""

import json
import math

import numpy as np
import pytest
import torch

from hf_seq.inspection import cells, gradients, inspect_cli, pooling, states, trace_recurrent
from hf_seq.inspection.figures import attention_heatmap
from hf_seq.inspection.stepping import recurrent_body
from hf_seq.models.recurrent import cache_of


SAMPLE_REVIEWS = "hf_seq/sample_data/reviews_sample_train.txt"
SAMPLE_NSMC = "hf_seq/sample_data/nsmc_sample_train.txt"


def _scaled_identity_rnn(a: float, hidden_size: int = 6):
    """A tanh RNN with zero input weights and biases and W_hh = a * I: h stays 0, so tanh' = 1 at every step."""
    model = gradients.build_model("rnn_tanh", 20, hidden_size=hidden_size)
    rnn = recurrent_body(model).rnn
    with torch.no_grad():
        for name, parameter in rnn.named_parameters():
            parameter.zero_()
        rnn.weight_hh_l0.copy_(a * torch.eye(hidden_size))
    return model


@pytest.mark.parametrize("a", [0.5, 0.9, 1.2])
def test_tanh_rnn_gradient_shrinks_as_a_to_the_distance(a):
    model = _scaled_identity_rnn(a)
    ids = torch.randint(4, 20, (2, 12))
    # A bare body has no LM head: loss_T = sum(h_T), so |d loss_T / d h_t| = sqrt(hidden) * a^(T - t).
    norms = gradients.recurrent_gradient_norms(recurrent_body(model), ids)
    expected = [math.sqrt(6) * a**d for d in range(12)]
    assert norms == pytest.approx(expected, rel=1e-5)
    assert gradients.ratio(norms, 10, 1) == pytest.approx(a**9, rel=1e-5)


def test_gradient_norms_by_distance_with_an_lm_head_follow_the_same_power():
    model = _scaled_identity_rnn(0.8)
    windows = torch.randint(4, 20, (3, 11))
    norms = gradients.gradient_norms(model, windows)  # cross-entropy at T: a different scale, the same decay
    assert len(norms) == 10
    assert [n / norms[0] for n in norms] == pytest.approx([0.8**d for d in range(10)], rel=1e-5)


def test_transformer_gradient_norms_reach_every_position():
    model = gradients.build_model("transformer", 30, hidden_size=16)
    norms = gradients.gradient_norms(model, torch.randint(4, 30, (2, 9)))
    assert len(norms) == 8 and all(math.isfinite(n) and n > 0 for n in norms)


@pytest.mark.parametrize("cell", ["rnn_relu", "lstm", "gru"])
def test_step_by_step_trace_reproduces_the_fused_layers(cell):
    model = gradients.build_model(cell, 30, hidden_size=8, num_hidden_layers=2, initializer="xavier", seed=1)
    ids = torch.randint(4, 30, (2, 7))
    with torch.no_grad():
        fused = recurrent_body(model)(input_ids=ids, output_hidden_states=True, use_cache=True)
        traces = trace_recurrent(model, ids)
    for layer, trace in enumerate(traces):
        torch.testing.assert_close(trace.hidden, fused.hidden_states[layer + 1], rtol=1e-5, atol=1e-6)
    final = cache_of(fused).as_tuple()
    final_hidden = final[0] if isinstance(final, tuple) else final
    torch.testing.assert_close(torch.stack([t.hidden[:, -1] for t in traces]), final_hidden, rtol=1e-5, atol=1e-6)
    if cell == "lstm":
        torch.testing.assert_close(torch.stack([t.cell[:, -1] for t in traces]), final[1], rtol=1e-5, atol=1e-6)
    for trace in traces:
        for name, gate in trace.gates.items():
            if name != "candidate":  # the sigmoid gates; the candidate is a tanh in (-1, 1)
                assert bool(((gate > 0) & (gate < 1)).all()), name
    expected_gates = {
        "rnn_relu": set(),
        "lstm": {"input", "forget", "candidate", "output"},
        "gru": {"reset", "update", "candidate"},
    }[cell]
    assert set(traces[0].gates) == expected_gates


def test_attention_rows_sum_to_one_and_padding_gets_none():
    model = gradients.build_model("transformer", 30, hidden_size=16)
    ids = torch.randint(4, 30, (2, 6))
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
    attentions = states.transformer_attentions(model, ids, mask)
    assert attentions.shape == (2, 2, 4, 6, 6)  # layers, batch, heads, target, source
    torch.testing.assert_close(attentions.sum(-1), torch.ones(2, 2, 4, 6))
    assert float(attentions[:, 1, :, :, 4:].abs().max()) == 0.0  # padded keys
    assert float(torch.triu(attentions[:, 0], diagonal=1).abs().max()) == 0.0  # causal: no look ahead


def test_attention_heatmap_takes_any_target_by_source_matrix():
    figure = attention_heatmap(np.full((2, 3), 1 / 3), ["a", "b"], ["x", "y", "z"])
    assert figure is not None
    with pytest.raises(ValueError, match="do not match"):
        attention_heatmap(np.ones((2, 3)), ["a", "b", "c"], ["x", "y", "z"])


def test_character_properties_known_answer():
    found = cells.character_properties('a"bc"(dㅋㅋㅋ)e')
    assert found["inside_quotes"].tolist() == [0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    assert found["inside_brackets"].tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0]
    assert found["after_laugh"].tolist() == [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0]
    assert found["position"][-1] == 1.0


def test_mark_rich_lines_pair_each_marked_review_with_the_next_plain_one():
    lines = ["a", 'b "q"', "c", "d", "(e)", "f", "g <h>"]
    assert cells.mark_rich_lines(lines) == ['b "q"', "a", "(e)", "c", "g <h>", "d"]
    assert cells.mark_rich_lines(["x", "y"]) == []


def test_pearson_finds_the_unit_that_is_the_property():
    generator = np.random.default_rng(0)
    target = (generator.random(200) > 0.5).astype(float)
    states_matrix = generator.normal(size=(200, 5))
    states_matrix[:, 3] = 2 * target - 1
    r = cells.pearson_by_unit(states_matrix, target)
    assert r[3] == pytest.approx(1.0) and np.abs(r[[0, 1, 2, 4]]).max() < 0.3
    assert cells.pearson_by_unit(np.ones((4, 2)), np.array([0.0, 1, 0, 1])).tolist() == [0.0, 0.0]


def test_cell_states_align_with_characters():
    lines = ["좋아 ㅋㅋ", '"최고" (진짜)']
    tokenizer = cells.char_tokenizer(lines)
    model = gradients.build_model("lstm", len(tokenizer), hidden_size=4)
    matrix, properties, layout = cells.cell_states_and_properties(model, tokenizer, lines)
    assert [c for c, _ in layout[0]] == list(lines[0]) and [c for c, _ in layout[1]] == list(lines[1])
    assert matrix.shape == (len(lines[0]) + len(lines[1]), 4)
    assert properties["inside_quotes"].sum() == 3  # ", 최, 고


def test_pooling_split_never_touches_the_test_file():
    texts, labels = pooling.read_nsmc(SAMPLE_NSMC)
    (train, _), (valid, _) = pooling.split_train(texts, labels, 0.1, seed=0)
    assert len(train) + len(valid) == len(texts) and len(valid) == len(texts) - int(len(texts) * 0.9)


def _written(folder, name):
    png, data = folder / f"{name}.png", folder / f"{name}.json"
    assert png.stat().st_size > 1000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return json.loads(data.read_text(encoding="utf-8"))


def test_states_and_attention_commands_write_png_and_json(tmp_path):
    assert (
        inspect_cli(
            [
                "states",
                "--output-dir",
                str(tmp_path),
                "--cell",
                "gru",
                "--hidden-size",
                "8",
                "--num-hidden-layers",
                "1",
                "--text",
                "좋아 ㅋㅋ",
            ]
        )
        == 0
    )
    data = _written(tmp_path, "states")
    assert data["rnn_type"] == "GRU" and len(data["layers"][0]["gates"]["update"]) == len(data["tokens"])
    assert inspect_cli(["attention", "--output-dir", str(tmp_path), "--hidden-size", "8", "--text", "좋아"]) == 0
    data = _written(tmp_path, "attention")
    assert np.allclose(np.asarray(data["attentions"]).sum(-1), 1.0)


def test_gradient_commands_write_png_and_json(tmp_path):
    assert (
        inspect_cli(
            [
                "initializers",
                "--output-dir",
                str(tmp_path),
                "--hidden-size",
                "8",
                "--steps",
                "6",
                "--cells",
                "rnn_tanh,lstm",
            ]
        )
        == 0
    )
    data = _written(tmp_path, "initializers")
    assert set(data["norms"]) == set(gradients.INITIALIZERS) and len(data["norms"]["xavier"]["lstm"]) == 6
    assert (
        inspect_cli(
            [
                "gradients",
                "--output-dir",
                str(tmp_path),
                "--train-file",
                SAMPLE_REVIEWS,
                "--max-lines",
                "200",
                "--cells",
                "rnn_tanh,transformer",
                "--hidden-size",
                "8",
                "--steps",
                "6",
                "--train-steps",
                "2",
                "--clip-steps",
                "2",
            ]
        )
        == 0
    )
    data = _written(tmp_path, "gradient_flow")
    assert set(data["trained"]["cells"]) == {"rnn_tanh", "transformer"}
    assert set(data["clipping"]["runs"]) == {"clipped", "unclipped"}


def test_cells_and_pooling_commands_write_png_and_json(tmp_path):
    assert (
        inspect_cli(
            [
                "cells",
                "--output-dir",
                str(tmp_path),
                "--train-file",
                SAMPLE_REVIEWS,
                "--max-lines",
                "120",
                "--num-texts",
                "20",
                "--hidden-size",
                "8",
                "--train-steps",
                "2",
            ]
        )
        == 0
    )
    data = _written(tmp_path, "cells")
    assert set(data["properties"]) == set(cells.PROPERTIES)
    assert "<span" in (tmp_path / "cells.html").read_text(encoding="utf-8")
    assert (
        inspect_cli(
            [
                "pooling",
                "--output-dir",
                str(tmp_path),
                "--train-file",
                SAMPLE_NSMC,
                "--max-train",
                "120",
                "--steps",
                "2",
                "--eval-every",
                "1",
                "--hidden-size",
                "8",
            ]
        )
        == 0
    )
    data = _written(tmp_path, "pooling")
    assert set(data["poolings"]) == set(pooling.POOLINGS)
    assert all(0.0 <= row["valid_accuracy"] <= 1.0 for row in data["poolings"].values())


def test_pooling_variants_include_bidirectional_encoders_and_refuse_unknown_ones():
    assert pooling.VARIANTS["encoder-cls"] == ("cls", True) and pooling.VARIANTS["cls"] == ("cls", False)
    result = pooling.compare_poolings(
        SAMPLE_NSMC, poolings=("encoder-cls",), steps=2, max_train=60, hidden_size=8, eval_every=1
    )
    assert list(result["poolings"]) == ["encoder-cls"]
    with pytest.raises(ValueError, match="Unknown pooling variant.*choose from last, mean"):
        pooling.compare_poolings(SAMPLE_NSMC, poolings=("average",), steps=1, max_train=60)
