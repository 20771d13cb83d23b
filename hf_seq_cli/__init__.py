"""The `hf-seq` command line: each subcommand parses its arguments and calls one library function.

This package stands beside `hf_seq` rather than inside it because importing `hf_seq` registers every model family
with transformers' Auto classes, which imports torch and transformers' model code (about 4 s), and Python runs a
package's `__init__` before any module in it. Here nothing is imported until a command needs it: `hf-seq --help`
imports nothing, `hf-seq train-tokenizer` only `tokenizer_training` (tokenizers and transformers' tokenizer
classes, no torch), and the training commands import `hf_seq` when they run.
"""

import math
import sys
from dataclasses import asdict, dataclass, field


USAGE = """usage: hf-seq <command> [options]

commands:
{commands}

Run `hf-seq <command> --help` for a command's options."""


@dataclass
class RemoteCodeArguments:
    trust_remote_code: bool = field(
        default=False,
        metadata={
            "help": "Load a model folder whose model_type is neither hf-seq's nor transformers' own by running the "
            "Python files it holds. Only for folders you trust: that code runs with your permissions."
        },
    )


class CommandError(SystemExit):
    """How a command stops on bad input: `hf-seq <command>: error: <message>` on stderr, exit status 1."""

    def __init__(self, command, message):
        super().__init__(f"hf-seq {command}: error: {message}")


def _parse(command, description, dataclass_types, argv, default_output_dir=None, output_dir_required=False):
    """Parse `argv` into the `dataclass_types` with HfArgumentParser (so every TrainingArguments flag works).

    An unknown flag is an argparse usage error (exit status 2), as for any command; a value the dataclasses refuse
    in their own checks (TrainingArguments validates combinations of flags) is a one-line `CommandError`.
    `output_dir_required`: TrainingArguments' own default (./trainer_output) is not used, so a command that saves
    a model never writes into the working folder unasked.
    """
    from transformers import HfArgumentParser

    parser = HfArgumentParser(dataclass_types, prog=f"hf-seq {command}", description=description)
    gives_output_dir = any(arg.split("=")[0] in ("--output_dir", "--output-dir") for arg in argv)
    if output_dir_required and not gives_output_dir and not any(arg in ("-h", "--help") for arg in argv):
        parser.error("the following arguments are required: --output_dir (the folder the model is saved to)")
    if default_output_dir is not None and not gives_output_dir:
        argv = [*argv, "--output_dir", default_output_dir]
    try:
        *parsed, unknown = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
    except (ValueError, OSError) as error:
        raise CommandError(command, error) from None
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return parsed


def _is_main_process():
    import os

    return int(os.environ.get("RANK", "0")) == 0


