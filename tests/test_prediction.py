"""`hf_seq.prediction.predict`: every head on a file, batched by length, its outputs equal to the model's own on each
text alone, in input order; ensembles, input formats and the errors for bad inputs.

`save_model` (tiny models of every family and head, saved with a tokenizer) is shared with the pipeline, ONNX and
command-line tests.
"""

import json
import os

import pytest
import torch
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
)

import hf_seq
from hf_seq.data import sample_data_path
from hf_seq.prediction import format_rows, length_sorted_batches, predict, read_inputs
from tokenizer_training import model_config_kwargs, train_tokenizer


FAMILIES = {
    "rnn": hf_seq.RNNConfig,
    "lstm": hf_seq.LSTMConfig,
    "gru": hf_seq.GRUConfig,
    "transformer": hf_seq.TransformerLMConfig,
}
HEADS = {
    "text-classification": AutoModelForSequenceClassification,
    "token-classification": AutoModelForTokenClassification,
    "text-generation": AutoModelForCausalLM,
}
# Texts of different lengths (so batches are padded), an empty one among them.
TEXTS = ["좋은 영화", "정말 재미없다 최악이다 진짜 시간 낭비", "", "배우 연기가 좋았다", "그냥 그래"]


def tiny_config(tokenizer, family, num_labels=3, **overrides):
    """A config of `family` sized for `tokenizer`, small, without dropout, with wide weights (sharp outputs: no
    near-ties between classes or tokens)."""
    settings = {**model_config_kwargs(tokenizer), "hidden_size": 8, "num_labels": num_labels, "initializer_range": 0.5}
    if family == "seq2seq_rnn":
        settings.update(
            embedding_size=8, encoder_layers=1, decoder_layers=1, decoder_start_token_id=tokenizer.bos_token_id
        )
        settings.update(embedding_dropout=0.0, dropout=0.0, output_dropout=0.0)
        settings.pop("num_labels")
        return hf_seq.Seq2SeqRNNConfig(**{**settings, **overrides})
    if family == "transformer":
        settings.update(num_attention_heads=2, num_hidden_layers=2, intermediate_size=16)
        settings.update(embedding_dropout=0.0, attention_dropout=0.0, hidden_dropout=0.0)
    else:
        settings.update(embedding_size=8, num_hidden_layers=2, embedding_dropout=0.0, dropout=0.0, output_dropout=0.0)
    return FAMILIES[family](**{**settings, **overrides})


def save_model(directory, tokenizer, family, task, seed=0, **overrides):
    """A tiny model of `family` ("rnn", "lstm", "gru", "transformer", or "seq2seq_rnn" for text2text-generation)
    with the head of `task`, saved with `tokenizer` in `directory`; returns (folder, model in eval mode)."""
    torch.manual_seed(seed)
    config = tiny_config(tokenizer, family, **overrides)
    auto_class = AutoModelForSeq2SeqLM if family == "seq2seq_rnn" else HEADS[task]
    model = auto_class.from_config(config).eval()
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return str(directory), model


@pytest.fixture(scope="session")
def tokenizer():
    with open(sample_data_path("reviews_sample_train.txt"), encoding="utf-8") as handle:
        texts = handle.read().splitlines()[:500]
    return train_tokenizer(texts=texts, vocab_size=600, limit_alphabet=200)


def _config_dropout_free(config):
    return all(getattr(config, name, 0.0) == 0.0 for name in ("dropout", "embedding_dropout", "output_dropout"))


def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


def nsmc_file(tmp_path, texts=TEXTS):
    rows = ["id\tdocument\tlabel", *(f"{100 + index}\t{text}\t{index % 2}" for index, text in enumerate(texts))]
    return write_lines(tmp_path / "reviews.txt", rows)


@torch.no_grad()
def own_probabilities(model, tokenizer, text):
    ids = tokenizer(text)["input_ids"] or [tokenizer.unk_token_id]
    return model(input_ids=torch.tensor([ids])).logits[0].softmax(-1)


