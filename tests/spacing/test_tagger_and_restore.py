import itertools
import json
import random

import numpy as np
import pytest
import torch

from hf_seq.spacing import (
    CharacterIds,
    load_spacing_model,
    remove_spaces,
    restore_spacing,
    space_probabilities,
    spaced_text,
    spacing_pairs,
    spacing_scores,
    train_character_tokenizer,
    train_spacing_tagger,
)
from hf_seq.spacing.restore import expected_f1_spaces
from hf_seq.spacing.tagger import IGNORED, distillation_loss, review_weighted_loss, teacher_ids
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


def test_space_probabilities_are_the_gaps_argmax_spaces(tiny_tagger):
    model = load_spacing_model(tiny_tagger)
    rng = random.Random(1)
    texts = SPACED_TEXTS + [random_text(rng) for _ in range(40)] + ["", "가"]
    probabilities = space_probabilities(texts, model=model, batch_size=5)
    restored = restore_spacing(texts, model=model, batch_size=5)
    assert len(probabilities) == len(texts)
    for text, row, output in zip(texts, probabilities, restored):
        characters = remove_spaces(text)
        assert len(row) == len(characters) and all(0.0 <= value <= 1.0 for value in row)
        assert spaced_text(characters, [value > 0.5 for value in row]) == output
    assert space_probabilities(SPACED_TEXTS[0], model=model) == pytest.approx(probabilities[0], abs=1e-5)  # one row


def test_space_probabilities_name_bad_inputs(tiny_tagger):
    with pytest.raises(TypeError, match=r"texts\[1\] is int, not a string"):
        space_probabilities(["가나", 3], model=tiny_tagger)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        space_probabilities(["가나"], model=tiny_tagger, batch_size=0)


def approximate_expected_f1(probabilities, chosen):
    """2 * (the chosen gaps' probabilities) / (how many are chosen + all gaps' probabilities); none chosen: the
    probability that no gap is a space."""
    if not chosen:
        return float(np.prod([1 - p for p in probabilities]))
    return 2 * sum(probabilities[gap] for gap in chosen) / (len(chosen) + sum(probabilities))


def test_expected_f1_spaces_pick_the_best_set_of_gaps_of_each_row():
    generator = torch.Generator().manual_seed(0)
    probabilities = torch.rand(40, 7, generator=generator) ** 2  # many rows where few gaps are likely
    probabilities[0] = 0.01  # no gap likely: no space is best
    lengths = torch.randint(0, 8, (40,), generator=generator)
    lengths[0] = 7
    gaps = torch.arange(7) < lengths[:, None]
    chosen = expected_f1_spaces(probabilities, gaps)
    assert not (chosen & ~gaps).any() and not chosen[0].any()
    for row, length in enumerate(lengths.tolist()):
        row_probabilities = probabilities[row, :length].tolist()
        every_subset = itertools.chain.from_iterable(
            itertools.combinations(range(length), size) for size in range(length + 1)
        )
        best = max(approximate_expected_f1(row_probabilities, subset) for subset in every_subset)
        picked = torch.nonzero(chosen[row]).flatten().tolist()
        assert approximate_expected_f1(row_probabilities, picked) == pytest.approx(best)


def test_expected_f1_spaces_add_a_likely_gap_that_argmax_leaves_out():
    # Two sure spaces and one of 0.45: spaced, the expected F1 is 2 * 2.45 / (3 + 2.45) = 0.899 > 2 * 2 / 4.45.
    chosen = expected_f1_spaces(torch.tensor([[0.99, 0.99, 0.45, 0.01]]), torch.ones(1, 4, dtype=torch.bool))
    assert chosen.tolist() == [[True, True, True, False]]


def test_restore_spacing_with_the_expected_f1_decision(tiny_tagger):
    model = load_spacing_model(tiny_tagger)
    texts = [remove_spaces(text) for text in SPACED_TEXTS]
    learned = restore_spacing(texts, model=model, decision="expected_f1")
    assert spacing_scores(learned, SPACED_TEXTS)["space_f1"] >= 0.9
    rng = random.Random(1)
    noisy = [random_text(rng) for _ in range(100)] + ["", "가"]
    restored = restore_spacing(noisy, model=model, decision="expected_f1", batch_size=9)
    assert [remove_spaces(output) for output in restored] == [remove_spaces(text) for text in noisy]
    # On texts the tagger is unsure of, gaps of probabilities a little under 1/2 get spaces too.
    argmax = restore_spacing(noisy, model=model)
    assert sum(output.count(" ") for output in restored) > sum(output.count(" ") for output in argmax)


def test_restore_spacing_names_bad_inputs(tiny_tagger, tmp_path):
    with pytest.raises(FileNotFoundError, match="model folder not found"):
        restore_spacing(["가나"], model=tmp_path / "missing")
    with pytest.raises(TypeError, match=r"texts\[1\] is int"):
        restore_spacing(["가나", 3], model=tiny_tagger)
    with pytest.raises(ValueError, match="batch_size"):
        restore_spacing(["가나"], model=tiny_tagger, batch_size=0)
    with pytest.raises(ValueError, match="unknown decision 'best': choose one of argmax, expected_f1"):
        restore_spacing(["가나"], model=tiny_tagger, decision="best")


def test_training_refuses_a_non_empty_output_dir(tmp_path):
    (tmp_path / "kept.txt").write_text("user file")
    with pytest.raises(FileExistsError, match="not empty"):
        train_spacing_tagger(spacing_pairs(SPACED_TEXTS), output_dir=tmp_path)
    assert (tmp_path / "kept.txt").read_text() == "user file"


