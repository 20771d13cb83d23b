"""How well spaces are restored, as kiwipiepy's spacing benchmark measures it, plus two stricter figures.

- `space_f1`: per text, the F1 of the set of space positions (indexed on the text without spaces), averaged over
  texts. A text with no space in either the prediction or the answer scores 1.
- `char_accuracy`: over every gap between two neighbouring characters of every text, the share whose choice (space
  or not) is right.
- `exact_match`: the share of texts whose whole spacing is right.

A prediction whose characters differ from its answer's (an unconstrained seq2seq model may change them) is
counted in `changed_characters`, scores 0 in `exact_match`, and is compared position by position as far as its
characters go.
"""

from .data import normalize_spacing, remove_spaces


def space_positions(text: str) -> set[int]:
    """Indices i of the text without spaces such that a space comes before its i-th character."""
    positions, index = set(), 0
    for word in normalize_spacing(text).split(" "):
        if index:
            positions.add(index)
        index += len(word)
    return positions


def positions_f1(predicted: set[int], reference: set[int]) -> float:
    """F1 of a predicted set of space positions against the answer's; 1 when both are empty."""
    if not predicted and not reference:
        return 1.0
    true_positives = len(predicted & reference)
    if true_positives == 0:
        return 0.0
    precision, recall = true_positives / len(predicted), true_positives / len(reference)
    return 2 * precision * recall / (precision + recall)


def spacing_scores(predictions, references) -> dict:
    """`space_f1`, `char_accuracy`, `exact_match`, `changed_characters` (a share) and `n` of predicted texts."""
    predictions, references = list(predictions), list(references)
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references: give one per reference")
    if not references:
        raise ValueError("no texts to score: give at least one prediction and its reference")
    f1_sum, right_gaps, gaps, exact, changed = 0.0, 0, 0, 0, 0
    for prediction, reference in zip(predictions, references):
        predicted, answer = space_positions(prediction), space_positions(reference)
        same_characters = remove_spaces(prediction) == remove_spaces(reference)
        changed += not same_characters
        f1_sum += positions_f1(predicted, answer)
        exact += same_characters and predicted == answer
        reference_gaps = range(1, len(remove_spaces(reference)))
        right_gaps += sum((gap in predicted) == (gap in answer) for gap in reference_gaps)
        gaps += len(reference_gaps)
    count = len(references)
    return {
        "space_f1": f1_sum / count,
        "char_accuracy": right_gaps / gaps if gaps else 1.0,
        "exact_match": exact / count,
        "changed_characters": changed / count,
        "n": count,
    }
