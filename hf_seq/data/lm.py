"""Language-modelling corpora from text files (one document per line), read and tokenised with `datasets`.

Two layouts of the same tokens:
- fixed blocks (`group_into_blocks`): every example is `block_size` tokens, independent of the others; what a
  Transformer trains on with `Trainer` (as transformers' run_clm example does);
- contiguous streams (`BPTTStreamDataset` + `StreamOrderSampler`): the corpus cut into `num_streams` long rows and read
  window by window, so the recurrent state after one window is the right start for the next one of the same stream;
  what truncated backpropagation through time trains on (as pytorch/examples' word_language_model does).
`StreamingBPTTBatches` gives the stream layout for corpora read with `streaming=True` (too large for memory).
"""

import math
import os

import numpy as np
import torch
from datasets import Dataset, Features, IterableDataset, List, Value, load_dataset

from tokenizer_training import check_utf8_text


# The column every tokenised example has (naming it lets a streaming dataset know its columns before reading).
TOKENIZED_FEATURES = Features({"input_ids": List(Value("int32"))})


def load_text_files(data_files, streaming=False, cache_dir=None):
    """Read text files (one document per line) into a `DatasetDict` (or `IterableDatasetDict`) with a `text` column.

    Args:
        data_files: `{split_name: path}`, e.g. `{"train": "train.txt", "validation": "valid.txt"}`, or one path
            (a "train" split).
        streaming: read lazily, line by line, instead of building an Arrow cache (corpora larger than memory).
        cache_dir: where `datasets` keeps its Arrow cache.
    """
    if isinstance(data_files, (str, os.PathLike)):
        data_files = {"train": os.fspath(data_files)}
    data_files = {split: os.fspath(path) for split, path in data_files.items() if path is not None}
    if not data_files:
        raise ValueError("load_text_files needs at least one file")
    for split, path in data_files.items():
        if not os.path.isfile(path):
            raise FileNotFoundError(f"text file for split {split!r} not found: {path}")
        # Read through once here: datasets reports a byte that is not UTF-8 without the file's name or line, and an
        # empty file as "corresponds to no data" (a corpus larger than memory is still only streamed, not held).
        if not check_utf8_text(path, description="Text file"):
            raise ValueError(f"{path} has no text (no line holds anything but spaces): give one document per line")
    # Naming the features lets a streaming dataset know its columns before reading a line.
    features = Features({"text": Value("string")})
    return load_dataset("text", data_files=data_files, streaming=streaming, features=features, cache_dir=cache_dir)


def tokenize_corpus(
    dataset, tokenizer, text_column="text", append_eos=True, num_proc=None, batch_size=1000, reverse=False
):
    """Tokenise every document with `Dataset.map(batched=True)` (cached by `datasets` for file-backed datasets).

    Each document becomes `input_ids` as the tokenizer encodes it (with its bos, if it adds one, so training sees
    what a prompt at generation time looks like); `append_eos` ends each with `eos_token_id` unless the tokenizer
    already did, so a model reading the concatenated corpus sees where documents end. Empty lines are dropped.
    `reverse` turns each document's ids (as the tokenizer gives them) back to front before the eos is appended: the
    order a backward LM (`reading_direction="backward"`) reads, the same order its classifiers read the tokenizer's ids.
    Works the same on a `Dataset`, a `DatasetDict` and their streaming (`Iterable...`) forms.
    """
    eos_token_id = tokenizer.eos_token_id
    if append_eos and eos_token_id is None:
        raise ValueError("tokenize_corpus(append_eos=True) needs a tokenizer with an eos token")

    def tokenize(batch):
        texts = [text for text in batch[text_column] if text and text.strip()]
        encoded = tokenizer(texts)["input_ids"]
        if reverse:
            encoded = [ids[::-1] for ids in encoded]
        if append_eos:
            encoded = [ids if ids and ids[-1] == eos_token_id else ids + [eos_token_id] for ids in encoded]
        return {"input_ids": encoded}

    column_names = _column_names(dataset)
    if text_column not in column_names:
        raise ValueError(f"tokenize_corpus: no column {text_column!r} (columns: {column_names})")
    map_kwargs = {
        "batched": True,
        "batch_size": batch_size,
        "remove_columns": column_names,
        "features": TOKENIZED_FEATURES,
    }
    if not _is_streaming(dataset):
        map_kwargs.update(num_proc=num_proc, desc="Tokenizing")
    return _map_every_split(dataset, tokenize, **map_kwargs)


