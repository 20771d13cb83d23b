import json
import random

import pytest

from hf_seq.spacing import (
    CharacterIds,
    load_spacing_model,
    remove_spaces,
    restore_spacing,
    spacing_pairs,
    spacing_scores,
    train_character_tokenizer,
    train_spacing_tagger,
)
from hf_seq.spacing.tagger import IGNORED, review_weighted_loss
from tests.spacing.conftest import SPACED_TEXTS


def test_character_ids_give_one_id_per_character():
    tokenizer = train_character_tokenizer(["가나 다라"], vocab_size=300)
    ids = CharacterIds(tokenizer)("가나봙다")
    assert len(ids) == 4
    assert ids[2] == tokenizer.unk_token_id  # not in the vocabulary
    assert ids[0] != tokenizer.unk_token_id


def test_the_tagger_learns_its_training_texts(tiny_tagger):
    restored = restore_spacing([remove_spaces(text) for text in SPACED_TEXTS], model=tiny_tagger)
    assert spacing_scores(restored, SPACED_TEXTS)["space_f1"] >= 0.9


def test_the_best_validation_checkpoint_is_saved_with_its_record(tiny_tagger):
    run_info = json.loads((tiny_tagger / "run_info.json").read_text())
    assert {metric["name"] for metric in run_info["metrics"]} == {"space_f1", "char_accuracy", "exact_match"}
    assert not [path for path in tiny_tagger.iterdir() if path.name.startswith("checkpoint-")]
    assert (tiny_tagger / "tokenizer.json").is_file()


def random_text(rng):
    alphabet = "가나다라마바사아자차카타파하ㅋㅎ영화좋다!?.,0123 \t\u3000봙뷁é😀"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))


def test_restore_spacing_never_changes_the_characters(tiny_tagger):
    rng = random.Random(0)
    texts = [random_text(rng) for _ in range(200)] + ["", " ", "가"]
    restored = restore_spacing(texts, model=tiny_tagger, batch_size=7)
    assert len(restored) == len(texts)
    for text, output in zip(texts, restored):
        assert remove_spaces(output) == remove_spaces(text)
        assert "  " not in output and output == output.strip()


def test_restore_spacing_keeps_the_order_and_takes_a_single_string(tiny_tagger):
    model = load_spacing_model(tiny_tagger)
    texts = [remove_spaces(text) for text in SPACED_TEXTS]
    batched = restore_spacing(texts, model=model, batch_size=3)
    assert batched == [restore_spacing(text, model=model) for text in texts]


def test_int8_restores_the_learned_spaces_and_leaves_a_loaded_model_as_it_was(tiny_tagger):
    from torch import nn

    model = load_spacing_model(tiny_tagger)
    quantized = load_spacing_model(model, int8=True)
    assert type(model.model.model.rnn) is nn.GRU  # the caller's model: not quantised under it
    assert not isinstance(quantized.model.model.rnn, nn.RNNBase) and quantized.tokenizer is model.tokenizer
    assert not isinstance(load_spacing_model(tiny_tagger, int8=True).model.model.rnn, nn.RNNBase)
    texts = [remove_spaces(text) for text in SPACED_TEXTS]
    assert restore_spacing(texts, model=quantized) == restore_spacing(texts, model=model) == SPACED_TEXTS
    assert restore_spacing(texts, model=model, int8=True) == SPACED_TEXTS


def test_restore_spacing_names_bad_inputs(tiny_tagger, tmp_path):
    with pytest.raises(FileNotFoundError, match="model folder not found"):
        restore_spacing(["가나"], model=tmp_path / "missing")
    with pytest.raises(TypeError, match=r"texts\[1\] is int"):
        restore_spacing(["가나", 3], model=tiny_tagger)
    with pytest.raises(ValueError, match="batch_size"):
        restore_spacing(["가나"], model=tiny_tagger, batch_size=0)


def test_training_refuses_a_non_empty_output_dir(tmp_path):
    (tmp_path / "kept.txt").write_text("user file")
    with pytest.raises(FileExistsError, match="not empty"):
        train_spacing_tagger(spacing_pairs(SPACED_TEXTS), output_dir=tmp_path)
    assert (tmp_path / "kept.txt").read_text() == "user file"


def test_unknown_cell_is_named(tmp_path):
    with pytest.raises(ValueError, match="unknown cell 'rnn'"):
        train_spacing_tagger(spacing_pairs(SPACED_TEXTS), output_dir=tmp_path / "out", cell="rnn", vocab_size=300)


def test_review_weighted_loss_weighs_every_review_alike():
    import torch

    logits = torch.randn(3, 6, 2, generator=torch.Generator().manual_seed(0))
    labels = torch.full((3, 6), IGNORED)
    labels[0, :5] = torch.tensor([0, 1, 0, 1, 0])  # a review of 5 gaps
    labels[1, 0] = 1  # a review of 1 gap
    # row 2: a text of one character, no gap: it counts for nothing
    per_gap = torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none").view(3, 6)
    loss = review_weighted_loss({"logits": logits}, labels)
    torch.testing.assert_close(loss, (per_gap[0, :5].mean() + per_gap[1, 0]) / 2)
    gap_mean = torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten())
    assert not torch.isclose(loss, gap_mean)
    assert review_weighted_loss({"logits": logits}, torch.full((3, 6), IGNORED)) == 0


def test_unknown_loss_weighting_is_named_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="unknown loss_weighting 'token'"):
        train_spacing_tagger(spacing_pairs(SPACED_TEXTS), output_dir=tmp_path / "out", loss_weighting="token")
    assert not (tmp_path / "out").exists()


def test_training_continues_from_a_saved_tagger(tiny_tagger, tmp_path):
    run = train_spacing_tagger(
        spacing_pairs(SPACED_TEXTS), output_dir=tmp_path / "more", model=tiny_tagger, max_steps=1, batch_size=4
    )
    assert run.model.config.hidden_size == 32  # the saved tagger's size, not the default
    assert json.loads((tmp_path / "more" / "run_info.json").read_text())["base_model"] == str(tiny_tagger)
