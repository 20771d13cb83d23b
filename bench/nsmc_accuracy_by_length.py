"""NSMC test accuracy of saved classifiers by review length (in tokens): where a model's memory runs out.

A tanh RNN classifying from its last state must carry a review's opening words through every step to the end;
its accuracy should fall with length faster than an LSTM's (the vanishing-gradient story).

    python bench/nsmc_accuracy_by_length.py --nsmc_dir ../shared/data/nsmc \\
        runs/nsmc_pretrained/rnn-tanh-nsmc-scratch-last runs/nsmc_pretrained/lstm-nsmc-scratch-last

Prints one markdown table (a row per model, a column per length bucket) and the same figures as JSON on its last
line.
"""

import argparse
import json

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding

from hf_seq.data.nsmc import load_nsmc
from hf_seq.training.finetune import empty_document_ids


BUCKETS = ((1, 10), (11, 20), (21, 40), (41, 80))


def predictions_by_length(model_dir, documents, labels, max_length, batch_size=256):
    """(token length, correct?) for every document, batched by length so padding stays small."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    encoded = tokenizer(documents, truncation=True, max_length=max_length)["input_ids"]
    encoded = [ids or empty_document_ids(tokenizer) for ids in encoded]  # as fine-tuning encodes an empty review
    order = sorted(range(len(encoded)), key=lambda index: len(encoded[index]))
    collator = DataCollatorWithPadding(tokenizer)
    results = []
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            indices = order[start : start + batch_size]
            batch = collator([{"input_ids": encoded[index]} for index in indices])
            predicted = model(**batch).logits.argmax(-1).tolist()
            results.extend((len(encoded[index]), predicted[row] == labels[index]) for row, index in enumerate(indices))
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dirs", nargs="+")
    parser.add_argument("--nsmc_dir", required=True, help="folder with the NSMC files (its test split is used)")
    parser.add_argument("--max_length", type=int, default=80)
    args = parser.parse_args()
    test = load_nsmc(args.nsmc_dir)["test"]
    documents, labels = list(test["document"]), list(test["label"])

    figures = {}
    for model_dir in args.model_dirs:
        results = predictions_by_length(model_dir, documents, labels, args.max_length)
        row = {}
        for low, high in BUCKETS:
            in_bucket = [correct for length, correct in results if low <= length <= high]
            row[f"{low}-{high}"] = {"accuracy": round(sum(in_bucket) / max(len(in_bucket), 1), 4), "n": len(in_bucket)}
        row["all"] = {"accuracy": round(sum(correct for _, correct in results) / len(results), 4), "n": len(results)}
        figures[model_dir] = row

    columns = [f"{low}-{high}" for low, high in BUCKETS] + ["all"]
    first = next(iter(figures.values()))
    print("| model | " + " | ".join(f"{column} tokens (n={first[column]['n']})" for column in columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for model_dir, row in figures.items():
        print(f"| {model_dir} | " + " | ".join(f"{100 * row[column]['accuracy']:.2f}%" for column in columns) + " |")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
