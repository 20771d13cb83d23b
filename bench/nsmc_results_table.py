"""The README's NSMC results table, and its generated samples, from what bench_nsmc_pretrained.py recorded.

    python bench/nsmc_results_table.py runs/nsmc_pretrained/results.jsonl

Each classifier recipe (family, pretrained or not, fine-tuning variant) keeps its latest run, an ensemble (`--ensemble`)
its own row. Pretrained rows come first, then the from-scratch rows.
"""

import json
import sys


def latest_by_recipe(path):
    """The latest record of each classifier recipe (by classifier name; older records by model and pretraining)."""
    runs = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                record = json.loads(line)
                runs[record.get("classifier") or (record["model"], record["pretrained"])] = record
    return runs


def latest_runs(path):
    return sorted(latest_by_recipe(path).values(), key=lambda record: (not record["pretrained"], record["model"]))


def minutes(seconds):
    return f"{seconds / 60:.0f} min"


def variant(command):
    """What sets a fine-tuning recipe apart from the plain one, for the model column."""
    notes = [] if command.get("pooling", "max") == "max" else [f"{command['pooling']} pooling"]
    base_lm = command.get("continue_from") and command["continue_from"].rstrip("/").rsplit("/", 1)[-1]
    if command.get("reading_direction") == "backward":
        notes.append("backward LM" + (f", started from {base_lm}'s weights" if base_lm else ""))
    elif base_lm:
        notes.append(f"LM pretrained further from {base_lm}")
    if command.get("finetune_learning_rate", 1e-3) != 1e-3:
        notes.append(f"fine-tuning LR {command['finetune_learning_rate']:g}")
    if command.get("layerwise_lr_decay", 1.0) != 1.0:
        notes.append(f"discriminative LR ×{command['layerwise_lr_decay']:g}/layer")
    if command.get("gradual_unfreezing"):
        notes.append(f"gradual unfreezing every {command['gradual_unfreezing']:g} epoch")
    if command.get("subword_dropout"):
        notes.append(f"BPE-dropout {command['subword_dropout']:g}")
    return f", {', '.join(notes)}" if notes else ""


def hardware(description):
    """ "1 CPU threads" (what the bench records on a CPU) as "CPU, 1 thread"; a GPU's name as it is."""
    threads, _, rest = description.partition(" CPU threads")
    if rest or not threads.isdigit():
        return description
    return f"CPU, {threads} thread" + ("s" if threads != "1" else "")


def ensemble_row(record):
    """An ensemble's row: its members, their summed parameters, and every LM behind them counted once."""
    members = record["members"]
    perplexities = [f"{member['lm_test_perplexity']:.1f}" for member in members if member.get("lm_test_perplexity")]
    described = [f"{member['classifier']} ({100 * member['nsmc_test_accuracy']:.2f}%)" for member in members]
    return (
        "| "
        + " | ".join(
            [
                f"{record['model']}: ensemble of " + " + ".join(described),
                f"{record['classifier_parameters'] / 1e6:.2f}M",
                f"{record['pretrain_tokens'] / 1e6:.1f}M" if record["pretrained"] else "—",
                " / ".join(perplexities) or "—",
                " / ".join(f"{member['finetune_epochs']:g}" for member in members if "finetune_epochs" in member)
                or "—",
                f"**{100 * record['nsmc_test_accuracy']:.2f}%**",
                f"{minutes(record['pretrain_seconds'])} + {minutes(record['finetune_seconds'])}",
                " / ".join(hardware(part) for part in record["hardware"].split(" / ")),
            ]
        )
        + " |"
    )


def table_row(record):
    if record.get("members"):
        return ensemble_row(record)
    pretrained = record["pretrained"]
    command = record["command"]
    size = record.get("body") or f"{command['num_hidden_layers']}×{command['hidden_size']}"
    wall = minutes(record["finetune_seconds"])
    if pretrained:
        wall = f"{minutes(record['pretrain_seconds'])} + {wall}"
    return (
        "| "
        + " | ".join(
            [
                f"{record['model']} {size}" + (" pretrained" if pretrained else " from scratch") + variant(command),
                f"{record['classifier_parameters'] / 1e6:.2f}M",
                f"{record['pretrain_tokens'] / 1e6:.1f}M" if pretrained else "—",
                f"{record['lm_test_perplexity']:.1f}" if pretrained else "—",
                f"{command['finetune_epochs']:g}",
                f"**{100 * record['nsmc_test_accuracy']:.2f}%**",
                wall,
                hardware(record["hardware"]),
            ]
        )
        + " |"
    )


def main(path):
    records = latest_runs(path)
    print(
        "| model | params | pretraining tokens | LM test perplexity | NSMC epochs | NSMC test accuracy "
        "| wall time (pretrain + fine-tune) | hardware |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for record in records:
        print(table_row(record))
    for record in {record["model"]: record for record in records if record.get("samples")}.values():
        for temperature, texts in record.get("samples", {}).items():
            print(f"\n{record['model']} LM, temperature {temperature}:")
            for text in texts:
                print(f"- {text}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python bench/nsmc_results_table.py RESULTS_JSONL")
    main(sys.argv[1])
