"""Training and inspecting the recurrent encoder–decoder (Seq2SeqRNN): data, Seq2SeqTrainer, scheduled sampling,
attention maps, and a toy task that shows what attention buys.

- `load_pairs` reads source/target pairs from a TSV or JSONL file through `datasets`.
- `train_seq2seq` trains a `Seq2SeqRNNForConditionalGeneration` on them with `Seq2SeqTrainer`
  (`predict_with_generate`: the evaluation metrics are computed from generated text); `train_seq2seq_cli(argv)` is
  its command-line adapter.
- `TeacherForcingScheduleCallback` (`hf_seq.training.callbacks`) lowers `teacher_forcing_ratio` from 1.0 to a floor.
- `save_attention_map` draws the attention weights (source tokens x output tokens) of given inputs as a PNG;
  `attention_map_cli(argv)` is its command-line adapter.
- `reversal_task` makes the toy task (reverse a sequence of ids), `sequence_accuracy` scores generated ids on it;
  `train_on_reversal` trains a model on it and `accuracy_by_length` measures what the bottleneck costs.
"""

import argparse
import json
import os
import random
from collections.abc import Sequence

import torch
from transformers import (
    AutoModelForSeq2SeqLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
)

from .models.seq2seq_rnn import Seq2SeqRNNConfig, Seq2SeqRNNForConditionalGeneration, register_seq2seq_rnn
from .training.callbacks import TeacherForcingScheduleCallback
from .training.common import TrainingRun, load_tokenizer


register_seq2seq_rnn()

# Ids the toy task reserves, as a tokenizer would: padding, (unused) unknown, decoder start, end of sequence.
TOY_PAD, TOY_START, TOY_EOS, TOY_FIRST_SYMBOL = 0, 2, 3, 4


# ---------------------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------------------


def load_pairs(path: str | os.PathLike, source_column: str = "source", target_column: str = "target"):
    """A `datasets.Dataset` of source/target text pairs from a `.tsv` (header row naming the columns; no quoting)
    or `.jsonl` / `.json` file (one object per line)."""
    from datasets import load_dataset

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"pairs file not found: {path}")
    if path.endswith((".jsonl", ".json")):
        dataset = load_dataset("json", data_files=path, split="train")
    elif path.endswith((".tsv", ".txt")):
        # quoting=3 (csv.QUOTE_NONE): text with quotes is data, as in most parallel corpora.
        dataset = load_dataset("csv", data_files=path, delimiter="\t", quoting=3, split="train")
    else:
        raise ValueError(f"{path}: expected a .tsv or .jsonl file of source/target pairs")
    missing = [column for column in (source_column, target_column) if column not in dataset.column_names]
    if missing:
        raise ValueError(f"{path} has no column {missing} (columns: {dataset.column_names})")
    return dataset.select_columns([source_column, target_column]).rename_columns(
        {source_column: "source", target_column: "target"}
    )


def tokenize_pairs(
    dataset, tokenizer: PreTrainedTokenizerBase, max_source_length: int = 128, max_target_length: int = 128
):
    """`input_ids` from the sources and `labels` from the targets, each target ending with the eos token (the
    decoder must learn to stop; the start token is added by the model when it shifts the labels)."""
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no eos token: the decoder could not learn where a target ends")

    def encode(batch):
        sources = tokenizer(batch["source"], add_special_tokens=False, truncation=True, max_length=max_source_length)
        targets = tokenizer(
            batch["target"], add_special_tokens=False, truncation=True, max_length=max_target_length - 1
        )
        return {
            "input_ids": sources["input_ids"],
            "labels": [ids + [tokenizer.eos_token_id] for ids in targets["input_ids"]],
        }

    return dataset.map(encode, batched=True, remove_columns=dataset.column_names)


