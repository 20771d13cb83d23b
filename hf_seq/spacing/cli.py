"""Command-line adapters: `hf-seq space` (restore spaces, one text per line) and `hf-seq train-spacing` (train a
spacing tagger on a file of spaced texts). Each parses its arguments and calls one library function."""

import os
import sys
from dataclasses import dataclass, field

from hf_seq_cli import CommandError, RemoteCodeArguments, _parse


@dataclass
class SpaceArguments:
    model: str = field(metadata={"help": "a spacing model folder (train-spacing, or a seq2seq spacing model)"})
    input: str | None = field(default=None, metadata={"help": "a UTF-8 file, one text per line (default: stdin)"})
    output: str | None = field(default=None, metadata={"help": "the file to write (default: stdout)"})
    batch_size: int = field(default=64, metadata={"help": "texts per forward pass"})
    num_beams: int = field(default=1, metadata={"help": "seq2seq models: beam width (1: greedy)"})
    overwrite: bool = field(default=False, metadata={"help": "replace --output if it exists"})
    num_threads: int | None = field(default=None, metadata={"help": "CPU threads torch may use (default: torch's)"})
    int8: bool = field(default=False, metadata={"help": "quantise the model to dynamic int8 (CPU): faster, same F1"})
    decision: str = field(
        default="argmax",
        metadata={"help": "taggers: argmax (each gap on its own) or expected_f1 (per text, the best expected F1)"},
    )


def space(argv):
    """Restore the spaces of texts, one per line (file or stdin), with a spacing model; characters never change."""
    (args, remote_code) = _parse("space", space.__doc__, (SpaceArguments, RemoteCodeArguments), argv)
    texts = _read_lines("space", args.input)
    _check_output_path("space", args.output, args.overwrite, args.input)
    if args.num_threads is not None:
        if args.num_threads < 1:
            raise CommandError("space", f"--num_threads must be a positive integer, got {args.num_threads}")
        import torch

        torch.set_num_threads(args.num_threads)
    from .restore import load_spacing_model, restore_spacing

    try:
        model = load_spacing_model(args.model, trust_remote_code=remote_code.trust_remote_code, int8=args.int8)
        restored = restore_spacing(
            texts,
            model=model,
            batch_size=args.batch_size,
            num_beams=args.num_beams,
            show_progress=args.input is not None,
            decision=args.decision,
        )
    except (ValueError, OSError) as error:
        raise CommandError("space", error) from None
    _write_lines(args.output, restored)


def _read_lines(command, path):
    """The lines of `path` (or stdin), without their line ends; an error naming the problem for a bad file."""
    if path is not None and not os.path.isfile(path):
        raise CommandError(command, f"--input {path} is not a file: give a UTF-8 text file, one text per line")
    try:
        if path is None:
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as file:
                data = file.read()
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        where = path or "stdin"
        raise CommandError(command, f"{where} is not UTF-8 (byte {error.start}): convert it to UTF-8") from None
    # Lines end at \n (and \r\n) only, so a line holding another Unicode line separator stays one text.
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def _check_output_path(command, path, overwrite, input_path):
    if path is None:
        return
    if input_path is not None and os.path.exists(path) and os.path.samefile(path, input_path):
        raise CommandError(command, f"--output {path} is the input file: write to another file")
    if os.path.isdir(path):
        raise CommandError(command, f"--output {path} is a folder: give a file path")
    if os.path.exists(path) and not overwrite:
        raise CommandError(command, f"--output {path} exists: choose another file, or pass --overwrite")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise CommandError(command, f"--output {path}: folder {parent} does not exist; create it first")


def _write_lines(path, lines):
    """One line per text, to `path` (written beside it, then renamed into place) or stdout."""
    content = "".join(f"{line}\n" for line in lines)
    if path is None:
        sys.stdout.write(content)
        sys.stdout.flush()
        return
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "w", encoding="utf-8", newline="\n") as file:
        file.write(content)
    os.replace(temporary, path)


@dataclass
class TrainSpacingArguments:
    train_file: str = field(metadata={"help": "a UTF-8 file of spaced texts, one per line"})
    output_dir: str = field(metadata={"help": "the folder the tagger is saved to"})
    validation_file: str | None = field(default=None, metadata={"help": "spaced texts to select the checkpoint on"})
    well_spaced_only: bool = field(
        default=False, metadata={"help": "keep texts of >= 3 words and <= 4.2 characters per word only"}
    )
    max_train_texts: int | None = field(default=None, metadata={"help": "the first N training texts (after filters)"})
    max_validation_texts: int | None = field(default=None, metadata={"help": "the first N validation texts"})
    architecture: str = field(default="tagger", metadata={"help": "tagger (BiGRU/BiLSTM) or seq2seq (with attention)"})
    tokenizer: str | None = field(
        default=None,
        metadata={"help": "a character tokenizer folder (e.g. a tagger's); default: trained anew (tagger)"},
    )
    model: str | None = field(default=None, metadata={"help": "tagger: a tagger folder to continue training"})
    cell: str = field(default="gru", metadata={"help": "gru or lstm"})
    attention: str = field(default="general", metadata={"help": "seq2seq: none, dot, general or concat"})
    input_feeding: bool = field(default=True, metadata={"help": "seq2seq: feed the attentional state back"})
    embedding_size: int = 64
    hidden_size: int = 128
    num_hidden_layers: int = 2
    ngram_orders: list[int] = field(
        default_factory=list,
        metadata={"help": "tagger: add hashed embeddings of the character n-grams of these orders around each gap"},
    )
    ngram_buckets: int = field(default=2**17, metadata={"help": "tagger: rows of the n-gram embedding table"})
    embedding_dropout: float | None = field(
        default=None, metadata={"help": "tagger: dropout on the embedded characters (default: the config's)"}
    )
    dropout: float | None = field(
        default=None, metadata={"help": "tagger: dropout between recurrent layers (default: the config's)"}
    )
    output_dropout: float | None = field(
        default=None, metadata={"help": "tagger: dropout before the tagging head (default: the config's)"}
    )
    token_classifier_context: str | None = field(
        default=None,
        metadata={"help": "tagger: every gap also reads this pooling of the whole text: last, mean, max or concat"},
    )
    loss_weighting: str | None = field(
        default=None,
        metadata={"help": "tagger: gap (each gap weighs alike; the default) or review (each text weighs alike)"},
    )
    teachers: list[str] = field(
        default_factory=list,
        metadata={"help": "tagger: tagger folders to distil (their mean probabilities join the labels in the loss)"},
    )
    distillation_weight: float | None = field(
        default=None, metadata={"help": "tagger, with --teachers: the teachers' share of the loss (default 0.5)"}
    )
    vocab_size: int = field(default=3000, metadata={"help": "character tokenizer size (260 ids are reserved)"})
    num_train_epochs: float = 1.0
    max_steps: int = -1
    batch_size: int = 64
    learning_rate: float = 3e-3
    eval_steps: int | None = field(default=None, metadata={"help": "evaluate every N steps (default: each epoch)"})
    seed: int = 0
    num_threads: int | None = field(default=None, metadata={"help": "CPU threads torch may use"})
    overwrite: bool = field(default=False, metadata={"help": "replace a non-empty --output_dir"})


