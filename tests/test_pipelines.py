"""`transformers.pipeline(task, model=folder)` for every family and head, its outputs checked against the model's own
forward and generate: text-classification, token-classification and text-generation for RNN, LSTM, GRU and the
Transformer; text2text-generation (registered by `hf_seq.prediction`) for the recurrent encoder-decoder."""

import pytest
import torch
from transformers import pipeline

import hf_seq.prediction  # noqa: F401  (registers text2text-generation)
from tests.test_prediction import save_model, tokenizer  # noqa: F401  (tokenizer is a fixture)


FAMILIES = ["rnn", "lstm", "gru", "transformer"]
# Different lengths, so that batch_size=2 pads.
TEXTS = ["좋은 영화", "정말 재미없다 최악이다 진짜 시간 낭비", "배우 연기가 좋았다"]


@pytest.mark.parametrize("family", FAMILIES)
def test_text_classification_scores_are_the_models_softmax(tmp_path, tokenizer, family):  # noqa: F811
    folder, model = save_model(tmp_path / "classifier", tokenizer, family, "text-classification")
    classify = pipeline("text-classification", model=folder, device="cpu")
    results = classify(TEXTS, top_k=None, batch_size=2)
    for text, scores in zip(TEXTS, results):
        with torch.no_grad():
            expected = model(**tokenizer(text, return_tensors="pt")).logits[0].softmax(-1)
        got = {entry["label"]: entry["score"] for entry in scores}
        assert sorted(got) == ["LABEL_0", "LABEL_1", "LABEL_2"]
        torch.testing.assert_close(
            torch.tensor([got[f"LABEL_{index}"] for index in range(3)]), expected, atol=1e-5, rtol=0
        )


@pytest.mark.parametrize("family", FAMILIES)
def test_token_classification_tags_every_token_as_the_model_does(tmp_path, tokenizer, family):  # noqa: F811
    folder, model = save_model(tmp_path / "tagger", tokenizer, family, "token-classification")
    tag = pipeline("token-classification", model=folder, device="cpu")
    results = tag(TEXTS, batch_size=2)
    for text, entities in zip(TEXTS, results):
        encoded = tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            probabilities = model(**encoded).logits[0].softmax(-1)
        real_positions = [
            index
            for index, token in enumerate(encoded["input_ids"][0].tolist())
            if token not in tokenizer.all_special_ids
        ]
        assert [entity["index"] for entity in entities] == real_positions  # the bos is left out
        for entity in entities:
            best = int(probabilities[entity["index"]].argmax())
            assert entity["entity"] == f"LABEL_{best}"
            assert abs(float(entity["score"]) - float(probabilities[entity["index"], best])) < 1e-5


def _without_padding(ids, tokenizer):  # noqa: F811
    """Ids without the left padding of a shorter prompt in its batch, nor the padding after a row's eos."""
    ids = list(ids.tolist() if hasattr(ids, "tolist") else ids)
    while ids and ids[0] == tokenizer.pad_token_id:
        ids.pop(0)
    while ids and ids[-1] == tokenizer.pad_token_id:
        ids.pop()
    return ids


@pytest.mark.parametrize("family", FAMILIES)
def test_text_generation_gives_the_tokens_generate_gives(tmp_path, tokenizer, family):  # noqa: F811
    folder, model = save_model(tmp_path / "lm", tokenizer, family, "text-generation")
    generate = pipeline("text-generation", model=folder, device="cpu")
    settings = {"max_new_tokens": 5, "do_sample": False}
    results = generate(TEXTS, batch_size=2, return_tensors=True, **settings)  # left-padded batches
    for text, (result,) in zip(TEXTS, results):
        input_ids = tokenizer(text, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            expected = model.generate(input_ids=input_ids, pad_token_id=tokenizer.pad_token_id, **settings)[0]
        assert _without_padding(result["generated_token_ids"], tokenizer) == _without_padding(expected, tokenizer)
    (single,) = generate(TEXTS[0], **settings)
    prompt = tokenizer(TEXTS[0], return_tensors="pt")
    with torch.no_grad():
        expected = model.generate(**prompt, **settings)[0]
    # The pipeline gives the prompt, then the new tokens decoded on their own; the Metaspace decoder drops a text's
    # leading space, so a first new token that starts a word is joined to the prompt's last word.
    new_tokens = expected[prompt["input_ids"].shape[-1] :]
    assert single["generated_text"] == TEXTS[0] + tokenizer.decode(new_tokens, skip_special_tokens=True)


def test_text2text_generation_runs_the_recurrent_encoder_decoder(tmp_path, tokenizer):  # noqa: F811
    folder, model = save_model(tmp_path / "seq2seq", tokenizer, "seq2seq_rnn", "text2text-generation")
    rewrite = pipeline("text2text-generation", model=folder, device="cpu")
    results = rewrite(TEXTS, max_new_tokens=5, batch_size=2)
    for text, (result,) in zip(TEXTS, results):
        input_ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            expected = model.generate(input_ids=input_ids, max_new_tokens=5, do_sample=False)[0]
        assert result["generated_text"] == tokenizer.decode(expected, skip_special_tokens=True)
