"""Unicode normalisation for Korean text.

NFC is the default, not NFKC. Both keep precomposed Hangul syllables (가, 영화) composed, but NFKC also rewrites
the *compatibility jamo* that Korean reviews are full of: it maps ㅋ (U+314B) to the conjoining initial ᄏ (U+110F)
and ㅠ (U+3160) to the conjoining vowel ᅲ (U+1172), and canonical composition then glues an initial and a vowel
together, so "ㅋㅠㅠ" becomes "큐ᅲ" and "ㄱㅏ" becomes "가". That changes what the user wrote and decodes to
conjoining jamo that render differently from the input. On NSMC, NFKC does not buy fewer tokens either
(bench/bench_tokenizer.py measures both), so NFC keeps the text as typed at no cost.
"""

from tokenizers import normalizers


# Names accepted by `build_normalizer` (and the `--normalization` CLI option).
NORMALIZATIONS = ("nfc", "nfkc", "none")


def build_normalizer(normalization: str = "nfc") -> normalizers.Normalizer:
    """Return the `tokenizers` normaliser for `normalization` ("nfc", "nfkc" or "none").

    Every choice also turns the word-boundary marker "▁" (U+2581) into a space, as the decoder would, and strips
    leading and trailing whitespace, which the Metaspace pre-tokenizer cannot give back. Together they make
    `decode(encode(text)) == normalize(text)` hold for any text.
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"Unknown normalization {normalization!r}; choose one of {', '.join(NORMALIZATIONS)}.")
    steps = []
    if normalization == "nfc":
        steps.append(normalizers.NFC())
    elif normalization == "nfkc":
        steps.append(normalizers.NFKC())
    steps += [normalizers.Replace("\u2581", " "), normalizers.Strip()]
    return normalizers.Sequence(steps)
