"""hf_seq's word2vec side by side with gensim 4: training speed on 1 and 2 threads, and quality, in one run.

Both train on the same token sequences (one word-level tokenizer, trained here on the benchmark lines) with the same
recipe: vector_size, window, negative, sample, ns_exponent, alpha -> min_alpha, epochs, shrink_windows; gensim
with min_count=1 so that both vocabularies are the tokens of the corpus. Speed is corpus tokens x epochs per second
of `train` only (vocabulary building and tokenizing are common to both and not counted).

Quality, on checks built from the reviews themselves (see docs/word2vec.md):
  - held-out co-occurrence: Spearman correlation between the cosine similarity of two frequent words and their
    PPMI (window 5) counted on reviews neither model saw (the reviews_lm validation file);
  - sentiment polarity: over triples (a, b of one polarity, c of the other) from the word lists below, how often
    cos(a, b) > cos(a, c).
Then the nearest neighbours of a few sentiment words for both.

    .venv/bin/python bench/bench_word2vec.py --corpus ../shared/data/reviews_lm/train.txt --max_lines 200000

Needs gensim (`pip install gensim`); it is not a dependency of hf-seq.
"""

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from hf_seq.models.word2vec import Word2VecModel
from hf_seq.word2vec import (
    WordVectors,
    build_config,
    flatten_corpus,
    tokenize_corpus,
    train_on_stream,
)
from tokenizer_training import train_tokenizer


# Sentiment words of the reviews (each occurs >= 50 times in the first 200K training lines), labelled by their
# dictionary meaning. Chosen for this benchmark by reading the corpus's frequent words; not from an outside lexicon.
POSITIVE = (
    "최고 최고다 최고의 재밌다 재밌어요 재밌음 재미있다 재미있어요 꿀잼 명작 감동 "
    "감동적인 강추 추천 좋다 좋았다 좋아요 훌륭한 멋진 대박 걸작 완벽한"
).split()
NEGATIVE = (
    "최악 최악의 노잼 지루 지루하다 지루한 지루함 재미없다 재미없음 재미없고 별로 별로다 "
    "쓰레기 쓰레기영화 실망 아깝다 아까운 짜증나는 유치한 유치하고 졸작 억지 삼류 후회"
).split()
PROBES = ["재밌다", "최악", "감동", "지루한", "명작"]


def read_lines(path, max_lines):
    lines = []
    with open(path, encoding="utf-8") as file:
        for line in file:
            if max_lines is not None and len(lines) >= max_lines:
                break
            lines.append(line.rstrip("\n"))
    return lines


class GensimVectors:
    """gensim's KeyedVectors behind the same three queries as hf_seq's WordVectors."""

    def __init__(self, keyed_vectors):
        self.kv = keyed_vectors

    def vector_rows(self, tokens):
        return self.kv.get_normed_vectors()[[self.kv.key_to_index[t] for t in tokens]]

    def most_similar(self, token, k):
        return self.kv.most_similar("▁" + token, topn=k)


def hf_seq_rows(vectors: WordVectors, tokens):
    return vectors.unit_vectors[[vectors.tokenizer.convert_tokens_to_ids(t) for t in tokens]].numpy()


