"""Labelled datasets as classifiers read them: their label names, token ids for sequence and token classification,
and BPE-dropout (training documents segmented anew at every read)."""

import copy

import torch
from datasets import ClassLabel, DatasetDict


def check_columns(dataset, *columns):
    """Raise ValueError for a column the dataset (a `Dataset`, or a `DatasetDict`'s first split) lacks; returns its
    columns."""
    found = dataset[next(iter(dataset))].column_names if isinstance(dataset, DatasetDict) else dataset.column_names
    for column in columns:
        if column not in found:
            raise ValueError(f"no column {column!r} in the dataset (columns: {found})")
    return found


def label_names(dataset, label_column, task):
    """The names of the classes in `dataset["train"][label_column]`, in id order: a ClassLabel's names, or the
    distinct labels 0..N-1 as strings (one label per document, or per word for token classification)."""
    check_columns(dataset["train"], label_column)
    feature = dataset["train"].features[label_column]
    if task == "token-classification":
        feature = getattr(feature, "feature", None) or feature  # Sequence(ClassLabel) / List(ClassLabel)
    if isinstance(feature, ClassLabel):
        return list(feature.names)
    values = dataset["train"][label_column]
    if task == "token-classification":
        values = [value for sequence in values for value in sequence]
    distinct = sorted(set(values))
    if distinct != list(range(len(distinct))):
        raise ValueError(f"labels in {label_column!r} must be 0..N-1 or a ClassLabel, found {distinct[:10]}")
    return [str(label) for label in distinct]


def empty_document_ids(tokenizer):
    """The token ids an empty document is classified from when the tokenizer adds no bos/eos of its own."""
    return [tokenizer.unk_token_id if tokenizer.unk_token_id is not None else tokenizer.eos_token_id]


def encode_for_sequence_classification(
    dataset, tokenizer, text_column="document", label_column="label", max_length=128, cache=True
):
    """Tokenise documents for a classifier (`Dataset.map(batched=True)`, cached). An empty document still gets a
    token (the tokenizer's bos/eos or unk), so it is classified, not dropped or crashed on.

    `cache=False` tokenises afresh in memory, as a BPE-dropout tokenizer needs: its every call segments differently,
    which the cache (keyed on the tokenizer, not the call) would hide.
    """
    fallback_ids = empty_document_ids(tokenizer)

    def tokenize(batch):
        encoded = tokenizer(batch[text_column], truncation=True, max_length=max_length)
        input_ids = [ids or fallback_ids for ids in encoded["input_ids"]]
        return {
            "input_ids": input_ids,
            "attention_mask": [[1] * len(ids) for ids in input_ids],
            "labels": batch[label_column],
        }

    columns = check_columns(dataset, text_column, label_column)
    uncached = {} if cache else {"keep_in_memory": True, "load_from_cache_file": False}
    return dataset.map(tokenize, batched=True, remove_columns=columns, desc="Tokenizing", **uncached)


def encode_for_token_classification(dataset, tokenizer, tokens_column="tokens", label_column="tags", max_length=128):
    """Tokenise pre-split words; each word's label goes on its first sub-token, the rest get -100 (ignored)."""
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("token classification needs a fast tokenizer (for word_ids)")

    def tokenize(batch):
        encoded = tokenizer(batch[tokens_column], is_split_into_words=True, truncation=True, max_length=max_length)
        all_labels = []
        for index, word_labels in enumerate(batch[label_column]):
            labels, previous_word = [], None
            for word in encoded.word_ids(index):
                labels.append(-100 if word is None or word == previous_word else word_labels[word])
                previous_word = word
            all_labels.append(labels)
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"], "labels": all_labels}

    columns = check_columns(dataset, tokens_column, label_column)
    return dataset.map(tokenize, batched=True, remove_columns=columns, desc="Tokenizing")


def with_bpe_dropout(tokenizer, dropout):
    """A copy of a fast BPE tokenizer that skips each merge with probability `dropout` (BPE-dropout, Provilkov et
    al., 2020), so every call may segment a text differently. The given tokenizer keeps exact BPE."""
    if not 0.0 < dropout < 1.0:
        raise ValueError(f"subword_dropout must be in (0, 1), got {dropout}")
    model_kind = type(tokenizer.backend_tokenizer.model).__name__ if getattr(tokenizer, "is_fast", False) else None
    if model_kind != "BPE":
        found = model_kind or type(tokenizer).__name__
        raise ValueError(f"subword_dropout needs a fast BPE tokenizer, got {found}")
    sampling_tokenizer = copy.deepcopy(tokenizer)
    sampling_tokenizer.backend_tokenizer.model.dropout = dropout
    return sampling_tokenizer


class SubwordDropoutDataset(torch.utils.data.Dataset):
    """Training documents re-tokenised every time they are read, with BPE-dropout (Provilkov et al., 2020).

    Each epoch then sees a different segmentation of every document: a regulariser for small labelled sets. The
    tokenizers library draws the dropped merges from its own unseeded generator, so such a run is not bit-for-bit
    reproducible; everything else (order, initial weights, model dropout) still follows the seed.
    """

    def __init__(self, dataset, tokenizer, dropout, text_column="document", label_column="label", max_length=128):
        # A private copy: the caller's tokenizer (saved with the model, used for evaluation) keeps exact BPE.
        self.tokenizer = with_bpe_dropout(tokenizer, dropout)
        check_columns(dataset, text_column, label_column)
        self.texts = list(dataset[text_column])
        self.labels = list(dataset[label_column])
        self.max_length = max_length
        self.fallback_ids = empty_document_ids(tokenizer)

    def __len__(self):
        return len(self.texts)

    def __getitem__(self, index):
        input_ids = self.tokenizer(self.texts[index], truncation=True, max_length=self.max_length)["input_ids"]
        input_ids = input_ids or self.fallback_ids
        return {"input_ids": input_ids, "attention_mask": [1] * len(input_ids), "labels": self.labels[index]}
