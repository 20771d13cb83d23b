"""Seq2SeqRNN speed claims, as ratios measured in one run.

1. Decoding: cached beam-4 generation of 64 tokens vs `use_cache=False` (which recomputes the whole target each step).
2. Per-token cost of cached greedy decoding at several output lengths: flat if a step is O(1) in the output length.
3. Training tokens/s of Seq2SeqRNNForConditionalGeneration vs a plain PyTorch encoder–decoder of the same size and
   architecture (bi-LSTM encoder, LSTM decoder with input feeding and general attention), same loop, same data.

    python bench/bench_seq2seq.py [--hidden 256] [--threads 2]
"""

import argparse
import json
import platform
import statistics
import time

import torch
from torch import nn

from hf_seq.models.seq2seq_rnn import Seq2SeqRNNConfig, Seq2SeqRNNForConditionalGeneration


def timed(fn, repeats=1, warm_up=True):
    if warm_up:
        fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


class PlainSeq2Seq(nn.Module):
    """The same model written plainly: nn.LSTM encoder, nn.LSTMCell decoder stack, Luong general attention."""

    def __init__(self, vocab, emb, hidden, layers):
        super().__init__()
        self.src_embed, self.tgt_embed = nn.Embedding(vocab, emb), nn.Embedding(vocab, emb)
        self.encoder = nn.LSTM(emb, hidden // 2, layers, batch_first=True, bidirectional=True)
        self.bridge_h, self.bridge_c = (
            nn.Linear(2 * layers * hidden // 2, layers * hidden),
            nn.Linear(2 * layers * hidden // 2, layers * hidden),
        )
        self.cells = nn.ModuleList([nn.LSTMCell(emb + hidden if i == 0 else hidden, hidden) for i in range(layers)])
        self.key, self.out = nn.Linear(hidden, hidden, bias=False), nn.Linear(2 * hidden, hidden, bias=False)
        self.head = nn.Linear(emb, vocab)
        self.head.weight = self.tgt_embed.weight
        self.proj = nn.Linear(hidden, emb, bias=False) if emb != hidden else nn.Identity()
        self.layers, self.hidden = layers, hidden

    def forward(self, src, tgt_in, labels):
        outputs, (h, c) = self.encoder(self.src_embed(src))
        batch = src.shape[0]
        h = torch.tanh(self.bridge_h(h.transpose(0, 1).reshape(batch, -1))).view(batch, self.layers, -1)
        c = self.bridge_c(c.transpose(0, 1).reshape(batch, -1)).view(batch, self.layers, -1)
        state = [(h[:, i], c[:, i]) for i in range(self.layers)]
        keys, feed, results = self.key(outputs), outputs.new_zeros(batch, self.hidden), []
        embeds = self.tgt_embed(tgt_in)
        for t in range(tgt_in.shape[1]):
            x = torch.cat([embeds[:, t], feed], -1)
            for i, cell in enumerate(self.cells):
                state[i] = cell(x, state[i])
                x = state[i][0]
            weights = torch.softmax(torch.bmm(keys, x.unsqueeze(-1)).squeeze(-1), -1)
            context = torch.bmm(weights.unsqueeze(1), outputs).squeeze(1)
            feed = torch.tanh(self.out(torch.cat([context, x], -1)))
            results.append(feed)
        logits = self.head(self.proj(torch.stack(results, 1)))
        return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab", type=int, default=8000)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train-steps", type=int, default=9)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = Seq2SeqRNNConfig(
        vocab_size=args.vocab,
        hidden_size=args.hidden,
        embedding_size=args.hidden,
        encoder_layers=args.layers,
        decoder_layers=args.layers,
        attention="general",
        input_feeding=True,
        embedding_dropout=0.0,
        dropout=0.0,
        output_dropout=0.0,
    )
    model = Seq2SeqRNNForConditionalGeneration(config).eval()
    source = torch.randint(4, args.vocab, (2, 20))
    results = {
        "machine": platform.processor() or platform.machine(),
        "threads": args.threads,
        "torch": torch.__version__,
        "hidden": args.hidden,
        "layers": args.layers,
    }

    with torch.no_grad():

        def beam(use_cache):
            return lambda: model.generate(
                source, num_beams=4, max_new_tokens=64, min_new_tokens=64, use_cache=use_cache
            )

        results["beam4_64_cached_s"] = timed(beam(True))
        results["beam4_64_uncached_s"] = timed(beam(False))
        results["beam4_64_speedup"] = results["beam4_64_uncached_s"] / results["beam4_64_cached_s"]

        per_token = {}
        for length in (16, 64, 256):
            seconds = timed(lambda: model.generate(source, max_new_tokens=length, min_new_tokens=length), repeats=2)
            per_token[length] = 1000 * seconds / length
        results["greedy_ms_per_token"] = per_token
        results["per_token_256_vs_16"] = per_token[256] / per_token[16]

    batch, src_len, tgt_len = 32, 20, 20
    src = torch.randint(4, args.vocab, (batch, src_len))
    labels = torch.randint(4, args.vocab, (batch, tgt_len))
    tgt_in = torch.cat([torch.full((batch, 1), 2), labels[:, :-1]], 1)
    plain = PlainSeq2Seq(args.vocab, args.hidden, args.hidden, args.layers)
    model.train()
    n_ours = sum(p.numel() for p in model.parameters())
    n_plain = sum(p.numel() for p in plain.parameters())
    results["parameters_ours_vs_plain"] = [n_ours, n_plain]

    def training_step(step_loss, optimizer):
        def run():
            loss = step_loss()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        return run

    ours_step = training_step(
        lambda: model(input_ids=src, labels=labels, use_cache=False).loss, torch.optim.Adam(model.parameters())
    )
    plain_step = training_step(lambda: plain(src, tgt_in, labels), torch.optim.Adam(plain.parameters()))
    # Alternating single steps, so a load change on a shared machine hits both sides alike; the median ratio is kept.
    ours_step(), plain_step()  # warm-up
    ours_s, plain_s, ratios = [], [], []
    for _ in range(args.train_steps):
        ours_s.append(timed(ours_step, warm_up=False))
        plain_s.append(timed(plain_step, warm_up=False))
        ratios.append(plain_s[-1] / ours_s[-1])
    tokens = batch * tgt_len
    results["train_tokens_per_s_ours"] = tokens / statistics.median(ours_s)
    results["train_tokens_per_s_plain"] = tokens / statistics.median(plain_s)
    results["train_speed_ours_vs_plain"] = statistics.median(ratios)
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