@pytest.mark.parametrize("family", ["lstm", "transformer"])
def test_classification_rows_are_the_models_own_probabilities_in_input_order(tmp_path, tokenizer, family):
    folder, model = save_model(tmp_path / "classifier", tokenizer, family, "text-classification")
    assert _config_dropout_free(model.config)
    result = predict(folder, nsmc_file(tmp_path), batch_size=2, show_progress=False)  # batches of 2: padding

    assert result.task == "text-classification"
    assert result.columns == ["id", "label", "prob_LABEL_0", "prob_LABEL_1", "prob_LABEL_2"]
    assert [row["id"] for row in result.rows] == [str(100 + index) for index in range(len(TEXTS))]
    for text, row in zip(TEXTS, result.rows):
        expected = own_probabilities(model, tokenizer, text)
        got = torch.tensor([row[f"prob_LABEL_{index}"] for index in range(3)])
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
        assert row["label"] == int(expected.argmax())
    assert result.seconds > 0 and result.texts_per_second > 0


@pytest.mark.parametrize("task", ["text-classification", "token-classification"])
def test_int8_rows_are_the_quantised_models_own_outputs(tmp_path, tokenizer, task):
    import copy

    from hf_seq.quantization import quantize_dynamic_int8

    folder, model = save_model(tmp_path / "model", tokenizer, "lstm", task)
    quantized = quantize_dynamic_int8(copy.deepcopy(model))
    texts = [text for text in TEXTS if text]
    fp32 = predict(folder, write_lines(tmp_path / "texts.txt", texts), show_progress=False)
    # Batches of one: dynamic int8 scales activations per batch, so a text's outputs move slightly with its batch.
    int8 = predict(folder, str(tmp_path / "texts.txt"), int8=True, batch_size=1, show_progress=False)
    if task == "token-classification":
        assert [row["tokens"] for row in int8.rows] == [row["tokens"] for row in fp32.rows]
        return
    for text, row, fp32_row in zip(texts, int8.rows, fp32.rows):
        got = torch.tensor([row[f"prob_LABEL_{index}"] for index in range(3)])
        torch.testing.assert_close(got, own_probabilities(quantized, tokenizer, text), atol=1e-5, rtol=0)
        assert got.tolist() != [fp32_row[f"prob_LABEL_{index}"] for index in range(3)]  # int8 did run


def test_int8_refuses_a_gpu(tmp_path, tokenizer, monkeypatch):
    folder, _ = save_model(tmp_path / "classifier", tokenizer, "lstm", "text-classification")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(ValueError, match="int8 inference runs on the CPU.*give device='cpu'"):
        predict(folder, nsmc_file(tmp_path), int8=True, device="cuda", show_progress=False)


def test_nsmc_output_with_class_names_and_columns_is_exactly_id_label_prob_positive(tmp_path, tokenizer):
    folder, model = save_model(tmp_path / "classifier", tokenizer, "gru", "text-classification", num_labels=2)
    output = tmp_path / "predictions.tsv"
    predict(
        folder,
        nsmc_file(tmp_path),
        output,
        class_names=["negative", "positive"],
        columns=["id", "label", "prob_positive"],
        show_progress=False,
    )
    header, *rows = output.read_text(encoding="utf-8").splitlines()
    assert header == "id\tlabel\tprob_positive"
    assert len(rows) == len(TEXTS)
    for text, row in zip(TEXTS, rows):
        identifier, label, probability = row.split("\t")
        positive = float(own_probabilities(model, tokenizer, text)[1])
        assert abs(float(probability) - positive) < 1e-5
        assert label == str(int(positive > 0.5))


def test_an_ensemble_averages_its_members_probabilities(tmp_path, tokenizer):
    first, first_model = save_model(tmp_path / "a", tokenizer, "lstm", "text-classification", seed=0)
    second, second_model = save_model(tmp_path / "b", tokenizer, "transformer", "text-classification", seed=1)
    result = predict([first, second], nsmc_file(tmp_path), label_names=True, show_progress=False)
    for text, row in zip(TEXTS, result.rows):
        expected = (
            own_probabilities(first_model, tokenizer, text) + own_probabilities(second_model, tokenizer, text)
        ) / 2
        got = torch.tensor([row[f"prob_LABEL_{index}"] for index in range(3)])
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
        assert row["label"] == f"LABEL_{int(expected.argmax())}"


