"""The `hf-seq` command line: each subcommand parses its arguments and calls one library function."""

import sys

USAGE = """usage: hf-seq <command> [options]

commands:
{commands}

Run `hf-seq <command> --help` for a command's options."""


def _parse_with_training_arguments(prog, description, arguments_class, argv, default_output_dir=None):
    """Parse `argv` into (arguments_class, TrainingArguments) with HfArgumentParser: every Trainer flag works."""
    from transformers import HfArgumentParser, TrainingArguments

    if default_output_dir is not None and not any(arg.split("=")[0] == "--output_dir" for arg in argv):
        argv = [*argv, "--output_dir", default_output_dir]
    parser = HfArgumentParser((arguments_class, TrainingArguments), prog=prog, description=description)
    return parser.parse_args_into_dataclasses(args=argv)


def _is_main_process():
    import os

    return int(os.environ.get("RANK", "0")) == 0


def pretrain(argv):
    """Pretrain a causal LM (LSTM/GRU/RNN with TBPTT, or Trainer on blocks) on a text file; reports perplexity."""
    import json

    from hf_seq.training import PretrainArguments
    from hf_seq.training import pretrain as run_pretrain

    args, training_args = _parse_with_training_arguments("hf-seq pretrain", pretrain.__doc__, PretrainArguments, argv)
    try:
        run = run_pretrain(
            training_args,
            args.train_file,
            args.tokenizer,
            validation_file=args.validation_file,
            model=args.model_name_or_path,
            model_type=args.model_type,
            config_overrides=args.config_overrides,
            loop=args.loop,
            block_size=args.block_size,
            bptt=args.bptt,
            streaming=args.streaming,
            dataset_name=args.dataset_name,
        )
    except (ValueError, OSError) as error:
        raise SystemExit(f"hf-seq pretrain: error: {error}") from None
    if _is_main_process():
        print(json.dumps({key: value for key, value in run.metrics.items() if isinstance(value, (int, float))}))


def finetune(argv):
    """Fine-tune a classifier (NSMC sentiment by default) with Trainer; reports test accuracy."""
    import json

    from hf_seq.training import FinetuneArguments
    from hf_seq.training import finetune as run_finetune

    args, training_args = _parse_with_training_arguments("hf-seq finetune", finetune.__doc__, FinetuneArguments, argv)
    tokenizer = args.tokenizer or args.model_name_or_path
    if tokenizer is None:
        raise SystemExit("hf-seq finetune: error: give --tokenizer (or --model_name_or_path, whose tokenizer is used)")
    try:
        run = run_finetune(
            training_args,
            tokenizer,
            model=args.model_name_or_path,
            dataset=args.data,
            task=args.task,
            text_column=args.text_column,
            label_column=args.label_column,
            eval_split=args.eval_split,
            max_length=args.max_length,
            model_type=args.model_type,
            config_overrides=args.config_overrides,
            dataset_name=args.dataset_name,
            subword_dropout=args.subword_dropout,
            layerwise_lr_decay=args.layerwise_lr_decay,
            gradual_unfreezing=args.gradual_unfreezing,
            weight_averaging=args.weight_averaging,
        )
    except (ValueError, OSError) as error:
        raise SystemExit(f"hf-seq finetune: error: {error}") from None
    if _is_main_process():
        print(json.dumps({key: value for key, value in run.metrics.items() if isinstance(value, (int, float))}))


def evaluate(argv):
    """Evaluate a saved model on an NSMC-format file (accuracy) or a text file (perplexity); last line is JSON.

    Several `--model` classifiers are evaluated as one ensemble (their class probabilities averaged).
    """
    import json
    import shutil
    import tempfile

    from hf_seq.training import EvaluateArguments, evaluate_ensemble, evaluate_model

    scratch_dir = tempfile.mkdtemp(prefix="hf-seq-evaluate-")
    try:
        args, training_args = _parse_with_training_arguments(
            "hf-seq evaluate", evaluate.__doc__, EvaluateArguments, argv, default_output_dir=scratch_dir
        )
        if len(args.model) > 1:
            metrics = evaluate_ensemble(args.model, args.test_file, training_args=training_args,
                                        max_length=args.max_length, subword_samples=args.subword_samples,
                                        subword_dropout=args.subword_dropout)
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
            )
    except (ValueError, OSError) as error:
        raise SystemExit(f"hf-seq evaluate: error: {error}") from None
    finally:
        shutil.rmtree(scratch_dir, ignore_errors=True)
    if _is_main_process():
        print(json.dumps(metrics))


def generate(argv):
    """Generate text from a saved causal LM, one result per line."""
    from transformers import HfArgumentParser

    from hf_seq.training import GenerateArguments, generate_text

    parser = HfArgumentParser(GenerateArguments, prog="hf-seq generate", description=generate.__doc__)
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    try:
        texts = generate_text(
            args.model,
            args.prompt,
            max_new_tokens=args.max_new_tokens,
            do_sample=args.do_sample,
            top_k=args.top_k,
            top_p=args.top_p,
            temperature=args.temperature,
            num_return_sequences=args.num_return_sequences,
            seed=args.seed,
        )
    except (ValueError, OSError) as error:
        raise SystemExit(f"hf-seq generate: error: {error}") from None
    for text in texts:
        # One result per line, even when a sampled byte-level token is a line break (\n, \x1c, \u2028, ...).
        print(" ".join(text.splitlines()))


