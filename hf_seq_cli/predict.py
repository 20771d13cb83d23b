"""`hf-seq predict` and `hf-seq export-onnx`: batch inference from saved model folders, and ONNX export of them.

Like the other commands, each parses its arguments and calls one library function (`hf_seq.prediction.predict`,
`hf_seq.onnx_export.export_onnx`); nothing heavy is imported until the command runs.
"""

import sys
from dataclasses import dataclass, field

from . import CommandError, RemoteCodeArguments, _parse


@dataclass
class PredictArguments:
    model: list[str] = field(
        metadata={
            "help": "Saved model folder (with its tokenizer): a sequence or token classifier, a causal LM or an "
            "encoder-decoder. Several sequence classifiers (`--model A B` or `--model A --model B`) are one "
            "ensemble: their class probabilities are averaged."
        }
    )
    input: str = field(
        metadata={
            "help": "Plain text (one text per line), TSV with a header naming its columns (e.g. NSMC's "
            "`id document label`), or JSONL (one object per line)."
        }
    )
    output: str | None = field(
        default=None,
        metadata={"help": "Output file: JSONL for .jsonl/.json, else TSV with a header. Default: standard output."},
    )
    overwrite: bool = field(default=False, metadata={"help": "Replace an existing output file."})
    text_column: str | None = field(
        default=None,
        metadata={
            "help": "Column (TSV) or key (JSONL) of the texts; default the first of document, text, sentence, "
            "source, prompt, tokens present."
        },
    )
    id_column: str | None = field(
        default=None, metadata={"help": "Column copied first into the output; default `id` when present."}
    )
    input_format: str | None = field(
        default=None,
        metadata={"choices": ["text", "tsv", "jsonl"], "help": "Read the input as this format (default: guessed)."},
    )
    columns: str | None = field(
        default=None,
        metadata={"help": "Comma-separated output columns to keep, in order, e.g. `id,label,prob_positive`."},
    )
    class_names: str | None = field(
        default=None,
        metadata={
            "help": "Comma-separated class names replacing the model's id2label in the output, e.g. "
            "`negative,positive` (columns prob_negative, prob_positive)."
        },
    )
    label_names: bool = field(
        default=False, metadata={"help": "Write the predicted class's name in `label` instead of its index."}
    )
    batch_size: int = field(default=64, metadata={"help": "Texts per batch (batched by token length)."})
    max_length: int = field(default=128, metadata={"help": "Classifiers: truncate texts to this many tokens."})
    subword_samples: int = field(
        default=0,
        metadata={
            "help": "Sequence classifiers: also average each text's class probabilities over this many "
            "BPE-dropout segmentations (test-time augmentation)."
        },
    )
    subword_dropout: float = field(default=0.1, metadata={"help": "BPE-dropout rate of those segmentations."})
    max_new_tokens: int = field(default=40, metadata={"help": "Generation: tokens to write per text."})
    num_beams: int = field(default=1, metadata={"help": "Generation: beam search with this many beams."})
    do_sample: bool = field(default=False, metadata={"help": "Generation: sample (default greedy)."})
    top_k: int = field(default=50)
    top_p: float = field(default=1.0)
    temperature: float = field(default=1.0)
    seed: int = field(default=0)
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, cuda:1... (default: a GPU if any)."})
    int8: bool = field(
        default=False,
        metadata={"help": "Run the models quantised to dynamic int8 on the CPU (faster; check accuracy first)."},
    )
    no_progress: bool = field(default=False, metadata={"help": "No progress bar on stderr."})


def _merge_repeated_flag(argv, flag):
    """`--model A --model B` as `--model A B` (HfArgumentParser keeps only the last of a repeated list flag)."""
    values, rest, index = [], [], 0
    while index < len(argv):
        argument = argv[index]
        if argument == flag:
            index += 1
            while index < len(argv) and not argv[index].startswith("--"):
                values.append(argv[index])
                index += 1
            continue
        if argument.startswith(flag + "="):
            values.append(argument.split("=", 1)[1])
        else:
            rest.append(argument)
        index += 1
    return [flag, *values, *rest] if values else rest


