import random

import pytest

from hf_seq.spacing import (
    remove_spaces,
    restore_spacing,
    space_probabilities,
    spacing_pairs,
    train_character_tokenizer,
)
from hf_seq.spacing.restore import space_token_id
from hf_seq.spacing.seq2seq import encode_for_seq2seq, train_spacing_seq2seq
from tests.spacing.conftest import SPACED_TEXTS


@pytest.fixture(scope="module")
def tiny_seq2seq(tmp_path_factory, tiny_tagger):
    """A seq2seq spacing model after a few steps (not trained to be good: the tests check the characters)."""
    output_dir = tmp_path_factory.mktemp("spacing") / "seq2seq"
    train_spacing_seq2seq(
        spacing_pairs(SPACED_TEXTS),
        output_dir=output_dir,
        tokenizer=tiny_tagger,
        config_overrides={"embedding_size": 8, "hidden_size": 16},
        max_steps=3,
        batch_size=4,
    )
    return output_dir


def test_targets_spell_spaces_as_the_space_token_and_end_with_eos():
    tokenizer = train_character_tokenizer(["가나 다"], vocab_size=300)
    features = encode_for_seq2seq(spacing_pairs(["가나 다"]), tokenizer)
    ids = tokenizer.get_vocab()
    assert features[0]["input_ids"] == [ids["가"], ids["나"], ids["다"]]
    assert features[0]["labels"] == [
        ids["가"],
        ids["나"],
        space_token_id(tokenizer),
        ids["다"],
        tokenizer.eos_token_id,
    ]


@pytest.mark.parametrize("int8", [False, True])
@pytest.mark.parametrize("num_beams", [1, 2])
def test_constrained_seq2seq_never_changes_the_characters(tiny_seq2seq, num_beams, int8):
    rng = random.Random(0)
    alphabet = "가나다라마바사영화좋다봙😀 "
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 15))) for _ in range(30)]
    restored = restore_spacing(texts, model=tiny_seq2seq, batch_size=8, num_beams=num_beams, int8=int8)
    for text, output in zip(texts, restored):
        assert remove_spaces(output) == remove_spaces(text)


def test_the_expected_f1_decision_and_space_probabilities_are_refused_for_a_seq2seq_model(tiny_seq2seq):
    with pytest.raises(ValueError, match="decision='expected_f1' is for taggers"):
        restore_spacing(["가나다"], model=tiny_seq2seq, decision="expected_f1")
    with pytest.raises(ValueError, match="space_probabilities needs a spacing tagger"):
        space_probabilities(["가나다"], model=tiny_seq2seq)


def test_attention_map_rows_follow_the_constrained_output(tiny_seq2seq, tmp_path):
    from hf_seq.spacing import load_spacing_model
    from hf_seq.spacing.seq2seq import save_spacing_attention_map, spacing_attention

    model = load_spacing_model(tiny_seq2seq)
    source, output, weights = spacing_attention(model, "이 영화 좋다")
    assert source == list("이영화좋다")
    assert [token for token in output if token not in ("_", "</s>")] == source
    assert weights.shape == (len(output), len(source))
    path = save_spacing_attention_map(model, ["이 영화 좋다", "정말 지루한 영화"], tmp_path / "map.png")
    assert (tmp_path / "map.png").stat().st_size > 0 and path.endswith("map.png")


def test_the_seq2seq_run_is_recorded_for_its_card(tiny_seq2seq):
    import json

    run_info = json.loads((tiny_seq2seq / "run_info.json").read_text())
    assert run_info["hyperparameters"]["attention"] == "general" and run_info["hyperparameters"]["max_steps"] == 3
