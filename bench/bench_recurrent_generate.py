"""Cached generation of the recurrent LMs: how much the RecurrentCache saves, and that a step's cost is flat.

Claims, for LSTM and GRU with hidden 512 and 2 layers:
  - `generate` of 256 new tokens with the cache is >= 15x faster than with `use_cache=False`;
  - the time of one cached decode step at position 512 is within 1.2x of the time at position 32.
Everything is measured in one run and printed as ratios, the machines being noisy.

    python bench/bench_recurrent_generate.py [--new_tokens 256] [--repeats 3] [--threads 2]
"""

import argparse
import statistics
import time

import torch
from transformers import AutoModelForCausalLM

import hf_seq
from hf_seq.models.recurrent import cache_of


def build(config_class, vocab_size):
    torch.manual_seed(0)
    config = config_class(
        vocab_size=vocab_size, embedding_size=512, hidden_size=512, num_hidden_layers=2, tie_word_embeddings=True
    )
    return AutoModelForCausalLM.from_config(config).eval()


def time_generate(model, prompt, new_tokens, use_cache):
    start = time.perf_counter()
    output = model.generate(
        prompt,
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,
        do_sample=False,
        use_cache=use_cache,
        pad_token_id=0,
    )
    elapsed = time.perf_counter() - start
    assert output.shape[1] == prompt.shape[1] + new_tokens
    return elapsed


@torch.no_grad()
def time_steps_at(model, position, steps, vocab_size):
    """Seconds per cached single-token step after `position` tokens have been fed."""
    prompt = torch.randint(4, vocab_size, (1, position))
    cache = cache_of(model(prompt, use_cache=True))
    token = torch.randint(4, vocab_size, (1, 1))
    start = time.perf_counter()
    for _ in range(steps):
        output = model(token, cache=cache, use_cache=True)
        cache = cache_of(output)
    return (time.perf_counter() - start) / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new_tokens", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=200, help="cached steps timed at each position")
    parser.add_argument("--vocab_size", type=int, default=16000)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, new tokens {args.new_tokens}")

    for name, config_class in [("LSTM", hf_seq.LSTMConfig), ("GRU", hf_seq.GRUConfig)]:
        model = build(config_class, args.vocab_size)
        prompt = torch.randint(4, args.vocab_size, (1, 8))
        time_generate(model, prompt, 8, True)  # warm-up
        cached, uncached, early, late = [], [], [], []
        for _ in range(args.repeats):  # interleaved, so drift in machine load hits both sides alike
            cached.append(time_generate(model, prompt, args.new_tokens, use_cache=True))
            uncached.append(time_generate(model, prompt, args.new_tokens, use_cache=False))
            early.append(time_steps_at(model, 32, args.steps, args.vocab_size))
            late.append(time_steps_at(model, 512, args.steps, args.vocab_size))
        cached_s, uncached_s = statistics.median(cached), statistics.median(uncached)
        early_s, late_s = statistics.median(early), statistics.median(late)
        print(
            f"{name}: generate {args.new_tokens} tokens: cached {cached_s:.2f} s ({args.new_tokens / cached_s:.0f} tok/s), "
            f"no cache {uncached_s:.2f} s -> speed-up {uncached_s / cached_s:.1f}x (goal >= 15x)"
        )
        print(
            f"{name}: cached step at position 32: {early_s * 1e3:.2f} ms, at 512: {late_s * 1e3:.2f} ms "
            f"-> ratio 512/32 {late_s / early_s:.2f} (goal <= 1.2)"
        )


if __name__ == "__main__":
    main()