def group_into_blocks(tokenized, block_size, num_proc=None):
    """Concatenate tokenised documents and cut them into examples of exactly `block_size` tokens.

    The tail shorter than a block is dropped at the end of each `map` batch (1,000 documents), as run_clm does.
    Labels are left to `DataCollatorForLanguageModeling(mlm=False)`, which copies `input_ids` (the model shifts).
    """
    if not isinstance(block_size, int) or block_size < 2:
        raise ValueError(f"block_size must be an integer >= 2, got {block_size!r}")

    def group(batch):
        tokens = [token for ids in batch["input_ids"] for token in ids]
        usable = (len(tokens) // block_size) * block_size
        return {"input_ids": [tokens[start : start + block_size] for start in range(0, usable, block_size)]}

    map_kwargs = {"batched": True, "remove_columns": _column_names(tokenized), "features": TOKENIZED_FEATURES}
    if not _is_streaming(tokenized):
        map_kwargs.update(num_proc=num_proc, desc=f"Grouping into blocks of {block_size}")
    return _map_every_split(tokenized, group, **map_kwargs)


def corpus_token_ids(tokenized):
    """All token ids of a tokenised (map-style) `Dataset`, concatenated in order, as a 1-D `torch.long` tensor."""
    if not isinstance(tokenized, Dataset):
        raise TypeError(f"corpus_token_ids needs a map-style datasets.Dataset, got {type(tokenized).__name__}")
    if len(tokenized) == 0:
        return torch.zeros(0, dtype=torch.long)
    # Read the Arrow column directly: flatten() follows the list offsets, so no Python list per document.
    column = tokenized.with_format("arrow")[:]["input_ids"].combine_chunks()
    return torch.from_numpy(np.asarray(column.flatten().to_numpy(zero_copy_only=False), dtype=np.int64))


def batchify(token_ids, num_streams):
    """Lay a 1-D token sequence out as `num_streams` contiguous rows (pytorch/examples' `batchify`).

    Row s holds tokens `[s * n, (s + 1) * n)` with `n = len(token_ids) // num_streams`; the last
    `len(token_ids) % num_streams` tokens are dropped.
    """
    if not isinstance(num_streams, int) or num_streams < 1:
        raise ValueError(f"num_streams must be a positive integer, got {num_streams!r}")
    stream_length = token_ids.numel() // num_streams
    if stream_length < 2:
        raise ValueError(
            f"{token_ids.numel()} tokens are too few for {num_streams} streams (each needs at least 2 tokens)"
        )
    return token_ids[: stream_length * num_streams].view(num_streams, stream_length)


class BPTTStreamDataset(torch.utils.data.Dataset):
    """
    Windows of at most `bptt` tokens read along `num_streams` contiguous streams of a corpus.

    Item `i` is window `i // num_streams` of stream `i % num_streams`: `{"input_ids": x[t : t + L],
    "target_ids": x[t + 1 : t + 1 + L]}`. Targets are already shifted (the next token of every position, including the
    last one of the window, whose target is the first token of the next window), so the training loop computes the
    loss from the logits itself; the model's own `labels` shift would skip that boundary token.
    Read it with a `StreamOrderSampler` and a batch size of the streams per process: batch k is then window k of
    every stream, in stream order, and the state from batch k-1 continues each row.
    """

    def __init__(self, token_ids, num_streams, bptt):
        if not isinstance(bptt, int) or bptt < 1:
            raise ValueError(f"bptt must be a positive integer, got {bptt!r}")
        self.streams = batchify(token_ids, num_streams)
        self.num_streams = num_streams
        self.bptt = bptt
        # The last token of a stream is only ever a target.
        self.num_windows = math.ceil((self.streams.shape[1] - 1) / bptt)

    def __len__(self):
        return self.num_streams * self.num_windows

    def __getitem__(self, index):
        window, stream = divmod(index, self.num_streams)
        start = window * self.bptt
        length = min(self.bptt, self.streams.shape[1] - 1 - start)
        row = self.streams[stream]
        return {"input_ids": row[start : start + length], "target_ids": row[start + 1 : start + 1 + length]}


class StreamOrderSampler(torch.utils.data.Sampler):
    """
    Yields a `BPTTStreamDataset`'s items window by window, each window over this process's streams in order.

    With several processes the streams are split into `num_replicas` disjoint contiguous groups (rank r reads
    streams `[r * k, (r + 1) * k)` with `k = num_streams // num_replicas`), so every token is read by exactly one
    process and each process's state follows its own rows. Never shuffles: shuffling would break the streams.
    """

    def __init__(self, dataset, num_replicas=1, rank=0):
        if dataset.num_streams % num_replicas != 0:
            raise ValueError(f"{dataset.num_streams} streams cannot be split evenly over {num_replicas} processes")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is outside [0, {num_replicas})")
        self.num_streams = dataset.num_streams
        self.num_windows = dataset.num_windows
        self.streams_per_replica = dataset.num_streams // num_replicas
        self.first_stream = rank * self.streams_per_replica

    def __len__(self):
        return self.num_windows * self.streams_per_replica

    def __iter__(self):
        for window in range(self.num_windows):
            base = window * self.num_streams + self.first_stream
            yield from range(base, base + self.streams_per_replica)


def bptt_dataloader(token_ids, batch_size, bptt, num_replicas=1, rank=0):
    """A `DataLoader` of `(batch_size, <=bptt)` windows from `batch_size * num_replicas` streams; this rank's share."""
    dataset = BPTTStreamDataset(token_ids, num_streams=batch_size * num_replicas, bptt=bptt)
    sampler = StreamOrderSampler(dataset, num_replicas=num_replicas, rank=rank)
    # Its own generator: otherwise starting an iterator draws from the global RNG, and a resumed run (which starts
    # its loader after restoring the RNG) would see different dropout masks than the uninterrupted one.
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, generator=torch.Generator().manual_seed(0)
    )


