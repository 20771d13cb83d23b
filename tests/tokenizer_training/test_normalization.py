import unicodedata

import pytest

from tokenizer_training import build_normalizer


# Compatibility jamo (U+3131..U+318E) are how Korean reviews write laughter and tears.
JAMO_TEXT = "ㅋㅋㅋ 진짜 웃김 ㅠㅠ ㅋㅠㅠ"


def test_nfc_keeps_compatibility_jamo_and_composes_syllables():
    nfc = build_normalizer("nfc")
    decomposed = unicodedata.normalize("NFD", "한국어 영화")

    assert nfc.normalize_str(JAMO_TEXT) == JAMO_TEXT
    assert nfc.normalize_str(decomposed) == "한국어 영화"
    assert nfc.normalize_str("  앞뒤 공백 \n") == "앞뒤 공백"
    assert nfc.normalize_str("▁경계▁표시") == "경계 표시"  # the marker would decode to a space anyway


def test_nfkc_rewrites_jamo_which_is_why_nfc_is_the_default():
    nfkc = build_normalizer("nfkc")
    normalised = nfkc.normalize_str(JAMO_TEXT)

    assert normalised != JAMO_TEXT
    assert "ㅋ" not in normalised and "\u110f" in normalised  # ㅋ became the conjoining initial ᄏ
    assert normalised.endswith("\ud050\u1172")  # ㅋㅠㅠ became 큐 + a lone vowel: the text changed meaning
    assert nfkc.normalize_str("ＡＢＣ１") == "ABC1"


def test_none_only_strips_and_unknown_names_fail():
    decomposed = unicodedata.normalize("NFD", "한국어")
    assert build_normalizer("none").normalize_str(f" {decomposed} ") == decomposed
    with pytest.raises(ValueError, match="Unknown normalization 'NFC'.*nfc, nfkc, none"):
        build_normalizer("NFC")
