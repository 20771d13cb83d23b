"""Train subword (BPE), character-level and word-level tokenizers for Korean text with the `tokenizers` library,
saved so that `AutoTokenizer.from_pretrained(folder)` returns a `PreTrainedTokenizerFast` ready for hf-seq models.

    from tokenizer_training import train_tokenizer, model_config_kwargs
    tokenizer = train_tokenizer(files=["reviews.txt"], vocab_size=16000, output_dir="tokenizer")
    config = hf_seq.LSTMConfig(**model_config_kwargs(tokenizer), hidden_size=512)
"""

from .corpus import BYTE_ORDER_MARK, check_text_files, check_utf8_text, iter_dataset_texts, load_text_column
from .normalization import NORMALIZATIONS, build_normalizer
from .saving import TRAINING_INFO_FILE, save_tokenizer
from .train import (
    ALGORITHMS,
    BYTE_TOKENS,
    SPECIAL_TOKEN_IDS,
    build_tokenizer,
    minimum_vocab_size,
    model_config_kwargs,
    train_tokenizer,
)


__all__ = [
    "ALGORITHMS",
    "BYTE_ORDER_MARK",
    "BYTE_TOKENS",
    "NORMALIZATIONS",
    "SPECIAL_TOKEN_IDS",
    "TRAINING_INFO_FILE",
    "build_normalizer",
    "build_tokenizer",
    "check_text_files",
    "check_utf8_text",
    "iter_dataset_texts",
    "load_text_column",
    "minimum_vocab_size",
    "model_config_kwargs",
    "save_tokenizer",
    "train_tokenizer",
]
