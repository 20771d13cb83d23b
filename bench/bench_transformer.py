"""Claim: hf-seq's TransformerLM is as fast as transformers' own GPT-2 at the same size.

Both models are built from configs of the same size (no download): 6 layers, hidden 384, 6 heads, feed-forward 1536,
1024 positions, vocab 16000, tied embeddings, no dropout, the same attention implementation (sdpa by default). In one
run, interleaving the models so that load on the shared machine hits both alike, it measures

  1. training tokens/s: forward + backward + AdamW step on a (batch, seq_len) batch of token ids, float32;
  2. cached generation tokens/s: `generate()` of 256 new tokens (greedy, KV cache, no early stop) after a short prompt;
  3. on a GPU only: bf16-autocast training tokens/s and the fraction of the chip's bf16 peak that the achieved
     model FLOP/s reach (6 N + 12 L h T FLOPs per token, as in the PaLM paper's MFU).

and prints each figure and the ratio TransformerLM / GPT-2 (the median of the per-repeat ratios, and the ratio of
the best runs). On CPU it runs one thread and times with the process CPU clock by default, so that other jobs on a
shared machine (which deschedule us at random) do not decide the result. Speed does not depend on what the token ids
say, so the batches are random ids: no data set is needed.

On CPU, generation is also set against the machine's memory limit: a cached step at batch 1 reads every weight
matrix once (and the cached keys and values), so it cannot take less than those bytes over the copy bandwidth
(a 256 MB tensor copy, bytes read + written, timed with the same clock before and after the generation runs).

    python bench/bench_transformer.py                      # rotary and learned TransformerLM vs GPT-2, 1 thread
    python bench/bench_transformer.py --positions rotary --threads 2 --repeats 7
"""

import argparse
import statistics
import time

import torch
import transformers
from transformers import GPT2Config, GPT2LMHeadModel

from hf_seq import TransformerLMConfig, TransformerLMForCausalLM


# Dense bf16 tensor-core peak (no sparsity), TFLOP/s, by a substring of torch.cuda.get_device_name().
BF16_PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 70.0, "L4": 121.0}


def build_models(args):
    """TransformerLM (one per position type asked for) and GPT-2, at the same size and attention implementation."""
    models = {}
    for positions in args.positions:
        config = TransformerLMConfig(
            vocab_size=args.vocab_size,
            hidden_size=args.hidden_size,
            num_hidden_layers=args.num_layers,
            num_attention_heads=args.num_heads,
            intermediate_size=4 * args.hidden_size,
            max_position_embeddings=args.max_positions,
            position_embedding_type=positions,
            attn_implementation=args.attn_implementation,
        )
        models[f"TLM-{positions}"] = TransformerLMForCausalLM(config)
    gpt2_config = GPT2Config(
        vocab_size=args.vocab_size,
        n_embd=args.hidden_size,
        n_layer=args.num_layers,
        n_head=args.num_heads,
        n_inner=4 * args.hidden_size,
        n_positions=args.max_positions,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=0,
        eos_token_id=0,
        tie_word_embeddings=True,
        attn_implementation=args.attn_implementation,
    )
    models["GPT-2"] = GPT2LMHeadModel(gpt2_config)
    return {name: model.to(args.device) for name, model in models.items()}


def count_flops_per_token(model, args, seq_len):
    """Training FLOPs per token: 6 x (parameters used in matmuls) + 12 L h T for the attention scores and values."""
    # Embedding tables are lookups (no FLOPs); the tied lm_head matmul uses the token table's weights, so add it back.
    lookup_params = sum(module.weight.numel() for module in model.modules() if isinstance(module, torch.nn.Embedding))
    matmul_params = sum(p.numel() for p in model.parameters()) - lookup_params + args.vocab_size * args.hidden_size
    return 6 * matmul_params + 12 * args.num_layers * args.hidden_size * seq_len


