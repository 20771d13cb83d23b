"""Token aggregation measured: the Transformer classifier with last / mean / max / cls pooling, one recipe, one budget.

Every pooling trains from the same initial body weights (same seed) on the same batches; the model is selected on a
held-out split of the training file (never on test data). A test file, when given, is only reported. Besides the
causal classifier's four poolings, two bidirectional encoders (`bidirectional=True`: every token sees both sides)
answer the mean-vs-CLS question where CLS is BERT's leading token: `encoder-mean` and `encoder-cls`.
"""

import random
import time

import torch

from hf_seq.models.transformer import TransformerLMConfig, TransformerLMForSequenceClassification

from .training import char_tokenizer


# Variant name -> (config.pooling, config.bidirectional).
VARIANTS = {
    "last": ("last", False),
    "mean": ("mean", False),
    "max": ("max", False),
    "cls": ("cls", False),
    "encoder-mean": ("mean", True),
    "encoder-cls": ("cls", True),
}
POOLINGS = tuple(VARIANTS)


def read_nsmc(path: str) -> tuple[list[str], list[int]]:
    """NSMC's tab-separated `id  document  label` file (with a header line) as texts and labels."""
    texts, labels = [], []
    with open(path, encoding="utf-8") as handle:
        next(handle)  # header
        for line in handle:
            fields = line.rstrip("\n").split("\t")
            if len(fields) == 3 and fields[2] in ("0", "1"):
                texts.append(fields[1])
                labels.append(int(fields[2]))
    return texts, labels


def split_train(texts: list[str], labels: list[int], valid_fraction: float, seed: int):
    """A seeded shuffle of the training file into (train, valid), the valid part for selection."""
    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    cut = int(len(order) * (1 - valid_fraction))
    pick = lambda indices: ([texts[i] for i in indices], [labels[i] for i in indices])  # noqa: E731
    return pick(order[:cut]), pick(order[cut:])


def encode(tokenizer, texts: list[str], max_length: int) -> tuple[torch.LongTensor, torch.LongTensor]:
    encoded = tokenizer(texts, truncation=True, max_length=max_length, padding="longest", return_tensors="pt")
    return encoded["input_ids"], encoded["attention_mask"]


@torch.no_grad()
def accuracy(model, input_ids, attention_mask, labels, batch_size: int = 128) -> float:
    model.eval()
    correct = 0
    for start in range(0, len(labels), batch_size):
        logits = model(
            input_ids=input_ids[start : start + batch_size], attention_mask=attention_mask[start : start + batch_size]
        ).logits
        correct += int((logits.argmax(-1) == labels[start : start + batch_size]).sum())
    return correct / max(len(labels), 1)


