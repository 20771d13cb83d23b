"""Worker for test_checkpoints.py: a tiny finetune run that saves a checkpoint every step and averages the weights
of its last 4 steps; `--die_saving` makes it SIGKILL itself in the middle of saving one checkpoint.

usage: worker_finetune.py TOKENIZER_DIR NSMC_DIR OUTPUT_DIR [--resume] [--die_saving STEP:WHERE]

It prints "trained step N" after each optimizer step, so the test sees where a resumed run started.

WHERE is "model" (the model and tokenizer files are written; the optimizer, scheduler, RNG state and trainer state
are not: Trainer's first torch.save into the checkpoint) or "callbacks" (Trainer's own files, trainer_state.json
included, are written; the weight average and the completeness marker, written by callbacks, are not).
"""

import os
import signal
import sys

import torch

from hf_seq.training import finetune
from hf_seq.training.callbacks import WeightAveragingCallback
from tests.training.helpers import tiny_lstm_config, training_arguments


MAX_STEPS = 6
# 200 training reviews in batches of 4 make 50 steps an epoch: 0.08 epochs are the last 4 steps (3 to 6).
WEIGHT_AVERAGING_EPOCHS = 0.08


def run(tokenizer_dir, nsmc_dir, output_dir, resume=False):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    args = training_arguments(
        output_dir,
        max_steps=MAX_STEPS,
        save_strategy="steps",
        save_steps=1,
        resume_from_checkpoint="latest" if resume else None,
    )
    return finetune(
        args,
        tokenizer,
        model=tiny_lstm_config(tokenizer, output_dropout=0.2),
        dataset=nsmc_dir,
        weight_averaging=WEIGHT_AVERAGING_EPOCHS,
    )


def die_while_saving(step, where):
    """Make this process SIGKILL itself at `where` in the saving of checkpoint-`step` (nothing after it runs)."""

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    if where == "model":
        save = torch.save

        def save_or_die(obj, path, *args, **kwargs):
            if f"checkpoint-{step}" in str(path):
                die()
            return save(obj, path, *args, **kwargs)

        torch.save = save_or_die
    elif where == "callbacks":
        on_save = WeightAveragingCallback.on_save

        def on_save_or_die(self, args, state, control, **kwargs):
            if state.global_step == step:
                die()
            return on_save(self, args, state, control, **kwargs)

        WeightAveragingCallback.on_save = on_save_or_die
    else:
        raise SystemExit(f"unknown place to die: {where}")


def print_trained_steps():
    on_step_end = WeightAveragingCallback.on_step_end

    def on_step_end_and_print(self, args, state, control, **kwargs):
        print(f"trained step {state.global_step}", flush=True)  # flushed: a killed run prints its steps too
        return on_step_end(self, args, state, control, **kwargs)

    WeightAveragingCallback.on_step_end = on_step_end_and_print


if __name__ == "__main__":
    torch.set_num_threads(1)
    print_trained_steps()
    if "--die_saving" in sys.argv:
        step, where = sys.argv[sys.argv.index("--die_saving") + 1].split(":")
        die_while_saving(int(step), where)
    run(*sys.argv[1:4], resume="--resume" in sys.argv)
    print("finished")
