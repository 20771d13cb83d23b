"""Benchmark: tokenizer training on NSMC train documents (150k Korean movie reviews), all figures from one run.

Claims checked:
  1. `tokenizer_training.train_tokenizer` costs no more than raw `tokenizers` BpeTrainer with the same settings
     (goal: ours / raw <= 1.1), and how it compares with sentencepiece BPE training time.
  2. Average tokens per review on NSMC test documents (held out): ours (BPE) <= sentencepiece BPE; char-level and
     word-level baselines for comparison (and the word level's <unk> rate).
  3. NFC vs NFKC: tokens per review and what NFKC changes (compatibility jamo such as ㅋ and ㅠ).
  4. Batch-encode throughput of the whole train corpus: our AutoTokenizer-loaded tokenizer vs the raw backend
     and sentencepiece.
  5. Start-up: `hf-seq train-tokenizer` in a fresh process, start-up included, costs at most 1.2x a fresh Python
     process training with raw `tokenizers` (goal <= 1.2), and `hf-seq --help` takes under 1 s. The command is run
     as `python -m hf_seq_cli`, what the installed `hf-seq` script runs once pyproject.toml points it there; the
     installed script is timed too.

Usage:
  .venv/bin/python bench/bench_tokenizer.py [--data_dir DIR] [--vocab_size 16000] [--threads N] [--repeats 2]
                                            [--only_startup]
DIR defaults to $HF_SEQ_DATA, else ../shared/data next to the repository. Timings are the best of `--repeats`
interleaved runs (the machine may be shared); tokenizers and sentencepiece get the same number of threads.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path


REPOSITORY = Path(__file__).resolve().parents[1]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_data = os.environ.get("HF_SEQ_DATA", str(REPOSITORY.parent / "shared" / "data"))
    parser.add_argument("--data_dir", default=default_data, help="folder holding nsmc/ratings_{train,test}.txt")
    parser.add_argument("--vocab_size", type=int, default=16000)
    parser.add_argument("--min_frequency", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="for tokenizers and sentencepiece alike")
    parser.add_argument("--repeats", type=int, default=3, help="timed training runs per trainer (best is kept)")
    parser.add_argument("--only_startup", action="store_true", help="measure claim 5 only")
    return parser.parse_args()


ARGS = parse_args()
# tokenizers sizes its thread pool once, when first used: set it before the import.
os.environ["RAYON_NUM_THREADS"] = str(ARGS.threads)
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
sys.path.insert(0, str(REPOSITORY))

import sentencepiece as spm  # noqa: E402
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from tokenizer_training import BYTE_TOKENS, load_text_column, train_tokenizer  # noqa: E402


SPECIAL_TOKENS = ["<pad>", "<unk>", "<s>", "</s>"]


def read_documents(path):
    """The `document` column of an NSMC file (via our loader, which is not what is being timed), blanks dropped."""
    return [text for text in load_text_column([path], "document")["document"] if text.strip()]


def train_raw_tokenizers(docs_file, save_to):
    """The same pipeline and trainer settings as ours, written directly against `tokenizers`."""
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace("\u2581", " "), normalizers.Strip()]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tokenizer.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Metaspace()])
    trainer = trainers.BpeTrainer(
        vocab_size=ARGS.vocab_size,
        min_frequency=ARGS.min_frequency,
        special_tokens=SPECIAL_TOKENS + BYTE_TOKENS,
        show_progress=False,
    )
    tokenizer.train([str(docs_file)], trainer=trainer)
    tokenizer.save(str(save_to))
    return tokenizer


def train_ours(docs_file, output_dir, **overrides):
    settings = {"vocab_size": ARGS.vocab_size, "min_frequency": ARGS.min_frequency, "overwrite": True}
    return train_tokenizer(files=[docs_file], output_dir=output_dir, **{**settings, **overrides})


def train_sentencepiece(docs_file, model_prefix):
    # sentencepiece's own defaults (nmt_nfkc normalisation, character_coverage 0.9995) plus BPE, the same vocab
    # size, byte fallback and the same special-token ids as ours.
    spm.SentencePieceTrainer.train(
        input=str(docs_file),
        model_prefix=str(model_prefix),
        model_type="bpe",
        vocab_size=ARGS.vocab_size,
        byte_fallback=True,
        pad_id=0,
        unk_id=1,
        bos_id=2,
        eos_id=3,
        num_threads=ARGS.threads,
        minloglevel=2,
    )
    return spm.SentencePieceProcessor(model_file=f"{model_prefix}.model")


def timed(function, *args, **kwargs):
    """Wall-clock seconds and the result of `function(*args, **kwargs)`."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - start, result