def make_train_step(model, args, batch, autocast_dtype=None):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=args.device == "cuda")

    def step():
        with torch.autocast(args.device, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def time_calls(function, calls, args):
    """Seconds for `calls` calls. On CPU by default the process CPU clock: with one thread it equals wall time on an
    idle machine, and time spent waiting while other jobs hold the shared cores does not count."""
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.device == "cuda":
        torch.cuda.synchronize()
    start = clock()
    for _ in range(calls):
        function()
    if args.device == "cuda":
        torch.cuda.synchronize()
    return clock() - start


def interleaved_throughput(functions, tokens_per_call, calls, repeats, warmup, args):
    """Tokens/s of each function, timed in turns (A, B, C, C, B, A, ...) after `warmup` untimed calls each."""
    for function in functions.values():
        for _ in range(warmup):
            function()
    rates = {name: [] for name in functions}
    for repeat in range(repeats):
        # Alternate who goes first so that a slow moment on the shared machine does not always hit the same model.
        order = list(functions) if repeat % 2 == 0 else list(reversed(functions))
        for name in order:
            rates[name].append(tokens_per_call * calls / time_calls(functions[name], calls, args))
    return rates


def copy_bandwidth(args, megabytes=256):
    """Bytes read + written per second by a large tensor copy, the best of three, on the benchmark's clock."""
    source = torch.ones(megabytes * 2**20 // 4)
    target = torch.empty_like(source)
    target.copy_(source)
    return 2 * source.numel() * 4 / min(time_calls(lambda: target.copy_(source), 1, args) for _ in range(3))


def bytes_per_decode_step(model, args):
    """What a cached step reads on average over the generated tokens: every parameter but the position table (one
    row of it), and the keys and values cached so far (float32, 2 x layers x hidden per position)."""
    positions = [p for name, p in model.named_parameters() if "wpe" in name or "embed_positions" in name]
    weights = sum(p.numel() for p in model.parameters()) - sum(p.numel() - p.shape[-1] for p in positions)
    mean_cached = args.prompt_len + (args.new_tokens - 1) / 2
    return 4 * (weights + 2 * args.num_layers * args.hidden_size * mean_cached)


def report_memory_limit(rates, models, bandwidth, args):
    """Each model's generation against the memory limit: the fastest a step can be over its median step time."""
    print(f"  copy bandwidth {bandwidth / 1e9:.1f} GB/s (median of the measurements around the runs)")
    for name, model in models.items():
        step_bytes = bytes_per_decode_step(model, args)
        limit, step = step_bytes / bandwidth, 1 / statistics.median(rates[name])
        print(
            f"  {name:<14} step {step * 1e3:.2f} ms, reads {step_bytes / 1e6:.1f} MB -> limit {limit * 1e3:.2f} ms: "
            f"{limit / step:.2f}x the limit (goal >= 0.7)"
        )


def report(title, rates, baseline="GPT-2"):
    """Each model's median tokens/s, then its ratio to the baseline: the median of the per-repeat ratios (the two
    models timed back to back) and the ratio of the best runs (the least disturbed by other load)."""
    print(f"\n{title}")
    for name, values in rates.items():
        runs = ", ".join(f"{value:,.0f}" for value in values)
        print(f"  {name:<14} {statistics.median(values):>10,.0f} tokens/s (median)   runs: {runs}")
    for name, values in rates.items():
        if name != baseline:
            ratios = [ours / theirs for ours, theirs in zip(values, rates[baseline])]
            print(
                f"  ratio {name} / {baseline}: median {statistics.median(ratios):.2f}x, best runs "
                f"{max(values) / max(rates[baseline]):.2f}x   (per repeat: {', '.join(f'{r:.2f}' for r in ratios)})"
            )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--positions",
        nargs="+",
        choices=["rotary", "learned"],
        default=["rotary", "learned"],
        help="TransformerLM position types to compare with GPT-2 (rotary is the default config)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: on a shared machine, waiting threads distort timings)",
    )
    parser.add_argument("--attn_implementation", default="sdpa")
    parser.add_argument("--vocab_size", type=int, default=16000)
    parser.add_argument("--hidden_size", type=int, default=384)
    parser.add_argument("--num_layers", type=int, default=6)
    parser.add_argument("--num_heads", type=int, default=6)
    parser.add_argument("--max_positions", type=int, default=1024)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--seq_len", type=int, default=256)
    parser.add_argument("--train_steps", type=int, default=1, help="timed training steps per repeat")
    parser.add_argument("--new_tokens", type=int, default=256)
    parser.add_argument("--prompt_len", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--gpu_batch_size", type=int, default=32)
    parser.add_argument("--gpu_seq_len", type=int, default=1024)
    parser.add_argument("--peak_tflops", type=float, default=None, help="bf16 peak of the GPU (default: looked up)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--clock",
        choices=["cpu", "wall"],
        default=None,
        help="cpu: process CPU time (default on CPU); wall: elapsed time (always on a GPU)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.clock is None or args.device == "cuda":
        args.clock = "wall" if args.device == "cuda" else "cpu"

    torch.manual_seed(args.seed)
    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    models = build_models(args)
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(
        f"device: {device_name}; torch {torch.__version__}; transformers {transformers.__version__}; "
        f"attention: {args.attn_implementation}; clock: {args.clock}"
    )
    for name, model in models.items():
        print(f"  {name:<14} {sum(p.numel() for p in model.parameters()):,} parameters")

    # 1. Training step, float32.
    batch = torch.randint(0, args.vocab_size, (args.batch_size, args.seq_len), device=args.device)
    for model in models.values():
        model.train()
    steps = {name: make_train_step(model, args, batch) for name, model in models.items()}
    rates = interleaved_throughput(steps, batch.numel(), args.train_steps, args.repeats, warmup=1, args=args)
    report(f"training step (float32), batch {args.batch_size} x {args.seq_len} tokens, AdamW:", rates)

    # 2. Cached generation: greedy, no early stop, so both generate exactly `new_tokens` tokens.
    prompt = torch.randint(0, args.vocab_size, (1, args.prompt_len), device=args.device)
    for model in models.values():
        model.eval()

    def make_generate(model):
        @torch.no_grad()
        def generate():
            output = model.generate(
                prompt,
                attention_mask=torch.ones_like(prompt),
                max_new_tokens=args.new_tokens,
                min_new_tokens=args.new_tokens,
                do_sample=False,
                use_cache=True,
                eos_token_id=None,
                pad_token_id=0,
            )
            assert output.shape[1] == args.prompt_len + args.new_tokens

        return generate

    generators = {name: make_generate(model) for name, model in models.items()}
    bandwidths = [copy_bandwidth(args)] if args.device == "cpu" else []
    rates = interleaved_throughput(generators, args.new_tokens, 1, args.repeats, warmup=1, args=args)
    report(f"cached generation, {args.new_tokens} new tokens after a {args.prompt_len}-token prompt, batch 1:", rates)
    if bandwidths:
        bandwidths.append(copy_bandwidth(args))
        report_memory_limit(rates, models, statistics.median(bandwidths), args)

    # 3. GPU only: bf16 training and model FLOP utilisation.
    if args.device == "cuda":
        peak = args.peak_tflops
        if peak is None:
            peak = next((tflops for key, tflops in BF16_PEAK_TFLOPS.items() if key in device_name), None)
        batch = torch.randint(0, args.vocab_size, (args.gpu_batch_size, args.gpu_seq_len), device=args.device)
        for model in models.values():
            model.train()
        steps = {name: make_train_step(model, args, batch, torch.bfloat16) for name, model in models.items()}
        rates = interleaved_throughput(steps, batch.numel(), 10, args.repeats, warmup=3, args=args)
        report(f"training step (bf16 autocast), batch {args.gpu_batch_size} x {args.gpu_seq_len} tokens:", rates)
        for name, model in models.items():
            flops_per_token = count_flops_per_token(model, args, args.gpu_seq_len)
            achieved = statistics.median(rates[name]) * flops_per_token / 1e12
            fraction = f"{achieved / peak:.1%} of the {peak:.0f} TFLOP/s bf16 peak" if peak else "peak unknown"
            print(f"  {name:<14} {achieved:.1f} TFLOP/s achieved = {fraction}")


if __name__ == "__main__":
    main()
