"""bench/spacing_errors.py: a tagger's wrong gaps by the characters around them, and its F1 by threshold."""

import os
import sys

import pytest


BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "bench")
sys.path.insert(0, BENCH)  # the bench scripts import their siblings by name, as when run from bench/

import spacing_errors  # noqa: E402


def test_character_kinds():
    kinds = [spacing_errors.character_kind(character) for character in "영ㅋ7a!é"]
    assert kinds == ["syllable", "jamo", "digit", "letter", "symbol", "letter"]


def test_gap_outcomes_count_right_added_and_missed_gaps_by_their_characters():
    outcomes = spacing_errors.gap_outcomes("좋은 영화.. 최고", "좋은 영화..최고")
    assert outcomes == {
        ("syllable", "syllable", "right"): 1,  # 좋은 영화
        ("symbol", "syllable", "added"): 1,  # ..최
    }
    missed = spacing_errors.gap_outcomes("정말재밌다ㅋㅋ", "정말 재밌다 ㅋㅋ")
    assert missed == {("syllable", "syllable", "missed"): 1, ("syllable", "jamo", "missed"): 1}


def test_the_outcome_table_lists_the_kinds_with_most_wrong_gaps_first():
    table = spacing_errors.outcome_table(["정말 재 밌다ㅋㅋ", "아 좋다!"], ["정말 재밌다 ㅋㅋ", "아좋다 !"])
    assert list(table)[0] == ("syllable", "syllable")
    assert set(table) == {("syllable", "syllable"), ("syllable", "jamo"), ("syllable", "symbol")}
    assert table[("syllable", "syllable")] == {"right": 1, "added": 2, "missed": 0}
    assert table[("syllable", "jamo")] == {"right": 0, "added": 0, "missed": 1}


def test_threshold_scores_space_the_gaps_above_the_threshold():
    characters, references = ["가나다라"], ["가나 다라"]
    probabilities = [[0.3, 0.7, 0.45, 0.9]]  # the last gap is after the last character: never a space
    at_half = spacing_errors.threshold_scores(characters, probabilities, references, 0.5)
    assert at_half == {"threshold": 0.5, "space_f1": 1.0, "precision": 1.0, "recall": 1.0}
    lower = spacing_errors.threshold_scores(characters, probabilities, references, 0.4)
    assert lower["precision"] == 0.5 and lower["recall"] == 1.0
    assert lower["space_f1"] == pytest.approx(2 / 3)
