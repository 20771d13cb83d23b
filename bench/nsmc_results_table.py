"""The NSMC results table, and the generated samples, from what bench_nsmc_pretrained.py recorded.

    python bench/nsmc_results_table.py runs/nsmc_pretrained/results.jsonl                        # print them
    python bench/nsmc_results_table.py runs/nsmc_pretrained/results.jsonl --markdown docs/results.md

Each classifier recipe (family, pretrained or not, fine-tuning variant) keeps its latest run, an ensemble (`--ensemble`)
its own row. Pretrained rows come first, then the from-scratch rows. Each row opens with an anchor named after its
classifier (`#lstm-nsmc-2ep`), so other pages can link to it, and ends with the seed and a link to the model card.

`--markdown FILE` replaces the table between FILE's two marker comments (`<!-- nsmc-results-table:start ... -->` and
`<!-- nsmc-results-table:end -->`) and leaves the rest of the page as it is; the card links are then relative to
FILE's folder.
"""

import argparse
import json
import os


START_MARKER = "<!-- nsmc-results-table:start"
END_MARKER = "<!-- nsmc-results-table:end"
HEADER = (
    "| model | params | pretraining tokens | LM test perplexity | NSMC epochs | NSMC test accuracy "
    "| wall time (pretrain + fine-tune) | hardware | seed | card |"
)


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


def card_path(record):
    return record.get("classifier_card") or record.get("ensemble_card")


def row_name(record):
    """The row's anchor: the classifier's name (its folder and card name), else the card's file name."""
    if record.get("classifier"):
        return record["classifier"]
    card = card_path(record)
    return os.path.splitext(os.path.basename(card))[0] if card else None


def anchor(record):
    name = row_name(record)
    return f'<a id="{name}"></a>' if name else ""


def card_link(record, link_base):
    """A link to the row's model card, relative to `link_base` (the page's folder) when one is given."""
    card = card_path(record)
    if not card:
        return "—"
    target = os.path.relpath(card, link_base) if link_base is not None else card
    return f"[card]({target.replace(os.sep, '/')})"


def ensemble_row(record, link_base=None):
    """An ensemble's row: its members, their summed parameters, and every LM behind them counted once.

    Its seed column is empty: averaging draws nothing, and each member's seed is in the member's own row.
    """
    members = record["members"]
    perplexities = [f"{member['lm_test_perplexity']:.1f}" for member in members if member.get("lm_test_perplexity")]
    described = [f"{member['classifier']} ({100 * member['nsmc_test_accuracy']:.2f}%)" for member in members]
    return (
        "| "
        + " | ".join(
            [
                anchor(record) + f"{record['model']}: ensemble of " + " + ".join(described),
                f"{record['classifier_parameters'] / 1e6:.2f}M",
                f"{record['pretrain_tokens'] / 1e6:.1f}M" if record["pretrained"] else "—",
                " / ".join(perplexities) or "—",
                " / ".join(f"{member['finetune_epochs']:g}" for member in members if "finetune_epochs" in member)
                or "—",
                f"**{100 * record['nsmc_test_accuracy']:.2f}%**",
                f"{minutes(record['pretrain_seconds'])} + {minutes(record['finetune_seconds'])}",
                " / ".join(hardware(part) for part in record["hardware"].split(" / ")),
                "—",
                card_link(record, link_base),
            ]
        )
        + " |"
    )


def table_row(record, link_base=None):
    if record.get("members"):
        return ensemble_row(record, link_base)
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
                anchor(record)
                + f"{record['model']} {size}"
                + (" pretrained" if pretrained else " from scratch")
                + variant(command),
                f"{record['classifier_parameters'] / 1e6:.2f}M",
                f"{record['pretrain_tokens'] / 1e6:.1f}M" if pretrained else "—",
                f"{record['lm_test_perplexity']:.1f}" if pretrained else "—",
                f"{command['finetune_epochs']:g}",
                f"**{100 * record['nsmc_test_accuracy']:.2f}%**",
                wall,
                hardware(record["hardware"]),
                str(command["seed"]) if command.get("seed") is not None else "—",
                card_link(record, link_base),
            ]
        )
        + " |"
    )


def table_lines(records, link_base=None):
    return [HEADER, "|" + "---|" * HEADER.count(" | ") + "---|"] + [table_row(record, link_base) for record in records]


def sample_lines(records):
    """The generated samples, once per pretrained LM (the first row that used it)."""
    lines = []
    for record in {record["model"]: record for record in records if record.get("samples")}.values():
        for temperature, texts in record.get("samples", {}).items():
            lines += ["", f"{record['model']} LM, temperature {temperature}:"]
            lines += [f"- {text}" for text in texts]
    return lines


def write_markdown(page, records):
    """Replace the lines between the page's start and end markers with the table; the rest stays as it is."""
    with open(page, encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    starts = [index for index, line in enumerate(lines) if line.startswith(START_MARKER)]
    ends = [index for index, line in enumerate(lines) if line.startswith(END_MARKER)]
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        raise SystemExit(
            f"{page}: needs one line starting {START_MARKER!r} and, after it, one starting {END_MARKER!r}"
        )
    table = table_lines(records, link_base=os.path.dirname(os.path.abspath(page)))
    lines[starts[0] + 1 : ends[0]] = table
    temporary = f"{page}.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
    os.replace(temporary, page)
    print(f"{page}: {len(records)} rows written")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="the results.jsonl that bench_nsmc_pretrained.py appends to")
    parser.add_argument("--markdown", metavar="FILE", help="rewrite the table between FILE's marker comments")
    args = parser.parse_args(argv)
    records = latest_runs(args.results)
    if args.markdown:
        write_markdown(args.markdown, records)
        return
    print("\n".join(table_lines(records) + sample_lines(records)))


if __name__ == "__main__":
    main()
