"""Subprocess worker for test_fault.py: a tiny TBPTT run that checkpoints every 3 steps.

usage: worker_tbptt.py TOKENIZER_DIR TRAIN_FILE OUTPUT_DIR [--resume] [--slow]
--slow sleeps in every forward (numerics unchanged) so the test can kill it mid-run.
"""

import sys
import time

import torch


torch.set_num_threads(1)

from transformers import AutoTokenizer  # noqa: E402

import hf_seq  # noqa: E402
from hf_seq.data import corpus_token_ids, load_text_files, tokenize_corpus  # noqa: E402
from hf_seq.training import train_tbptt  # noqa: E402
from tests.training.helpers import tiny_lstm_config, training_arguments  # noqa: E402


tokenizer_dir, train_file, output_dir = sys.argv[1:4]
tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
token_ids = corpus_token_ids(tokenize_corpus(load_text_files(train_file), tokenizer)["train"])
torch.manual_seed(0)
model = hf_seq.LSTMForCausalLM(tiny_lstm_config(tokenizer, embedding_dropout=0.2, output_dropout=0.2))
if "--slow" in sys.argv:
    forward = model.forward

    def slow_forward(*args, **kwargs):
        time.sleep(0.15)
        return forward(*args, **kwargs)

    model.forward = slow_forward
args = training_arguments(
    output_dir,
    max_steps=24,
    save_strategy="steps",
    save_steps=3,
    resume_from_checkpoint="latest" if "--resume" in sys.argv else None,
)
run = train_tbptt(model, token_ids, args, bptt=8, tokenizer=tokenizer)
print(f"final train_loss {run.metrics['train_loss']:.6f}")