def timed_with_cpu(function):
    """(wall seconds, CPU seconds of this process across all its threads, result): CPU time is what other jobs on a
    shared machine cannot inflate as much, so the training ratios are printed for both."""
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    result = function()
    return time.perf_counter() - start_wall, time.process_time() - start_cpu, result


# Claim 5's baseline: train_raw_tokenizers in a fresh interpreter, start-up included (argv: docs file, output file).
RAW_TRAINING_PROCESS = """
import sys
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
tokenizer = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
tokenizer.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Replace("\u2581", " "), normalizers.Strip()])
tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
tokenizer.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Metaspace()])
special_tokens = ["<pad>", "<unk>", "<s>", "</s>"] + [f"<0x{byte:02X}>" for byte in range(256)]
trainer = trainers.BpeTrainer(vocab_size=int(sys.argv[3]), min_frequency=int(sys.argv[4]),
                              special_tokens=special_tokens, show_progress=False)
tokenizer.train([sys.argv[1]], trainer=trainer)
tokenizer.save(sys.argv[2])
"""


def timed_process(command):
    """Wall-clock seconds of a command run to completion in a fresh process (its output discarded)."""
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPOSITORY)
    return time.perf_counter() - start


def measure_startup(train_path, docs_file, workdir):
    """Claim 5: the command line's cost over raw tokenizers, start-up included, and `hf-seq --help`."""
    command = [sys.executable, "-m", "hf_seq_cli"]
    settings = ["--vocab_size", str(ARGS.vocab_size), "--min_frequency", str(ARGS.min_frequency), "--overwrite"]
    processes = {
        "raw tokenizers, fresh process": [
            sys.executable,
            "-c",
            RAW_TRAINING_PROCESS,
            str(docs_file),
            str(workdir / "raw_process.json"),
            str(ARGS.vocab_size),
            str(ARGS.min_frequency),
        ],
        "hf-seq train-tokenizer": [
            *command,
            "train-tokenizer",
            "--train_files",
            str(docs_file),
            "--output_dir",
            str(workdir / "cli"),
            *settings,
        ],
        "hf-seq train-tokenizer --text_column": [
            *command,
            "train-tokenizer",
            "--train_files",
            str(train_path),
            "--text_column",
            "document",
            "--output_dir",
            str(workdir / "cli_tsv"),
            *settings,
        ],
    }
    helps = {"hf-seq --help (python -m hf_seq_cli)": [*command, "--help"]}
    installed_script = Path(sys.executable).with_name("hf-seq")
    if installed_script.is_file():
        helps[f"hf-seq --help ({installed_script})"] = [str(installed_script), "--help"]
    times = {name: [] for name in (*processes, *helps)}
    raw_in_process = []
    for repeat in range(ARGS.repeats):
        order = list(processes) if repeat % 2 == 0 else list(reversed(processes))
        for name in order:
            times[name].append(timed_process(processes[name]))
        seconds, _ = timed(train_raw_tokenizers, docs_file, workdir / "raw_in_process.json")
        raw_in_process.append(seconds)
        for name, help_command in helps.items():
            times[name].append(timed_process(help_command))
    best = {name: min(values) for name, values in times.items()}
    raw_process, cli = best["raw tokenizers, fresh process"], best["hf-seq train-tokenizer"]
    same_vocab = (
        Tokenizer.from_file(str(workdir / "raw_process.json")).get_vocab()
        == Tokenizer.from_file(str(workdir / "cli" / "tokenizer.json")).get_vocab()
    )
    print("\n== Start-up: the command line vs raw tokenizers (wall seconds, best of %d) ==" % ARGS.repeats)
    for name, values in times.items():
        print(f"{name:>52}: {best[name]:6.2f} s   (runs: {', '.join(f'{value:.2f}' for value in values)})")
    print(f"{'raw tokenizers, train() call only':>52}: {min(raw_in_process):6.2f} s")
    print(f"hf-seq train-tokenizer / raw tokenizers process  = {cli / raw_process:.3f}  (goal <= 1.2)")
    print(f"hf-seq train-tokenizer / raw train() call only   = {cli / min(raw_in_process):.3f}")
    print(
        f"hf-seq train-tokenizer --text_column / raw process = "
        f"{best['hf-seq train-tokenizer --text_column'] / raw_process:.3f}  (reads the TSV with datasets)"
    )
    print(f"hf-seq --help: {best['hf-seq --help (python -m hf_seq_cli)']:.3f} s  (goal < 1 s)")
    print(f"the command and raw tokenizers learned the same vocabulary: {same_vocab}")


