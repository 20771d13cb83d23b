"""`hf_seq.onnx_export`: onnxruntime's outputs equal PyTorch's (atol 1e-4) on left- and right-padded batches for every
family and head, and a decode loop in onnxruntime (the recurrent state fed back at each step) writes the tokens of
PyTorch's greedy generate. Skipped when onnx or onnxruntime is not installed (`pip install onnx onnxruntime`)."""

import numpy as np
import pytest
import torch

from tests.test_prediction import save_model, tokenizer  # noqa: F401  (tokenizer is a fixture)


pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from hf_seq.models.recurrent.cache_recurrent import RecurrentCache, cache_of  # noqa: E402
from hf_seq.onnx_export import export_onnx, greedy_generate, onnx_session, padded_batch, run_onnx  # noqa: E402


ATOL = 1e-4
FAMILIES = ["rnn", "lstm", "gru", "transformer"]
TASKS = ["text-generation", "text-classification", "token-classification"]
LENGTHS = [7, 2, 5, 1]


def _export(tmp_path, tokenizer, family, task, with_cache=True, **overrides):  # noqa: F811
    folder, model = save_model(tmp_path / "model", tokenizer, family, task, **overrides)
    export = export_onnx(folder, tmp_path / "onnx", with_cache=with_cache, check=False)
    assert export.task == task
    return model, onnx_session(export.onnx_path)


def _largest_difference(got, expected):
    return float(np.abs(np.asarray(got) - np.asarray(expected)).max())


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("family", FAMILIES)
def test_onnxruntime_outputs_equal_pytorch_on_padded_batches(tmp_path, tokenizer, family, task):  # noqa: F811
    model, session = _export(tmp_path, tokenizer, family, task)
    for seed, padding_side in enumerate(["right", "left"]):
        input_ids, attention_mask = padded_batch(model.config, LENGTHS, padding_side, seed=seed)
        if task == "text-generation" and family != "transformer":
            _check_recurrent_language_model(model, session, input_ids, attention_mask, seed)
            continue
        arguments = {"use_cache": False} if task == "text-generation" else {}
        with torch.no_grad():
            expected = model(input_ids=input_ids, attention_mask=attention_mask, **arguments).logits.numpy()
        got = run_onnx(session, input_ids.numpy(), attention_mask.numpy())["logits"]
        assert got.shape == expected.shape
        if task != "text-classification":
            real = attention_mask.bool().numpy()
            got, expected = got[real], expected[real]  # what a model puts at padding is not compared
        assert _largest_difference(got, expected) < ATOL, padding_side


@pytest.mark.parametrize("family", FAMILIES)
def test_an_exported_language_model_stores_its_tied_output_layer_once(tmp_path, tokenizer, family):  # noqa: F811
    """No constant folded from the tied output layer, nor the model's decode-time copy of it (made by a generate()
    before the export), enters the graph: the embedding's weight serves both."""
    import onnx

    from hf_seq.onnx_export import export_model

    folder, model = save_model(tmp_path / "model", tokenizer, family, "text-generation")
    model.generate(torch.tensor([[5, 6, 7]]), max_new_tokens=2, do_sample=False)  # makes the decode-time copies
    export_model(model, "text-generation", str(tmp_path / "model.onnx"))
    vocabulary_sized = [
        list(tensor.dims)
        for tensor in onnx.load(str(tmp_path / "model.onnx")).graph.initializer
        if len(tensor.dims) > 1 and model.config.vocab_size in tensor.dims
    ]
    assert vocabulary_sized == [list(model.lm_head.weight.shape)]


@torch.no_grad()
def _check_recurrent_language_model(model, session, input_ids, attention_mask, seed):
    """Logits and the new state, from a state carried over from a previous text (not zeros)."""
    generator = torch.Generator().manual_seed(seed)
    hidden = torch.randn(2, input_ids.shape[0], 8, generator=generator)
    cell = torch.randn(hidden.shape, generator=generator) if model.config.rnn_type == "LSTM" else None
    cache = RecurrentCache.from_state(hidden.clone(), None if cell is None else cell.clone())
    expected = model(input_ids=input_ids, attention_mask=attention_mask, cache=cache, use_cache=True)
    state = {"past_hidden": hidden.numpy(), **({"past_cell": cell.numpy()} if cell is not None else {})}
    got = run_onnx(session, input_ids.numpy(), attention_mask.numpy(), state)
    assert _largest_difference(got["present_hidden"], cache_of(expected).hidden) < ATOL
    if cell is not None:
        assert _largest_difference(got["present_cell"], cache_of(expected).cell) < ATOL
    real = attention_mask.bool().numpy()
    assert _largest_difference(got["logits"][real], expected.logits.numpy()[real]) < ATOL