def train_classifier(
    config: TransformerLMConfig, data, *, steps: int, batch_size: int, learning_rate: float, eval_every: int, seed: int
) -> dict:
    """Train one classifier for `steps` steps; keep the validation accuracy of the best evaluation (selection)."""
    (train_ids, train_mask, train_labels), (valid_ids, valid_mask, valid_labels) = data
    torch.manual_seed(seed)
    model = TransformerLMForSequenceClassification(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
    generator = torch.Generator().manual_seed(seed)
    best = {"valid_accuracy": -1.0, "step": 0, "state": None}
    start = time.monotonic()
    for step in range(1, steps + 1):
        model.train()
        rows = torch.randint(0, len(train_labels), (batch_size,), generator=generator)
        loss = model(input_ids=train_ids[rows], attention_mask=train_mask[rows], labels=train_labels[rows]).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % eval_every == 0 or step == steps:
            valid = accuracy(model, valid_ids, valid_mask, valid_labels)
            if valid > best["valid_accuracy"]:
                best = {
                    "valid_accuracy": valid,
                    "step": step,
                    "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
                }
    model.load_state_dict(best.pop("state"))
    best["seconds"] = time.monotonic() - start
    best["model"] = model
    return best


def compare_poolings(
    train_file: str,
    test_file: str | None = None,
    *,
    poolings: tuple[str, ...] = POOLINGS,
    steps: int = 300,
    batch_size: int = 32,
    hidden_size: int = 64,
    num_hidden_layers: int = 2,
    num_attention_heads: int = 4,
    max_length: int = 64,
    learning_rate: float = 1e-3,
    valid_fraction: float = 0.1,
    max_train: int | None = None,
    eval_every: int = 50,
    seed: int = 0,
) -> dict:
    """The pooling comparison: one row per variant of `VARIANTS` with the selected step, valid (and test) accuracy."""
    unknown = [name for name in poolings if name not in VARIANTS]
    if unknown:
        raise ValueError(f"Unknown pooling variant(s) {', '.join(unknown)}: choose from {', '.join(VARIANTS)}")
    texts, labels = read_nsmc(train_file)
    if max_train is not None:
        texts, labels = texts[:max_train], labels[:max_train]
    (train_texts, train_labels), (valid_texts, valid_labels) = split_train(texts, labels, valid_fraction, seed)
    tokenizer = char_tokenizer(train_texts)  # trained on the training part only
    data = (
        (*encode(tokenizer, train_texts, max_length), torch.tensor(train_labels)),
        (*encode(tokenizer, valid_texts, max_length), torch.tensor(valid_labels)),
    )
    test = None
    if test_file is not None:
        test_texts, test_labels = read_nsmc(test_file)
        test = (*encode(tokenizer, test_texts, max_length), torch.tensor(test_labels))
    rows = {}
    for name in poolings:
        pooling, bidirectional = VARIANTS[name]
        config = TransformerLMConfig(
            vocab_size=len(tokenizer),
            hidden_size=hidden_size,
            num_hidden_layers=num_hidden_layers,
            num_attention_heads=num_attention_heads,
            pooling=pooling,
            bidirectional=bidirectional,
            num_labels=2,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        result = train_classifier(
            config,
            data,
            steps=steps,
            batch_size=batch_size,
            learning_rate=learning_rate,
            eval_every=eval_every,
            seed=seed,
        )
        model = result.pop("model")
        if test is not None:
            result["test_accuracy"] = accuracy(model, *test)
        rows[name] = result
    return {
        "recipe": {
            "steps": steps,
            "batch_size": batch_size,
            "hidden_size": hidden_size,
            "num_hidden_layers": num_hidden_layers,
            "num_attention_heads": num_attention_heads,
            "max_length": max_length,
            "learning_rate": learning_rate,
            "eval_every": eval_every,
            "tokenizer": "char",
            "train_examples": len(train_texts),
            "valid_examples": len(valid_texts),
            "seed": seed,
            "train_file": train_file,
            "test_file": test_file,
        },
        "poolings": rows,
    }


def pooling_table(result: dict) -> str:
    """The comparison as a Markdown table."""
    has_test = any("test_accuracy" in row for row in result["poolings"].values())
    lines = [
        "| pooling | selected step | valid accuracy |" + (" test accuracy |" if has_test else ""),
        "|---|---|---|" + ("---|" if has_test else ""),
    ]
    for pooling, row in result["poolings"].items():
        line = f"| {pooling} | {row['step']} | {row['valid_accuracy']:.3f} |"
        if has_test:
            line += f" {row['test_accuracy']:.3f} |"
        lines.append(line)
    return "\n".join(lines)


def pooling_figure(result: dict):
    from .figures import pyplot

    plt = pyplot()
    figure, ax = plt.subplots(figsize=(6.5, 3.2))
    names = list(result["poolings"])
    accuracies = [result["poolings"][name]["valid_accuracy"] for name in names]
    colours = ["tab:orange" if VARIANTS.get(name, ("", False))[1] else "tab:blue" for name in names]
    bars = ax.bar(names, accuracies, color=colours)
    ax.bar_label(bars, labels=[f"{accuracy:.3f}" for accuracy in accuracies], fontsize=8)
    # Near the data, so differences of a point show; the axis says where it starts.
    ax.set_ylim(max(0.0, min(accuracies) - 0.05), min(1.0, max(accuracies) + 0.02))
    ax.set_ylabel("valid accuracy (split of train)")
    ax.tick_params(axis="x", labelsize=8)
    ax.set_title(
        f"Transformer classifier pooling, {result['recipe']['steps']} steps (orange: bidirectional encoder)",
        fontsize=10,
    )
    figure.tight_layout()
    return figure
