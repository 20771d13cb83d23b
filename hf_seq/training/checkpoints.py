"""Resume checkpoints of both training loops: which checkpoint folders are complete, and which one to resume from.

A run killed while saving leaves a `checkpoint-<step>` folder with only some of its files. Both loops therefore
write `checkpoint_complete.json` into a checkpoint as its very last file: the TBPTT loop before it renames the
folder into place, `Trainer` (through `callbacks.CheckpointCompleteCallback`) once every process and every other
callback has written its part. `resume_from_checkpoint="latest"` resumes from the newest folder that holds it.
"""

import json
import logging
import os
import re

from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from .common import write_json_atomically


logger = logging.getLogger(__name__)

CHECKPOINT_COMPLETE_NAME = "checkpoint_complete.json"
# `checkpoint-12`, not `checkpoint-12.tmp` (a TBPTT checkpoint still being written).
CHECKPOINT_FOLDER_PATTERN = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")
LATEST = ("latest", "true", "True", True)
NO_RESUME = (None, "", "false", "False", False)


def resumes(training_args) -> bool:
    """True when a run continues the one saved in output_dir (`resume_from_checkpoint` set), even when that run has
    no complete checkpoint yet."""
    return training_args.resume_from_checkpoint not in NO_RESUME


def checkpoint_dir(output_dir: str, global_step: int) -> str:
    """Where both loops save the checkpoint of `global_step`."""
    return os.path.join(output_dir, f"{PREFIX_CHECKPOINT_DIR}-{global_step}")


def mark_checkpoint_complete(checkpoint: str, global_step: int, elapsed_seconds: float | None = None) -> None:
    """Write the marker that says every file of `checkpoint` is in place (call it last, on the main process), with
    the seconds the run had trained by then over all its sittings when given."""
    marker = {"global_step": global_step}
    if elapsed_seconds is not None:
        marker["elapsed_seconds"] = round(elapsed_seconds, 2)
    write_json_atomically(os.path.join(checkpoint, CHECKPOINT_COMPLETE_NAME), marker)


def checkpoint_elapsed_seconds(checkpoint: str | None) -> float:
    """The seconds a run had trained when it saved `checkpoint`, as its marker records them: what a run resumed from
    it adds its own to. 0 without a checkpoint, or for a marker that does not say."""
    if checkpoint is None:
        return 0.0
    with open(os.path.join(checkpoint, CHECKPOINT_COMPLETE_NAME), encoding="utf-8") as handle:
        return float(json.load(handle).get("elapsed_seconds", 0.0))


def is_complete_checkpoint(checkpoint: str) -> bool:
    return os.path.isfile(os.path.join(checkpoint, CHECKPOINT_COMPLETE_NAME))


def checkpoint_folders(output_dir: str) -> list[str]:
    """The `checkpoint-<step>` folders of output_dir, complete or not, oldest step first."""
    if not os.path.isdir(output_dir):
        return []
    steps = []
    for name in os.listdir(output_dir):
        match = CHECKPOINT_FOLDER_PATTERN.match(name)
        if match and os.path.isdir(os.path.join(output_dir, name)):
            steps.append(int(match.group(1)))
    return [checkpoint_dir(output_dir, step) for step in sorted(steps)]


def latest_complete_checkpoint(output_dir: str) -> str | None:
    complete = [folder for folder in checkpoint_folders(output_dir) if is_complete_checkpoint(folder)]
    return complete[-1] if complete else None


def resolve_resume_checkpoint(resume_from_checkpoint: str | bool | None, output_dir: str) -> str | None:
    """The checkpoint folder a run resumes from, or None for a fresh run.

    `resume_from_checkpoint` is TrainingArguments' field: None/"" (fresh), "latest"/"true"/True (the newest complete
    checkpoint in output_dir; a fresh run, with a warning, when there is none yet) or a checkpoint folder, which
    must be complete. Raises FileNotFoundError / ValueError before any work is done.
    """
    if resume_from_checkpoint in NO_RESUME:
        return None
    if resume_from_checkpoint in LATEST:
        checkpoint = latest_complete_checkpoint(output_dir)
        if checkpoint is None:
            incomplete = [os.path.basename(folder) for folder in checkpoint_folders(output_dir)]
            found = f" (only incomplete ones: {', '.join(incomplete)})" if incomplete else ""
            logger.warning(
                "resume_from_checkpoint=latest: no complete checkpoint in %s yet%s; starting a fresh run",
                output_dir,
                found,
            )
        return checkpoint
    if not os.path.isdir(resume_from_checkpoint):
        raise FileNotFoundError(f"checkpoint to resume from not found: {resume_from_checkpoint}")
    if not is_complete_checkpoint(resume_from_checkpoint):
        raise ValueError(
            f"{resume_from_checkpoint} is not a complete checkpoint (no {CHECKPOINT_COMPLETE_NAME}: the run was "
            f"killed while saving it, or it was not saved by hf-seq); resume from another one, or from latest"
        )
    return resume_from_checkpoint
