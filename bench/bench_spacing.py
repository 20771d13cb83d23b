"""Korean word-spacing restoration, all systems side by side on one test set in one run: kiwipiepy's `space`, our
character taggers and seq2seq models (with and without constrained decoding).

The test set is reviews_lm's test split, keeping only reviews whose own spacing is trusted (at least 3 words, at most
4.2 characters per word; `hf_seq.spacing.is_well_spaced`). Each system gets the reviews with every space removed.
Figures (as kiwipiepy's spacing benchmark, plus two): space F1 per review averaged over reviews, accuracy over the
gaps between characters, exact match of the whole review; speed in reviews/s on one CPU thread, each system batched
as it allows (kiwipiepy: one worker thread, `num_workers=1`, fed the whole list).

    python bench/bench_spacing.py --data_dir ../shared/data/reviews_lm --tagger runs/spacing/tagger-bigru128-long \
        [--seq2seq runs/spacing/seq2seq-general-if ...] [--seq2seq_max_texts 1000] [--unconstrained] \
        [--beam_models runs/spacing/seq2seq-general-if] [--int8] [--decisions argmax expected_f1] \
        [--output bench/results/spacing.json] \
        [--heatmap docs/figures/spacing_attention.png --heatmap_model runs/spacing/seq2seq-general-if]
"""

import argparse
import json
import os
import platform
import time

import torch

from hf_seq.spacing import load_spacing_model, load_spacing_pairs, restore_spacing, spacing_scores
from hf_seq.spacing.restore import DECISIONS


def measure(name, restore, sources, targets):
    """Scores and speed of one system on the test pairs (`restore` maps a list of texts to the restored list)."""
    started = time.perf_counter()
    predictions = restore(sources)
    seconds = time.perf_counter() - started
    changed = sum(prediction.replace(" ", "") != source for prediction, source in zip(predictions, sources))
    scores = spacing_scores(predictions, targets)
    print(f"  {name}: F1 {scores['space_f1']:.4f}, {len(sources) / seconds:.0f} reviews/s", flush=True)
    return {
        "system": name,
        **scores,
        "outputs_with_changed_characters": changed,
        "seconds": seconds,
        "reviews_per_second": len(sources) / seconds,
    }


def kiwi_restore():
    from kiwipiepy import Kiwi

    kiwi = Kiwi(num_workers=1)  # one worker thread; the batched call needs a worker (num_workers=0 cannot batch)

    def restore(texts):
        return list(kiwi.space(texts, reset_whitespace=True))

    restore(["워밍업문장입니다"])
    return restore


def model_restore(folder, int8=False, **options):
    model = load_spacing_model(folder, int8=int8)  # quantised once, before the clock starts
    restore_spacing(["워밍업문장입니다"], model=model, **options)
    return lambda texts: restore_spacing(texts, model=model, **options)


