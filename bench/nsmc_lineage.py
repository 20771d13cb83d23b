"""What bench_nsmc_pretrained.py reads back from its finished model folders: each one's `run_info.json`, and for
an LM the LMs it was pretrained further from (its lineage) and the pretraining budget they add up to.
"""

import json
import os

from hf_seq.training.common import RUN_INFO_NAME, write_json_atomically


def read_run_info(model_dir):
    with open(os.path.join(model_dir, RUN_INFO_NAME), encoding="utf-8") as handle:
        return json.load(handle)


def add_metric_to_run_info(model_dir, metric):
    """Record a figure measured after training (e.g. the LM's test perplexity) in run_info.json for the card."""
    record = read_run_info(model_dir)
    record["metrics"] = [
        entry
        for entry in record.get("metrics", [])
        if entry.get("name") != metric["name"] or entry.get("split") != metric["split"]
    ] + [metric]
    write_json_atomically(os.path.join(model_dir, RUN_INFO_NAME), record)


def is_finished_run(model_dir):
    """A model folder (a classifier or an LM) whose training run recorded its run_info.json."""
    return os.path.isfile(os.path.join(model_dir, RUN_INFO_NAME))


def lm_is_complete(lm_dir):
    """An LM folder the bench finished: weights saved and the test perplexity recorded."""
    if not (
        os.path.isfile(os.path.join(lm_dir, RUN_INFO_NAME))
        and os.path.isfile(os.path.join(lm_dir, "model.safetensors"))
    ):
        return False
    metrics = read_run_info(lm_dir).get("metrics", [])
    return any(entry["name"] == "perplexity" and entry["split"] == "test" for entry in metrics)


def check_same_tokenizer(base_dir, tokenizer_dir):
    with (
        open(os.path.join(base_dir, "tokenizer.json"), encoding="utf-8") as base_tokenizer,
        open(os.path.join(tokenizer_dir, "tokenizer.json"), encoding="utf-8") as tokenizer,
    ):
        if json.load(base_tokenizer) != json.load(tokenizer):
            raise ValueError(f"{base_dir} was trained with another tokenizer than {tokenizer_dir}")


def own_pretraining(record):
    """Tokens and seconds of the pretraining run an LM's run_info describes, without the LMs it continued from."""
    hyperparameters = record.get("hyperparameters", {})
    window = hyperparameters.get("bptt") or hyperparameters.get("block_size") or 0
    tokens = hyperparameters.get("max_steps", 0) * hyperparameters.get("per_device_train_batch_size", 0) * window
    return tokens, record.get("wall_time_seconds") or 0.0


def pretraining_budget(record):
    """Tokens and seconds of pretraining behind an LM's run_info, counting the LMs it continued from."""
    tokens, seconds = own_pretraining(record)
    earlier = record.get("continued_from")
    if earlier:
        tokens += earlier["pretrain_tokens"]
        seconds += earlier["pretrain_seconds"]
    return tokens, seconds


def record_continued_pretraining(lm_dir, base_dir, base_model):
    """Name the LM this one continued (`base_model`, its card's Hub id) and carry its pretraining budget forward."""
    tokens, seconds = pretraining_budget(read_run_info(base_dir))
    record = read_run_info(lm_dir)
    record["base_model"] = base_model
    record["continued_from"] = {"path": base_dir, "pretrain_tokens": tokens, "pretrain_seconds": seconds}
    write_json_atomically(os.path.join(lm_dir, RUN_INFO_NAME), record)


def lm_lineage(lm_dir):
    """The LM folders whose pretraining stands behind lm_dir: itself, then each LM it continued from."""
    lineage = []
    while lm_dir:
        lineage.append(os.path.normpath(lm_dir))
        lm_dir = read_run_info(lm_dir).get("continued_from", {}).get("path")
    return lineage


def shared_pretraining(lm_dirs):
    """Every LM behind these LMs, each counted once, and their summed (tokens, seconds) of pretraining.

    A backward LM continued from the forward one shares that LM's tokens and minutes; they count once.
    """
    lineage = []
    for lm_dir in lm_dirs:
        lineage += [lm for lm in lm_lineage(lm_dir) if lm not in lineage]
    budgets = [own_pretraining(read_run_info(lm)) for lm in lineage]
    return lineage, sum(tokens for tokens, _ in budgets), sum(seconds for _, seconds in budgets)