def test_subword_samples_average_dropout_segmentations_into_probabilities(tmp_path, tokenizer):
    folder, _ = save_model(tmp_path / "classifier", tokenizer, "lstm", "text-classification")
    exact = predict(folder, nsmc_file(tmp_path), show_progress=False)
    sampled = predict(folder, nsmc_file(tmp_path), subword_samples=3, subword_dropout=0.5, show_progress=False)
    probabilities = torch.tensor([[row[f"prob_LABEL_{i}"] for i in range(3)] for row in sampled.rows])
    torch.testing.assert_close(probabilities.sum(-1), torch.ones(len(TEXTS)), atol=1e-5, rtol=0)
    exact_probabilities = torch.tensor([[row[f"prob_LABEL_{i}"] for i in range(3)] for row in exact.rows])
    assert not torch.allclose(probabilities, exact_probabilities)  # other segmentations were averaged in


@pytest.mark.parametrize("family", ["gru", "transformer"])
def test_token_classification_tags_each_word_by_its_first_sub_token(tmp_path, tokenizer, family):
    folder, model = save_model(tmp_path / "tagger", tokenizer, family, "token-classification")
    words_file = tmp_path / "words.jsonl"
    lines = [json.dumps({"tokens": text.split()}, ensure_ascii=False) for text in TEXTS]
    result = predict(folder, write_lines(words_file, lines), batch_size=2, show_progress=False)
    assert result.columns == ["tokens", "tags"]
    for text, row in zip(TEXTS, result.rows):
        words = text.split()
        assert row["tokens"] == words
        if not words:
            assert row["tags"] == []
            continue
        encoding = tokenizer(words, is_split_into_words=True)
        with torch.no_grad():
            predicted = model(input_ids=torch.tensor([encoding["input_ids"]])).logits[0].argmax(-1).tolist()
        expected, seen = [], set()
        for position, word in enumerate(encoding.word_ids()):
            if word is not None and word not in seen:
                seen.add(word)
                expected.append(f"LABEL_{predicted[position]}")
        assert row["tags"] == expected


@pytest.mark.parametrize("family", ["lstm", "rnn", "transformer"])
def test_generation_continues_each_prompt_as_generate_does_alone(tmp_path, tokenizer, family):
    folder, model = save_model(tmp_path / "lm", tokenizer, family, "text-generation")
    prompts = write_lines(tmp_path / "prompts.txt", TEXTS)
    result = predict(folder, prompts, max_new_tokens=6, batch_size=3, show_progress=False)  # left-padded batches
    assert result.columns == ["generated_text"]
    for text, row in zip(TEXTS, result.rows):
        input_ids = torch.tensor([tokenizer(text)["input_ids"]])
        with torch.no_grad():
            output = model.generate(input_ids=input_ids, max_new_tokens=6, do_sample=False, pad_token_id=0)
        assert row["generated_text"] == tokenizer.decode(output[0, input_ids.shape[1] :], skip_special_tokens=True)


def test_seq2seq_generation_writes_each_sources_output(tmp_path, tokenizer):
    folder, model = save_model(tmp_path / "seq2seq", tokenizer, "seq2seq_rnn", "text2text-generation")
    pairs = tmp_path / "pairs.tsv"
    write_lines(pairs, ["source\ttarget", *(f"{text}\tx" for text in TEXTS if text)])
    result = predict(folder, str(pairs), max_new_tokens=5, batch_size=2, show_progress=False)
    for text, row in zip([text for text in TEXTS if text], result.rows):
        input_ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            output = model.generate(input_ids=input_ids, max_new_tokens=5, do_sample=False)
        assert row["generated_text"] == tokenizer.decode(output[0], skip_special_tokens=True)


def test_int8_seq2seq_generation_is_the_quantised_models_own(tmp_path, tokenizer):
    import copy

    from hf_seq.quantization import quantize_dynamic_int8

    folder, model = save_model(tmp_path / "seq2seq", tokenizer, "seq2seq_rnn", "text2text-generation")
    quantized = quantize_dynamic_int8(copy.deepcopy(model))
    texts = [text for text in TEXTS if text]
    # Batches of one: dynamic int8 scales activations per batch.
    result = predict(folder, write_lines(tmp_path / "texts.txt", texts), int8=True, max_new_tokens=5, batch_size=1)
    for text, row in zip(texts, result.rows):
        input_ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            output = quantized.generate(input_ids=input_ids, max_new_tokens=5, do_sample=False)
        assert row["generated_text"] == tokenizer.decode(output[0], skip_special_tokens=True)