def markdown_table(rows):
    lines = [
        "| system | space F1 | char accuracy | exact match | changed chars | reviews/s (1 thread) | n |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['system']} | {row['space_f1']:.4f} | {row['char_accuracy']:.4f} | {row['exact_match']:.4f} | "
            f"{row['changed_characters']:.4f} | {row['reviews_per_second']:.0f} | {row['n']} |"
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default=os.environ.get("HF_SEQ_REVIEWS_LM"), help="reviews_lm folder")
    parser.add_argument(
        "--split", default="test", help="which file of data_dir, without .txt: test (default), valid, ..."
    )
    parser.add_argument("--tagger", nargs="*", default=[], help="spacing tagger folders")
    parser.add_argument("--seq2seq", nargs="*", default=[], help="seq2seq spacing model folders")
    parser.add_argument("--seq2seq_max_texts", type=int, help="score seq2seq models on the first N reviews only")
    parser.add_argument("--seq2seq_beams", type=int, nargs="*", default=[1], help="beam widths for seq2seq models")
    parser.add_argument("--beam_models", nargs="*", default=[], help="seq2seq folders also run with --beam_width")
    parser.add_argument("--beam_width", type=int, default=4)
    parser.add_argument("--unconstrained", action="store_true", help="also run seq2seq models without constraints")
    parser.add_argument("--no_kiwi", action="store_true", help="leave kiwipiepy out")
    parser.add_argument("--int8", action="store_true", help="also run every model quantised to dynamic int8")
    parser.add_argument(
        "--decisions", nargs="+", default=["argmax"], choices=DECISIONS, help="taggers: each decision to run"
    )
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--output", help="write the figures to this JSON file (refused if it exists)")
    parser.add_argument("--heatmap", help="draw the attention of --heatmap_model on a few test reviews to this PNG")
    parser.add_argument("--heatmap_model", help="the seq2seq model folder whose attention --heatmap draws")
    args = parser.parse_args()
    if not args.data_dir:
        parser.error("give --data_dir (the reviews_lm folder) or set HF_SEQ_REVIEWS_LM")
    path = os.path.join(args.data_dir, f"{args.split}.txt")
    if not os.path.isfile(path):
        parser.error(f"{path} not found: --data_dir must hold {args.split}.txt")
    if args.output and os.path.exists(args.output):
        parser.error(f"{args.output} exists: choose another file or remove it")
    if bool(args.heatmap) != bool(args.heatmap_model):
        parser.error("--heatmap and --heatmap_model go together")
    if args.heatmap and os.path.exists(args.heatmap):
        parser.error(f"{args.heatmap} exists: choose another file or remove it")
    torch.set_num_threads(1)

    pairs = load_spacing_pairs(path, well_spaced_only=True)
    sources, targets = pairs["source"], pairs["target"]
    print(f"{len(sources)} well-spaced reviews of {path}", flush=True)
    rows = []
    if not args.no_kiwi:
        rows.append(measure("kiwipiepy Kiwi.space", kiwi_restore(), sources, targets))
    precisions = [False, True] if args.int8 else [False]
    for folder in args.tagger:
        for decision in args.decisions:
            for int8 in precisions:
                restore = model_restore(folder, int8=int8, batch_size=args.batch_size, decision=decision)
                name = f"tagger {os.path.basename(os.path.normpath(folder))}"
                if decision != "argmax":
                    name += f", {decision}"
                if int8:
                    name += ", int8"
                rows.append(measure(name, restore, sources, targets))
    seq2seq_count = args.seq2seq_max_texts or len(sources)
    if args.seq2seq and seq2seq_count < len(sources):
        subset_sources, subset_targets = sources[:seq2seq_count], targets[:seq2seq_count]
        if not args.no_kiwi:
            row = measure("kiwipiepy Kiwi.space", kiwi_restore(), subset_sources, subset_targets)
            rows.append({**row, "system": f"{row['system']} (first {seq2seq_count})"})
        for folder in args.tagger:
            restore = model_restore(folder, batch_size=args.batch_size)
            name = f"tagger {os.path.basename(os.path.normpath(folder))} (first {seq2seq_count})"
            rows.append(measure(name, restore, subset_sources, subset_targets))
    else:
        subset_sources, subset_targets = sources, targets
    runs = [(folder, beams) for folder in args.seq2seq for beams in args.seq2seq_beams]
    runs += [(folder, args.beam_width) for folder in args.beam_models]
    for folder, beams in runs:
        name = os.path.basename(os.path.normpath(folder))
        for constrained in [True, False] if args.unconstrained else [True]:
            for int8 in precisions:
                options = {"batch_size": args.batch_size, "num_beams": beams, "constrained": constrained}
                restore = model_restore(folder, int8=int8, **options)
                label = f"seq2seq {name}, beam {beams}, {'constrained' if constrained else 'unconstrained'}"
                rows.append(measure(label + (", int8" if int8 else ""), restore, subset_sources, subset_targets))

    print(markdown_table(rows))
    if args.heatmap:
        from hf_seq.spacing.seq2seq import save_spacing_attention_map

        # The first three test reviews of 12 to 20 characters: long enough to show the diagonal, short enough to read.
        examples = [target for source, target in zip(sources, targets) if 12 <= len(source) <= 20][:3]
        save_spacing_attention_map(load_spacing_model(args.heatmap_model), examples, args.heatmap)
        print(f"attention heatmap of {len(examples)} reviews: {args.heatmap}")
    record = {
        "data": path,
        "filter": "at least 3 words, at most 4.2 characters per word",
        "n_reviews": len(sources),
        "rows": rows,
        "machine": {"platform": platform.platform(terse=True), "cpu_count": os.cpu_count(), "torch_threads": 1},
    }
    if args.output:
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        with open(args.output, "w", encoding="utf-8") as file:
            json.dump(record, file, indent=2, ensure_ascii=False)
            file.write("\n")


if __name__ == "__main__":
    main()