def _comma_list(text):
    return None if text is None else [item.strip() for item in text.split(",") if item.strip()]


def predict(argv):
    """Predict for every text of a file with saved model folders (classify, tag, continue, rewrite); TSV or JSONL."""
    from hf_seq.prediction import format_rows
    from hf_seq.prediction import predict as run_predict

    args, remote_code = _parse(
        "predict", predict.__doc__, (PredictArguments, RemoteCodeArguments), _merge_repeated_flag(argv, "--model")
    )
    try:
        result = run_predict(
            args.model,
            args.input,
            args.output,
            text_column=args.text_column,
            id_column=args.id_column,
            input_format=args.input_format,
            columns=_comma_list(args.columns),
            class_names=_comma_list(args.class_names),
            label_names=args.label_names,
            batch_size=args.batch_size,
            max_length=args.max_length,
            subword_samples=args.subword_samples,
            subword_dropout=args.subword_dropout,
            max_new_tokens=args.max_new_tokens,
            num_beams=args.num_beams,
            do_sample=args.do_sample,
            top_k=args.top_k,
            top_p=args.top_p,
            temperature=args.temperature,
            seed=args.seed,
            device=args.device,
            int8=args.int8,
            overwrite=args.overwrite,
            show_progress=not args.no_progress,
            trust_remote_code=remote_code.trust_remote_code,
        )
    except (ValueError, OSError) as error:
        raise CommandError("predict", error) from None
    if args.output is None:
        for line in format_rows(result):
            print(line)
    unit = "reviews" if result.task == "text-classification" else "texts"
    where = f" to {args.output}" if args.output else ""
    print(
        f"hf-seq predict: {result.num_texts} {unit}{where} in {result.seconds:.2f} s "
        f"({result.texts_per_second:.1f} {unit}/s)",
        file=sys.stderr,
    )


@dataclass
class ExportOnnxArguments:
    model: str = field(metadata={"help": "Saved model folder (causal LM, sequence or token classifier)."})
    output_dir: str = field(metadata={"help": "Folder for model.onnx, the tokenizer and config.json."})
    task: str | None = field(
        default=None,
        metadata={
            "choices": ["text-generation", "text-classification", "token-classification"],
            "help": "The head to export (default: the one the folder holds).",
        },
    )
    opset: int = field(default=17, metadata={"help": "ONNX opset version."})
    no_cache: bool = field(
        default=False,
        metadata={"help": "Transformer LM: export (ids, mask) -> logits, without the key/value cache inputs/outputs."},
    )
    overwrite: bool = field(default=False, metadata={"help": "Replace a non-empty output folder."})
    no_check: bool = field(
        default=False, metadata={"help": "Skip comparing onnxruntime's outputs with PyTorch's after the export."}
    )


def export_onnx(argv):
    """Export a saved model to ONNX (recurrent LMs with their state as inputs/outputs, for a step loop)."""
    from hf_seq.onnx_export import export_onnx as run_export

    args, remote_code = _parse("export-onnx", export_onnx.__doc__, (ExportOnnxArguments, RemoteCodeArguments), argv)
    try:
        export = run_export(
            args.model,
            args.output_dir,
            task=args.task,
            opset=args.opset,
            with_cache=not args.no_cache,
            overwrite=args.overwrite,
            check=not args.no_check,
            trust_remote_code=remote_code.trust_remote_code,
        )
    except (ValueError, OSError, ImportError) as error:
        raise CommandError("export-onnx", error) from None
    checked = "" if export.max_difference is None else f"; onnxruntime matches PyTorch to {export.max_difference:.1e}"
    print(f"Exported a {export.task} model to {export.onnx_path} (inputs: {', '.join(export.input_names)}){checked}")
