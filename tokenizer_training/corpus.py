"""Where training text comes from: plain text files, a column of TSV/CSV/JSON/Parquet files, a `datasets.Dataset`
column, or any iterable of strings. Every input is checked up front so that a bad corpus fails with a clear error
before any training time is spent or any output is written."""

import codecs
import csv
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path


# How `load_text_column` reads a file, by extension. Anything else (.tsv, .txt such as NSMC's ratings_train.txt)
# is read as tab-separated values with quoting off: NSMC documents contain unbalanced quotes.
TABLE_FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}

_CHUNK_BYTES = 1 << 20

# U+FEFF: some editors write it at the start of UTF-8 files. It is not text: a file holding only it is empty.
BYTE_ORDER_MARK = "\ufeff"


def check_text_files(files: Iterable[str | os.PathLike]) -> list[Path]:
    """Check that every file exists and is UTF-8 text, and that together they hold at least one non-blank line.

    Returns the files as `Path`s. Raises `FileNotFoundError` for a missing file, `ValueError` for a file that is not
    UTF-8 (naming the file, line and byte offset) and for a corpus with no text at all.
    """
    if isinstance(files, (str, os.PathLike)):
        files = [files]
    paths = [Path(f) for f in files]
    if not paths:
        raise ValueError("No training files given.")
    corpus_has_text = False
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(f"Training file not found: {path}")
        if not path.is_file():
            raise ValueError(f"Training file {path} is not a regular file.")
        corpus_has_text = check_utf8_text(path) or corpus_has_text
    if not corpus_has_text:
        raise ValueError(f"Empty corpus: the training files {[str(p) for p in paths]} contain no non-blank text.")
    return paths


