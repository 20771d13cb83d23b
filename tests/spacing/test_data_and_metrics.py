import pytest

from hf_seq.spacing import (
    is_well_spaced,
    normalize_spacing,
    positions_f1,
    remove_spaces,
    space_labels,
    space_positions,
    spaced_text,
    spacing_pairs,
    spacing_scores,
)


def test_space_labels_mark_the_character_before_each_space():
    assert space_labels("좋은 영화") == ("좋은영화", [0, 1, 0, 0])
    assert space_labels("  a\t b  c ") == ("abc", [1, 1, 0])
    assert space_labels("") == ("", [])


@pytest.mark.parametrize("text", ["아버지가 방에 들어가신다", " 띄어  쓰기\t", "ㅋㅋㅋ", "a b c", ""])
def test_spaced_text_inverts_space_labels(text):
    assert spaced_text(*space_labels(text)) == normalize_spacing(text)


def test_spaced_text_needs_one_label_per_character():
    with pytest.raises(ValueError, match="one label per character"):
        spaced_text("abc", [0, 1])


def test_well_spaced_needs_three_words_and_short_words():
    assert is_well_spaced("이 영화 좋다")
    assert not is_well_spaced("영화 좋다")  # two words
    assert not is_well_spaced("이영화정말재밌어요 최고다 ㅋ")  # 13 characters in 3 words: 4.33 per word


def test_spacing_pairs_drop_blank_texts_and_filter():
    pairs = spacing_pairs(["이 영화 좋다", "   ", "영화좋다", "정말  재밌는 영화 ㅎㅎ"], well_spaced_only=True)
    assert pairs["source"] == ["이영화좋다", "정말재밌는영화ㅎㅎ"]
    assert pairs["target"] == ["이 영화 좋다", "정말 재밌는 영화 ㅎㅎ"]


def test_space_positions_are_indexed_on_the_text_without_spaces():
    assert space_positions("ab c de") == {2, 3}
    assert space_positions("abc") == set()


def test_positions_f1():
    assert positions_f1(set(), set()) == 1.0
    assert positions_f1({1}, set()) == 0.0
    assert positions_f1({1, 2}, {2, 3}) == pytest.approx(0.5)
    assert positions_f1({1, 2, 3}, {2}) == pytest.approx(0.5)  # precision 1/3, recall 1


def test_spacing_scores_on_known_cases():
    scores = spacing_scores(["ab cd", "abc d", "x y"], ["ab cd", "ab cd", "xy"])
    # F1 per text: 1, 0, 0 (a space where the answer has none); gaps: 3 right of 3, 1 of 3, 0 of 1.
    assert scores["space_f1"] == pytest.approx(1 / 3)
    assert scores["char_accuracy"] == pytest.approx(4 / 7)
    assert scores["exact_match"] == pytest.approx(1 / 3)
    assert scores["changed_characters"] == 0.0


def test_spacing_scores_count_changed_characters_as_wrong():
    scores = spacing_scores(["ab ce"], ["ab cd"])
    assert scores["changed_characters"] == 1.0
    assert scores["exact_match"] == 0.0


def test_spacing_scores_refuse_mismatched_lengths():
    with pytest.raises(ValueError, match="one per reference"):
        spacing_scores(["a"], ["a", "b"])


def test_remove_spaces_removes_every_whitespace():
    assert remove_spaces(" a\tb\u3000c \n") == "abc"
