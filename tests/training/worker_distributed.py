"""Worker for test_distributed.py, started by `torchrun --nproc_per_node 2` with ACCELERATE_USE_CPU=1.

usage: worker_distributed.py TOKENIZER_DIR NSMC_DIR TRAIN_TEXT OUTPUT_DIR
Each rank fine-tunes a classifier (Trainer, DDP; into OUTPUT_DIR/classifier, which it overwrites, with a checkpoint
every 2 steps), evaluates it, pretrains a tiny LSTM with the TBPTT loop, and writes what it saw to
OUTPUT_DIR/rank{RANK}.json: world size, rank, a digest of its parameters, evaluation counts.
"""

import hashlib
import json
import os
import sys

import torch


torch.set_num_threads(1)

import torch.distributed as dist  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from hf_seq.training import evaluate_model, finetune, pretrain  # noqa: E402
from tests.training.helpers import tiny_lstm_config, training_arguments  # noqa: E402


def parameter_digest(model):
    digest = hashlib.sha256()
    for name, parameter in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(parameter.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


tokenizer_dir, nsmc_dir, train_text, output_dir = sys.argv[1:5]
tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
common = {"ddp_timeout": 120, "ddp_find_unused_parameters": False}

classifier_dir = os.path.join(output_dir, "classifier")
classifier = finetune(
    training_arguments(
        classifier_dir, max_steps=5, per_device_train_batch_size=8, save_strategy="steps", save_steps=2, **common
    ),
    tokenizer,
    model=tiny_lstm_config(tokenizer),
    dataset=nsmc_dir,
    overwrite_output_dir=True,
)
test_metrics = evaluate_model(
    classifier_dir,
    os.path.join(nsmc_dir, "ratings_test.txt"),
    training_args=training_arguments(os.path.join(output_dir, "evaluate"), per_device_eval_batch_size=8, **common),
)
lm = pretrain(
    training_arguments(os.path.join(output_dir, "lm"), max_steps=4, **common),
    train_text,
    tokenizer,
    model=tiny_lstm_config(tokenizer),
    loop="tbptt",
    bptt=8,
)
rank = dist.get_rank()
result = {
    "world_size": dist.get_world_size(),
    "rank": rank,
    "classifier_digest": parameter_digest(classifier.model),
    "classifier_eval_n": classifier.metrics["eval_n"],
    "classifier_eval_accuracy": classifier.metrics["eval_accuracy"],
    "evaluate_metrics": test_metrics,
    "lm_digest": parameter_digest(lm.model),
}
with open(os.path.join(output_dir, f"rank{rank}.json"), "w", encoding="utf-8") as handle:
    json.dump(result, handle)
dist.barrier()
dist.destroy_process_group()
