"""LM training throughput: our LSTM LM in our TBPTT loop vs a plain PyTorch `nn.LSTM` loop, same token stream.

Claim: tokens/s of `hf_seq.training.train_tbptt` on `hf_seq.LSTMForCausalLM` (2 layers, 200 units, bptt 35,
batch 20, as pytorch/examples' word_language_model defaults) is >= 0.95x the tokens/s of a plain PyTorch loop written
here (embedding, nn.LSTM, linear decoder, dropout 0.2, AdamW, gradient clipping, hidden state repackaged between
batches). Both read the same stream; runs are interleaved and the medians compared, all in one run.

    python bench/bench_lstm_lm_throughput.py [--corpus FILE] [--steps 150] [--repeats 3]

`--corpus` defaults to the review sample shipped in the package; `$HF_SEQ_DATA/reviews_lm/train.txt` works too.
"""

import argparse
import statistics
import tempfile
import time

import torch
from torch import nn
from transformers import AutoModelForCausalLM, TrainingArguments

import hf_seq
from hf_seq.data.lm import batchify, corpus_token_ids, load_text_files, tokenize_corpus
from hf_seq.data.nsmc import sample_data_path
from hf_seq.training.tbptt import train_tbptt
from tokenizer_training import model_config_kwargs, train_tokenizer


EMBEDDING, HIDDEN, LAYERS, BPTT, BATCH, DROPOUT, LR, CLIP = 200, 200, 2, 35, 20, 0.2, 1e-3, 0.25


class PlainLSTMLM(nn.Module):
    """pytorch/examples' RNNModel, LSTM only: encoder, nn.LSTM, decoder."""

    def __init__(self, vocab_size):
        super().__init__()
        self.drop = nn.Dropout(DROPOUT)
        self.encoder = nn.Embedding(vocab_size, EMBEDDING)
        self.rnn = nn.LSTM(EMBEDDING, HIDDEN, LAYERS, dropout=DROPOUT, batch_first=True)
        self.decoder = nn.Linear(HIDDEN, vocab_size)
        self.decoder.weight = self.encoder.weight  # tied, as ours

    def forward(self, input_ids, hidden):
        output, hidden = self.rnn(self.drop(self.encoder(input_ids)), hidden)
        return self.decoder(self.drop(output)), hidden


def plain_loop(token_ids, vocab_size, steps):
    """Seconds for `steps` TBPTT steps of the plain loop over `BATCH` streams."""
    torch.manual_seed(0)
    model = PlainLSTMLM(vocab_size).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0)
    streams = batchify(token_ids, BATCH)
    hidden = None
    start = time.perf_counter()
    for step in range(steps):
        position = (step * BPTT) % (streams.shape[1] - BPTT - 1)
        inputs = streams[:, position : position + BPTT]
        targets = streams[:, position + 1 : position + 1 + BPTT]
        hidden = None if hidden is None else tuple(state.detach() for state in hidden)
        logits, hidden = model(inputs, hidden)
        loss = nn.functional.cross_entropy(logits.reshape(-1, vocab_size), targets.reshape(-1))
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def our_loop(token_ids, tokenizer, steps, output_dir):
    """Seconds `train_tbptt` reports for its training loop (start-up and the final save excluded)."""
    torch.manual_seed(0)
    config = hf_seq.LSTMConfig(
        **model_config_kwargs(tokenizer),
        embedding_size=EMBEDDING,
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        embedding_dropout=DROPOUT,
        dropout=DROPOUT,
        output_dropout=DROPOUT,
        tie_word_embeddings=True,
    )
    model = AutoModelForCausalLM.from_config(config)
    args = TrainingArguments(
        output_dir=output_dir,
        max_steps=steps,
        per_device_train_batch_size=BATCH,
        learning_rate=LR,
        lr_scheduler_type="constant",
        max_grad_norm=CLIP,
        weight_decay=0.0,
        save_strategy="no",
        logging_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    run = train_tbptt(model, token_ids, args, bptt=BPTT)
    return run.metrics["train_runtime"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=str(sample_data_path("reviews_sample_train.txt")))
    parser.add_argument("--vocab_size", type=int, default=8000)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as workdir:
        tokenizer = train_tokenizer(files=[args.corpus], vocab_size=args.vocab_size)
        corpus = tokenize_corpus(load_text_files(args.corpus, cache_dir=workdir), tokenizer)
        token_ids = corpus_token_ids(corpus["train"])
        vocab_size = len(tokenizer)
        tokens_per_run = args.steps * BPTT * BATCH
        print(
            f"torch {torch.__version__}, {torch.get_num_threads()} threads; corpus {args.corpus}: "
            f"{token_ids.numel()} tokens, vocab {vocab_size}; {args.steps} steps x {BATCH} x {BPTT} per run"
        )
        ours, plain = [], []
        our_loop(token_ids, tokenizer, 5, workdir + "/warmup")
        plain_loop(token_ids, vocab_size, 5)
        for repeat in range(args.repeats):  # interleaved, alternating which goes first
            runs = [
                lambda: ours.append(our_loop(token_ids, tokenizer, args.steps, f"{workdir}/run{repeat}")),
                lambda: plain.append(plain_loop(token_ids, vocab_size, args.steps)),
            ]
            for run in runs if repeat % 2 == 0 else runs[::-1]:
                run()
        ours_tps, plain_tps = tokens_per_run / statistics.median(ours), tokens_per_run / statistics.median(plain)
        print(
            f"hf_seq LSTMForCausalLM + train_tbptt: {ours_tps:,.0f} tokens/s  (runs: {[round(t, 2) for t in ours]} s)"
        )
        print(
            f"plain PyTorch nn.LSTM loop:           {plain_tps:,.0f} tokens/s  (runs: {[round(t, 2) for t in plain]} s)"
        )
        print(f"ratio ours/plain: {ours_tps / plain_tps:.3f} (goal >= 0.95)")


if __name__ == "__main__":
    main()
