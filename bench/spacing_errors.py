"""Where a spacing tagger goes wrong: its wrong gaps by the kinds of character around them, and its space F1 when
the decision threshold moves.

For each tagger, on the well-spaced reviews of `--data_dir/--split.txt` (as bench_spacing.py reads them):
- the gaps it spaces or the reference spaces, counted as right, added (spaced by the tagger only) or missed
  (spaced by the reference only), by the kinds of the two characters around the gap (syllable, jamo, digit,
  letter, symbol);
- the space F1, and the precision and recall over all gaps, with a space wherever the tagger's probability
  (`hf_seq.spacing.space_probabilities`) is above each threshold (0.5 is `restore_spacing`'s argmax).

    python bench/spacing_errors.py --data_dir runs/data --split valid_nsmc --tagger runs/spacing/TAGGER
"""

import argparse
import os
from collections import Counter

import torch

from hf_seq.spacing import (
    load_spacing_model,
    load_spacing_pairs,
    space_positions,
    space_probabilities,
    spaced_text,
    spacing_scores,
)


OUTCOMES = ("right", "added", "missed")


def character_kind(character: str) -> str:
    if "가" <= character <= "힣":
        return "syllable"
    if "ㄱ" <= character <= "ㅣ":
        return "jamo"
    if character.isdigit():
        return "digit"
    if character.isalpha():
        return "letter"
    return "symbol"


def gap_outcomes(prediction: str, reference: str) -> Counter:
    """(kind before the gap, kind after it, outcome) for every gap spaced in the prediction or the reference."""
    characters = reference.replace(" ", "")
    predicted, answer = space_positions(prediction), space_positions(reference)
    outcomes = Counter()
    for gap in predicted | answer:
        outcome = "right" if gap in predicted and gap in answer else ("added" if gap in predicted else "missed")
        outcomes[character_kind(characters[gap - 1]), character_kind(characters[gap]), outcome] += 1
    return outcomes


def outcome_table(predictions, references) -> dict:
    """{(kind before, kind after): {outcome: count}}, the kinds with the most wrong gaps first."""
    totals = Counter()
    for prediction, reference in zip(predictions, references):
        totals.update(gap_outcomes(prediction, reference))
    table = {}
    for (before, after, outcome), count in totals.items():
        table.setdefault((before, after), dict.fromkeys(OUTCOMES, 0))[outcome] = count
    return dict(sorted(table.items(), key=lambda item: -(item[1]["added"] + item[1]["missed"])))


def threshold_scores(characters, probabilities, references, threshold: float) -> dict:
    """Space F1 (per review, averaged) with a space wherever the probability is above `threshold`, and the precision
    and recall over all gaps together."""
    predictions = [
        spaced_text(text, [value > threshold for value in row]) for text, row in zip(characters, probabilities)
    ]
    right = spaced = answered = 0
    for prediction, reference in zip(predictions, references):
        predicted, answer = space_positions(prediction), space_positions(reference)
        right, spaced, answered = right + len(predicted & answer), spaced + len(predicted), answered + len(answer)
    return {
        "threshold": threshold,
        "space_f1": spacing_scores(predictions, references)["space_f1"],
        "precision": right / spaced if spaced else 1.0,
        "recall": right / answered if answered else 1.0,
    }


def report(name, characters, probabilities, references, thresholds, rows):
    table = outcome_table(
        [spaced_text(text, [value > 0.5 for value in row]) for text, row in zip(characters, probabilities)], references
    )
    added = sum(counts["added"] for counts in table.values())
    missed = sum(counts["missed"] for counts in table.values())
    print(f"\n{name}: {added + missed} wrong gaps, {added} added, {missed} missed")
    print("| before | after | right | added | missed |\n|---|---|---|---|---|")
    for (before, after), counts in list(table.items())[:rows]:
        print(f"| {before} | {after} | {counts['right']} | {counts['added']} | {counts['missed']} |")
    print("| threshold | space F1 | precision | recall |\n|---|---|---|---|")
    for threshold in thresholds:
        scores = threshold_scores(characters, probabilities, references, threshold)
        print(f"| {threshold} | {scores['space_f1']:.4f} | {scores['precision']:.4f} | {scores['recall']:.4f} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", required=True, help="the folder of the split's file")
    parser.add_argument("--split", default="valid", help="which file of data_dir (without .txt): valid by default")
    parser.add_argument("--tagger", nargs="+", required=True, help="spacing tagger folders")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.4, 0.45, 0.5, 0.55, 0.6])
    parser.add_argument("--rows", type=int, default=10, help="how many kinds of gap to list")
    parser.add_argument("--batch_size", type=int, default=64)
    args = parser.parse_args(argv)
    path = os.path.join(args.data_dir, f"{args.split}.txt")
    if not os.path.isfile(path):
        parser.error(f"{path} not found: --data_dir must hold {args.split}.txt")
    torch.set_num_threads(1)
    pairs = load_spacing_pairs(path, well_spaced_only=True)
    characters, references = list(pairs["source"]), list(pairs["target"])
    print(f"{len(references)} well-spaced reviews of {path}")
    for folder in args.tagger:
        probabilities = space_probabilities(characters, model=load_spacing_model(folder), batch_size=args.batch_size)
        report(
            os.path.basename(os.path.normpath(folder)),
            characters,
            probabilities,
            references,
            args.thresholds,
            args.rows,
        )


if __name__ == "__main__":
    main()
