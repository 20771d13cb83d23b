"""Save a tokenizer folder atomically: everything is written to a temporary sibling folder, then moved into place,
so a failure never leaves a half-written folder, and an existing folder is replaced only once the new one is complete.
"""

import json
import os
import shutil
import tempfile
from pathlib import Path


# Written next to tokenizer.json: how the tokenizer was trained (AutoTokenizer ignores it).
TRAINING_INFO_FILE = "tokenizer_training.json"


def check_output_dir(output_dir: str | os.PathLike, overwrite: bool = False) -> Path:
    """Fail early (before any training) when `output_dir` cannot receive a tokenizer."""
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise NotADirectoryError(f"Output path {output_dir} exists and is not a folder.")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not overwrite:
        raise FileExistsError(
            f"Output folder {output_dir} is not empty; pass overwrite=True (--overwrite) to replace it."
        )
    return output_dir


def save_tokenizer(
    tokenizer, output_dir: str | os.PathLike, overwrite: bool = False, training_info: dict | None = None
) -> Path:
    """Save a `PreTrainedTokenizerFast` to `output_dir` with `save_pretrained`, atomically. Returns the folder."""
    output_dir = check_output_dir(output_dir, overwrite)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    # A sibling folder is on the same filesystem, so the final rename is atomic.
    staging_dir = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.tmp-", dir=output_dir.parent))
    try:
        tokenizer.save_pretrained(staging_dir)
        if training_info is not None:
            with open(staging_dir / TRAINING_INFO_FILE, "w", encoding="utf-8") as handle:
                json.dump(training_info, handle, ensure_ascii=False, indent=2)
                handle.write("\n")
        _move_into_place(staging_dir, output_dir)
    except BaseException:
        shutil.rmtree(staging_dir, ignore_errors=True)
        raise
    return output_dir


def _move_into_place(staging_dir: Path, output_dir: Path) -> None:
    if not output_dir.exists():
        os.rename(staging_dir, output_dir)
        return
    if not any(output_dir.iterdir()):
        output_dir.rmdir()
        os.rename(staging_dir, output_dir)
        return
    # Replacing a folder: keep the old one aside until the new one is in place, and put it back if the move fails.
    backup_dir = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.old-", dir=output_dir.parent))
    backup_dir.rmdir()
    os.rename(output_dir, backup_dir)
    try:
        os.rename(staging_dir, output_dir)
    except BaseException:
        os.rename(backup_dir, output_dir)
        raise
    shutil.rmtree(backup_dir, ignore_errors=True)