def check_utf8_text(path: str | os.PathLike, description: str = "Training file") -> bool:
    """Decode `path` strictly as UTF-8 in chunks; return whether it holds any text (a character other than
    whitespace and the byte-order mark U+FEFF, so a file holding only a BOM counts as empty).

    Raises `ValueError` for a byte that is not UTF-8, naming the file (as "`description` path"), the byte, its
    offset and line, and how to convert the file.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    has_text = False
    bytes_before_chunk = 0
    newlines_before_chunk = 0
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(_CHUNK_BYTES)
            # The decoder may hold back up to 3 bytes of a character split across chunks; the error offsets count them.
            pending_bytes = len(decoder.getstate()[0])
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as error:
                offset = bytes_before_chunk - pending_bytes + error.start
                line = newlines_before_chunk + error.object[: error.start].count(b"\n") + 1
                raise ValueError(
                    f"{description} {path} is not UTF-8 text: invalid byte 0x{error.object[error.start]:02x} "
                    f"at byte offset {offset} (line {line}). "
                    "Convert it to UTF-8 first (e.g. `iconv -f cp949 -t utf-8`)."
                ) from None
            has_text = has_text or bool(text.replace(BYTE_ORDER_MARK, "").strip())
            if not chunk:
                return has_text
            bytes_before_chunk += len(chunk)
            newlines_before_chunk += chunk.count(b"\n")


def load_text_column(files: Iterable[str | os.PathLike], text_column: str):
    """Load the files as one `datasets.Dataset` holding `text_column` as strings.

    The format follows the extension (see `TABLE_FORMATS`); .tsv/.txt and other names are tab-separated with a
    header row and quoting off. Empty cells stay empty strings (never NaN). Raises `ValueError` when the column is
    missing (listing the columns that exist) or the files mix formats.
    """
    paths = check_text_files(files)
    formats = {TABLE_FORMATS.get(path.suffix.lower(), "tsv") for path in paths}
    if len(formats) > 1:
        raise ValueError(f"Training files mix formats {sorted(formats)}; give files of one format at a time.")
    table_format = formats.pop()
    data_files = [str(path) for path in paths]

    # Imported here, not at the top: `datasets` takes about a second to import, and training on plain text files
    # (what `hf-seq train-tokenizer` does by default) never needs it.
    from datasets.exceptions import DatasetGenerationError

    # datasets writes an Arrow cache while loading; keep it out of the user's cache folder.
    with tempfile.TemporaryDirectory(prefix="hf-seq-tokenizer-data-") as cache_dir:
        try:
            dataset = _load_table(data_files, table_format, text_column, cache_dir)
        except DatasetGenerationError as error:  # a parse error deep inside pandas/pyarrow: name the files
            reason = error.__cause__ or error
            raise ValueError(f"Could not read {data_files} as {table_format.upper()}: {reason}") from error
    if text_column not in dataset.column_names:
        raise ValueError(
            f"Column {text_column!r} not found in {data_files}; available columns: {dataset.column_names}."
        )
    return dataset


def _load_table(data_files: list[str], table_format: str, text_column: str, cache_dir: str):
    import datasets

    if table_format in ("csv", "tsv"):
        for path in data_files:
            _check_table_file(Path(path), text_column, delimiter="," if table_format == "csv" else "\t")
        return datasets.load_dataset(
            "csv",
            data_files=data_files,
            split="train",
            cache_dir=cache_dir,
            keep_in_memory=True,
            sep="," if table_format == "csv" else "\t",
            quoting=csv.QUOTE_MINIMAL if table_format == "csv" else csv.QUOTE_NONE,
            usecols=[text_column],
            # Read the column as text and keep empty cells and "NA"/"null" reviews as the strings they are.
            features=datasets.Features({text_column: datasets.Value("string")}),
            na_filter=False,
        )
    return datasets.load_dataset(
        table_format, data_files=data_files, split="train", cache_dir=cache_dir, keep_in_memory=True
    )


def _check_table_file(path: Path, text_column: str, delimiter: str) -> None:
    """Fail, naming the file (and line), when its header lacks `text_column`, it has no rows, or (TSV, read with
    quoting off, so one line is one row) a row has another number of fields than the header."""
    # utf-8-sig: a byte-order mark before the header is not part of the first column's name.
    with open(path, encoding="utf-8-sig", newline="") as handle:
        header_line = handle.readline()
        if delimiter == "\t":
            header = header_line.rstrip("\r\n").split("\t")
        else:
            header = next(csv.reader([header_line]), [])
        if text_column not in header:
            raise ValueError(f"Column {text_column!r} not found in the header of {path}; available columns: {header}.")
        rows = 0
        for line_number, line in enumerate(handle, start=2):
            if not line.strip("\r\n"):
                continue  # pandas skips blank lines
            rows += 1
            field_count = line.count("\t") + 1
            if delimiter == "\t" and field_count != len(header):
                raise ValueError(
                    f"{path} line {line_number} has {field_count} tab-separated fields, the header "
                    f"{len(header)} ({', '.join(header)}): replace the tab inside the text by a space."
                )
            if delimiter != "\t":
                break  # a CSV row may span lines (quoted line breaks): pandas checks its fields
    if rows == 0:
        raise ValueError(f"{path} has a header but no rows: add one text per line below the header.")


def iter_dataset_texts(dataset, text_column: str, batch_size: int = 1000) -> Iterator[str]:
    """Yield the strings of `dataset[text_column]` batch by batch (never the whole column in memory), skipping None."""
    if text_column is None:
        raise ValueError("Training from a datasets.Dataset needs `text_column`, the column holding the text.")
    if text_column not in dataset.column_names:
        raise ValueError(
            f"Column {text_column!r} not found in the dataset; available columns: {dataset.column_names}."
        )
    for batch in dataset.select_columns([text_column]).iter(batch_size=batch_size):
        for text in batch[text_column]:
            if text is not None:
                yield text


class CheckedTexts:
    """Wrap an iterable of strings: raise `TypeError` on a non-string item and count the non-blank texts seen.

    `tokenizers` consumes the iterator inside its trainer, so whether a corpus given as an iterator is empty is only
    known once training has read it; `non_blank_count` is checked afterwards.
    """

    def __init__(self, texts: Iterable[str]):
        if isinstance(texts, (str, bytes)):
            raise TypeError("`texts` must be an iterable of strings, not a single string; use `files=` for paths.")
        self.texts = texts
        self.non_blank_count = 0

    def __iter__(self) -> Iterator[str]:
        for index, text in enumerate(self.texts):
            if not isinstance(text, str):
                raise TypeError(f"Training text #{index} is a {type(text).__name__}, not a str: {text!r:.80}")
            if text and not text.isspace():
                self.non_blank_count += 1
            yield text