class Seq2SeqCollator:
    """Pads `input_ids` (with `attention_mask`) and `labels` (with -100) of a batch of examples on the right."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        source_length = max(len(example["input_ids"]) for example in examples)
        target_length = max(len(example["labels"]) for example in examples)
        input_ids, attention_mask, labels = [], [], []
        for example in examples:
            source, target = list(example["input_ids"]), list(example["labels"])
            input_ids.append(source + [self.pad_token_id] * (source_length - len(source)))
            attention_mask.append([1] * len(source) + [0] * (source_length - len(source)))
            labels.append(target + [-100] * (target_length - len(target)))
        return {
            "input_ids": torch.tensor(input_ids),
            "attention_mask": torch.tensor(attention_mask),
            "labels": torch.tensor(labels),
        }


def reversal_task(num_examples: int, min_length: int, max_length: int, num_symbols: int = 10, seed: int = 0):
    """The toy task: a source of random symbols, its target the same symbols reversed (then eos).

    Without attention the decoder must rebuild the whole source from the bridge's fixed-size state, and accuracy falls
    as sources grow; with attention each output step looks up the source position it needs. Returns a
    `datasets.Dataset` of `input_ids` / `labels` over the vocabulary of `TOY_FIRST_SYMBOL + num_symbols` ids.
    """
    from datasets import Dataset

    rng = random.Random(seed)
    sources, targets = [], []
    for _ in range(num_examples):
        length = rng.randint(min_length, max_length)
        source = [rng.randrange(TOY_FIRST_SYMBOL, TOY_FIRST_SYMBOL + num_symbols) for _ in range(length)]
        sources.append(source)
        targets.append(source[::-1] + [TOY_EOS])
    return Dataset.from_dict({"input_ids": sources, "labels": targets})


def toy_config(num_symbols: int = 10, **overrides) -> Seq2SeqRNNConfig:
    """A small config for the toy task's vocabulary (dropout off unless overridden)."""
    arguments = {
        "vocab_size": TOY_FIRST_SYMBOL + num_symbols,
        "embedding_size": 32,
        "hidden_size": 64,
        "encoder_layers": 1,
        "decoder_layers": 1,
        "embedding_dropout": 0.0,
        "dropout": 0.0,
        "output_dropout": 0.0,
        "pad_token_id": TOY_PAD,
        "bos_token_id": TOY_START,
        "eos_token_id": TOY_EOS,
        "decoder_start_token_id": TOY_START,
    }
    arguments.update(overrides)
    return Seq2SeqRNNConfig(**arguments)


def _strip_at_eos(ids: Sequence[int], eos_token_id: int | None, pad_token_id: int | None) -> list[int]:
    """The tokens of a generated (or label) row up to its first eos, without padding, -100 or the start token."""
    tokens = []
    for token in ids:
        token = int(token)
        if token == eos_token_id:
            break
        if token in (-100, pad_token_id):
            continue
        tokens.append(token)
    return tokens


