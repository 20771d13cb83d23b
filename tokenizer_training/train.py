"""Train BPE (default), character-level or word-level tokenizers with the `tokenizers` library and wrap them as a
`PreTrainedTokenizerFast`, so that `AutoTokenizer.from_pretrained(folder)` loads them like any Hub tokenizer.

The pipeline, for every algorithm:
  normaliser    NFC (see normalization.py) + strip
  pre-tokenizer Metaspace: spaces become "▁" and start each word, so tokens never cross a word boundary and
                decoding gives the spaces back exactly
  model         BPE with byte fallback (bpe), BPE without merges (char), WordLevel (word)
  decoder       ByteFallback (turns <0xNN> runs back into characters) then Metaspace
  post-processor TemplateProcessing that prepends bos (and appends eos only if asked)

Ids are fixed and documented: pad=0, unk=1, bos=2, eos=3, then cls and mask if asked for (4, 5), then the 256
byte tokens <0x00>..<0xFF> (bpe/char only), then the learned vocabulary.

Why bos only: like Llama and most causal LMs in transformers, `tokenizer(prompt)` must not end with eos, or
`generate()` would continue after an "end of text". A bos in front gives the model a defined start token (and the
recurrent state one step to settle); classifiers are unaffected. LM pipelines that concatenate documents append
`eos_token_id` after each document themselves, or load with
`AutoTokenizer.from_pretrained(folder, add_bos_token=True, add_eos_token=True)` (transformers rebuilds the
template from those two flags; pass both).
"""

import functools
import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator

import tokenizers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from .corpus import CheckedTexts, check_text_files, iter_dataset_texts, load_text_column
from .normalization import build_normalizer
from .saving import check_output_dir, save_tokenizer


ALGORITHMS = ("bpe", "char", "word")
PADDING_SIDES = ("right", "left")

# Byte-fallback tokens, spelled as in Llama/Mistral tokenizers: any character missing from the vocabulary is encoded
# as its UTF-8 bytes instead of <unk>, and the ByteFallback decoder turns them back into the character.
BYTE_TOKENS = [f"<0x{byte:02X}>" for byte in range(256)]

# The ids the default special tokens always get (cls/mask, when asked for, follow at 4 and 5).
SPECIAL_TOKEN_IDS = {"pad_token_id": 0, "unk_token_id": 1, "bos_token_id": 2, "eos_token_id": 3}

METASPACE = "▁"


def special_tokens_in_order(
    pad_token: str = "<pad>",
    unk_token: str = "<unk>",
    bos_token: str = "<s>",
    eos_token: str = "</s>",
    cls_token: str | None = None,
    mask_token: str | None = None,
) -> dict[str, str]:
    """Map each special-token role to its string, in id order (pad, unk, bos, eos, then cls and mask if given)."""
    roles = {"pad_token": pad_token, "unk_token": unk_token, "bos_token": bos_token, "eos_token": eos_token}
    for role, token in (("cls_token", cls_token), ("mask_token", mask_token)):
        if token is not None:
            roles[role] = token
    for role, token in roles.items():
        if not isinstance(token, str) or not token.strip():
            raise ValueError(f"{role} must be a non-empty string, got {token!r}.")
        if token in BYTE_TOKENS or token.startswith(METASPACE):
            raise ValueError(
                f"{role}={token!r} clashes with the byte tokens or the word-boundary marker {METASPACE!r}."
            )
    tokens = list(roles.values())
    duplicates = sorted({token for token in tokens if tokens.count(token) > 1})
    if duplicates:
        raise ValueError(f"Special tokens must be distinct; {duplicates} is used for more than one role.")
    return roles


