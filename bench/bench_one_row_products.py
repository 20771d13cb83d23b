"""How fast a decode step's one-row products stream the Transformer's projections, by weight layout.

A cached decode step at batch 1 multiplies one row by every projection of every layer, one after another. The
weights of the default model (6 layers, hidden 384, feed-forward 1536: 42 MB of projections) do not fit the 32 MB
L3 cache of the 2-core machine of docs/benchmarks.md, so each product reads its matrix from DRAM. For each kind of
projection (qkv 384 -> 1152, o 384 -> 384, up 384 -> 1536, down 1536 -> 384) this measures, over passes through all
the layers in a decode step's order, the GB/s of:

  - `torch.addmm(b, x, W)` on W stored (in, out), as transformers' `Conv1D` keeps it;
  - `F.linear(x, W_t, b)` on a contiguous (out, in) copy, as `nn.Linear` keeps it;
  - `W.sum()`: a plain read of the same matrix, what streaming it can reach here;

and names the layout `hf_seq.models.transformer.modeling_transformer_lm._conv1d` reads in a decode step (the copy
when a projection has more inputs than outputs). Claim: that layout is the faster one for every kind. Medians over
interleaved repeats (the machine is noisy); the weights are random (speed does not depend on their values).

    python bench/bench_one_row_products.py [--threads 1] [--repeats 30]
"""

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from hf_seq import TransformerLMConfig
from hf_seq.models.transformer.modeling_transformer_lm import TransformerLMForCausalLM


def projections_in_step_order(model):
    """(kind, Conv1D) for every projection, in the order a decode step reads them."""
    for layer in model.model.layers:
        yield "qkv", layer.self_attn.qkv_proj
        yield "o", layer.self_attn.o_proj
        yield "up", layer.mlp.up_proj
        yield "down", layer.mlp.down_proj


def one_pass(products):
    """Run each (kind, function, bytes) once, in order; the seconds each took."""
    seconds = []
    for kind, function, size in products:
        start = time.perf_counter()
        function()
        seconds.append((kind, size, time.perf_counter() - start))
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden_size", type=int, default=384)
    parser.add_argument("--intermediate_size", type=int, default=1536)
    parser.add_argument("--num_layers", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = TransformerLMConfig(
        vocab_size=1000,
        hidden_size=args.hidden_size,
        num_hidden_layers=args.num_layers,
        num_attention_heads=max(1, args.hidden_size // 64),
        intermediate_size=args.intermediate_size,
    )
    model = TransformerLMForCausalLM(config).eval()
    variants = {"stored (in, out)": [], "copy (out, in)": [], "read (sum)": []}
    for kind, layer in projections_in_step_order(model):
        weight, bias = layer.weight.detach(), layer.bias.detach()
        row = torch.randn(1, weight.shape[0])
        copy = weight.t().contiguous()
        size = weight.numel() * weight.element_size()
        variants["stored (in, out)"].append((kind, lambda b=bias, x=row, w=weight: torch.addmm(b, x, w), size))
        variants["copy (out, in)"].append((kind, lambda b=bias, x=row, w=copy: F.linear(x, w, b), size))
        variants["read (sum)"].append((kind, lambda w=weight: w.sum(), size))
    total_megabytes = sum(size for _, _, size in variants["read (sum)"]) / 1e6
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {total_megabytes:.1f} MB of projections")

    rates = {(variant, kind): [] for variant in variants for kind in ("qkv", "o", "up", "down")}
    for _ in range(args.repeats + 1):  # the first pass warms up (allocations, MKL's first calls) and is dropped
        for variant, products in variants.items():  # interleaved: drift in the machine's load hits each alike
            for kind, size, seconds in one_pass(products):
                rates[(variant, kind)].append(size / seconds / 1e9)
    shapes = {kind: tuple(layer.weight.shape) for kind, layer in projections_in_step_order(model)}
    for kind, (inputs, outputs) in shapes.items():
        median = {variant: statistics.median(rates[(variant, kind)][args.num_layers :]) for variant in variants}
        chosen = "copy (out, in)" if inputs > outputs else "stored (in, out)"
        other = "stored (in, out)" if chosen == "copy (out, in)" else "copy (out, in)"
        figures = ", ".join(f"{variant} {rate:.1f} GB/s" for variant, rate in median.items())
        verdict = "the faster" if median[chosen] >= median[other] else "NOT the faster"
        print(f"{kind:4s} {inputs} -> {outputs}: {figures}; the decode step reads {chosen}: {verdict}")


if __name__ == "__main__":
    main()
