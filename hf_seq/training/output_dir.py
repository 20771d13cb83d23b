"""The output folder of a training run: checked before anything is written, emptied when it is to be replaced.

A model folder is what `hf-seq push` publishes, so it must hold the files of one run only. A run therefore refuses a
non-empty output_dir unless it resumes the run saved there (`resume_from_checkpoint`) or is asked to replace it
(`overwrite_output_dir`, which empties it first), and it never writes into a folder it reads from.
"""

import os
import shutil

from .checkpoints import resumes


def prepare_output_dir(training_args, overwrite_output_dir: bool = False, read_paths: dict | None = None) -> None:
    """Check that this run may write to `training_args.output_dir`; empty it when `overwrite_output_dir` says so.

    `read_paths` maps what the run reads to its path, e.g. `{"the model": "runs/lm"}` (objects and Hub ids are
    skipped): none of them may be output_dir, lie inside it or hold it. Raises ValueError before writing anything.
    Call it on every process, after every other check of the run's arguments: it is the last step before work.
    """
    output_dir = training_args.output_dir
    for label, path in (read_paths or {}).items():
        _check_not_read_from(output_dir, label, path)
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ValueError(f"output_dir {output_dir} is a file, not a folder")
    resuming = resumes(training_args)
    if overwrite_output_dir and resuming:
        raise ValueError(
            "overwrite_output_dir empties output_dir, resume_from_checkpoint continues the run saved "
            "there: pass only one of them"
        )
    if overwrite_output_dir:
        # The main process empties it while the others wait, so that no process writes into it before. Every process
        # enters this barrier, whatever it sees in the folder (the main process may have emptied it already).
        with training_args.main_process_first(local=False, desc="emptying the output folder"):
            if training_args.should_save and os.path.isdir(output_dir):
                _empty_folder(output_dir)
        return
    contents = sorted(os.listdir(output_dir)) if os.path.isdir(output_dir) else []
    if contents and not resuming:
        shown = ", ".join(contents[:4]) + (", ..." if len(contents) > 4 else "")
        raise ValueError(
            f"output_dir {output_dir} is not empty ({shown}): pass overwrite_output_dir=True / --overwrite_output_dir "
            "to replace what it holds, or resume_from_checkpoint / --resume_from_checkpoint latest to continue the "
            "run saved in it"
        )


def _check_not_read_from(output_dir, label, path):
    if not isinstance(path, (str, os.PathLike)) or not os.path.exists(path):
        return  # an object in memory, or a Hub id
    written, read = os.path.realpath(output_dir), os.path.realpath(path)
    if written == read:
        problem = f"output_dir {output_dir} is {label}, which this run reads"
    elif read.startswith(written + os.sep):
        problem = f"output_dir {output_dir} holds {label} ({path}), which this run reads"
    elif written.startswith(read + os.sep):
        problem = f"output_dir {output_dir} lies inside {label} ({path}), which this run reads"
    else:
        return
    raise ValueError(f"{problem}: write the new model to another folder")


def _empty_folder(folder):
    """Remove everything in `folder`, keeping the folder itself (it may be a mount point, or shared)."""
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
