"""Korean word-spacing restoration: a character tagger (BiGRU/BiLSTM token classifier) and a seq2seq model with
attention whose decoder may only copy the source's characters or add spaces.

    from hf_seq.spacing import restore_spacing
    restore_spacing(["아버지가방에들어가신다"], model="runs/spacing/tagger")  # ['아버지가 방에 들어가신다']
"""

from .constrained import SpacingLogitsProcessor, characters_with_spaces
from .data import (
    is_well_spaced,
    load_spacing_pairs,
    normalize_spacing,
    remove_spaces,
    space_labels,
    spaced_text,
    spacing_pairs,
)
from .metrics import positions_f1, space_positions, spacing_scores
from .restore import SpacingModel, expected_f1_spaces, load_spacing_model, restore_spacing, space_probabilities
from .tagger import CharacterIds, encode_for_tagging, train_character_tokenizer, train_spacing_tagger


__all__ = [
    "CharacterIds",
    "SpacingLogitsProcessor",
    "SpacingModel",
    "characters_with_spaces",
    "encode_for_tagging",
    "expected_f1_spaces",
    "is_well_spaced",
    "load_spacing_model",
    "load_spacing_pairs",
    "normalize_spacing",
    "positions_f1",
    "remove_spaces",
    "restore_spacing",
    "space_labels",
    "space_positions",
    "space_probabilities",
    "spaced_text",
    "spacing_pairs",
    "spacing_scores",
    "train_character_tokenizer",
    "train_spacing_tagger",
]
