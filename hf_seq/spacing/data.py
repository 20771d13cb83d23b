"""Spacing data: a spaced text gives its own training pair, the text without spaces (input) and the text (answer).

Every text is read as characters and gaps. `space_labels("좋은 영화")` is `("좋은영화", [0, 1, 0, 0])`: label 1 on a
character means a space follows it. Runs of whitespace count as one space, and whitespace at either end is dropped,
so `spaced_text(*space_labels(text)) == normalize_spacing(text)`.
"""

import os
import re


WHITESPACE = re.compile(r"\s+")

# Reviews whose spacing is trusted for evaluation: at least this many words, at most this many characters per word
# (a longer average means words were run together, so the review's own spacing is not a good answer).
MIN_WORDS = 3
MAX_CHARACTERS_PER_WORD = 4.2


def normalize_spacing(text: str) -> str:
    """`text` with each run of whitespace made one space and none at either end."""
    return WHITESPACE.sub(" ", text).strip()


def remove_spaces(text: str) -> str:
    """`text` without any whitespace: the input a spacing model restores."""
    return WHITESPACE.sub("", text)


def space_labels(text: str) -> tuple[str, list[int]]:
    """The characters of `text` without whitespace, and per character 1 when a space follows it, else 0."""
    characters, labels = [], []
    for word in normalize_spacing(text).split(" "):
        if not word:
            continue
        characters.extend(word)
        labels.extend([0] * (len(word) - 1) + [1])
    if labels:
        labels[-1] = 0  # no space after the last character
    return "".join(characters), labels


def spaced_text(characters: str, labels) -> str:
    """`characters` with a space after each one labelled 1 (the last character's label is ignored)."""
    if len(labels) != len(characters):
        raise ValueError(f"{len(characters)} characters but {len(labels)} labels: give one label per character")
    pieces = []
    for index, (character, label) in enumerate(zip(characters, labels)):
        pieces.append(character)
        if label and index < len(characters) - 1:
            pieces.append(" ")
    return "".join(pieces)


def is_well_spaced(text: str, min_words: int = MIN_WORDS, max_characters_per_word: float = MAX_CHARACTERS_PER_WORD):
    """Whether `text`'s own spacing is trusted as an answer: enough words, and words not run together."""
    words = normalize_spacing(text).split(" ")
    words = [word for word in words if word]
    if len(words) < min_words:
        return False
    return sum(len(word) for word in words) / len(words) <= max_characters_per_word


def spacing_pairs(texts, well_spaced_only: bool = False, max_texts: int | None = None):
    """A `datasets.Dataset` with `source` (the text without spaces) and `target` (the text, spacing normalised).

    Blank texts are dropped; `well_spaced_only` keeps only texts passing `is_well_spaced`; `max_texts` keeps the
    first that many (after filtering).
    """
    from datasets import Dataset

    dataset = texts if isinstance(texts, Dataset) else Dataset.from_dict({"text": list(texts)})
    return _pairs_from_text_column(dataset, well_spaced_only, max_texts)


def load_spacing_pairs(path: str | os.PathLike, well_spaced_only: bool = False, max_texts: int | None = None):
    """`spacing_pairs` of a UTF-8 text file with one text per line (read with `datasets`' text loader)."""
    from datasets import load_dataset

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"text file not found: {path} (give a UTF-8 file with one spaced text per line)")
    dataset = load_dataset("text", data_files=path, split="train")
    return _pairs_from_text_column(dataset, well_spaced_only, max_texts)


def _pairs_from_text_column(dataset, well_spaced_only, max_texts):
    if "text" not in dataset.column_names:
        raise ValueError(f"expected a `text` column, got {dataset.column_names}")
    if max_texts is not None and max_texts < 1:
        raise ValueError(f"max_texts must be a positive integer, got {max_texts!r}")

    def keep(batch):
        return [
            bool(text and text.strip()) and (not well_spaced_only or is_well_spaced(text)) for text in batch["text"]
        ]

    def to_pair(batch):
        targets = [normalize_spacing(text) for text in batch["text"]]
        return {"source": [remove_spaces(text) for text in targets], "target": targets}

    dataset = dataset.filter(keep, batched=True)
    if max_texts is not None:
        dataset = dataset.select(range(min(max_texts, len(dataset))))
    return dataset.map(to_pair, batched=True, remove_columns=dataset.column_names)
