"""The Naver sentiment movie corpus (NSMC) as a `datasets.DatasetDict` with the Hub dataset's schema.

The published files (github e9t/nsmc) are tab-separated with a header `id  document  label`. Documents contain
quote characters, so the files are read with quoting off; a few documents are empty (5 in ratings_train.txt) and
come out as "" rather than NaN/None. The result has the schema the Hub dataset `e9t/nsmc` served:
`id` string, `document` string, `label` ClassLabel(names=["negative", "positive"]).
"""

import csv
import os

from datasets import ClassLabel, DatasetDict, Features, Value, load_dataset
from datasets.exceptions import DatasetGenerationError

from tokenizer_training import BYTE_ORDER_MARK


NSMC_LABEL_NAMES = ["negative", "positive"]
NSMC_FEATURES = Features(
    {
        "id": Value("string"),
        "document": Value("string"),
        "label": ClassLabel(names=NSMC_LABEL_NAMES),
    }
)
SAMPLE_DATA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sample_data")
NSMC_HEADER = ["id", "document", "label"]
# File names of the published corpus inside a data directory, by split.
NSMC_FILE_NAMES = {"train": "ratings_train.txt", "test": "ratings_test.txt"}
SAMPLE_FILE_NAMES = {"train": "nsmc_sample_train.txt", "test": "nsmc_sample_test.txt"}


def sample_data_path(file_name):
    """Path of a file shipped in `hf_seq/sample_data/` (the small CC0 samples used by tests and the demo)."""
    return os.path.join(SAMPLE_DATA_DIR, file_name)


def _check_nsmc_file(path):
    """Fail early, naming the file and line, when it is missing or not in NSMC format: UTF-8, the tab-separated header
    `id document label`, then at least one row of three fields whose label is 0 or 1.

    The rows are read here, in Python, because datasets' CSV reader reports a bad row as a pandas or pyarrow error
    without the file's name (or not at all, for an empty file). A blank line is skipped, as that reader does.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"NSMC file not found: {path}")
    expected = "\t".join(NSMC_HEADER)
    rows = 0
    with open(path, "rb") as handle:
        for line_number, raw_line in enumerate(handle, start=1):
            line = _decode_line(path, raw_line, line_number).rstrip("\r\n")
            if line_number == 1:
                header = line.removeprefix(BYTE_ORDER_MARK).split("\t")
                if header != NSMC_HEADER:
                    raise ValueError(
                        f"{path} is not an NSMC-format file: expected the tab-separated header "
                        f"{NSMC_HEADER}, found {header}"
                    )
                continue
            if not line:
                continue
            fields = line.split("\t")
            if len(fields) != len(NSMC_HEADER):
                raise ValueError(
                    f"{path} line {line_number} has {len(fields)} tab-separated fields, expected 3 ({expected}): "
                    "replace a tab inside a review by a space"
                )
            if fields[2] not in ("0", "1"):
                raise ValueError(
                    f"{path} line {line_number}: label {fields[2]!r} is not 0 or 1 (0 negative, 1 positive)"
                )
            rows += 1
    if os.path.getsize(path) == 0:
        raise ValueError(f"{path} is empty: an NSMC file starts with the header {expected!r}, then one review a line")
    if rows == 0:
        raise ValueError(f"{path} has no rows: below the header {expected!r}, give one review per line")


def _decode_line(path, raw_line, line_number):
    try:
        return raw_line.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{path} is not UTF-8 text: invalid byte 0x{raw_line[error.start]:02x} on line {line_number}. "
            "Convert it to UTF-8 first (e.g. `iconv -f cp949 -t utf-8`)."
        ) from None


def load_nsmc_files(data_files, cache_dir=None):
    """Read NSMC-format TSV files into a `DatasetDict`.

    Args:
        data_files: `{split_name: path}` (e.g. `{"test": "my_reviews.txt"}`), or a single path for a "test" split.
        cache_dir: where `datasets` keeps its Arrow cache (default: its usual cache).
    """
    if isinstance(data_files, (str, os.PathLike)):
        data_files = {"test": os.fspath(data_files)}
    for path in data_files.values():
        _check_nsmc_file(path)
    try:
        dataset = load_dataset(
            "csv",
            data_files=dict(data_files),
            delimiter="\t",
            quoting=csv.QUOTE_NONE,  # documents contain quotes: `"` is an ordinary character here
            keep_default_na=False,  # an empty document stays "" (pandas would make it NaN)
            na_filter=False,
            features=NSMC_FEATURES,
            cache_dir=cache_dir,
        )
    except DatasetGenerationError as error:
        # datasets wraps the real reason (e.g. a label outside {0, 1}, a row with too many fields).
        reason = error.__cause__ or error
        raise ValueError(f"could not read NSMC file(s) {sorted(data_files.values())}: {reason}") from error
    return dataset


def load_nsmc(path=None, cache_dir=None):
    """Load NSMC as a `DatasetDict` with `train`/`test` splits and columns `id`, `document`, `label` (ClassLabel).

    Args:
        path: where the data comes from:
            - `None`: the small sample shipped inside the package (4,000 train / 1,000 test reviews);
            - a directory holding `ratings_train.txt` and `ratings_test.txt` (the published corpus);
            - anything else: a Hub dataset id (e.g. `"e9t/nsmc"`), read with `datasets.load_dataset` (needs a network).
        cache_dir: where `datasets` keeps its Arrow cache.
    """
    if path is None:
        data_files = {split: sample_data_path(name) for split, name in SAMPLE_FILE_NAMES.items()}
        return load_nsmc_files(data_files, cache_dir=cache_dir)
    path = os.fspath(path)
    if os.path.isdir(path):
        data_files = {split: os.path.join(path, name) for split, name in NSMC_FILE_NAMES.items()}
        missing = [file for file in data_files.values() if not os.path.isfile(file)]
        if missing:
            raise FileNotFoundError(f"{path} is a directory but lacks the NSMC files: {', '.join(missing)}")
        return load_nsmc_files(data_files, cache_dir=cache_dir)
    if os.path.exists(path):
        raise ValueError(
            f"{path} is a file; load_nsmc takes a directory with {sorted(NSMC_FILE_NAMES.values())} "
            "(use load_nsmc_files({'test': path}) for a single file)"
        )
    # Not a local path: a Hub dataset id.
    dataset = load_dataset(path, cache_dir=cache_dir)
    if not isinstance(dataset, DatasetDict) or set(NSMC_HEADER) - set(dataset[next(iter(dataset))].column_names):
        raise ValueError(f"Hub dataset {path!r} does not have the NSMC columns {NSMC_HEADER}")
    return dataset