def test_unknown_cell_is_named(tmp_path):
    with pytest.raises(ValueError, match="unknown cell 'rnn'"):
        train_spacing_tagger(spacing_pairs(SPACED_TEXTS), output_dir=tmp_path / "out", cell="rnn", vocab_size=300)


def test_review_weighted_loss_weighs_every_review_alike():
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


def test_distillation_loss_mixes_the_labels_and_the_teachers():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 2, generator=generator)
    labels = torch.tensor([[0, 1, 0, 1, IGNORED], [1, IGNORED, IGNORED, IGNORED, IGNORED]])
    teachers = torch.rand(2, 5, 1, generator=generator)
    teachers = torch.cat([1 - teachers, teachers], dim=-1)
    log_probabilities = logits.log_softmax(dim=-1)
    gaps = labels != IGNORED
    to_labels = -log_probabilities.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)[gaps]
    to_teachers = -(teachers * log_probabilities).sum(dim=-1)[gaps]
    torch.testing.assert_close(distillation_loss(logits, labels, teachers, 0.0), to_labels.mean())
    torch.testing.assert_close(distillation_loss(logits, labels, teachers, 1.0), to_teachers.mean())
    torch.testing.assert_close(
        distillation_loss(logits, labels, teachers, 0.25), 0.75 * to_labels.mean() + 0.25 * to_teachers.mean()
    )
    torch.testing.assert_close(
        distillation_loss(logits, labels, teachers, 0.0, "review"), review_weighted_loss({"logits": logits}, labels)
    )


def test_a_distilled_tagger_learns_from_its_teacher_what_its_labels_lack(tiny_tagger, tmp_path):
    # Training texts written without spaces: their labels alone teach the tagger never to space.
    texts = [remove_spaces(text) for text in SPACED_TEXTS]
    unspaced = spacing_pairs(texts * 8)
    small = {"embedding_size": 16, "hidden_size": 32, "embedding_dropout": 0.0, "output_dropout": 0.0}
    options = {"config_overrides": small, "tokenizer": tiny_tagger, "max_steps": 80, "batch_size": 8}
    options.update(learning_rate=1e-2, logging_steps=1000, seed=0)
    labels_only = train_spacing_tagger(unspaced, output_dir=tmp_path / "labels", **options)
    run = train_spacing_tagger(
        unspaced, output_dir=tmp_path / "distilled", teachers=[tiny_tagger], distillation_weight=1.0, **options
    )
    assert spacing_scores(restore_spacing(texts, model=tmp_path / "labels"), SPACED_TEXTS)["space_f1"] < 0.5
    assert spacing_scores(restore_spacing(texts, model=tmp_path / "distilled"), SPACED_TEXTS)["space_f1"] >= 0.9
    run_info = json.loads((tmp_path / "distilled" / "run_info.json").read_text())["hyperparameters"]
    assert (run_info["teachers"], run_info["distillation_weight"]) == ([str(tiny_tagger)], 1.0)
    assert labels_only.tokenizer.get_vocab() == run.tokenizer.get_vocab()


def test_distillation_names_bad_teachers_and_weights_before_any_work(tiny_tagger, tmp_path):
    pairs = spacing_pairs(SPACED_TEXTS)
    with pytest.raises(ValueError, match="distillation_weight must be between 0 and 1, got 1.5"):
        train_spacing_tagger(pairs, output_dir=tmp_path / "out", teachers=[tiny_tagger], distillation_weight=1.5)
    with pytest.raises(FileNotFoundError, match="holds no config.json"):
        train_spacing_tagger(pairs, output_dir=tmp_path / "out", teachers=[tmp_path])
    assert not (tmp_path / "out").exists()


def test_teacher_ids_give_the_teacher_the_same_characters_in_its_own_ids():
    tokenizer = train_character_tokenizer(["가나 다라 봙"], vocab_size=300)
    teacher_tokenizer = train_character_tokenizer(["!#$ 가나 다라"], vocab_size=300)  # earlier characters shift ids
    id_map = teacher_ids(tokenizer, teacher_tokenizer)
    tagger_ids = torch.tensor(CharacterIds(tokenizer)("가나다라봙"))
    assert id_map[tagger_ids].tolist() == CharacterIds(teacher_tokenizer)("가나다라봙")
    assert id_map[tagger_ids].tolist() != tagger_ids.tolist()
    assert id_map[tokenizer.pad_token_id] == teacher_tokenizer.pad_token_id
    assert teacher_ids(tokenizer, tokenizer) is None


def test_a_teacher_with_another_vocabulary_is_distilled_through_its_own_ids(tiny_tagger, tmp_path):
    # The tagger's vocabulary numbers the same characters differently from the teacher's: read with the tagger's ids,
    # the teacher would see other characters and teach nothing.
    texts = [remove_spaces(text) for text in SPACED_TEXTS]
    tokenizer = train_character_tokenizer(["!#$%&()*+", *SPACED_TEXTS], vocab_size=400)
    assert teacher_ids(tokenizer, load_spacing_model(tiny_tagger).tokenizer) is not None
    small = {"embedding_size": 16, "hidden_size": 32, "embedding_dropout": 0.0, "output_dropout": 0.0}
    train_spacing_tagger(
        spacing_pairs(texts * 8),
        output_dir=tmp_path / "distilled",
        tokenizer=tokenizer,
        teachers=[tiny_tagger],
        distillation_weight=1.0,
        config_overrides=small,
        max_steps=80,
        batch_size=8,
        learning_rate=1e-2,
        logging_steps=1000,
        seed=0,
    )
    assert spacing_scores(restore_spacing(texts, model=tmp_path / "distilled"), SPACED_TEXTS)["space_f1"] >= 0.9