def demo(argv):
    """Tokenizer, LSTM LM, NSMC classifier, generated reviews and a model card from the shipped samples (minutes)."""
    from transformers import HfArgumentParser

    from hf_seq.training import DemoArguments, run_demo

    parser = HfArgumentParser(DemoArguments, prog="hf-seq demo", description=demo.__doc__)
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    try:
        run_demo(
            output_dir=args.output_dir,
            vocab_size=args.vocab_size,
            lm_epochs=args.lm_epochs,
            classifier_epochs=args.classifier_epochs,
            hidden_size=args.hidden_size,
            embedding_size=args.embedding_size,
            seed=args.seed,
            overwrite=args.overwrite,
            num_threads=args.num_threads,
        )
    except (ValueError, OSError) as error:
        raise SystemExit(f"hf-seq demo: error: {error}") from None


def train_tokenizer(argv):
    """Train a BPE (or char/word baseline) tokenizer on text files and save it for AutoTokenizer."""
    import argparse

    from tokenizer_training import ALGORITHMS, NORMALIZATIONS
    from tokenizer_training import train_tokenizer as train

    parser = argparse.ArgumentParser(prog="hf-seq train-tokenizer", description=train_tokenizer.__doc__)
    parser.add_argument("--train_files", nargs="+", required=True, help="UTF-8 text files, one document per line")
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
    parser.add_argument("--no_bos_token", action="store_true", help="do not prepend bos to every encoded text")
    parser.add_argument("--model_max_length", type=int)
    parser.add_argument("--padding_side", choices=("right", "left"), default="right")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    args = parser.parse_args(argv)
    try:
        tokenizer = train(
            files=args.train_files,
            text_column=args.text_column,
            output_dir=args.output_dir,
            algorithm=args.algorithm,
            vocab_size=args.vocab_size,
            min_frequency=args.min_frequency,
            normalization=args.normalization,
            limit_alphabet=args.limit_alphabet,
            cls_token=args.cls_token,
            mask_token=args.mask_token,
            add_bos_token=not args.no_bos_token,
            add_eos_token=args.add_eos_token,
            model_max_length=args.model_max_length,
            padding_side=args.padding_side,
            overwrite=args.overwrite,
            show_progress=True,
        )
    except (ValueError, OSError) as error:
        raise SystemExit(f"hf-seq train-tokenizer: error: {error}") from None
    print(f"Saved a {args.algorithm} tokenizer with {len(tokenizer)} tokens to {args.output_dir}")


def push(argv):
    """Push a saved model (weights, tokenizer, code, model card) to the Hugging Face Hub in one commit."""
    import argparse

    from hf_seq.hub import PushError, push_model

    parser = argparse.ArgumentParser(
        prog="hf-seq push", description=push.__doc__,
        epilog="The token is read from HF_TOKEN or `hf auth login` (never from the command line, where it would "
        "be visible to other users and kept in the shell history); HF_ENDPOINT picks another Hub.",
    )
    parser.add_argument("--model", required=True, help="folder written by save_pretrained (and the training run)")
    parser.add_argument("--repo_id", required=True, help="namespace/name on the Hub")
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--revision", help="branch to push to (created from main if missing); default main")
    parser.add_argument("--license", help="license id for the card, e.g. apache-2.0 (default: run_info.json's)")
    parser.add_argument("--language", help="language code for the card, e.g. ko (default: from the run data)")
    parser.add_argument("--commit_message")
    parser.add_argument("--dry_run", action="store_true", help="print the card and the files, push nothing")
    args = parser.parse_args(argv)
    try:
        result = push_model(
            args.model,
            args.repo_id,
            private=args.private,
            revision=args.revision,
            license=args.license,
            language=args.language,
            commit_message=args.commit_message,
            dry_run=args.dry_run,
        )
    except (PushError, ValueError, OSError) as error:
        raise SystemExit(f"hf-seq push: error: {error}") from None
    if args.dry_run:
        print(result.card)
        print(f"\nWould push to {result.repo_id} (branch {result.revision}): {', '.join(result.files)}")
        if result.skipped:
            print(f"Left out: {'; '.join(result.skipped)}")
        return 0
    print(f"Pushed {len(result.files)} files to {result.repo_id} (branch {result.revision}): {result.commit_url}")
    return 0


# Subcommand name -> function taking the remaining argv. Each function is a thin wrapper around the library.
COMMANDS = {
    "demo": demo,
    "pretrain": pretrain,
    "finetune": finetune,
    "evaluate": evaluate,
    "generate": generate,
    "train-tokenizer": train_tokenizer,
    "push": push,
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


if __name__ == "__main__":
    sys.exit(main())
