"""Train word2vec (CBOW or SkipGram with negative sampling) on a text corpus with one of our tokenizers, query the
vectors, export them in the word2vec text format, and initialise a language model's embeddings from them.

The recipe is word2vec.c's, as gensim 4 implements it, step by step:
  1. tokenize the corpus through `datasets` (no special tokens: bos/eos are not words) and flatten it to one id
     stream with the sentence each token belongs to;
  2. count the tokens; each epoch, drop frequent tokens at gensim's rate
     (keep with probability (sqrt(f / t) + 1) * t / f, t = subsample * total);
  3. give each centre token a window drawn from 1..window and build its context, cut at the sentence edges and
     filled with the pad id there (vectorised over a whole batch of centres: no Python loop per pair);
  4. draw `negative` targets per positive target from the unigram distribution raised to `ns_exponent`;
  5. update the vectors with plain SGD on the negative-sampling loss, the learning rate decaying linearly from
     `learning_rate` to `min_learning_rate` over all the tokens of all the epochs.

Why a plain loop and not `Trainer`: the model is two embedding matrices and one update touches a few hundred rows of
each. The loop below applies the closed-form gradients with `index_add_`, many thousand pairs per call, which is
what makes it run at gensim's speed; autograd, a dense optimiser and the Trainer's per-step machinery would cost
more than the arithmetic. `Word2VecModel.forward` computes the same loss (the tests check that the gradients agree).
As in word2vec.c, a CBOW context vector gets the whole gradient of the mean (not divided by the context size).
"""

import argparse
import json
import math
import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from .models.word2vec import Word2VecConfig, Word2VecModel


METASPACE = "▁"  # our tokenizers' word-start marker (tokenizer_training)
TRAINING_INFO_FILE = "word2vec_training.json"
# Centre tokens per vectorised update. A SkipGram centre brings ~5 pairs, a CBOW centre one row. Larger batches
# spread the Python between operations (which holds the GIL) over more work, smaller ones keep the gathered rows in
# cache; on the review corpus, SkipGram at 512 ran as fast as at 256 on one thread and 1.07-1.34x faster on two,
# with held-out quality as good (docs/word2vec.md).
DEFAULT_BATCH_SIZES = {"cbow": 1024, "skipgram": 512}


# ---------------------------------------------------------------------------------------------------------- corpus


@dataclass
class TokenStream:
    """A tokenized corpus as one id stream: `token_ids[i]` belongs to sentence `sentence_ids[i]` (non-decreasing)."""

    token_ids: torch.LongTensor
    sentence_ids: torch.LongTensor

    def __len__(self) -> int:
        return self.token_ids.numel()

    def subset(self, keep: torch.BoolTensor) -> "TokenStream":
        return TokenStream(self.token_ids[keep], self.sentence_ids[keep])


def tokenize_corpus(
    tokenizer,
    files=None,
    texts: Iterable[str] | None = None,
    dataset=None,
    text_column: str = "text",
    max_lines: int | None = None,
    num_proc: int | None = None,
):
    """The corpus as a `datasets.Dataset` with one `input_ids` row per line (no special tokens added).

    Give exactly one of `files` (UTF-8 text files, one document per line), `texts` (strings) or `dataset` (a
    `datasets.Dataset` with a `text_column`).
    """
    import datasets

    given = [name for name, value in (("files", files), ("texts", texts), ("dataset", dataset)) if value is not None]
    if len(given) != 1:
        raise ValueError(f"Give exactly one corpus among files=, texts=, dataset=; got {given or 'none'}.")
    if files is not None:
        paths = [str(files)] if isinstance(files, (str, os.PathLike)) else [str(path) for path in files]
        for path in paths:
            if not os.path.isfile(path):
                raise FileNotFoundError(f"training text file not found: {path}")
        dataset = datasets.load_dataset("text", data_files=paths, split="train")
        text_column = "text"
    elif texts is not None:
        dataset = datasets.Dataset.from_dict({"text": list(texts)})
        text_column = "text"
    if max_lines is not None:
        dataset = dataset.select(range(min(max_lines, len(dataset))))

    def encode(batch):
        return {"input_ids": tokenizer(batch[text_column], add_special_tokens=False)["input_ids"]}

    return dataset.map(encode, batched=True, batch_size=2000, remove_columns=dataset.column_names, num_proc=num_proc)


