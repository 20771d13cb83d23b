"""onnxruntime against PyTorch on the same weights, in one run: a recurrent LM's cached decode step and a
classifier's batch throughput.

For each recurrent LM (LSTM and GRU, 2 layers of 512, vocabulary 16000, by default) the graph of
`hf_seq.onnx_export.export_model` runs a greedy decode loop in onnxruntime (one token and the previous state per
call) beside the model's own step loop (`model(token, cache=...)`); for a classifier (the NSMC BiGRU's shape:
vocabulary 8000, embeddings 256, one bidirectional GRU layer of 256, max pooling, or a saved one with
`--classifier`) both runtimes classify the same padded batches of reviews. Both run on `--threads` threads, the
repeats interleaved so load drift hits both alike; figures are medians.

Claims: the same greedy tokens and the same class scores (atol 1e-4) from both runtimes; the printed ratio is
onnxruntime's speed over PyTorch's (above 1: onnxruntime faster). It measures which runtime to deploy on; no goal.

    python bench/bench_onnx.py [--threads 1] [--cells LSTM GRU] [--repeats 5]
    python bench/bench_onnx.py --classifier DIR --nsmc_test ratings_test.txt [--max_reviews 2000]
"""

import argparse
import os
import statistics
import tempfile
import time

import numpy as np
import torch
from bench_recurrent_decode import build, raw_loop  # a sibling script: bench/ is on the path when this one runs
from transformers import AutoModelForSequenceClassification, AutoTokenizer

import hf_seq
from hf_seq.onnx_export import export_model, onnx_session, run_onnx
from hf_seq.prediction import pad_batch


def onnx_decode(session, prompt, new_tokens):
    """The same loop in onnxruntime: the graph takes one token and the state of the step before."""
    prompt = prompt.numpy()
    outputs = run_onnx(session, prompt, np.ones_like(prompt))
    token = outputs["logits"][:, -1].argmax(-1)[:, None]
    tokens, step_mask = [token], np.ones((prompt.shape[0], 1), dtype=np.int64)
    start = time.perf_counter()
    for _ in range(new_tokens - 1):
        state = {name.replace("present_", "past_"): value for name, value in outputs.items() if name != "logits"}
        outputs = run_onnx(session, token, step_mask, state)
        token = outputs["logits"][:, -1].argmax(-1)[:, None]
        tokens.append(token)
    return np.concatenate(tokens, 1), (time.perf_counter() - start) / (new_tokens - 1)


def compare_decode(cell, args, folder):
    model = build(cell, args)
    onnx_path = os.path.join(folder, f"{cell.lower()}-lm.onnx")
    export_model(model, "text-generation", onnx_path)
    session = onnx_session(onnx_path, num_threads=args.threads)
    prompt = torch.randint(4, args.vocab_size, (1, 8), generator=torch.Generator().manual_seed(1))
    raw_loop(model, prompt, 8), onnx_decode(session, prompt, 8)  # warm-up
    times = {"pytorch": [], "onnxruntime": []}
    same_tokens = True
    for _ in range(args.repeats):
        pytorch_tokens, _, seconds = raw_loop(model, prompt, args.new_tokens)  # the model's own cached step loop
        times["pytorch"].append(seconds)
        onnx_tokens, seconds = onnx_decode(session, prompt, args.new_tokens)
        times["onnxruntime"].append(seconds)
        same_tokens &= bool(np.array_equal(pytorch_tokens.numpy(), onnx_tokens))
    pytorch_step, onnx_step = (statistics.median(times[key]) for key in ("pytorch", "onnxruntime"))
    print(
        f"{cell} LM decode step ({args.num_layers}x{args.hidden_size}, vocab {args.vocab_size}, batch 1): "
        f"PyTorch {pytorch_step * 1e3:.2f} ms, onnxruntime {onnx_step * 1e3:.2f} ms -> onnxruntime "
        f"{pytorch_step / onnx_step:.2f}x PyTorch's speed; same {args.new_tokens} greedy tokens: {same_tokens}"
    )


def synthetic_classifier():
    torch.manual_seed(0)
    config = hf_seq.GRUConfig(
        vocab_size=8000, embedding_size=256, hidden_size=256, num_hidden_layers=1, bidirectional=True, pooling="max"
    )
    return AutoModelForSequenceClassification.from_config(config).eval()