def _json_ready(command, name, value):
    """`value` with every non-finite float replaced by None (JSON has no NaN or Infinity), warning for each on stderr.

    Python's json module would print NaN/Infinity, which JSON parsers reject, so one bad figure would make the
    whole line unreadable to whatever consumes it.
    """
    if isinstance(value, dict):
        return {key: _json_ready(command, f"{name}.{key}" if name else key, item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_ready(command, f"{name}[{index}]", item) for index, item in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        print(
            f"hf-seq {command}: warning: {name} is {value} (not a finite number), printed as null: the model's "
            "outputs are not finite (its weights may be corrupt, or training diverged)",
            file=sys.stderr,
        )
        return None
    return value


def _print_metrics(command, metrics):
    import json

    print(json.dumps(_json_ready(command, "", metrics), allow_nan=False))


def pretrain(argv):
    """Pretrain a causal LM (LSTM/GRU/RNN with TBPTT, or Trainer on blocks) on a text file; reports perplexity."""
    from transformers import TrainingArguments

    from hf_seq.training import PretrainArguments
    from hf_seq.training import pretrain as run_pretrain

    args, training_args, remote_code = _parse(
        "pretrain",
        pretrain.__doc__,
        (PretrainArguments, TrainingArguments, RemoteCodeArguments),
        argv,
        output_dir_required=True,
    )
    try:
        run = run_pretrain(training_args, **args.as_keywords(), **asdict(remote_code))
    except (ValueError, OSError) as error:
        raise CommandError("pretrain", error) from None
    if _is_main_process():
        _print_metrics(
            "pretrain", {key: value for key, value in run.metrics.items() if isinstance(value, (int, float))}
        )


def finetune(argv):
    """Fine-tune a classifier (NSMC sentiment by default) with Trainer; reports test accuracy."""
    from transformers import TrainingArguments

    from hf_seq.training import FinetuneArguments
    from hf_seq.training import finetune as run_finetune

    args, training_args, remote_code = _parse(
        "finetune",
        finetune.__doc__,
        (FinetuneArguments, TrainingArguments, RemoteCodeArguments),
        argv,
        output_dir_required=True,
    )
    args.tokenizer = args.tokenizer or args.model_name_or_path
    if args.tokenizer is None:
        raise CommandError("finetune", "give --tokenizer (or --model_name_or_path, whose tokenizer is used)")
    try:
        run = run_finetune(training_args, **args.as_keywords(), **asdict(remote_code))
    except (ValueError, OSError) as error:
        raise CommandError("finetune", error) from None
    if _is_main_process():
        _print_metrics(
            "finetune", {key: value for key, value in run.metrics.items() if isinstance(value, (int, float))}
        )


def evaluate(argv):
    """Evaluate a saved model on an NSMC-format file (accuracy) or a text file (perplexity); last line is JSON.

    Several `--model` classifiers are evaluated as one ensemble (their class probabilities averaged).
    """
    import shutil
    import tempfile

    from transformers import TrainingArguments

    from hf_seq.training import EvaluateArguments, evaluate_ensemble, evaluate_model

    scratch_dir = tempfile.mkdtemp(prefix="hf-seq-evaluate-")
    try:
        args, remote_code, training_args = _parse(
            "evaluate",
            evaluate.__doc__,
            (EvaluateArguments, RemoteCodeArguments, TrainingArguments),
            argv,
            default_output_dir=scratch_dir,
        )
        if len(args.model) > 1:
            metrics = evaluate_ensemble(
                args.model,
                args.test_file,
                training_args=training_args,
                max_length=args.max_length,
                subword_samples=args.subword_samples,
                subword_dropout=args.subword_dropout,
                trust_remote_code=remote_code.trust_remote_code,
            )
        else:
            metrics = evaluate_model(
                args.model[0],
                args.test_file,
                training_args=training_args,
                max_length=args.max_length,
                block_size=args.block_size,
                bptt=args.bptt,
                stateful=args.stateful,
                subword_samples=args.subword_samples,
                subword_dropout=args.subword_dropout,
                trust_remote_code=remote_code.trust_remote_code,
            )
    except (ValueError, OSError) as error:
        raise CommandError("evaluate", error) from None
    finally:
        shutil.rmtree(scratch_dir, ignore_errors=True)
    if _is_main_process():
        _print_metrics("evaluate", metrics)


def generate(argv):
    """Generate from a saved causal LM (continuing prompts) or seq2seq model (from sources), one per line."""
    from hf_seq.training import GenerateArguments, generate_text

    args, remote_code = _parse("generate", generate.__doc__, (GenerateArguments, RemoteCodeArguments), argv)
    try:
        texts = generate_text(**args.as_keywords(), **asdict(remote_code))
    except (ValueError, OSError) as error:
        raise CommandError("generate", error) from None
    for text in texts:
        # One result per line, even when a sampled byte-level token is a line break (\n, \x1c, \u2028, ...).
        print(" ".join(text.splitlines()))


def demo(argv):
    """Tokenizer, LSTM LM, NSMC classifier, generated reviews and a model card from the shipped samples (minutes)."""
    from hf_seq.training import DemoArguments, run_demo

    (args,) = _parse("demo", demo.__doc__, (DemoArguments,), argv)
    try:
        run_demo(**asdict(args))
    except (ValueError, OSError) as error:
        raise CommandError("demo", error) from None


def train_tokenizer(argv):
    """Train a BPE (or char/word baseline) tokenizer on text files and save it for AutoTokenizer."""
    import argparse

    from tokenizer_training import ALGORITHMS, NORMALIZATIONS
    from tokenizer_training import train_tokenizer as train

    # Each flag's dest is the parameter of `tokenizer_training.train_tokenizer` it sets.
    parser = argparse.ArgumentParser(prog="hf-seq train-tokenizer", description=train_tokenizer.__doc__)
    parser.add_argument(
        "--train_files",
        dest="files",
        metavar="TRAIN_FILES",
        nargs="+",
        required=True,
        help="UTF-8 text files, one document per line",
    )
    parser.add_argument("--text_column", help="read this column of TSV (.tsv/.txt), CSV, JSON(L) or Parquet files")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--algorithm", choices=ALGORITHMS, default="bpe")
    parser.add_argument("--vocab_size", type=int, default=16000)
    parser.add_argument("--min_frequency", type=int, default=2)
    parser.add_argument("--normalization", choices=NORMALIZATIONS, default="nfc")
    parser.add_argument("--limit_alphabet", type=int, help="bpe: keep only the N most frequent characters")
    parser.add_argument("--cls_token", help="add a cls token (id after eos), e.g. '<cls>'")
    parser.add_argument("--mask_token", help="add a mask token, e.g. '<mask>'")
    parser.add_argument("--add_eos_token", action="store_true", help="append eos to every encoded text")
    parser.add_argument(
        "--no_bos_token",
        dest="add_bos_token",
        action="store_false",
        help="do not prepend bos to every encoded text",
    )
    parser.add_argument("--model_max_length", type=int)
    parser.add_argument("--padding_side", choices=("right", "left"), default="right")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    args = parser.parse_args(argv)
    try:
        tokenizer = train(**vars(args), show_progress=True)
    except (ValueError, OSError) as error:
        raise CommandError("train-tokenizer", error) from None
    print(f"Saved a {args.algorithm} tokenizer with {len(tokenizer)} tokens to {args.output_dir}")


def push(argv):
    """Push a saved model (weights, tokenizer, code, model card) to the Hugging Face Hub in one commit."""
    import argparse

    from hf_seq.hub import PushError, push_model

    parser = argparse.ArgumentParser(
        prog="hf-seq push",
        description=push.__doc__,
        epilog="The token is read from HF_TOKEN or `hf auth login` (never from the command line, where it would "
        "be visible to other users and kept in the shell history); HF_ENDPOINT picks another Hub.",
    )
    # Each flag's dest is the parameter of `hf_seq.hub.push_model` it sets.
    parser.add_argument(
        "--model",
        dest="model_dir",
        metavar="MODEL",
        required=True,
        help="folder written by save_pretrained (and the training run)",
    )
    parser.add_argument("--repo_id", required=True, help="namespace/name on the Hub")
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--revision", help="branch to push to (created from main if missing); default main")
    parser.add_argument("--license", help="license id for the card, e.g. apache-2.0 (default: run_info.json's)")
    parser.add_argument("--language", help="language code for the card, e.g. ko (default: from the run data)")
    parser.add_argument("--commit_message")
    parser.add_argument("--dry_run", action="store_true", help="print the card and the files, push nothing")
    args = parser.parse_args(argv)
    try:
        result = push_model(**vars(args))
    except (PushError, ValueError, OSError) as error:
        raise CommandError("push", error) from None
    if args.dry_run:
        print(result.card)
        print(f"\nWould push to {result.repo_id} (branch {result.revision}): {', '.join(result.files)}")
        if result.skipped:
            print(f"Left out: {'; '.join(result.skipped)}")
        return 0
    print(f"Pushed {len(result.files)} files to {result.repo_id} (branch {result.revision}): {result.commit_url}")
    return 0


def _run_adapter(command, adapter, argv):
    """Run a library module's own argument parser and function; a bad input ends as one `error:` line."""
    try:
        adapter(argv)
    except (ValueError, OSError) as error:
        raise CommandError(command, error) from None


def train_word2vec(argv):
    """Train word2vec (CBOW or SkipGram) vectors on a text file with one of our tokenizers."""
    from hf_seq.word2vec import train_word2vec_cli

    _run_adapter("train-word2vec", train_word2vec_cli, argv)


def inspect(argv):
    """Figures (PNG) and their numbers (JSON): gradients over time, states and gates, interpretable cells, attention."""
    from hf_seq.inspection import inspect_cli

    _run_adapter("inspect", inspect_cli, argv)


def train_seq2seq(argv):
    """Train a recurrent encoder-decoder with attention on a TSV/JSONL of source/target pairs (Seq2SeqTrainer)."""
    from hf_seq.seq2seq import train_seq2seq_cli

    _run_adapter("train-seq2seq", train_seq2seq_cli, argv)


def attention_map(argv):
    """Save the cross-attention heatmap (source x output tokens) of a seq2seq model for one input as a PNG."""
    from hf_seq.seq2seq import attention_map_cli

    _run_adapter("attention-map", attention_map_cli, argv)


def predict(argv):
    """Batch inference with saved models (classes, tags or generated text) on a text, TSV or JSONL file."""
    from .predict import predict as predict_cli

    _run_adapter("predict", predict_cli, argv)


def export_onnx(argv):
    """Export a saved model to ONNX (recurrent state as explicit inputs/outputs) and check it in onnxruntime."""
    from .predict import export_onnx as export_onnx_cli

    _run_adapter("export-onnx", export_onnx_cli, argv)


def space(argv):
    """Restore word spacing in Korean text with a spacing tagger or seq2seq model, one text per line."""
    from hf_seq.spacing.cli import space as space_cli

    _run_adapter("space", space_cli, argv)


def train_spacing(argv):
    """Train a character spacing tagger (or a seq2seq spacer) on spaced text, selecting on a validation file."""
    from hf_seq.spacing.cli import train_spacing as train_spacing_cli

    _run_adapter("train-spacing", train_spacing_cli, argv)


# Subcommand name -> function taking the remaining argv. Each function is a thin wrapper around the library.
COMMANDS = {
    "demo": demo,
    "pretrain": pretrain,
    "finetune": finetune,
    "evaluate": evaluate,
    "generate": generate,
    "train-tokenizer": train_tokenizer,
    "push": push,
    "train-seq2seq": train_seq2seq,
    "attention-map": attention_map,
    "train-word2vec": train_word2vec,
    "inspect": inspect,
    "predict": predict,
    "export-onnx": export_onnx,
    "space": space,
    "train-spacing": train_spacing,
}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    listing = "\n".join(f"  {name:<16}{(fn.__doc__ or '').strip().splitlines()[0]}" for name, fn in COMMANDS.items())
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE.format(commands=listing))
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"hf-seq: unknown command {command!r}\n\n" + USAGE.format(commands=listing), file=sys.stderr)
        return 2
    return COMMANDS[command](rest) or 0