def flatten_corpus(tokenized, drop_ids: Sequence[int] = ()) -> TokenStream:
    """One id stream from a dataset of `input_ids` rows (read from its Arrow columns, not row by row).

    `drop_ids` (the tokenizer's special ids) are removed: a literal "<pad>" in a review must not become a pad.
    """
    import pyarrow.compute as pc

    column = tokenized.data.column("input_ids").combine_chunks()
    token_ids = torch.from_numpy(pc.list_flatten(column).to_numpy(zero_copy_only=False).astype(np.int64))
    lengths = torch.from_numpy(pc.list_value_length(column).to_numpy(zero_copy_only=False).astype(np.int64))
    sentence_ids = torch.repeat_interleave(torch.arange(lengths.numel()), lengths)
    stream = TokenStream(token_ids, sentence_ids)
    if len(drop_ids):
        stream = stream.subset(~torch.isin(token_ids, torch.tensor(list(drop_ids), dtype=torch.int64)))
    return stream


def count_tokens(stream: TokenStream, vocab_size: int) -> torch.LongTensor:
    return torch.bincount(stream.token_ids, minlength=vocab_size)


# ----------------------------------------------------------------------------------------- the sampling recipe


def keep_probabilities(counts: torch.Tensor, subsample: float) -> torch.DoubleTensor:
    """gensim's (and word2vec.c's) downsampling: P(keep) = (sqrt(c / t) + 1) * t / c, t = subsample * total, cut at 1.

    `subsample` 0 keeps every token.
    """
    counts = counts.double()
    if subsample == 0:
        return torch.ones_like(counts)
    threshold = subsample * counts.sum()
    probabilities = (torch.sqrt(counts / threshold) + 1) * threshold / counts
    return probabilities.nan_to_num(1.0, posinf=1.0).clamp(max=1.0)  # unseen tokens (c = 0): 1, never used


def subsample_stream(stream: TokenStream, keep_probability: torch.Tensor, generator: torch.Generator) -> TokenStream:
    """Drop each token with its probability of being dropped; windows are then built on what is left, as in gensim."""
    draws = torch.rand(len(stream), generator=generator, dtype=torch.float64)
    return stream.subset(draws < keep_probability[stream.token_ids])


@dataclass
class NegativeSampler:
    """Draws token ids from the unigram distribution raised to `ns_exponent`, by Walker's alias method.

    Each draw is one uniform bucket and one coin: bucket i gives i with probability `keep[i]`, else `alias[i]`.
    That is exact and O(1) per draw (a few vectorised ops for a whole batch), several times faster than inverse-CDF
    sampling with `searchsorted` (what gensim does with its cumulative table and bisection).
    """

    probabilities: torch.DoubleTensor
    keep: torch.FloatTensor
    alias: torch.LongTensor

    @classmethod
    def from_counts(cls, counts: torch.Tensor, ns_exponent: float) -> "NegativeSampler":
        weights = counts.double().pow(ns_exponent)
        weights[counts == 0] = 0.0  # 0 ** 0 is 1: an unseen token must not be drawn even with ns_exponent 0
        if weights.sum() <= 0:
            raise ValueError("The corpus holds no token to draw negatives from (is it empty?).")
        probabilities = weights / weights.sum()
        keep, alias = _alias_table(probabilities.numpy())
        return cls(probabilities, torch.from_numpy(keep).float(), torch.from_numpy(alias))

    def sample(self, shape: tuple[int, ...], generator: torch.Generator) -> torch.LongTensor:
        buckets = torch.randint(0, self.keep.numel(), shape, generator=generator)
        coins = torch.rand(shape, generator=generator)
        return torch.where(coins < self.keep[buckets], buckets, self.alias[buckets])