def review_batches(args, config):
    """Padded (input_ids, attention_mask) batches: NSMC reviews through the classifier's tokenizer, or random ids
    with NSMC-like lengths (5-80 tokens)."""
    if args.nsmc_test:
        tokenizer = AutoTokenizer.from_pretrained(args.classifier)
        with open(args.nsmc_test, encoding="utf-8") as file:
            next(file)
            texts = [line.split("\t")[1] for line in file][: args.max_reviews]
        sequences = [
            ids or [tokenizer.unk_token_id]
            for ids in tokenizer(texts, truncation=True, max_length=80, add_special_tokens=True)["input_ids"]
        ]
    else:
        generator = torch.Generator().manual_seed(2)
        lengths = torch.randint(5, 81, (args.max_reviews,), generator=generator).tolist()
        sequences = [torch.randint(4, config.vocab_size, (n,), generator=generator).tolist() for n in lengths]
    return [
        pad_batch(sequences[start : start + args.batch_size], config.pad_token_id)
        for start in range(0, len(sequences), args.batch_size)
    ]


@torch.no_grad()
def compare_classification(args, folder):
    if args.classifier:
        model = AutoModelForSequenceClassification.from_pretrained(args.classifier).eval()
    else:
        model = synthetic_classifier()
    onnx_path = os.path.join(folder, "classifier.onnx")
    export_model(model, "text-classification", onnx_path)
    session = onnx_session(onnx_path, num_threads=args.threads)
    batches = review_batches(args, model.config)
    reviews = sum(len(ids) for ids, _ in batches)

    def pytorch_pass():
        return [model(input_ids=ids, attention_mask=mask).logits.numpy() for ids, mask in batches]

    def onnx_pass():
        return [run_onnx(session, ids.numpy(), mask.numpy())["logits"] for ids, mask in batches]

    largest_difference = max(float(np.abs(a - b).max()) for a, b in zip(pytorch_pass(), onnx_pass()))  # + warm-up
    times = {"pytorch": [], "onnxruntime": []}
    for _ in range(args.repeats):
        for name, run in (("pytorch", pytorch_pass), ("onnxruntime", onnx_pass)):
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    pytorch_speed, onnx_speed = (reviews / statistics.median(times[key]) for key in ("pytorch", "onnxruntime"))
    source = args.classifier or "BiGRU 256 (vocab 8000, random weights)"
    data = f"{reviews} NSMC test reviews" if args.nsmc_test else f"{reviews} random reviews of 5-80 tokens"
    print(
        f"classifier {source}, {data}, batches of {args.batch_size}: PyTorch {pytorch_speed:.0f} reviews/s, "
        f"onnxruntime {onnx_speed:.0f} reviews/s -> {onnx_speed / pytorch_speed:.2f}x; largest logit difference "
        f"{largest_difference:.1e} (claim <= 1e-4)"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", nargs="*", default=["LSTM", "GRU"], choices=["GRU", "LSTM"])
    parser.add_argument("--vocab_size", type=int, default=16000)
    parser.add_argument("--embedding_size", type=int, default=512)
    parser.add_argument("--hidden_size", type=int, default=512)
    parser.add_argument("--num_layers", type=int, default=2)
    parser.add_argument("--new_tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--classifier", default=None, help="a saved sequence classifier (default: a random BiGRU)")
    parser.add_argument("--nsmc_test", default=None, help="with --classifier: NSMC's ratings_test.txt")
    parser.add_argument("--max_reviews", type=int, default=2048)
    parser.add_argument("--batch_size", type=int, default=64)
    args = parser.parse_args()
    if args.nsmc_test and not args.classifier:
        parser.error("--nsmc_test needs --classifier (the reviews go through its tokenizer)")
    torch.set_num_threads(args.threads)
    import onnxruntime

    print(f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, {args.threads} thread(s)")
    with tempfile.TemporaryDirectory() as folder:
        for cell in args.cells:
            compare_decode(cell, args, folder)
        compare_classification(args, folder)


if __name__ == "__main__":
    main()