def tokens_per_review(tokenizer, documents):
    encoded = tokenizer(documents, add_special_tokens=False)["input_ids"]
    return sum(map(len, encoded)) / len(documents), encoded


def main():
    nsmc = Path(ARGS.data_dir) / "nsmc"
    train_path, test_path = nsmc / "ratings_train.txt", nsmc / "ratings_test.txt"
    for path in (train_path, test_path):
        if not path.is_file():
            raise SystemExit(f"NSMC file not found: {path} (set --data_dir or HF_SEQ_DATA)")
    train_documents = read_documents(train_path)
    test_documents = read_documents(test_path)
    print(f"NSMC train: {len(train_documents)} non-empty documents; test: {len(test_documents)}")
    print(f"vocab_size={ARGS.vocab_size} min_frequency={ARGS.min_frequency} threads={ARGS.threads}")

    with tempfile.TemporaryDirectory(prefix="bench-tokenizer-") as workdir:
        workdir = Path(workdir)
        docs_file = workdir / "nsmc_train_documents.txt"
        docs_file.write_text("\n".join(train_documents) + "\n", encoding="utf-8")
        if ARGS.only_startup:
            measure_startup(train_path, docs_file, workdir)
            return

        # 1. Training time, interleaved so that load changes on a shared machine hit every trainer alike.
        times = {"ours": [], "raw tokenizers": [], "sentencepiece": []}
        cpu_times = {name: [] for name in times}
        trainings = {
            "raw tokenizers": lambda: train_raw_tokenizers(docs_file, workdir / "raw.json"),
            "ours": lambda: train_ours(docs_file, workdir / "ours"),
            "sentencepiece": lambda: train_sentencepiece(docs_file, workdir / "spm"),
        }
        results = {}
        for repeat in range(ARGS.repeats):
            # Alternate the order so that neither trainer always runs first (cold file cache, load spikes).
            order = list(trainings) if repeat % 2 == 0 else list(reversed(trainings))
            for name in order:
                seconds, cpu_seconds, results[name] = timed_with_cpu(trainings[name])
                times[name].append(seconds)
                cpu_times[name].append(cpu_seconds)
        raw, ours, sentencepiece = results["raw tokenizers"], results["ours"], results["sentencepiece"]
        best = {name: min(values) for name, values in times.items()}
        best_cpu = {name: min(values) for name, values in cpu_times.items()}
        seconds_from_tsv, _ = timed(
            train_tokenizer,
            files=[train_path],
            text_column="document",
            vocab_size=ARGS.vocab_size,
            min_frequency=ARGS.min_frequency,
        )
        same_vocab = raw.get_vocab() == ours.get_vocab()
        print("\n== Training time (best of %d) ==" % ARGS.repeats)
        for name, values in times.items():
            runs = ", ".join(f"{value:.2f}" for value in values)
            print(f"{name:>16}: {best[name]:6.2f} s wall, {best_cpu[name]:6.2f} s CPU   (wall runs: {runs})")
        print(f"{'ours from TSV':>16}: {seconds_from_tsv:6.2f} s   (text_column='document' of ratings_train.txt)")
        for label, other, goal in (
            ("raw tokenizers BpeTrainer", "raw tokenizers", "  (goal <= 1.1)"),
            ("sentencepiece BPE", "sentencepiece", ""),
        ):
            print(
                f"ours / {label:<25} = {best['ours'] / best[other]:.3f} wall, "
                f"{best_cpu['ours'] / best_cpu[other]:.3f} CPU{goal}"
            )
        print(f"ours from TSV / raw tokenizers    = {seconds_from_tsv / best['raw tokenizers']:.3f} wall")
        print(f"ours and raw learned the same vocabulary: {same_vocab}")

        # 2. Tokens per review on held-out documents.
        ours = AutoTokenizer.from_pretrained(workdir / "ours")
        char_level = train_ours(docs_file, workdir / "char", algorithm="char")
        word_level = train_ours(docs_file, workdir / "word", algorithm="word")
        nfkc = train_ours(docs_file, workdir / "nfkc", normalization="nfkc")
        ours_per_review, _ = tokens_per_review(ours, test_documents)
        char_per_review, _ = tokens_per_review(char_level, test_documents)
        word_per_review, word_ids = tokens_per_review(word_level, test_documents)
        nfkc_per_review, _ = tokens_per_review(nfkc, test_documents)
        spm_ids = sentencepiece.encode(test_documents)
        spm_per_review = sum(map(len, spm_ids)) / len(test_documents)
        word_unk_rate = sum(ids.count(word_level.unk_token_id) for ids in word_ids) / sum(map(len, word_ids))
        ours_ids = ours(test_documents, add_special_tokens=False)["input_ids"]
        ours_unk = sum(ids.count(ours.unk_token_id) for ids in ours_ids)
        print("\n== Tokens per review, NSMC test documents (no bos/eos) ==")
        print(f"{'ours (BPE, NFC)':>22}: {ours_per_review:6.2f}   (<unk> tokens: {ours_unk})")
        print(f"{'sentencepiece BPE':>22}: {spm_per_review:6.2f}")
        print(f"{'char-level':>22}: {char_per_review:6.2f}   (vocab {len(char_level)})")
        print(f"{'word-level':>22}: {word_per_review:6.2f}   (<unk> rate {word_unk_rate:.1%})")
        print(f"ours / sentencepiece = {ours_per_review / spm_per_review:.3f}  (goal <= 1.0)")
        normalizer = ours.backend_tokenizer.normalizer
        decoded = ours.batch_decode(ours_ids)
        round_trips = sum(
            text == normalizer.normalize_str(original) for text, original in zip(decoded, test_documents)
        )
        print(f"ours: decode(encode(review)) == normalised review for {round_trips} of {len(test_documents)} reviews")

        # 3. NFC vs NFKC.
        changed = [text for text in train_documents if unicodedata.normalize("NFKC", text) != text]
        with_jamo = [text for text in train_documents if any("\u3131" <= char <= "\u318e" for char in text)]
        changed_jamo = [text for text in changed if any("\u3131" <= char <= "\u318e" for char in text)]
        print("\n== NFC vs NFKC (NSMC train documents) ==")
        print(
            f"tokens per test review: NFC {ours_per_review:.3f}, NFKC {nfkc_per_review:.3f}"
            f"  (NFKC / NFC = {nfkc_per_review / ours_per_review:.3f})"
        )
        share = len(changed) / len(train_documents)
        print(
            f"documents NFKC changes: {len(changed)} of {len(train_documents)} ({share:.1%}); "
            f"{len(changed_jamo)} of them contain compatibility jamo"
        )
        share = len(with_jamo) / len(train_documents)
        print(f"documents with compatibility jamo (ㅋ, ㅠ, ...): {len(with_jamo)} ({share:.1%})")
        print(
            f"e.g. NFKC('ㅋㅋㅋ ㅠㅠ') = {unicodedata.normalize('NFKC', 'ㅋㅋㅋ ㅠㅠ')!r} "
            f"(U+110F/U+1172 conjoining jamo), NFKC('ㅋㅠㅠ') = {unicodedata.normalize('NFKC', 'ㅋㅠㅠ')!r}"
        )

        # 4. Batch-encode throughput over the whole train corpus (wall and CPU seconds, as for training).
        # The raw figure includes reading the ids out of the Encoding objects, which the batch call also does.
        encoders = {
            "ours (AutoTokenizer batch call)": lambda: ours(train_documents)["input_ids"],
            "raw tokenizers encode_batch+ids": lambda: [e.ids for e in raw.encode_batch(train_documents)],
            "sentencepiece encode": lambda: sentencepiece.encode(train_documents, num_threads=ARGS.threads),
        }
        count = len(train_documents)
        print("\n== Batch encode of the whole train corpus ==")
        encode_seconds = {}
        for name, encode in encoders.items():
            seconds, cpu_seconds, encoded = timed_with_cpu(encode)
            encode_seconds[name] = (seconds, cpu_seconds)
            tokens = sum(map(len, encoded))
            print(
                f"{name:>32}: {count / seconds:8.0f} reviews/s, {tokens / seconds:9.0f} tokens/s "
                f"({seconds:.2f} s wall, {cpu_seconds:.2f} s CPU)"
            )
        ours_seconds, ours_cpu = encode_seconds["ours (AutoTokenizer batch call)"]
        for name in list(encoders)[1:]:
            seconds, cpu_seconds = encode_seconds[name]
            print(f"ours throughput / {name} = {seconds / ours_seconds:.3f} wall, {cpu_seconds / ours_cpu:.3f} CPU")

        # 5. Start-up, last: the other figures do not wait for it.
        measure_startup(train_path, docs_file, workdir)


if __name__ == "__main__":
    main()