def build_tokenizer(algorithm: str = "bpe", normalization: str = "nfc", unk_token: str = "<unk>") -> Tokenizer:
    """The untrained `tokenizers.Tokenizer` pipeline for `algorithm` (see the module docstring)."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"Unknown algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}.")
    if algorithm == "word":
        # Word-level is a baseline: no byte fallback is possible, unseen words become <unk>.
        tokenizer = Tokenizer(models.WordLevel(unk_token=unk_token))
    else:
        tokenizer = Tokenizer(models.BPE(unk_token=unk_token, byte_fallback=True))
    tokenizer.normalizer = build_normalizer(normalization)
    # prepend_scheme="always": every word, the first included, starts with "▁", so a word is spelled the same
    # wherever it occurs; split=True keeps merges inside words.
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    tokenizer.decoder = decoders.Sequence(
        [decoders.ByteFallback(), decoders.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)]
    )
    return tokenizer


def minimum_vocab_size(algorithm: str, num_special_tokens: int, limit_alphabet: int | None = None) -> int:
    """The smallest vocab size `algorithm` can honour before seeing the corpus."""
    if algorithm == "word":
        return num_special_tokens + 1
    return num_special_tokens + len(BYTE_TOKENS) + (limit_alphabet or 1)


def train_tokenizer(
    *,
    files: Iterable[str | os.PathLike] | str | os.PathLike | None = None,
    texts: Iterable[str] | None = None,
    dataset=None,
    text_column: str | None = None,
    output_dir: str | os.PathLike | None = None,
    algorithm: str = "bpe",
    vocab_size: int = 16000,
    min_frequency: int = 2,
    normalization: str = "nfc",
    limit_alphabet: int | None = None,
    pad_token: str = "<pad>",
    unk_token: str = "<unk>",
    bos_token: str = "<s>",
    eos_token: str = "</s>",
    cls_token: str | None = None,
    mask_token: str | None = None,
    add_bos_token: bool = True,
    add_eos_token: bool = False,
    model_max_length: int | None = None,
    padding_side: str = "right",
    overwrite: bool = False,
    show_progress: bool = False,
) -> PreTrainedTokenizerFast:
    """Train a tokenizer and return it as a `PreTrainedTokenizerFast`; with `output_dir`, also save it (atomically).

    Give exactly one corpus:
      - `files`: UTF-8 text files, one document per line; with `text_column`, TSV/CSV/JSON(L)/Parquet files
        whose `text_column` holds the documents (.tsv and .txt files such as NSMC's are tab-separated, unquoted).
      - `texts`: any iterable of strings (a list, a generator).
      - `dataset`: a `datasets.Dataset`, with `text_column` naming the text column.

    Args:
        algorithm: "bpe" (byte-fallback BPE, the default), "char" (characters only) or "word" (whole words).
        vocab_size: the vocabulary size including special and byte tokens. For bpe it must leave room for the
            special tokens, the 256 byte tokens and every distinct character of the corpus (or `limit_alphabet`);
            for char it caps the number of characters kept (the rest fall back to bytes). Where characters are cut,
            the most frequent are kept, equally frequent ones in code-point order, so a corpus always gives the same
            vocabulary (the corpus is then read once more to count them; an iterator's texts are held in memory for it).
        min_frequency: how often a pair (bpe) or word (word) must occur to enter the vocabulary.
        normalization: "nfc" (default), "nfkc" or "none"; see `tokenizer_training.normalization`.
        limit_alphabet: bpe only: keep only this many most frequent characters; rarer ones are encoded as bytes.
        pad_token, unk_token, bos_token, eos_token, cls_token, mask_token: special-token strings; cls/mask are
            added only when given. Ids: pad 0, unk 1, bos 2, eos 3, cls/mask next.
        add_bos_token, add_eos_token: what the post-processor adds around each text (default: bos only).
        model_max_length: the length `tokenizer(..., truncation=True)` cuts to when no max_length is given.
        padding_side: "right" or "left".
        overwrite: replace a non-empty `output_dir`.

    Raises:
        ValueError: no corpus or several, an empty corpus, a file that is not UTF-8, a vocab size too small for the
            special tokens + byte tokens + alphabet, an unknown algorithm/normalization/padding side.
        FileNotFoundError: a training file does not exist.
        FileExistsError: `output_dir` is not empty and `overwrite` is False (checked before training).
    """
    # Check every argument before spending time on training.
    _check_arguments(
        files, texts, dataset, text_column, algorithm, padding_side, limit_alphabet, min_frequency, model_max_length
    )
    special_tokens = special_tokens_in_order(pad_token, unk_token, bos_token, eos_token, cls_token, mask_token)
    smallest = minimum_vocab_size(algorithm, len(special_tokens), limit_alphabet)
    if not isinstance(vocab_size, int) or vocab_size < smallest:
        raise ValueError(
            _vocab_too_small_message(algorithm, vocab_size, len(special_tokens), smallest, limit_alphabet)
        )
    if output_dir is not None:
        check_output_dir(output_dir, overwrite)

    backend = build_tokenizer(algorithm, normalization, unk_token)
    alphabet_size = _alphabet_size(algorithm, vocab_size, len(special_tokens), limit_alphabet)
    # The trainer is built once the alphabet is known (`_train_on_corpus`).
    build_trainer = functools.partial(
        _build_trainer,
        algorithm,
        vocab_size,
        min_frequency,
        list(special_tokens.values()),
        alphabet_size,
        show_progress,
    )
    corpus = _train_on_corpus(backend, build_trainer, alphabet_size, files, texts, dataset, text_column)
    if algorithm != "word":
        backend = _byte_tokens_as_plain_vocabulary(backend)
        _check_vocabulary_fits(backend, vocab_size, len(special_tokens))

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        **special_tokens,
        add_bos_token=add_bos_token,
        add_eos_token=add_eos_token,
        padding_side=padding_side,
        # Decoding must give back the normalised text: no "clean up" of spaces before punctuation.
        clean_up_tokenization_spaces=False,
        **({"model_max_length": model_max_length} if model_max_length is not None else {}),
    )
    _check_special_token_ids(tokenizer, special_tokens)

    if output_dir is not None:
        training_info = {
            "algorithm": algorithm,
            "vocab_size": len(tokenizer),
            "requested_vocab_size": vocab_size,
            "min_frequency": min_frequency,
            "normalization": normalization,
            "limit_alphabet": limit_alphabet,
            "add_bos_token": add_bos_token,
            "add_eos_token": add_eos_token,
            "special_token_ids": {role: tokenizer.convert_tokens_to_ids(t) for role, t in special_tokens.items()},
            "corpus": corpus,
            "tokenizers_version": tokenizers.__version__,
        }
        save_tokenizer(tokenizer, output_dir, overwrite=overwrite, training_info=training_info)
    return tokenizer


def _check_arguments(
    files, texts, dataset, text_column, algorithm, padding_side, limit_alphabet, min_frequency, model_max_length
):
    """Raise for a corpus given none or several ways, or a setting out of range (see `train_tokenizer`)."""
    given = [name for name, value in (("files", files), ("texts", texts), ("dataset", dataset)) if value is not None]
    if len(given) != 1:
        raise ValueError(f"Give exactly one corpus among files=, texts=, dataset=; got {given or 'none'}.")
    if algorithm not in ALGORITHMS:
        raise ValueError(f"Unknown algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}.")
    if padding_side not in PADDING_SIDES:
        raise ValueError(f"padding_side must be 'right' or 'left', got {padding_side!r}.")
    if dataset is not None:
        import datasets

        if not isinstance(dataset, datasets.Dataset):
            raise TypeError(
                f"dataset= takes a datasets.Dataset (one split), got {type(dataset).__name__}; for a DatasetDict pick a "
                "split, for an IterableDataset pass texts=(row[column] for row in dataset)."
            )
    if texts is not None and text_column is not None:
        raise ValueError("text_column applies to files= and dataset=, not to texts=.")
    if limit_alphabet is not None and algorithm != "bpe":
        raise ValueError(f"limit_alphabet applies to algorithm='bpe' only (char uses vocab_size), not {algorithm!r}.")
    if limit_alphabet is not None and limit_alphabet < 1:
        raise ValueError(f"limit_alphabet must be a positive integer, got {limit_alphabet}.")
    if min_frequency < 0:
        raise ValueError(f"min_frequency must be >= 0, got {min_frequency}.")
    if model_max_length is not None and model_max_length < 1:
        raise ValueError(f"model_max_length must be a positive integer, got {model_max_length}.")


def _train_on_corpus(backend, build_trainer, alphabet_size, files, texts, dataset, text_column) -> dict:
    """Train `backend` on the one corpus given; returns what training_info.json records of that corpus.

    `build_trainer(initial_alphabet)` makes the trainer. With an `alphabet_size`, the corpus is read once first to
    give it the alphabet (`most_frequent_characters`): the trainer's own cut of the alphabet keeps a random choice
    among equally frequent characters, so one corpus gave another vocabulary from one run to the next.
    """
    if files is not None and text_column is None:
        paths = check_text_files(files)
        alphabet = None if alphabet_size is None else most_frequent_characters(backend, _lines(paths), alphabet_size)
        # tokenizers reads and counts the files itself, in parallel.
        backend.train([str(path) for path in paths], trainer=build_trainer(alphabet))
        return {"files": [str(path) for path in paths]}
    if files is not None:
        paths = check_text_files(files)
        dataset = load_text_column(paths, text_column)
        corpus = {"files": [str(path) for path in paths], "text_column": text_column}
    elif dataset is not None:
        corpus = {"dataset_rows": len(dataset), "text_column": text_column}
    else:
        corpus = {"texts": "iterable of strings"}
    if texts is not None and alphabet_size is not None and iter(texts) is texts:
        texts = list(CheckedTexts(texts))  # an iterator gives its texts once; the alphabet and the training read twice
    alphabet = None
    if alphabet_size is not None:
        alphabet = most_frequent_characters(backend, _corpus_texts(texts, dataset, text_column), alphabet_size)
    checked_texts = _corpus_texts(texts, dataset, text_column)
    backend.train_from_iterator(checked_texts, trainer=build_trainer(alphabet))
    if checked_texts.non_blank_count == 0:
        raise ValueError("Empty corpus: the training texts contain no non-blank string.")
    return corpus


def _corpus_texts(texts, dataset, text_column) -> CheckedTexts:
    return CheckedTexts(texts if texts is not None else iter_dataset_texts(dataset, text_column))


def _lines(paths) -> Iterator[str]:
    for path in paths:
        with open(path, encoding="utf-8") as lines:
            yield from lines


def _alphabet_size(algorithm, vocab_size, num_special_tokens, limit_alphabet) -> int | None:
    """How many characters the vocabulary keeps, where it keeps only the most frequent ones (None: all of them)."""
    if algorithm == "char":
        return vocab_size - num_special_tokens - len(BYTE_TOKENS)
    return limit_alphabet if algorithm == "bpe" else None


def most_frequent_characters(backend: Tokenizer, texts: Iterable[str], size: int) -> list[str]:
    """The `size` characters that `backend`'s trainer sees most often in `texts` (after its normaliser and
    pre-tokenizer, so the word-boundary marker counts too); equally frequent ones in code-point order."""
    counts = Counter()
    for chunk in _chunks(filter(None, map(backend.normalizer.normalize_str, texts)), 1000):
        # Texts joined by a space pre-tokenize as they do one by one (the space becomes the next text's "▁"), in far
        # fewer calls.
        counts.update("".join(piece for piece, _ in backend.pre_tokenizer.pre_tokenize_str(" ".join(chunk))))
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [character for character, _ in ranked[:size]]


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _check_vocabulary_fits(backend, vocab_size, num_special_tokens):
    """BpeTrainer keeps the whole alphabet even when it does not fit: refuse instead of exceeding vocab_size."""
    learned_size = backend.get_vocab_size()
    if learned_size > vocab_size:
        alphabet_size = learned_size - num_special_tokens - len(BYTE_TOKENS)
        raise ValueError(
            f"vocab_size={vocab_size} is smaller than the corpus alphabet ({alphabet_size} distinct characters) "
            f"plus {num_special_tokens} special tokens and {len(BYTE_TOKENS)} byte tokens = {learned_size}. "
            f"Use vocab_size > {learned_size}, or limit_alphabet=N to keep only the N most frequent characters "
            "(the others are encoded as bytes)."
        )


def model_config_kwargs(tokenizer, require_special_tokens: bool = True) -> dict[str, int | None]:
    """The config fields a model needs to agree with `tokenizer`: vocab_size and the pad/bos/eos ids.

    `hf_seq.LSTMConfig(**model_config_kwargs(tokenizer), hidden_size=...)` builds a matching model config. A
    tokenizer without one of these tokens is refused, unless `require_special_tokens=False`: that id is then None
    (as for a Hub tokenizer without a pad token).
    """
    kwargs = {"vocab_size": len(tokenizer)}
    for name in ("pad_token_id", "bos_token_id", "eos_token_id"):
        token_id = getattr(tokenizer, name)
        if token_id is None and require_special_tokens:
            raise ValueError(
                f"The tokenizer has no {name.removesuffix('_id')}; set one before building a model config."
            )
        kwargs[name] = token_id
    return kwargs


def _build_trainer(
    algorithm, vocab_size, min_frequency, special_tokens, alphabet_size, show_progress, initial_alphabet=None
):
    """The trainer of `algorithm`; for char and bpe, keeping `alphabet_size` characters (`_alphabet_size`; None: all),
    `initial_alphabet` first."""
    if algorithm == "word":
        return trainers.WordLevelTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=special_tokens,
            show_progress=show_progress,
        )
    # Listing the byte tokens right after the special tokens is how the trainer reserves their ids up front.
    reserved_tokens = special_tokens + BYTE_TOKENS
    if algorithm == "char":
        # No merges: the vocabulary is the alphabet alone (vocab_size=0 stops before merging).
        vocab_size, min_frequency = 0, 0
    # The trainer keeps an initial alphabet whole and cuts only the other characters, so an initial alphabet of
    # alphabet_size characters is exactly the alphabet it keeps.
    alphabet = {} if alphabet_size is None else {"limit_alphabet": alphabet_size}
    return trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=reserved_tokens,
        show_progress=show_progress,
        initial_alphabet=initial_alphabet or [],
        **alphabet,
    )


def _byte_tokens_as_plain_vocabulary(backend: Tokenizer) -> Tokenizer:
    """Turn the byte tokens back into ordinary vocabulary entries after training.

    The trainer registers every reserved token as a *special added token*: a literal "<0x41>" in the input would then
    be matched as that token, and `decode(..., skip_special_tokens=True)` would drop every byte-encoded character.
    In Llama's and Mistral's tokenizer.json they are plain vocabulary entries used only by byte fallback; so are ours.
    """
    state = json.loads(backend.to_str())
    byte_tokens = set(BYTE_TOKENS)
    state["added_tokens"] = [token for token in state["added_tokens"] if token["content"] not in byte_tokens]
    return Tokenizer.from_str(json.dumps(state))


def _check_special_token_ids(tokenizer, special_tokens: dict[str, str]) -> None:
    for expected_id, (role, token) in enumerate(special_tokens.items()):
        actual_id = tokenizer.convert_tokens_to_ids(token)
        if actual_id != expected_id:  # would mean the trainer changed how it lays out the vocabulary
            raise RuntimeError(f"{role} {token!r} got id {actual_id}, expected {expected_id}.")


def _vocab_too_small_message(algorithm, vocab_size, num_special_tokens, smallest, limit_alphabet) -> str:
    if algorithm == "word":
        return (
            f"vocab_size={vocab_size} is too small for algorithm='word': use at least {smallest} "
            f"({num_special_tokens} special tokens + 1 word)."
        )
    alphabet = f"limit_alphabet={limit_alphabet} characters" if limit_alphabet else "at least one character"
    return (
        f"vocab_size={vocab_size} is too small for algorithm={algorithm!r}: the {num_special_tokens} special tokens, "
        f"the {len(BYTE_TOKENS)} byte-fallback tokens <0x00>..<0xFF> and {alphabet} need at least {smallest}."
    )