def held_out_cooccurrence_score(rows_for, tokenizer, stream, train_counts, top_words=1000, window=5, min_pairs=5):
    """Spearman(cosine, held-out PPMI) over the pairs of the `top_words` most frequent training words that co-occur
    at least `min_pairs` times within `window` tokens in the held-out stream."""
    from scipy.stats import spearmanr

    special = set(tokenizer.all_special_ids)
    order = [i for i in torch.argsort(train_counts, descending=True).tolist() if i not in special][:top_words]
    position = torch.full((train_counts.numel(),), -1, dtype=torch.int64)
    position[order] = torch.arange(len(order))
    ranks = position[stream.token_ids]
    pairs = []
    for offset in range(1, window + 1):
        a, b = ranks[:-offset], ranks[offset:]
        same = (stream.sentence_ids[:-offset] == stream.sentence_ids[offset:]) & (a >= 0) & (b >= 0)
        pairs.append(torch.stack([a[same], b[same]]))
    pairs = torch.cat(pairs, dim=1)
    size = len(order)
    counts = torch.bincount(pairs[0] * size + pairs[1], minlength=size * size).view(size, size).double()
    counts = counts + counts.T
    total = counts.sum()
    pmi = torch.log(counts * total / (counts.sum(1, keepdim=True) * counts.sum(0, keepdim=True)))
    upper = torch.triu(torch.ones(size, size, dtype=torch.bool), diagonal=1) & (counts >= min_pairs)
    rows = torch.as_tensor(np.asarray(rows_for(tokenizer.convert_ids_to_tokens(order))))
    cosines = rows @ rows.T
    return float(spearmanr(pmi.clamp(min=0)[upper].numpy(), cosines[upper].numpy()).statistic), int(upper.sum())


