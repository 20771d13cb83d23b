"""Data for hf-seq models, read with `datasets`: NSMC for classification, text corpora for language modelling.

from hf_seq.data import load_nsmc, load_text_files, tokenize_corpus, group_into_blocks, bptt_dataloader
"""

from .lm import (
    BPTTStreamDataset,
    StreamingBPTTBatches,
    StreamOrderSampler,
    batchify,
    bptt_dataloader,
    corpus_token_ids,
    group_into_blocks,
    load_text_files,
    tokenize_corpus,
)
from .nsmc import NSMC_FEATURES, NSMC_LABEL_NAMES, load_nsmc, load_nsmc_files, sample_data_path


__all__ = [
    "BPTTStreamDataset",
    "NSMC_FEATURES",
    "NSMC_LABEL_NAMES",
    "StreamOrderSampler",
    "StreamingBPTTBatches",
    "batchify",
    "bptt_dataloader",
    "corpus_token_ids",
    "group_into_blocks",
    "load_nsmc",
    "load_nsmc_files",
    "load_text_files",
    "sample_data_path",
    "tokenize_corpus",
]