def sequence_accuracy(model, dataset, batch_size: int = 64, max_new_tokens: int | None = None, **generate_kwargs):
    """The share of examples whose greedy (or `generate_kwargs`) output equals the target exactly."""
    config = model.config
    collate = Seq2SeqCollator(config.pad_token_id)
    correct = 0
    model.eval()
    for start in range(0, len(dataset), batch_size):
        batch = collate([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
        new_tokens = max_new_tokens or batch["labels"].shape[1] + 1
        with torch.no_grad():
            generated = model.generate(
                batch["input_ids"],
                attention_mask=batch["attention_mask"],
                max_new_tokens=new_tokens,
                **generate_kwargs,
            )
        for output, label in zip(generated[:, 1:].tolist(), batch["labels"].tolist()):
            correct += _strip_at_eos(output, config.eos_token_id, config.pad_token_id) == _strip_at_eos(
                label, config.eos_token_id, config.pad_token_id
            )
    return correct / len(dataset)


def train_on_reversal(
    config: Seq2SeqRNNConfig,
    steps: int,
    min_length: int,
    max_length: int,
    batch_size: int = 64,
    learning_rate: float = 3e-3,
    max_grad_norm: float = 1.0,
    seed: int = 0,
) -> Seq2SeqRNNForConditionalGeneration:
    """A model of `config` trained on the toy task with a plain loop (Adam, gradient clipping, a fresh batch of
    sources of `min_length`..`max_length` symbols each step). Seeded: the same arguments give the same weights."""
    torch.manual_seed(seed)
    model = Seq2SeqRNNForConditionalGeneration(config)
    num_symbols = config.vocab_size - TOY_FIRST_SYMBOL
    dataset = reversal_task(steps * batch_size, min_length, max_length, num_symbols=num_symbols, seed=seed)
    collate = Seq2SeqCollator(config.pad_token_id)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    model.train()
    for step in range(steps):
        batch = collate(dataset.select(range(step * batch_size, (step + 1) * batch_size)).to_list())
        loss = model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
    return model.eval()


def accuracy_by_length(model, lengths: Sequence[int], num_examples: int = 128, seed: int = 100) -> dict[int, dict]:
    """Greedy decoding on the toy task at each source length: `sequence` is the share of outputs equal to the
    target, `token` the share of target positions whose generated symbol is right (the bottleneck's decline shows
    in it well before every sequence is wrong)."""
    config = model.config
    collate = Seq2SeqCollator(config.pad_token_id)
    num_symbols = config.vocab_size - TOY_FIRST_SYMBOL
    results = {}
    for length in lengths:
        dataset = reversal_task(num_examples, length, length, num_symbols=num_symbols, seed=seed + length)
        batch = collate(dataset.to_list())
        with torch.no_grad():
            generated = model.generate(
                batch["input_ids"], attention_mask=batch["attention_mask"], max_new_tokens=length + 1, do_sample=False
            )
        outputs = [_strip_at_eos(row, config.eos_token_id, config.pad_token_id) for row in generated[:, 1:].tolist()]
        targets = [row[:length] for row in batch["labels"].tolist()]
        right = sum(sum(a == b for a, b in zip(output, target)) for output, target in zip(outputs, targets))
        results[length] = {
            "sequence": sum(output == target for output, target in zip(outputs, targets)) / num_examples,
            "token": right / (num_examples * length),
        }
    return results


# ---------------------------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------------------------


def generation_metrics(tokenizer: PreTrainedTokenizerBase | None, eos_token_id: int, pad_token_id: int):
    """`compute_metrics` for Seq2SeqTrainer(predict_with_generate=True): exact match and character accuracy of the
    generated text against the reference text (ids joined by spaces when there is no tokenizer)."""

    def to_text(ids):
        tokens = _strip_at_eos(ids, eos_token_id, pad_token_id)
        if tokenizer is None:
            return " ".join(map(str, tokens))
        return tokenizer.decode(tokens, skip_special_tokens=True)

    def compute(eval_prediction):
        predictions, labels = eval_prediction.predictions, eval_prediction.label_ids
        if isinstance(predictions, tuple):
            predictions = predictions[0]
        exact, matched_chars, total_chars = 0, 0, 0
        for predicted_ids, label_ids in zip(predictions.tolist(), labels.tolist()):
            predicted, reference = to_text(predicted_ids[1:]), to_text(label_ids)  # [1:]: the start token
            exact += predicted == reference
            matched_chars += sum(a == b for a, b in zip(predicted, reference))
            total_chars += max(len(predicted), len(reference), 1)
        return {"exact_match": exact / max(len(labels), 1), "char_accuracy": matched_chars / max(total_chars, 1)}

    return compute


def train_seq2seq(
    train_file: str | os.PathLike | None = None,
    *,
    tokenizer: PreTrainedTokenizerBase | str | None = None,
    output_dir: str | os.PathLike,
    validation_file: str | os.PathLike | None = None,
    train_dataset=None,
    eval_dataset=None,
    source_column: str = "source",
    target_column: str = "target",
    model: PreTrainedModel | str | None = None,
    config_overrides: dict | None = None,
    max_source_length: int = 128,
    max_target_length: int = 128,
    num_train_epochs: float = 10.0,
    max_steps: int = -1,
    learning_rate: float = 2e-3,
    batch_size: int = 32,
    max_grad_norm: float = 5.0,
    teacher_forcing_floor: float | None = None,
    generation_num_beams: int = 1,
    generation_max_length: int | None = None,
    logging_steps: int = 50,
    seed: int = 0,
    use_cpu: bool = False,
    save: bool = True,
) -> TrainingRun:
    """Train a recurrent encoder–decoder on source/target pairs with `Seq2SeqTrainer`.

    Data: `train_file` (and `validation_file`), a TSV with a header or a JSONL file with `source_column` and
    `target_column`, tokenized with `tokenizer` (an object or a saved folder); or datasets already holding
    `input_ids` / `labels` (`train_dataset`, `eval_dataset`; then `tokenizer` may be None and metrics compare ids).

    Model: a saved model folder or object (`model`), else a new `Seq2SeqRNNConfig` for the tokenizer's vocabulary and
    special tokens, updated by `config_overrides` (e.g. `{"attention": "none", "cell": "gru"}`).

    Evaluation generates (`predict_with_generate`, `generation_num_beams`) and reports `exact_match` and
    `char_accuracy` of the generated text. `teacher_forcing_floor` adds a `TeacherForcingScheduleCallback` from 1.0
    down to it. With `save`, the model (and tokenizer) are saved to `output_dir` with their code, for
    `from_pretrained(..., trust_remote_code=True)`.

    Returns a `TrainingRun` (model, tokenizer, metrics, output_dir).
    """
    if tokenizer is not None:
        tokenizer = load_tokenizer(tokenizer)
    if train_dataset is None:
        if train_file is None:
            raise ValueError("pass `train_file` (a TSV/JSONL of source/target pairs) or `train_dataset`")
        if tokenizer is None:
            raise ValueError("a tokenizer is required to read text pairs")
        train_dataset = tokenize_pairs(
            load_pairs(train_file, source_column, target_column), tokenizer, max_source_length, max_target_length
        )
        if validation_file is not None:
            eval_dataset = tokenize_pairs(
                load_pairs(validation_file, source_column, target_column),
                tokenizer,
                max_source_length,
                max_target_length,
            )

    torch.manual_seed(seed)
    model = _seq2seq_model(model, tokenizer, config_overrides)
    config = model.config
    arguments = Seq2SeqTrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=num_train_epochs,
        max_steps=max_steps,
        learning_rate=learning_rate,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size,
        max_grad_norm=max_grad_norm,
        logging_steps=logging_steps,
        eval_strategy="epoch" if eval_dataset is not None else "no",
        save_strategy="no",
        predict_with_generate=True,
        generation_num_beams=generation_num_beams,
        generation_max_length=generation_max_length or max_target_length + 1,
        report_to=[],
        seed=seed,
        use_cpu=use_cpu,
        disable_tqdm=True,
    )
    callbacks = [TeacherForcingScheduleCallback(teacher_forcing_floor)] if teacher_forcing_floor is not None else []
    trainer = Seq2SeqTrainer(
        model=model,
        args=arguments,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=Seq2SeqCollator(config.pad_token_id),
        processing_class=tokenizer,
        compute_metrics=generation_metrics(tokenizer, config.eos_token_id, config.pad_token_id),
        callbacks=callbacks,
    )
    train_result = trainer.train()
    metrics = dict(train_result.metrics)
    if eval_dataset is not None:
        metrics.update(trainer.evaluate())
    if save:
        model.save_pretrained(output_dir)
        if tokenizer is not None:
            tokenizer.save_pretrained(output_dir)
        with open(os.path.join(output_dir, "seq2seq_metrics.json"), "w", encoding="utf-8") as file:
            json.dump(metrics, file, indent=2)
    return TrainingRun(model=model, tokenizer=tokenizer, metrics=metrics, output_dir=str(output_dir))


def _seq2seq_model(model, tokenizer, config_overrides):
    """The model to train: given (object or folder), or new for the tokenizer's vocabulary and special tokens."""
    if isinstance(model, PreTrainedModel):
        return model
    if model is not None:
        return AutoModelForSeq2SeqLM.from_pretrained(model)
    special = {}
    if tokenizer is not None:
        special = {
            "vocab_size": len(tokenizer),
            "pad_token_id": tokenizer.pad_token_id,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "decoder_start_token_id": tokenizer.bos_token_id
            if tokenizer.bos_token_id is not None
            else tokenizer.eos_token_id,
        }
    config = Seq2SeqRNNConfig(**{**special, **(config_overrides or {})})
    return Seq2SeqRNNForConditionalGeneration(config)


def _parse_override(text: str) -> tuple[str, object]:
    """`field=value` from the command line; the value is read as JSON (numbers, true/false) or kept as text."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected field=value, got {text!r}")
    field, value = text.split("=", 1)
    try:
        return field, json.loads(value)
    except json.JSONDecodeError:
        return field, value


def train_seq2seq_cli(argv: Sequence[str] | None = None) -> TrainingRun:
    """`hf-seq train-seq2seq`: train_seq2seq from the command line (`--help` lists the options)."""
    parser = argparse.ArgumentParser(prog="hf-seq train-seq2seq", description=train_seq2seq.__doc__.splitlines()[0])
    parser.add_argument("train_file", help="TSV (with header) or JSONL of source/target pairs")
    parser.add_argument("--tokenizer", required=True, help="a tokenizer folder (save_pretrained) or Hub id")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--validation-file")
    parser.add_argument("--source-column", default="source")
    parser.add_argument("--target-column", default="target")
    parser.add_argument("--model", help="a saved Seq2SeqRNN folder to continue training")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        type=_parse_override,
        default=[],
        metavar="FIELD=VALUE",
        help="a Seq2SeqRNNConfig field, e.g. --set attention=concat",
    )
    parser.add_argument("--max-source-length", type=int, default=128)
    parser.add_argument("--max-target-length", type=int, default=128)
    parser.add_argument("--epochs", type=float, default=10.0)
    parser.add_argument("--max-steps", type=int, default=-1)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--teacher-forcing-floor", type=float)
    parser.add_argument("--num-beams", type=int, default=1)
    parser.add_argument("--logging-steps", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cpu", action="store_true")
    args = parser.parse_args(argv)
    run = train_seq2seq(
        args.train_file,
        tokenizer=args.tokenizer,
        output_dir=args.output_dir,
        validation_file=args.validation_file,
        source_column=args.source_column,
        target_column=args.target_column,
        model=args.model,
        config_overrides=dict(args.overrides),
        max_source_length=args.max_source_length,
        max_target_length=args.max_target_length,
        num_train_epochs=args.epochs,
        max_steps=args.max_steps,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        teacher_forcing_floor=args.teacher_forcing_floor,
        generation_num_beams=args.num_beams,
        logging_steps=args.logging_steps,
        seed=args.seed,
        use_cpu=args.cpu,
    )
    print(json.dumps({key: value for key, value in run.metrics.items() if isinstance(value, (int, float))}, indent=2))
    return run


# ---------------------------------------------------------------------------------------------------------------------
# Attention maps
# ---------------------------------------------------------------------------------------------------------------------


def attention_weights(model, input_ids: torch.Tensor, max_new_tokens: int = 64, **generate_kwargs):
    """Generate for one source and return (output ids without the start token, weights of shape
    (output_length, source_length)): row t is where the decoder looked when it wrote output token t."""
    if model.config.attention == "none":
        raise ValueError("this model has no attention (`attention='none'`): there is no map to draw")
    model.eval()
    input_ids = input_ids.reshape(1, -1).to(model.device)
    with torch.no_grad():
        generated = model.generate(input_ids, max_new_tokens=max_new_tokens, **generate_kwargs)
        # One teacher-forced pass over the generated tokens gives the weights of every step at once.
        outputs = model(
            input_ids=input_ids, decoder_input_ids=generated[:, :-1], output_attentions=True, use_cache=False
        )
    output_ids = generated[0, 1:]
    weights = outputs.cross_attentions[0][0, 0]
    generated_ids, eos = output_ids.tolist(), model.config.eos_token_id
    if eos in generated_ids:  # draw up to and including the first eos
        length = generated_ids.index(eos) + 1
        output_ids, weights = output_ids[:length], weights[:length]
    return output_ids.cpu(), weights.cpu()


def save_attention_map(
    model,
    source: str | Sequence[int] | torch.Tensor,
    output_path: str | os.PathLike,
    tokenizer: PreTrainedTokenizerBase | None = None,
    max_new_tokens: int = 64,
    title: str | None = None,
) -> str:
    """Save a heatmap PNG of the attention weights: source tokens across, output tokens down.

    `source` is text (with `tokenizer`) or token ids. Tokens are labelled with the tokenizer's token strings, or their
    ids. Returns the path written.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    if isinstance(source, str):
        if tokenizer is None:
            raise ValueError("a text source needs its tokenizer")
        input_ids = torch.tensor(tokenizer(source, add_special_tokens=False)["input_ids"])
    else:
        input_ids = torch.as_tensor(source)
    output_ids, weights = attention_weights(model, input_ids, max_new_tokens=max_new_tokens)

    def labels(ids):
        ids = [int(i) for i in ids]
        return tokenizer.convert_ids_to_tokens(ids) if tokenizer is not None else [str(i) for i in ids]

    source_labels, output_labels = labels(input_ids.reshape(-1)), labels(output_ids)
    width = max(4.0, 0.35 * len(source_labels) + 2)
    height = max(3.0, 0.35 * len(output_labels) + 1.5)
    figure, axes = plt.subplots(figsize=(width, height))
    image = axes.imshow(weights.numpy(), cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    axes.set_xticks(range(len(source_labels)), source_labels, rotation=90)
    axes.set_yticks(range(len(output_labels)), output_labels)
    axes.set_xlabel("source tokens")
    axes.set_ylabel("output tokens")
    axes.set_title(title or f"attention ({model.config.attention})")
    figure.colorbar(image, ax=axes)
    figure.tight_layout()
    output_path = os.fspath(output_path)
    figure.savefig(output_path, dpi=120)
    plt.close(figure)
    return output_path


def attention_map_cli(argv: Sequence[str] | None = None) -> str:
    """`hf-seq attention-map`: save_attention_map from the command line."""
    parser = argparse.ArgumentParser(
        prog="hf-seq attention-map", description=save_attention_map.__doc__.splitlines()[0]
    )
    parser.add_argument("model", help="a saved Seq2SeqRNN folder (with its tokenizer)")
    parser.add_argument("source", help="the source text")
    parser.add_argument("--output", required=True, help="the PNG to write")
    parser.add_argument("--tokenizer", help="a tokenizer folder, if not the model's")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args(argv)
    model = AutoModelForSeq2SeqLM.from_pretrained(args.model)
    tokenizer = load_tokenizer(args.tokenizer or args.model)
    path = save_attention_map(model, args.source, args.output, tokenizer=tokenizer, max_new_tokens=args.max_new_tokens)
    print(path)
    return path