def polarity_score(rows_for, vocab):
    positive = [w for w in ("▁" + w for w in POSITIVE) if w in vocab]
    negative = [w for w in ("▁" + w for w in NEGATIVE) if w in vocab]
    rows = torch.as_tensor(np.asarray(rows_for(positive + negative)))
    cos = rows @ rows.T
    polarity = torch.tensor([1] * len(positive) + [0] * len(negative))
    same = polarity[:, None] == polarity[None, :]
    correct, total = 0, 0
    for a in range(len(polarity)):
        same_b = [b for b in range(len(polarity)) if same[a, b] and b != a]
        other = ~same[a]
        # cos(a, b) > cos(a, c) for every same-polarity b and opposite-polarity c
        wins = cos[a, same_b][:, None] > cos[a, other][None, :]
        correct += int(wins.sum())
        total += wins.numel()
    return correct / total, len(positive), len(negative)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--corpus",
        default=os.environ.get("HF_SEQ_REVIEWS_TRAIN"),
        help="training text, one review per line (or env HF_SEQ_REVIEWS_TRAIN)",
    )
    parser.add_argument("--held_out", default=None, help="held-out reviews (default: valid.txt next to --corpus)")
    parser.add_argument("--max_lines", type=int, default=200000, help="0: the whole corpus")
    parser.add_argument("--architectures", default="cbow,skipgram")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--embedding_size", type=int, default=100)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--negative", type=int, default=5)
    parser.add_argument("--subsample", type=float, default=1e-3)
    parser.add_argument("--batch_size", type=int, default=None, help="default: hf_seq's per architecture")
    parser.add_argument("--min_frequency", type=int, default=5)
    parser.add_argument("--compile", action="store_true", help="torch.compile hf_seq's update")
    parser.add_argument("--output", default=None, help="write the results as JSON here")
    args = parser.parse_args()
    if not args.corpus:
        parser.error("give --corpus or set HF_SEQ_REVIEWS_TRAIN")
    from gensim.models import Word2Vec

    held_out = args.held_out or str(Path(args.corpus).with_name("valid.txt"))
    lines = read_lines(args.corpus, args.max_lines or None)
    tokenizer = train_tokenizer(texts=lines, algorithm="word", vocab_size=100000, min_frequency=args.min_frequency)
    stream = flatten_corpus(tokenize_corpus(tokenizer, texts=lines), drop_ids=tokenizer.all_special_ids)
    held_out_stream = flatten_corpus(
        tokenize_corpus(tokenizer, texts=read_lines(held_out, None)), drop_ids=tokenizer.all_special_ids
    )
    # gensim reads the same tokens, as strings, sentence by sentence (unk included, as for hf_seq).
    tokens = np.array(tokenizer.convert_ids_to_tokens(list(range(len(tokenizer)))), dtype=object)
    boundaries = torch.nonzero(torch.diff(stream.sentence_ids)).flatten().add(1).tolist()
    sentences = [list(chunk) for chunk in np.split(tokens[stream.token_ids.numpy()], boundaries)]
    train_counts = torch.bincount(stream.token_ids, minlength=len(tokenizer))
    vocab = tokenizer.get_vocab()
    print(
        f"corpus: {len(lines)} lines of {args.corpus}, {len(stream)} tokens, vocabulary {len(tokenizer)} "
        f"(word-level, min_frequency {args.min_frequency}); held-out: {len(held_out_stream)} tokens of {held_out}"
    )
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")

    results = []
    for architecture in args.architectures.split(","):
        for threads in [int(t) for t in args.threads.split(",")]:
            torch.manual_seed(0)
            config = build_config(
                tokenizer,
                architecture=architecture,
                embedding_size=args.embedding_size,
                window=args.window,
                negative=args.negative,
                subsample=args.subsample,
            )
            model = Word2VecModel(config)
            if args.compile:  # compile outside the timing (dynamo keeps the compiled code for the next calls)
                train_on_stream(
                    Word2VecModel(config),
                    stream.subset(stream.sentence_ids < 2000),
                    epochs=1,
                    batch_size=args.batch_size,
                    workers=threads,
                    compile=True,
                )
            seconds = train_on_stream(
                model,
                stream,
                epochs=args.epochs,
                batch_size=args.batch_size,
                seed=0,
                workers=threads,
                compile=args.compile,
            )
            ours = WordVectors.from_model(model, tokenizer)

            gensim_model = Word2Vec(
                vector_size=args.embedding_size,
                window=args.window,
                negative=args.negative,
                sample=args.subsample,
                ns_exponent=0.75,
                alpha=0.025,
                min_alpha=1e-4,
                sg=int(architecture == "skipgram"),
                hs=0,
                cbow_mean=1,
                min_count=1,
                workers=threads,
                seed=0,
                epochs=args.epochs,
                shrink_windows=True,
            )
            gensim_model.build_vocab(sentences)
            start = time.perf_counter()
            gensim_model.train(sentences, total_examples=len(sentences), epochs=args.epochs)
            gensim_seconds = time.perf_counter() - start
            theirs = GensimVectors(gensim_model.wv)

            row = {
                "architecture": architecture,
                "threads": threads,
                "hf_seq_tokens_per_s": len(stream) * args.epochs / seconds,
                "gensim_tokens_per_s": len(stream) * args.epochs / gensim_seconds,
                "load_average": os.getloadavg()[0],
            }
            row["speed_ratio"] = row["hf_seq_tokens_per_s"] / row["gensim_tokens_per_s"]
            for name, rows_for in (("hf_seq", lambda t: hf_seq_rows(ours, t)), ("gensim", theirs.vector_rows)):
                row[f"{name}_cooccurrence_spearman"], row["cooccurrence_pairs"] = held_out_cooccurrence_score(
                    rows_for, tokenizer, held_out_stream, train_counts
                )
                row[f"{name}_polarity"], _, _ = polarity_score(rows_for, vocab)
            print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
            if threads == 1:
                for probe in PROBES:
                    print(
                        f"  {architecture} {probe}: hf_seq  "
                        + " ".join(f"{t.lstrip('▁')}({s:.2f})" for t, s in ours.most_similar(probe, 8))
                    )
                    print(
                        f"  {architecture} {probe}: gensim  "
                        + " ".join(f"{t.lstrip('▁')}({s:.2f})" for t, s in theirs.most_similar(probe, 8))
                    )
            results.append(row)

    print(
        "\n| architecture | threads | hf_seq tok/s | gensim tok/s | ratio | co-occ. Spearman hf_seq / gensim | "
        "polarity hf_seq / gensim |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['architecture']} | {r['threads']} | {r['hf_seq_tokens_per_s']:,.0f} | "
            f"{r['gensim_tokens_per_s']:,.0f} | {r['speed_ratio']:.2f} | {r['hf_seq_cooccurrence_spearman']:.3f} / "
            f"{r['gensim_cooccurrence_spearman']:.3f} | {r['hf_seq_polarity']:.3f} / {r['gensim_polarity']:.3f} |"
        )
    if args.output:
        Path(args.output).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