@pytest.mark.parametrize(
    "family, task, overrides",
    [
        ("lstm", "text-classification", {"bidirectional": True, "pooling": "concat"}),
        ("gru", "text-classification", {"reading_direction": "backward", "pooling": "max"}),
        ("lstm", "token-classification", {"bidirectional": True}),
        ("gru", "token-classification", {"bidirectional": True, "ngram_orders": [2, 3], "ngram_buckets": 101}),
        ("transformer", "text-classification", {"pooling": "cls", "position_embedding_type": "learned"}),
        ("transformer", "text-classification", {"pooling": "cls", "bidirectional": True}),
        ("transformer", "token-classification", {"bidirectional": True}),
    ],
)
def test_bidirectional_backward_and_pooled_classifiers_export_too(tmp_path, tokenizer, family, task, overrides):  # noqa: F811
    model, session = _export(tmp_path, tokenizer, family, task, **overrides)
    for seed, padding_side in enumerate(["left", "right"]):
        input_ids, attention_mask = padded_batch(model.config, LENGTHS, padding_side, seed=seed)
        with torch.no_grad():
            expected = model(input_ids=input_ids, attention_mask=attention_mask).logits.numpy()
        got = run_onnx(session, input_ids.numpy(), attention_mask.numpy())["logits"]
        if task == "token-classification":
            real = attention_mask.bool().numpy()
            got, expected = got[real], expected[real]
        assert _largest_difference(got, expected) < ATOL


@pytest.mark.parametrize("family, with_cache", [(family, True) for family in FAMILIES] + [("transformer", False)])
def test_a_decode_loop_in_onnxruntime_writes_pytorchs_greedy_tokens(tmp_path, tokenizer, family, with_cache):  # noqa: F811
    model, session = _export(tmp_path, tokenizer, family, "text-generation", with_cache=with_cache)
    input_ids, attention_mask = padded_batch(model.config, [6, 2, 4], "left", seed=3)
    settings = {"pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id}
    with torch.no_grad():
        expected = model.generate(
            input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=8, do_sample=False, **settings
        )[:, input_ids.shape[1] :]
    got = greedy_generate(session, input_ids.numpy(), attention_mask.numpy(), 8, **settings)
    assert got.tolist() == expected.tolist()


@pytest.mark.parametrize("position_embedding_type", ["rotary", "learned"])
def test_the_transformer_cache_continues_a_left_padded_batch(tmp_path, tokenizer, position_embedding_type):  # noqa: F811
    model, session = _export(
        tmp_path, tokenizer, "transformer", "text-generation", position_embedding_type=position_embedding_type
    )
    names = [graph_input.name for graph_input in session.get_inputs()]
    assert names == ["input_ids", "attention_mask", "past_key_0", "past_value_0", "past_key_1", "past_value_1"]
    input_ids, attention_mask = padded_batch(model.config, LENGTHS, "left", seed=4)
    first = run_onnx(session, input_ids[:, :-2].numpy(), attention_mask[:, :-2].numpy())  # an empty cache
    cache = {name.replace("present_", "past_"): value for name, value in first.items() if name != "logits"}
    second = run_onnx(session, input_ids[:, -2:].numpy(), attention_mask.numpy(), cache)
    with torch.no_grad():
        expected = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits.numpy()
    real = attention_mask[:, -2:].bool().numpy()  # the model's output at a padded position is not compared
    assert _largest_difference(second["logits"][real], expected[:, -2:][real]) < ATOL
    assert second["present_key_0"].shape[2] == input_ids.shape[1]


def test_the_recurrent_state_is_an_input_and_an_output(tmp_path, tokenizer):  # noqa: F811
    _, session = _export(tmp_path, tokenizer, "lstm", "text-generation")
    inputs = {graph_input.name: graph_input.shape for graph_input in session.get_inputs()}
    outputs = [graph_output.name for graph_output in session.get_outputs()]
    assert list(inputs) == ["input_ids", "attention_mask", "past_hidden", "past_cell"]
    assert inputs["past_hidden"][0] == 2 and inputs["past_hidden"][2] == 8  # (layers, batch, hidden_size)
    assert outputs == ["logits", "present_hidden", "present_cell"]


def test_export_checks_itself_and_saves_the_tokenizer(tmp_path, tokenizer):  # noqa: F811
    from transformers import AutoTokenizer

    folder, _ = save_model(tmp_path / "model", tokenizer, "gru", "text-classification")
    export = export_onnx(folder, tmp_path / "onnx")
    assert export.max_difference is not None and export.max_difference < ATOL
    assert AutoTokenizer.from_pretrained(tmp_path / "onnx").get_vocab() == tokenizer.get_vocab()
    assert (tmp_path / "onnx" / "config.json").is_file()


def test_bad_exports_are_refused(tmp_path, tokenizer):  # noqa: F811
    folder, _ = save_model(tmp_path / "model", tokenizer, "lstm", "text-classification")
    with pytest.raises(ValueError, match="is or holds the model folder"):
        export_onnx(folder, folder, overwrite=True)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("keep", encoding="utf-8")
    with pytest.raises(FileExistsError, match="--overwrite"):
        export_onnx(folder, tmp_path / "taken")
    assert (tmp_path / "taken" / "notes.txt").read_text(encoding="utf-8") == "keep"
    with pytest.raises(ValueError, match="task must be one of"):
        export_onnx(folder, tmp_path / "new", task="summarization")
    seq2seq, _ = save_model(tmp_path / "seq2seq", tokenizer, "seq2seq_rnn", "text2text-generation")
    with pytest.raises(ValueError, match="ONNX export covers causal LMs"):
        export_onnx(seq2seq, tmp_path / "new")
    with pytest.raises(FileNotFoundError, match="model folder not found"):
        export_onnx(str(tmp_path / "missing"), tmp_path / "new")