def _alias_table(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vose's construction of the alias table: buckets of mass 1/n, each split between its own id and one alias."""
    n = probabilities.size
    scaled = probabilities * n
    keep = np.ones(n, dtype=np.float64)
    alias = np.arange(n, dtype=np.int64)
    small = [i for i in range(n) if scaled[i] < 1.0]
    large = [i for i in range(n) if scaled[i] >= 1.0]
    while small and large:  # one pass over the vocabulary, once per training run
        less, more = small.pop(), large.pop()
        keep[less], alias[less] = scaled[less], more
        scaled[more] -= 1.0 - scaled[less]
        (small if scaled[more] < 1.0 else large).append(more)
    # What is left is full up to rounding errors: those buckets keep their own id (keep = 1, alias = itself),
    # except an unseen token (probability 0), which must never be drawn: it hands its bucket to a real one.
    zero = probabilities == 0
    keep[zero & (keep == 1.0)] = 0.0
    alias[zero & (alias == np.arange(n))] = int(np.argmax(probabilities))
    return keep, alias


def context_windows(
    stream: TokenStream,
    start: int,
    end: int,
    window: int,
    pad_token_id: int,
    reduced_windows: torch.LongTensor | None = None,
) -> tuple[torch.LongTensor, torch.BoolTensor]:
    """The contexts of the centre tokens `start..end-1` of `stream`: ids (n, 2 * window) and which are real.

    Column k holds the token at offset -window..-1, 1..window. A position outside the centre's sentence (or beyond
    its reduced window, 1..window, when given) is not real: its id is `pad_token_id`.
    """
    offsets = torch.cat([torch.arange(-window, 0), torch.arange(1, window + 1)])
    centres = torch.arange(start, end)
    positions = centres[:, None] + offsets[None, :]
    inside = (positions >= 0) & (positions < len(stream))
    positions = positions.clamp_(0, len(stream) - 1)
    real = inside & (stream.sentence_ids[positions] == stream.sentence_ids[centres, None])
    if reduced_windows is not None:
        real &= offsets.abs()[None, :] <= reduced_windows[:, None]
    contexts = torch.where(real, stream.token_ids[positions], torch.full_like(positions, pad_token_id))
    return contexts, real


# ------------------------------------------------------------------------------------------------ the SGD updates


def negative_sampling_update(
    output_vectors: torch.Tensor, hidden: torch.Tensor, targets: torch.LongTensor, learning_rate: float
) -> torch.Tensor:
    """One SGD step on the output vectors of `targets` (n, 1 + negative; positive first) for the inputs `hidden`.

    Returns the step to apply to `hidden` (n, d): g = lr * (label - s(h . u)) per target, as word2vec.c, a sampled
    negative equal to the positive target skipped. The targets are taken one column at a time (the positives, then
    each round of negatives), every column reading the output vectors as the columns before it left them, as
    word2vec.c's loop over a pair's targets does; `hidden` is the inputs' value before this update.

    Why by column: each temporary is then (n, d), small enough to stay in cache, where the whole (n, 1 + negative, d)
    block of gathered vectors and their steps went out to memory and back three times. This loop is bound by memory
    traffic, not arithmetic: by column, SkipGram trained 1.2-1.4x faster on one thread (256-1,024 centres).
    """
    hidden_step = torch.zeros_like(hidden)
    columns = targets.t().contiguous()
    # The step per unit of s(h . u): -lr for a negative (0 where it equals the positive), so that g = this * s + lr
    # for the positive and g = this * s for a negative: one multiply per column.
    negative_rates = (columns[1:] != columns[:1]).to(hidden.dtype).mul_(-learning_rate)
    for column, target_ids in enumerate(columns):
        target_vectors = output_vectors.index_select(0, target_ids)
        steps = torch.sigmoid(torch.linalg.vecdot(target_vectors, hidden))
        steps = (
            steps.mul_(-learning_rate).add_(learning_rate) if column == 0 else steps.mul_(negative_rates[column - 1])
        )
        steps = steps.unsqueeze(1)
        hidden_step.addcmul_(steps, target_vectors)
        output_vectors.index_add_(0, target_ids, hidden * steps)
    return hidden_step


def cbow_update(
    input_vectors,
    output_vectors,
    contexts,
    real,
    centre_ids,
    negatives,
    learning_rate,
    pad_token_id,
    update=negative_sampling_update,
):
    """CBOW: the mean of each centre's real context vectors predicts the centre; each context vector gets the step."""
    has_context = real.any(dim=1)
    contexts, real = contexts[has_context], real[has_context]
    centre_ids, negatives = centre_ids[has_context], negatives[has_context]
    hidden = F.embedding_bag(contexts, input_vectors, mode="mean", padding_idx=pad_token_id)
    hidden_step = update(output_vectors, hidden, torch.cat([centre_ids[:, None], negatives], 1), learning_rate)
    rows = real.nonzero(as_tuple=True)[0]
    input_vectors.index_add_(0, contexts[real], hidden_step.index_select(0, rows))
    return int(has_context.sum())


def skipgram_update(
    input_vectors,
    output_vectors,
    contexts,
    real,
    centre_ids,
    negatives,
    learning_rate,
    update=negative_sampling_update,
):
    """SkipGram: each real context token's vector predicts the centre (word2vec.c's order of the pair)."""
    rows = real.nonzero(as_tuple=True)[0]
    context_ids = contexts[real]
    hidden = input_vectors.index_select(0, context_ids)
    targets = torch.cat([centre_ids.index_select(0, rows)[:, None], negatives[: rows.numel()]], 1)
    hidden_step = update(output_vectors, hidden, targets, learning_rate)
    input_vectors.index_add_(0, context_ids, hidden_step)
    return rows.numel()


# --------------------------------------------------------------------------------------------------- training


@dataclass
class Word2VecTrainingResult:
    model: Word2VecModel
    corpus_tokens: int
    epochs: int
    train_seconds: float
    prepare_seconds: float

    @property
    def tokens_per_second(self) -> float:
        """Corpus tokens (before subsampling) times epochs, per second of training (as gensim reports words/s)."""
        return self.corpus_tokens * self.epochs / self.train_seconds


def build_config(tokenizer, **config_kwargs) -> Word2VecConfig:
    """A config sized for `tokenizer` (vocab size and special ids), with any field overridden by `config_kwargs`."""
    special = {name: getattr(tokenizer, name) for name in ("pad_token_id", "bos_token_id", "eos_token_id")}
    special = {name: value for name, value in special.items() if value is not None}
    return Word2VecConfig(**{"vocab_size": len(tokenizer), **special, **config_kwargs})


def train_on_stream(
    model: Word2VecModel,
    stream: TokenStream,
    epochs: int = 5,
    learning_rate: float = 0.025,
    min_learning_rate: float = 1e-4,
    batch_size: int | None = None,
    seed: int = 0,
    workers: int = 1,
    compile: bool = False,
) -> float:
    """Train `model` in place on `stream`, its `token_counts` set from it; returns the training seconds.

    `workers` > 1 trains in that many Python threads, each on its share of the batches, all updating the same two
    matrices without locks ("Hogwild", as gensim's `workers` and word2vec.c's threads do; torch releases the GIL
    inside each operation). Each thread runs its operations on one core (torch's intra-op threads are set to 1
    while training): on the small operations of word2vec, OpenMP threads waiting for each other cost more than
    they give, ten times over on a busy machine. With one worker, a seed gives the same vectors every run.

    `compile=True` runs the negative-sampling update through `torch.compile` (inductor fuses each column's gather,
    dot products and scatter-add into one loop: SkipGram 1.5x faster on CPU in one run, CBOW no faster; some
    10-60 s of compilation first, and only where a C++ compiler is installed).
    """
    config = model.config
    batch_size = DEFAULT_BATCH_SIZES[config.architecture] if batch_size is None else batch_size
    if len(stream) == 0:
        raise ValueError("The corpus holds no token to train on.")
    if epochs < 1 or batch_size < 1 or workers < 1:
        raise ValueError(f"epochs, batch_size and workers must be positive, got {epochs}, {batch_size}, {workers}")
    if compile and workers > 1:
        raise ValueError("compile=True trains with one worker only (torch.compile is not thread-safe)")
    counts = count_tokens(stream, config.vocab_size)
    model.token_counts.copy_(counts)
    keep_probability = keep_probabilities(counts, config.subsample)
    sampler = NegativeSampler.from_counts(counts, config.ns_exponent)
    generator = torch.Generator().manual_seed(seed)
    # One generator per worker: a torch.Generator is not meant to be shared between threads.
    worker_generators = (
        [generator] if workers == 1 else [torch.Generator().manual_seed(seed + 1 + w) for w in range(workers)]
    )
    update = torch.compile(negative_sampling_update, dynamic=True) if compile else negative_sampling_update
    input_vectors = model.embed_tokens.weight.data  # updated in place, outside autograd
    output_vectors = model.output_embeddings.weight.data

    def train_batches(kept: TokenStream, epoch: int, starts: range, worker_generator: torch.Generator) -> None:
        for start in starts:
            end = min(start + batch_size, len(kept))
            # Linear decay over every token of every epoch, as gensim (progress within the epoch's kept tokens).
            progress = (epoch + start / len(kept)) / epochs
            rate = learning_rate - (learning_rate - min_learning_rate) * progress
            reduced = (
                torch.randint(1, config.window + 1, (end - start,), generator=worker_generator)
                if config.shrink_windows
                else None
            )
            contexts, real = context_windows(kept, start, end, config.window, config.pad_token_id, reduced)
            centre_ids = kept.token_ids[start:end]
            if config.architecture == "cbow":
                negatives = sampler.sample((end - start, config.negative), worker_generator)
                cbow_update(
                    input_vectors,
                    output_vectors,
                    contexts,
                    real,
                    centre_ids,
                    negatives,
                    rate,
                    config.pad_token_id,
                    update,
                )
            else:
                negatives = sampler.sample((int(real.sum()), config.negative), worker_generator)
                skipgram_update(input_vectors, output_vectors, contexts, real, centre_ids, negatives, rate, update)

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    start_time = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=workers) if workers > 1 else nullcontext() as pool:
            for epoch in range(epochs):
                kept = subsample_stream(stream, keep_probability, generator)
                if workers == 1:
                    train_batches(kept, epoch, range(0, len(kept), batch_size), generator)
                    continue
                # Worker w takes batches w, w + workers, ...: all workers advance through the epoch together,
                # so the learning rate decays for all of them alike.
                shares = [range(w * batch_size, len(kept), workers * batch_size) for w in range(workers)]
                for future in [
                    pool.submit(train_batches, kept, epoch, share, worker_generator)
                    for share, worker_generator in zip(shares, worker_generators)
                ]:
                    future.result()
    finally:
        torch.set_num_threads(previous_threads)
    input_vectors[config.pad_token_id].zero_()  # the pad's vector stays zero (it is never a context, by construction)
    return time.perf_counter() - start_time


