"""Decode speed of the recurrent LMs against the machine's memory bandwidth, and int8 against fp32.

A cached decode step multiplies one vector per sequence by every weight matrix once, so it cannot be faster than
streaming those weights from memory. For LSTM and GRU (2 layers of 512, vocabulary 16000, by default), in one run:
  - the copy bandwidth (a 256 MB tensor copy: bytes read + written / time) and the bytes of weights one step reads,
    whose quotient is the fastest a step can be (the limit);
  - the raw step loop (`model(token, cache=...)` then argmax), and `generate()` on the same weights;
  - the reference: the same arithmetic written out here on the stored (out, in) weights (`F.linear`, the cell
    functions), as hf_seq ran its decode steps before; its tokens must equal the model's;
  - `hf_seq.quantization.quantize_dynamic_int8` of the model: its step loop and generate;
  - on several threads, the step with each recurrent layer's products on one thread (as before they were read in
    column blocks, a block per thread), to show what the split gains in the same run;
  - how many torch operators a step calls (`torch.profiler`): its cost outside the products.
Claims: fp32 step >= 0.7x the limit; generate <= 1.10x the raw loop; the same tokens as the reference;
int8 decode >= 4x faster than the reference. Times are medians of interleaved repeats, the machines being noisy;
each ratio (step / limit, generate / raw) is the median of the repeats' own ratios: the copy bandwidth is measured
in every repeat beside its steps, so a drift in the machine's load moves both sides of a ratio alike.

    python bench/bench_recurrent_decode.py [--new_tokens 256] [--repeats 5] [--threads 2] [--cells LSTM GRU]
    python bench/bench_recurrent_decode.py --model DIR --text FILE [--max_tokens 50000]   # fp32 vs int8 perplexity

With `--model` (a saved recurrent LM with its tokenizer) the speed figures are of that model, and `--text` adds the
perplexity of fp32 and int8 on the file (the state carried across chunks of `--chunk` tokens, as in training).
With `--classifier` (saved sequence classifiers) and `--nsmc_test` (NSMC's `id document label` file), the accuracy
and reviews/s of `hf-seq predict` in fp32 and with `--int8`, each classifier alone (claim: within 0.2 points):

    python bench/bench_recurrent_decode.py --classifier DIR [DIR ...] --nsmc_test ratings_test.txt [--max_length 80]
"""

import argparse
import contextlib
import copy
import math
import statistics
import time

import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, AutoTokenizer

import hf_seq
from hf_seq.data import corpus_token_ids, load_text_files, tokenize_corpus
from hf_seq.models.recurrent import cache_of, modeling_recurrent
from hf_seq.quantization import quantize_dynamic_int8


CELL_FUNCTIONS = {
    "LSTM": torch.lstm_cell,
    "GRU": torch.gru_cell,
    "RNN_TANH": torch.rnn_tanh_cell,
    "RNN_RELU": torch.rnn_relu_cell,
}