class StreamingBPTTBatches(torch.utils.data.IterableDataset):
    """
    The stream layout for a corpus read lazily: batches of `(num_streams, bptt)` windows from an iterable of
    tokenised documents (e.g. `tokenize_corpus` over a `streaming=True` dataset).

    The total length is unknown in advance, so the corpus cannot be cut into `num_streams` equal parts; instead each
    stream is fed whole documents, in corpus order, whenever it runs short. Every stream is still a contiguous run of
    documents, read in order, and every document goes to exactly one stream. Iteration ends when a stream runs
    short and the corpus is exhausted (the last partial windows are dropped).
    Read it with `DataLoader(batch_size=None)`.
    For several processes give each one its own shard of documents (`datasets.distributed.split_dataset_by_node`).
    """

    def __init__(self, documents, num_streams, bptt):
        if not isinstance(num_streams, int) or num_streams < 1:
            raise ValueError(f"num_streams must be a positive integer, got {num_streams!r}")
        if not isinstance(bptt, int) or bptt < 1:
            raise ValueError(f"bptt must be a positive integer, got {bptt!r}")
        self.documents = documents
        self.num_streams = num_streams
        self.bptt = bptt

    def _document_ids(self):
        for document in self.documents:
            yield document["input_ids"] if isinstance(document, dict) else document

    def __iter__(self):
        documents = self._document_ids()
        buffers = [[] for _ in range(self.num_streams)]
        while True:
            for buffer in buffers:
                # A window needs bptt inputs plus the next token as the last target.
                while len(buffer) < self.bptt + 1:
                    next_document = next(documents, None)
                    if next_document is None:
                        return
                    buffer.extend(next_document)
            yield {
                "input_ids": torch.tensor([buffer[: self.bptt] for buffer in buffers], dtype=torch.long),
                "target_ids": torch.tensor([buffer[1 : self.bptt + 1] for buffer in buffers], dtype=torch.long),
            }
            for stream, buffer in enumerate(buffers):
                buffers[stream] = buffer[self.bptt :]


def _splits(dataset):
    """The splits of a (Iterable)DatasetDict, or `[dataset]` for a single split."""
    values = getattr(dataset, "values", None)
    return list(values()) if callable(values) else [dataset]


def _map_every_split(dataset, function, **map_kwargs):
    """`map` on a dataset or on each split of a dict of them (IterableDatasetDict.map takes no `features`)."""
    if isinstance(dataset, (Dataset, IterableDataset)):
        return dataset.map(function, **map_kwargs)
    return type(dataset)({name: split.map(function, **map_kwargs) for name, split in dataset.items()})


def _column_names(dataset):
    first_split = _splits(dataset)[0]
    names = first_split.column_names
    if names is None:  # a streaming dataset whose columns are not resolved yet
        raise ValueError("the dataset's columns are unknown; give it features (e.g. load_dataset(..., features=...))")
    return list(names)


def _is_streaming(dataset):
    return any(isinstance(split, IterableDataset) for split in _splits(dataset))