def train_word2vec(
    tokenizer,
    *,
    files=None,
    texts: Iterable[str] | None = None,
    dataset=None,
    text_column: str = "text",
    output_dir: str | os.PathLike | None = None,
    config: Word2VecConfig | None = None,
    epochs: int = 5,
    learning_rate: float = 0.025,
    min_learning_rate: float = 1e-4,
    batch_size: int | None = None,
    seed: int = 0,
    workers: int = 1,
    max_lines: int | None = None,
    compile: bool = False,
    **config_kwargs,
) -> Word2VecTrainingResult:
    """Train word2vec vectors for `tokenizer`'s vocabulary on a corpus; with `output_dir`, save model and tokenizer.

    Args:
        tokenizer: a tokenizer object or a folder saved with `save_pretrained` (subword or algorithm="word").
        files / texts / dataset (+ text_column): the corpus, exactly one of them (see `tokenize_corpus`).
        config: a `Word2VecConfig`; by default one sized for the tokenizer, with `config_kwargs`
            (architecture="skipgram", embedding_size=..., window=..., negative=..., subsample=...).
        epochs, learning_rate, min_learning_rate: gensim's `epochs`, `alpha`, `min_alpha` (linear decay).
        batch_size: centre tokens per vectorised update (default: `DEFAULT_BATCH_SIZES[architecture]`). The
            updates inside a batch all see the vectors from before it (gensim updates after every centre), so very
            large batches cost quality.
        workers: training threads (see `train_on_stream`); 1 gives reproducible vectors.
        max_lines: train on the first lines only.
        compile: run the update through `torch.compile` (see `train_on_stream`).
    """
    from .training.common import load_tokenizer

    tokenizer = load_tokenizer(tokenizer)
    if config is None:
        config = build_config(tokenizer, **config_kwargs)
    elif config_kwargs:
        raise ValueError(f"give either config= or config fields, not both: {sorted(config_kwargs)}")
    if config.vocab_size != len(tokenizer):
        raise ValueError(f"config.vocab_size={config.vocab_size} but the tokenizer has {len(tokenizer)} tokens")
    prepare_start = time.perf_counter()
    tokenized = tokenize_corpus(
        tokenizer, files=files, texts=texts, dataset=dataset, text_column=text_column, max_lines=max_lines
    )
    stream = flatten_corpus(tokenized, drop_ids=tokenizer.all_special_ids)
    prepare_seconds = time.perf_counter() - prepare_start
    torch.manual_seed(seed)  # the initial vectors
    model = Word2VecModel(config)
    train_seconds = train_on_stream(
        model,
        stream,
        epochs=epochs,
        learning_rate=learning_rate,
        min_learning_rate=min_learning_rate,
        batch_size=batch_size,
        seed=seed,
        workers=workers,
        compile=compile,
    )
    result = Word2VecTrainingResult(model, len(stream), epochs, train_seconds, prepare_seconds)
    if output_dir is not None:
        model.save_pretrained(output_dir)
        tokenizer.save_pretrained(output_dir)
        info = {
            "corpus_tokens": len(stream),
            "epochs": epochs,
            "learning_rate": learning_rate,
            "min_learning_rate": min_learning_rate,
            "batch_size": batch_size or DEFAULT_BATCH_SIZES[config.architecture],
            "seed": seed,
            "workers": workers,
            "train_seconds": round(train_seconds, 3),
            "tokens_per_second": round(result.tokens_per_second),
        }
        Path(output_dir, TRAINING_INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return result


# ---------------------------------------------------------------------------------------------------- queries


class WordVectors:
    """Trained input vectors with their tokenizer: similarity queries, analogies, word2vec-format export.

    Tokens are the tokenizer's (e.g. "▁재밌다" for a word that starts after a space); a query word without the
    marker is looked up with it too. Tokens never seen in training (count 0: specials, unused byte tokens) are
    never returned as neighbours: their vectors are still their random initialisation.
    """

    def __init__(self, vectors: torch.Tensor, tokenizer, token_counts: torch.Tensor | None = None):
        self.vectors = vectors.detach().float()
        self.tokenizer = tokenizer
        self.tokens = tokenizer.convert_ids_to_tokens(list(range(vectors.shape[0])))
        seen = token_counts > 0 if token_counts is not None else torch.ones(vectors.shape[0], dtype=torch.bool)
        self.seen = seen
        self.unit_vectors = F.normalize(self.vectors, dim=1)

    @classmethod
    def from_model(cls, model: Word2VecModel, tokenizer) -> "WordVectors":
        return cls(model.embed_tokens.weight, tokenizer, model.token_counts)

    @classmethod
    def from_pretrained(cls, word2vec_dir: str | os.PathLike) -> "WordVectors":
        from .training.common import load_tokenizer

        return cls.from_model(Word2VecModel.from_pretrained(word2vec_dir), load_tokenizer(str(word2vec_dir)))

    def token_id(self, token: str) -> int:
        """The id of `token`, or of `"▁" + token`; KeyError for a word that is not one token of the vocabulary."""
        vocab = self.tokenizer.get_vocab()
        for candidate in (token, METASPACE + token):
            if candidate in vocab:
                return vocab[candidate]
        raise KeyError(f"{token!r} is not a token of the vocabulary (nor {METASPACE + token!r})")

    def similarity(self, a: str, b: str) -> float:
        return float(self.unit_vectors[self.token_id(a)] @ self.unit_vectors[self.token_id(b)])

    def _nearest(self, query: torch.Tensor, exclude: list[int], k: int) -> list[tuple[str, float]]:
        scores = self.unit_vectors @ F.normalize(query, dim=0)
        scores[~self.seen] = -math.inf
        scores[exclude] = -math.inf
        top = torch.topk(scores, min(k, int(torch.isfinite(scores).sum())))
        return [(self.tokens[i], float(s)) for s, i in zip(top.values.tolist(), top.indices.tolist())]

    def most_similar(self, token: str, k: int = 10) -> list[tuple[str, float]]:
        """The `k` tokens of highest cosine similarity to `token`, with their similarities."""
        token_id = self.token_id(token)
        return self._nearest(self.unit_vectors[token_id], [token_id], k)

    def analogy(self, a: str, b: str, c: str, k: int = 1) -> list[tuple[str, float]]:
        """a : b :: c : ?  by 3CosAdd on unit vectors (gensim's most_similar(positive=[b, c], negative=[a]))."""
        ids = [self.token_id(word) for word in (a, b, c)]
        query = self.unit_vectors[ids[1]] - self.unit_vectors[ids[0]] + self.unit_vectors[ids[2]]
        return self._nearest(query, ids, k)

    def save_word2vec_format(self, path: str | os.PathLike, only_seen: bool = False) -> int:
        """Write the vectors in word2vec's text format ("count size" line, then "token v1 ... vd" per line), which
        gensim's `KeyedVectors.load_word2vec_format(path)` reads. Rows in id order; returns how many were written."""
        ids = self.seen.nonzero().flatten().tolist() if only_seen else list(range(len(self.tokens)))
        bad = [self.tokens[i] for i in ids if not self.tokens[i] or any(ch.isspace() for ch in self.tokens[i])]
        if bad:
            raise ValueError(f"the word2vec text format cannot hold tokens with whitespace: {bad[:5]}")
        with open(path, "w", encoding="utf-8") as file:
            file.write(f"{len(ids)} {self.vectors.shape[1]}\n")
            for i in ids:
                # repr of a float32 written as float64 text round-trips exactly ("%.9g" would too).
                file.write(
                    self.tokens[i] + " " + " ".join(f"{value:.9g}" for value in self.vectors[i].tolist()) + "\n"
                )
        return len(ids)


def load_word2vec_format(path: str | os.PathLike) -> tuple[list[str], torch.Tensor]:
    """Read word2vec's text format: the tokens and a (count, size) float32 tensor."""
    with open(path, encoding="utf-8") as file:
        count, size = (int(field) for field in file.readline().split())
        tokens, rows = [], []
        for line in file:
            token, *values = line.rstrip("\n").split(" ")
            if len(values) != size:
                raise ValueError(f"{path}: the vector of {token!r} has {len(values)} values, expected {size}")
            tokens.append(token)
            rows.append([float(value) for value in values])
    if len(tokens) != count:
        raise ValueError(f"{path}: the header announces {count} vectors, the file holds {len(tokens)}")
    return tokens, torch.tensor(rows, dtype=torch.float32).reshape(count, size)


# ------------------------------------------------------------------------------------ initialising other models


def init_embeddings_from(model, word2vec_dir: str | os.PathLike, tokenizer) -> int:
    """Copy trained word vectors into `model`'s input embeddings (and so into a tied output layer).

    `tokenizer` is the one `model` was built for (object or folder); its vocabulary must be the word2vec folder's,
    token for token, or the rows would land on other tokens. Only the rows of tokens seen in word2vec training are
    copied; the others (specials, unused byte tokens) keep the model's own initialisation. Returns the rows copied.

    Raises:
        ValueError: the vocabularies differ, or the embedding sizes differ.
    """
    from .training.common import load_tokenizer

    tokenizer = load_tokenizer(tokenizer)
    word2vec_tokenizer = load_tokenizer(str(word2vec_dir))
    if tokenizer.get_vocab() != word2vec_tokenizer.get_vocab():
        ours, theirs = tokenizer.get_vocab(), word2vec_tokenizer.get_vocab()
        differing = sum(1 for token in set(ours) | set(theirs) if ours.get(token) != theirs.get(token))
        raise ValueError(
            f"the word vectors in {word2vec_dir} were trained for another tokenizer ({len(theirs)} tokens, "
            f"{differing} tokens differ from the model's tokenizer of {len(ours)}): train word2vec with the model's "
            "tokenizer"
        )
    word2vec = Word2VecModel.from_pretrained(word2vec_dir)
    embeddings = model.get_input_embeddings().weight
    vectors = word2vec.embed_tokens.weight
    if embeddings.shape[0] != vectors.shape[0]:
        raise ValueError(f"the model has {embeddings.shape[0]} embedding rows, the word vectors {vectors.shape[0]}")
    if embeddings.shape[1] != vectors.shape[1]:
        raise ValueError(
            f"the model's embedding_size is {embeddings.shape[1]} but the word vectors in {word2vec_dir} have size "
            f"{vectors.shape[1]}: train word2vec with embedding_size={embeddings.shape[1]} (or build the model with "
            f"embedding_size={vectors.shape[1]})"
        )
    seen = word2vec.token_counts > 0
    with torch.no_grad():
        embeddings[seen] = vectors[seen].to(embeddings.dtype)
    return int(seen.sum())


# ------------------------------------------------------------------------------------------------------- CLI


def train_word2vec_cli(argv: Sequence[str] | None = None) -> int:
    """`hf-seq train-word2vec`: train vectors on a text file and save them (model folder + optional text export)."""
    parser = argparse.ArgumentParser(prog="hf-seq train-word2vec", description=train_word2vec_cli.__doc__)
    parser.add_argument("--train_file", required=True, help="UTF-8 text, one document per line")
    parser.add_argument("--tokenizer", required=True, help="a tokenizer folder (tokenizer_training, any algorithm)")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--architecture", choices=("cbow", "skipgram"), default="cbow")
    parser.add_argument("--embedding_size", type=int, default=100)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--negative", type=int, default=5)
    parser.add_argument("--subsample", type=float, default=1e-3)
    parser.add_argument("--ns_exponent", type=float, default=0.75)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--learning_rate", type=float, default=0.025)
    parser.add_argument("--min_learning_rate", type=float, default=1e-4)
    parser.add_argument(
        "--batch_size", type=int, default=None, help="centres per update (default: 1024 cbow, 512 skipgram)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1, help="training threads (1: reproducible)")
    parser.add_argument("--max_lines", type=int, default=None, help="train on the first lines only")
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile the update (faster, needs a C++ compiler; one worker)"
    )
    parser.add_argument("--export_text", default=None, help="also write the vectors in word2vec text format here")
    args = parser.parse_args(argv)
    result = train_word2vec(
        args.tokenizer,
        files=args.train_file,
        output_dir=args.output_dir,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        min_learning_rate=args.min_learning_rate,
        batch_size=args.batch_size,
        seed=args.seed,
        workers=args.workers,
        max_lines=args.max_lines,
        compile=args.compile,
        architecture=args.architecture,
        embedding_size=args.embedding_size,
        window=args.window,
        negative=args.negative,
        subsample=args.subsample,
        ns_exponent=args.ns_exponent,
    )
    if args.export_text:
        WordVectors.from_pretrained(args.output_dir).save_word2vec_format(args.export_text)
    print(
        json.dumps(
            {
                "output_dir": str(args.output_dir),
                "corpus_tokens": result.corpus_tokens,
                "train_seconds": round(result.train_seconds, 2),
                "tokens_per_second": round(result.tokens_per_second),
            }
        )
    )
    return 0