def copy_bandwidth(megabytes=256, repeats=5):
    """Bytes read + written per second by a large tensor copy (the best of `repeats`)."""
    source = torch.ones(megabytes * 2**20 // 4)
    target = torch.empty_like(source)
    target.copy_(source)
    best = min(timed(lambda: target.copy_(source)) for _ in range(repeats))
    return 2 * source.numel() * source.element_size() / best


def paired_median(first, second, ratio):
    """The median over repeats of `ratio(first[i], second[i])`: each repeat's own figures, measured side by side."""
    return statistics.median(ratio(a, b) for a, b in zip(first, second, strict=True))


@contextlib.contextmanager
def layers_unsplit():
    """Decode steps whose recurrent layers run each product on one thread (`torch.lstm_cell`, ...), as before."""
    split = modeling_recurrent._layer_product_parts
    modeling_recurrent._layer_product_parts = lambda rnn, layer: 1
    try:
        yield
    finally:
        modeling_recurrent._layer_product_parts = split


def timed(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def step_bytes(model, int8=False):
    """Bytes of weights one decode step reads: every recurrent and output matrix, the biases, one embedding row."""
    rnn, lm_head = model.model.rnn, model.lm_head
    matrices = [p for name, p in rnn.named_parameters() if name.startswith("weight")] + [lm_head.weight]
    if model.output_projection is not None:
        matrices.append(model.output_projection.weight)
    vectors = [p for name, p in rnn.named_parameters() if name.startswith("bias")]
    vectors += [lm_head.bias] if lm_head.bias is not None else []
    elements = sum(m.numel() for m in matrices)
    fp32_bytes = 4 * (sum(v.numel() for v in vectors) + model.config.embedding_size)
    return (elements if int8 else 4 * elements) + fp32_bytes


@torch.no_grad()
def reference_step(model, token, state):
    """One decode step as hf_seq computed it before: cell functions and `F.linear` on the (out, in) weights."""
    rnn = model.model.rnn
    layer_input = F.embedding(token, model.model.embed_tokens.weight)[:, 0]
    new_state = []
    for layer in range(rnn.num_layers):
        weights = [getattr(rnn, f"{kind}_l{layer}") for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        output = CELL_FUNCTIONS[rnn.mode](layer_input, state[layer], *weights)
        new_state.append(output)
        layer_input = output[0] if rnn.mode == "LSTM" else output
    if model.output_projection is not None:
        layer_input = F.linear(layer_input, model.output_projection.weight)
    return F.linear(layer_input, model.lm_head.weight, model.lm_head.bias), new_state


@torch.no_grad()
def reference_loop(model, prompt, new_tokens):
    """Greedy decoding with `reference_step`; the prompt is read by the model (the fused module, as before)."""
    output = model(prompt, use_cache=True)
    cache, token = cache_of(output), output.logits[:, -1].argmax(-1, keepdim=True)
    state = [
        (cache.hidden[layer], cache.cell[layer]) if cache.has_cell_state else cache.hidden[layer]
        for layer in range(len(cache.layers))
    ]
    tokens = [token]
    start = time.perf_counter()
    for _ in range(new_tokens - 1):
        logits, state = reference_step(model, token, state)
        token = logits.argmax(-1, keepdim=True)
        tokens.append(token)
    return torch.cat(tokens, dim=1), (time.perf_counter() - start) / (new_tokens - 1)


@torch.no_grad()
def raw_loop(model, prompt, new_tokens):
    """Greedy decoding by calling the model step by step: the tokens, seconds in all, seconds per decode step."""
    start = time.perf_counter()
    output = model(prompt, use_cache=True)
    token = output.logits[:, -1].argmax(-1, keepdim=True)
    tokens = [token]
    steps_start = time.perf_counter()
    for _ in range(new_tokens - 1):
        output = model(token, cache=cache_of(output), use_cache=True)
        token = output.logits[:, -1].argmax(-1, keepdim=True)
        tokens.append(token)
    end = time.perf_counter()
    return torch.cat(tokens, dim=1), end - start, (end - steps_start) / (new_tokens - 1)


@torch.no_grad()
def operators_per_step(model, prompt, steps=20):
    """How many torch operators (`torch.profiler`, nested ones included) one cached decode step calls: what a step
    spends outside its products grows with it."""
    output = model(prompt, use_cache=True)
    token = output.logits[:, -1].argmax(-1, keepdim=True)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
        for _ in range(steps):
            output = model(token, cache=cache_of(output), use_cache=True)
            token = output.logits[:, -1].argmax(-1, keepdim=True)
    return sum(event.count for event in profiler.key_averages()) / steps


def generate(model, prompt, new_tokens, eos_token_id):
    start = time.perf_counter()
    output = model.generate(
        prompt, max_new_tokens=new_tokens, do_sample=False, eos_token_id=eos_token_id, pad_token_id=0
    )
    elapsed = time.perf_counter() - start
    return output[:, prompt.shape[1] :], elapsed


def build(cell, args):
    config_class = {"LSTM": hf_seq.LSTMConfig, "GRU": hf_seq.GRUConfig, "RNN": hf_seq.RNNConfig}[cell]
    torch.manual_seed(0)
    config = config_class(
        vocab_size=args.vocab_size,
        embedding_size=args.embedding_size,
        hidden_size=args.hidden_size,
        num_hidden_layers=args.num_layers,
    )
    return AutoModelForCausalLM.from_config(config).eval()


@torch.no_grad()
def perplexity(model, ids, chunk, streams=16):
    """exp(mean NLL) over `ids`, read as `streams` parallel streams in chunks, the state carried between chunks."""
    length = ids.numel() // streams
    data = ids[: length * streams].view(streams, length)
    total, count, cache = 0.0, 0, None
    for start in range(0, length - 1, chunk):
        inputs, targets = data[:, start : start + chunk], data[:, start + 1 : start + chunk + 1]
        inputs = inputs[:, : targets.shape[1]]
        output = model(inputs, cache=cache, use_cache=True)
        cache = cache_of(output)
        total += F.cross_entropy(output.logits.flatten(0, 1), targets.flatten(), reduction="sum").item()
        count += targets.numel()
    return math.exp(total / count)


def measure(name, model, args):
    prompt = torch.randint(4, model.config.vocab_size, (1, 8), generator=torch.Generator().manual_seed(1))
    quantized = quantize_dynamic_int8(copy.deepcopy(model))
    reference_tokens, _ = reference_loop(model, prompt, args.new_tokens)
    # An end-of-sequence id the greedy output never reaches: generate then keeps its usual stop check and still
    # produces every token asked for.
    seen = set(reference_tokens.flatten().tolist())
    eos_token_id = next(i for i in range(4, model.config.vocab_size) if i not in seen)
    for candidate in (model, quantized):  # warm-up: first calls allocate, make the transposed copies, ...
        raw_loop(candidate, prompt, 8)
        generate(candidate, prompt, 8, eos_token_id)

    keys = ("reference", "step", "raw", "generate", "int8 step", "int8 raw", "int8 generate", "step, layers unsplit")
    times = {key: [] for key in keys}
    several_threads = torch.get_num_threads() > 1
    same = {"raw": True, "generate": True}
    int8_agreement, bandwidths = [], []
    for _ in range(args.repeats):  # interleaved, so drift in machine load hits every variant alike
        bandwidths.append(copy_bandwidth(repeats=3))  # each repeat's limit, measured beside its steps
        tokens, step = reference_loop(model, prompt, args.new_tokens)
        times["reference"].append(step)
        tokens, total, step = raw_loop(model, prompt, args.new_tokens)
        same["raw"] &= torch.equal(tokens, reference_tokens)
        times["raw"].append(total)
        times["step"].append(step)
        tokens, total = generate(model, prompt, args.new_tokens, eos_token_id)
        same["generate"] &= torch.equal(tokens, reference_tokens)
        times["generate"].append(total)
        tokens, total, step = raw_loop(quantized, prompt, args.new_tokens)
        int8_agreement.append((tokens == reference_tokens).float().mean().item())
        times["int8 raw"].append(total)
        times["int8 step"].append(step)
        _, total = generate(quantized, prompt, args.new_tokens, eos_token_id)
        times["int8 generate"].append(total)
        if several_threads:
            with layers_unsplit():
                tokens, _, step = raw_loop(model, prompt, args.new_tokens)
            same["raw"] &= torch.equal(tokens, reference_tokens)
            times["step, layers unsplit"].append(step)
    median = {key: statistics.median(values) for key, values in times.items() if values}
    generate_over_raw = paired_median(times["generate"], times["raw"], lambda generated, raw: generated / raw)

    bandwidth = statistics.median(bandwidths)
    fp32_bytes, int8_bytes = step_bytes(model), step_bytes(model, int8=True)
    limit, int8_limit = fp32_bytes / bandwidth, int8_bytes / bandwidth
    step_over_limit = paired_median(bandwidths, times["step"], lambda copy_rate, step: fp32_bytes / copy_rate / step)
    int8_over_limit = paired_median(
        bandwidths, times["int8 step"], lambda copy_rate, step: int8_bytes / copy_rate / step
    )
    per_token = {key: median[key] / args.new_tokens for key in ("raw", "generate", "int8 raw", "int8 generate")}
    print(
        f"{name}: copy bandwidth {bandwidth / 1e9:.1f} GB/s (repeats: {min(bandwidths) / 1e9:.1f}-"
        f"{max(bandwidths) / 1e9:.1f}); a step reads {fp32_bytes / 1e6:.1f} MB (fp32), "
        f"{int8_bytes / 1e6:.1f} MB (int8) -> limit {limit * 1e3:.2f} ms, {int8_limit * 1e3:.2f} ms"
    )
    print(
        f"{name}: fp32 step {median['step'] * 1e3:.2f} ms (reference, F.linear on (out, in) weights: "
        f"{median['reference'] * 1e3:.2f} ms) -> {step_over_limit:.2f}x the bandwidth limit (goal >= 0.7); "
        f"{operators_per_step(model, prompt):.0f} torch operators per step (argmax included)"
    )
    if several_threads:
        gain = paired_median(times["step, layers unsplit"], times["step"], lambda unsplit, split: unsplit / split)
        print(
            f"{name}: fp32 step with each layer's products on one thread: {median['step, layers unsplit'] * 1e3:.2f} ms "
            f"-> the layers read in column blocks make the step {gain:.2f}x faster"
        )
    print(
        f"{name}: per token: raw loop {per_token['raw'] * 1e3:.2f} ms, generate {per_token['generate'] * 1e3:.2f} ms "
        f"-> generate / raw {generate_over_raw:.3f} (goal <= 1.10); "
        f"same tokens as the reference: raw {same['raw']}, generate {same['generate']}"
    )
    print(
        f"{name}: int8 step {median['int8 step'] * 1e3:.2f} ms -> {median['reference'] / median['int8 step']:.1f}x "
        f"faster than the reference (goal >= 4), {median['step'] / median['int8 step']:.1f}x faster than fp32 now, "
        f"{int8_over_limit:.2f}x its limit; int8 generate {per_token['int8 generate'] * 1e3:.2f} ms "
        f"per token; tokens equal to fp32's: {statistics.median(int8_agreement):.0%}"
    )
    return quantized


def classifier_accuracy(model_dirs, nsmc_test, max_length):
    """NSMC test accuracy and reviews/s of each classifier with `hf_seq.prediction.predict`, fp32 then int8."""
    from hf_seq.prediction import predict

    with open(nsmc_test, encoding="utf-8") as file:
        next(file)  # header
        labels = [int(line.rstrip("\n").split("\t")[2]) for line in file]
    for model_dir in model_dirs:
        figures = {}
        for int8 in (False, True):
            result = predict(model_dir, nsmc_test, max_length=max_length, int8=int8, show_progress=False)
            correct = sum(int(row["label"]) == label for row, label in zip(result.rows, labels))
            figures[int8] = (correct / len(labels), result.texts_per_second)
        (fp32, fp32_speed), (int8, int8_speed) = figures[False], figures[True]
        print(
            f"{model_dir}: NSMC test accuracy ({len(labels)} reviews) fp32 {fp32:.2%}, int8 {int8:.2%} "
            f"({(int8 - fp32) * 100:+.2f} points; goal within 0.2); reviews/s fp32 {fp32_speed:.0f}, "
            f"int8 {int8_speed:.0f} ({int8_speed / fp32_speed:.2f}x)"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", nargs="+", default=["LSTM", "GRU"], choices=["LSTM", "GRU", "RNN"])
    parser.add_argument("--vocab_size", type=int, default=16000)
    parser.add_argument("--embedding_size", type=int, default=512)
    parser.add_argument("--hidden_size", type=int, default=512)
    parser.add_argument("--num_layers", type=int, default=2)
    parser.add_argument("--new_tokens", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--model", default=None, help="a saved recurrent LM (with its tokenizer) instead of random ones"
    )
    parser.add_argument("--text", default=None, help="with --model: a text file (a document a line) for perplexity")
    parser.add_argument("--max_tokens", type=int, default=50000, help="tokens of --text read")
    parser.add_argument("--chunk", type=int, default=128, help="tokens per forward when reading --text")
    parser.add_argument("--classifier", nargs="+", default=None, help="saved sequence classifiers (fp32 vs int8)")
    parser.add_argument("--nsmc_test", default=None, help="with --classifier: NSMC's ratings_test.txt")
    parser.add_argument("--max_length", type=int, default=80, help="with --classifier: tokens per review")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.new_tokens} new tokens")
    if args.classifier:
        if not args.nsmc_test:
            parser.error("--classifier needs --nsmc_test (NSMC's ratings_test.txt)")
        classifier_accuracy(args.classifier, args.nsmc_test, args.max_length)
        return

    if args.model is None:
        for cell in args.cells:
            measure(cell, build(cell, args), args)
        return
    model = AutoModelForCausalLM.from_pretrained(args.model).eval()
    quantized = measure(args.model, model, args)
    if args.text:
        tokenizer = AutoTokenizer.from_pretrained(args.model)
        # One document per line, each ended by eos: the reading pretraining uses.
        documents = load_text_files(args.text)["train"]
        ids = corpus_token_ids(tokenize_corpus(documents, tokenizer, append_eos=True))[: args.max_tokens]
        fp32, int8 = perplexity(model, ids, args.chunk), perplexity(quantized, ids, args.chunk)
        print(
            f"perplexity on {ids.numel()} tokens of {args.text}: fp32 {fp32:.2f}, int8 {int8:.2f} ({int8 / fp32 - 1:+.1%})"
        )


if __name__ == "__main__":
    main()