def test_length_sorted_batches_put_the_longest_first_and_cover_every_index():
    batches = length_sorted_batches([3, 9, 1, 5, 7], batch_size=2)
    assert batches == [[1, 4], [3, 0], [2]]


def test_input_formats_plain_text_tsv_and_jsonl(tmp_path):
    plain = write_lines(tmp_path / "plain.txt", ["첫째", "", "셋째"])
    assert read_inputs(plain).texts == ["첫째", "", "셋째"]  # an empty line is an empty text
    tsv = write_lines(tmp_path / "table.txt", ["\ufeffid\tdocument\tlabel", "a\t첫째\t1", "", "b\t둘째\t0"])
    inputs = read_inputs(tsv)
    assert (inputs.texts, inputs.ids, inputs.id_column) == (["첫째", "둘째"], ["a", "b"], "id")
    jsonl = write_lines(tmp_path / "rows.jsonl", ['{"key": 7, "text": "첫째"}', '{"key": 8, "text": "둘째"}'])
    inputs = read_inputs(jsonl, id_column="key")
    assert (inputs.texts, inputs.ids) == (["첫째", "둘째"], [7, 8])


def test_jsonl_output_and_a_refused_existing_file(tmp_path, tokenizer):
    folder, _ = save_model(tmp_path / "classifier", tokenizer, "lstm", "text-classification")
    output = tmp_path / "out.jsonl"
    output.write_text("keep me\n", encoding="utf-8")
    with pytest.raises(FileExistsError, match="--overwrite"):
        predict(folder, nsmc_file(tmp_path), output, show_progress=False)
    assert output.read_text(encoding="utf-8") == "keep me\n"
    result = predict(folder, nsmc_file(tmp_path), output, overwrite=True, show_progress=False)
    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert rows == [json.loads(line) for line in format_rows(result, "jsonl")]
    assert [row["id"] for row in rows] == [str(100 + index) for index in range(len(TEXTS))]


@pytest.mark.parametrize(
    "lines, message",
    [
        (["id\tdocument", "1\tone\textra"], "line 2 has 3 tab-separated fields, expected 2"),
        (["id\treview", "1\tone"], "give --text_column"),
        (["a\tb"], "none of the text columns"),
    ],
)
def test_bad_tsv_inputs_are_named(tmp_path, lines, message):
    with pytest.raises(ValueError, match=message):
        read_inputs(write_lines(tmp_path / "bad.txt", lines))


def test_bad_inputs_and_settings_are_refused_before_loading(tmp_path, tokenizer):
    folder, _ = save_model(tmp_path / "lm", tokenizer, "lstm", "text-generation")
    texts = write_lines(tmp_path / "texts.txt", TEXTS)
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match="not UTF-8 text: invalid byte 0xe9 on line 1"):
        predict(folder, str(tmp_path / "latin1.txt"), show_progress=False)
    with pytest.raises(FileNotFoundError, match="input file not found"):
        predict(folder, str(tmp_path / "missing.txt"), show_progress=False)
    with pytest.raises(ValueError, match="batch_size must be a whole number >= 1"):
        predict(folder, texts, batch_size=0, show_progress=False)
    with pytest.raises(ValueError, match="subword_samples applies to sequence classifiers"):
        predict(folder, texts, subword_samples=2, show_progress=False)
    with pytest.raises(ValueError, match="ensemble of sequence classifiers"):
        predict([folder, folder], texts, show_progress=False)
    with pytest.raises(ValueError, match="the output file is the input file"):
        predict(folder, texts, texts, overwrite=True, show_progress=False)
    with pytest.raises(ValueError, match="no output column"):
        predict(folder, texts, columns=["label"], show_progress=False)
    with pytest.raises(ValueError, match="unknown device 'gpu': give cpu, cuda or cuda:N"):
        predict(folder, texts, device="gpu", show_progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no usable GPU: give --device cpu"):
            predict(folder, texts, device="cuda", show_progress=False)
    assert os.path.isfile(texts)