DROPOUTS = ("embedding_dropout", "dropout", "output_dropout")
TAGGER_ONLY_OPTIONS = (
    "ngram_orders",
    *DROPOUTS,
    "token_classifier_context",
    "loss_weighting",
    "teachers",
    "distillation_weight",
)


def _dropout_overrides(args) -> dict:
    """The dropout probabilities given on the command line; the others keep the config's defaults."""
    return {name: getattr(args, name) for name in DROPOUTS if getattr(args, name) is not None}


def train_spacing(argv):
    """Train a spacing model on spaced texts: a character tagger (the checkpoint best on validation is kept) or a
    seq2seq model with attention (`--architecture seq2seq --tokenizer TAGGER_DIR`)."""
    (args,) = _parse("train-spacing", train_spacing.__doc__, (TrainSpacingArguments,), argv)
    if args.num_threads is not None:
        import torch

        torch.set_num_threads(args.num_threads)
    from .data import load_spacing_pairs
    from .seq2seq import train_spacing_seq2seq
    from .tagger import train_spacing_tagger

    if args.architecture not in ("tagger", "seq2seq"):
        raise CommandError("train-spacing", f"--architecture must be tagger or seq2seq, got {args.architecture!r}")
    tagger_options = [name for name in TAGGER_ONLY_OPTIONS if getattr(args, name) not in (None, [])]
    if args.architecture == "seq2seq" and tagger_options:
        raise CommandError(
            "train-spacing", f"--{tagger_options[0]} is a tagger option: leave it out with --architecture seq2seq"
        )
    if args.distillation_weight is not None and not args.teachers:
        raise CommandError("train-spacing", "--distillation_weight needs --teachers: give the taggers to distil")
    if args.architecture == "seq2seq" and args.tokenizer is None:
        raise CommandError(
            "train-spacing", "--architecture seq2seq needs --tokenizer (e.g. a spacing tagger's folder)"
        )
    try:
        train_pairs = load_spacing_pairs(args.train_file, args.well_spaced_only, args.max_train_texts)
        eval_pairs = None
        if args.validation_file is not None:
            eval_pairs = load_spacing_pairs(args.validation_file, args.well_spaced_only, args.max_validation_texts)
        if args.architecture == "seq2seq":
            run = train_spacing_seq2seq(
                train_pairs,
                eval_dataset=eval_pairs,
                output_dir=args.output_dir,
                tokenizer=args.tokenizer,
                config_overrides={
                    "cell": args.cell,
                    "embedding_size": args.embedding_size,
                    "hidden_size": args.hidden_size,
                    "encoder_layers": args.num_hidden_layers,
                    "decoder_layers": args.num_hidden_layers,
                    "attention": args.attention,
                    "input_feeding": args.input_feeding,
                },
                num_train_epochs=args.num_train_epochs,
                max_steps=args.max_steps,
                batch_size=args.batch_size,
                learning_rate=args.learning_rate,
                seed=args.seed,
                overwrite=args.overwrite,
            )
        else:
            run = train_spacing_tagger(
                train_pairs,
                tokenizer=args.tokenizer,
                eval_dataset=eval_pairs,
                output_dir=args.output_dir,
                model=args.model,
                cell=args.cell,
                config_overrides={
                    "embedding_size": args.embedding_size,
                    "hidden_size": args.hidden_size,
                    "num_hidden_layers": args.num_hidden_layers,
                    "ngram_orders": args.ngram_orders,
                    "ngram_buckets": args.ngram_buckets,
                    "token_classifier_context": args.token_classifier_context,
                    **_dropout_overrides(args),
                },
                vocab_size=args.vocab_size,
                num_train_epochs=args.num_train_epochs,
                max_steps=args.max_steps,
                batch_size=args.batch_size,
                learning_rate=args.learning_rate,
                loss_weighting=args.loss_weighting or "gap",
                teachers=args.teachers,
                distillation_weight=0.5 if args.distillation_weight is None else args.distillation_weight,
                eval_steps=args.eval_steps,
                seed=args.seed,
                overwrite=args.overwrite,
            )
    except (ValueError, OSError) as error:
        raise CommandError("train-spacing", error) from None
    import json

    print(json.dumps({key: value for key, value in run.metrics.items() if isinstance(value, (int, float))}))
