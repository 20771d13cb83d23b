"""Claim: `hf-seq push` publishes weights, tokenizer, code and card in ONE commit, where the transformers way
(`model.push_to_hub`, `tokenizer.push_to_hub`, `ModelCard.push_to_hub`) takes three, leaving the repo with weights
but no tokenizer or card in between, and costs more requests.

Both run against the local Hub of the test suite (tests/support/hub_server.py, real HTTP on 127.0.0.1), on the same
LSTM language model folder. Printed: commits, HTTP requests, wall time, as ratios measured in this one run.

    .venv/bin/python bench/bench_push.py [--hidden_size 512] [--vocab_size 16000] [--repeats 3]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.support.hub_server import HubServer  # noqa: E402


TOKEN = "hf_bench_token"
HUB = HubServer({TOKEN: "bench"}).start()
# huggingface_hub reads these when imported: set them first.
os.environ.update(
    {
        "HF_ENDPOINT": HUB.url,
        "HF_HUB_DISABLE_XET": "1",
        "HF_HOME": tempfile.mkdtemp(),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    }
)
os.environ.pop("HF_TOKEN", None)

import torch  # noqa: E402
from tokenizers import Tokenizer, models, pre_tokenizers, trainers  # noqa: E402
from transformers import PreTrainedTokenizerFast  # noqa: E402

import hf_seq  # noqa: E402
from hf_seq.hub import push_model  # noqa: E402


def build_run(folder: Path, hidden_size: int, vocab_size: int) -> None:
    texts = (
        (REPO_ROOT / "hf_seq" / "sample_data" / "reviews_sample_train.txt").read_text(encoding="utf-8").splitlines()
    )
    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.train_from_iterator(
        texts,
        trainers.BpeTrainer(
            vocab_size=vocab_size, show_progress=False, special_tokens=["<pad>", "<unk>", "<s>", "</s>"]
        ),
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )
    torch.manual_seed(0)
    config = hf_seq.LSTMConfig(
        vocab_size=len(tokenizer), embedding_size=hidden_size, hidden_size=hidden_size, num_hidden_layers=2
    )
    hf_seq.LSTMForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def transformers_way(folder: Path, repo_id: str) -> None:
    """What a user does without hf-seq's push: three push_to_hub calls, three commits."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    AutoModelForCausalLM.from_pretrained(folder).push_to_hub(repo_id, token=TOKEN)
    AutoTokenizer.from_pretrained(folder).push_to_hub(repo_id, token=TOKEN)
    card = push_model(folder, repo_id, dry_run=True).card  # same card text, pushed on its own
    card.push_to_hub(repo_id, token=TOKEN)


def measure(name: str, push, folder: Path, repeats: int) -> dict:
    commits, requests, seconds = [], [], []
    for attempt in range(repeats):
        repo_id = f"bench/{name}-{attempt}"
        before = len(HUB.requests)
        start = time.perf_counter()
        push(folder, repo_id)
        seconds.append(time.perf_counter() - start)
        requests.append(len(HUB.requests) - before)
        repo = HUB.repo(repo_id)
        commits.append(len(repo.commits) - 1)  # minus the repo's initial commit
    return {
        "commits": commits[0],
        "requests": sorted(requests)[len(requests) // 2],
        "seconds": sorted(seconds)[len(seconds) // 2],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden_size", type=int, default=512)
    parser.add_argument("--vocab_size", type=int, default=16000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "run"
        build_run(folder, args.hidden_size, args.vocab_size)
        size_mb = (folder / "model.safetensors").stat().st_size / 1e6
        ours = measure("hf-seq", lambda f, r: push_model(f, r, token=TOKEN), folder, args.repeats)
        theirs = measure("transformers", transformers_way, folder, args.repeats)
    HUB.stop()
    print(f"model.safetensors: {size_mb:.1f} MB; median of {args.repeats} pushes each, local Hub over HTTP")
    print(f"{'':<34}{'commits':>8}{'requests':>10}{'seconds':>10}")
    print(f"{'hf-seq push (one commit)':<34}{ours['commits']:>8}{ours['requests']:>10}{ours['seconds']:>10.2f}")
    print(
        f"{'transformers push_to_hub x3':<34}{theirs['commits']:>8}{theirs['requests']:>10}{theirs['seconds']:>10.2f}"
    )
    print(
        f"ratios transformers / hf-seq: commits {theirs['commits'] / ours['commits']:.1f}x, "
        f"requests {theirs['requests'] / ours['requests']:.2f}x, time {theirs['seconds'] / ours['seconds']:.2f}x"
    )


if __name__ == "__main__":
    main()
