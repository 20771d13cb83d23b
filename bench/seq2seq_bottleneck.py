"""What attention buys on the toy reversal task: greedy accuracy by source length, without attention (the decoder
starts from the encoder's final state only: the bottleneck) and with dot / general / concat attention.

Every model has the same size and recipe (GRU, hidden 128, bidirectional encoder, bridge, no input feeding, Adam
3e-3, batches of 64 fresh sources of 2..MAX_LENGTH symbols); accuracy is measured on unseen sources of each length.
Writes the figure and the numbers behind it, and with `--attention_map` the cross-attention of the first attention
model on one unseen source of the longest length (reversal reads the source back to front: an anti-diagonal):

    python bench/seq2seq_bottleneck.py --output docs/figures/seq2seq_bottleneck.png   # + .json beside it
    python bench/seq2seq_bottleneck.py --attentions general --max_length 12 --hidden_size 64 --steps 800 \
        --output /tmp/general.png --attention_map docs/figures/seq2seq_reversal_attention.png
"""

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

from hf_seq.inspection.figures import pyplot
from hf_seq.seq2seq import accuracy_by_length, reversal_task, save_attention_map, toy_config, train_on_reversal


ATTENTIONS = ("none", "dot", "general", "concat")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="docs/figures/seq2seq_bottleneck.png")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--hidden_size", type=int, default=128)
    parser.add_argument("--max_length", type=int, default=24, help="longest source in training and in the test")
    parser.add_argument("--num_symbols", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--attentions", nargs="+", default=list(ATTENTIONS), choices=ATTENTIONS)
    parser.add_argument("--attention_map", help="PNG of the first attention model's cross-attention on one source")
    return parser.parse_args(argv)


def train_and_measure(attention, args, lengths):
    config = toy_config(
        num_symbols=args.num_symbols,
        hidden_size=args.hidden_size,
        embedding_size=args.hidden_size // 2,
        attention=attention,
        input_feeding=False,
        cell="gru",
    )
    start = time.perf_counter()
    model = train_on_reversal(config, args.steps, 2, args.max_length, seed=args.seed)
    minutes = (time.perf_counter() - start) / 60
    accuracy = accuracy_by_length(model, lengths)
    return model, {"training_minutes": round(minutes, 2), "accuracy_by_length": accuracy}


def draw(results, lengths, path):
    plt = pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharex=True)
    for attention, result in results.items():
        accuracy = result["accuracy_by_length"]
        for axis, measure in zip(axes, ("token", "sequence")):
            axis.plot(lengths, [accuracy[length][measure] for length in lengths], marker="o", label=attention)
    axes[0].set_title("symbols right (share of target positions)")
    axes[1].set_title("whole reversal right (share of sources)")
    for axis in axes:
        axis.set_xlabel("source length")
        axis.set_ylim(-0.02, 1.02)
        axis.grid(alpha=0.3)
    axes[0].legend(title="attention")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    lengths = list(range(2, args.max_length + 1, 2))
    models, results = {}, {}
    for attention in args.attentions:
        models[attention], results[attention] = train_and_measure(attention, args, lengths)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    draw(results, lengths, output)
    record = {
        "command": "python bench/seq2seq_bottleneck.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "settings": vars(args),
        "machine": f"{platform.processor() or platform.machine()}, {args.threads} thread(s), torch {torch.__version__}",
        "results": results,
    }
    output.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    with_attention = [attention for attention in args.attentions if attention != "none"]
    if args.attention_map and with_attention:
        num_symbols = args.num_symbols
        source = reversal_task(1, args.max_length, args.max_length, num_symbols=num_symbols, seed=args.seed + 999)
        title = f"{with_attention[0]} attention reversing {args.max_length} symbols"
        save_attention_map(models[with_attention[0]], source[0]["input_ids"], args.attention_map, title=title)
    summary = {a: {n: r["accuracy_by_length"][n]["token"] for n in (2, args.max_length)} for a, r in results.items()}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
