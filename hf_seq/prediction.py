"""Batch inference from saved model folders: classify, tag, continue or rewrite every text of a file.

`predict(model_dirs, input_file, output_file)` reads one text per line (plain text), per row (TSV with a header) or per
object (JSONL), runs the head the folder holds and writes one output row per input, in input order:

| head (architecture)                   | task                   | output columns                                |
|---------------------------------------|------------------------|-----------------------------------------------|
| `*ForSequenceClassification`          | `text-classification`  | `label`, then `prob_<class>` for every class  |
| `*ForTokenClassification`             | `token-classification` | `tokens`, `tags` (one tag per word)           |
| `*ForCausalLM`                        | `text-generation`      | `generated_text` (the continuation)           |
| `*ForConditionalGeneration` (seq2seq) | `text2text-generation` | `generated_text`                              |

An `id` column of the input comes first in the output. Texts are batched by length (longest first), so a batch holds
little padding; several classifier folders are one ensemble whose class probabilities are averaged, and
`subword_samples` averages each member over BPE-dropout segmentations, as `hf-seq evaluate` does.

The module also registers a `text2text-generation` pipeline (transformers 5 dropped its own), so that
`transformers.pipeline("text2text-generation", model=folder)` runs the recurrent encoder–decoder. `hf_seq.training`
(loading folders, BPE-dropout) is imported where it is used, so that registering the pipeline stays cheap.
"""

import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    GenerationConfig,
    Pipeline,
)

from tokenizer_training import BYTE_ORDER_MARK


# The task of each head, by the end of its architecture's name (config.json's `architectures`).
TASK_OF_ARCHITECTURE = {
    "ForSequenceClassification": "text-classification",
    "ForTokenClassification": "token-classification",
    "ForCausalLM": "text-generation",
    "ForConditionalGeneration": "text2text-generation",
}
AUTO_CLASS_OF_TASK = {
    "text-classification": AutoModelForSequenceClassification,
    "token-classification": AutoModelForTokenClassification,
    "text-generation": AutoModelForCausalLM,
    "text2text-generation": AutoModelForSeq2SeqLM,
}
INPUT_FORMATS = ("text", "tsv", "jsonl")
# The text column used when none is named, first found first: NSMC's, the usual ones, seq2seq's, token lists.
TEXT_COLUMNS = ("document", "text", "sentence", "source", "prompt", "tokens")
OUTPUT_FORMATS = ("tsv", "jsonl")


@dataclass
class PredictionInputs:
    """The texts of an input file, in file order, and their ids (None when the file has no id column)."""

    texts: list
    ids: list | None = None
    id_column: str | None = None
    text_column: str | None = None


@dataclass
class PredictionResult:
    """What `predict` returns: the output rows (dicts, in input order), their columns and the measured speed.

    `seconds` covers tokenisation and the model's work (not loading the folders); `texts_per_second` is
    `num_texts / seconds`.
    """

    task: str
    columns: list
    rows: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def num_texts(self):
        return len(self.rows)

    @property
    def texts_per_second(self):
        return self.num_texts / self.seconds if self.seconds > 0 else float("inf")


def predict(
    model_dirs,
    input_file,
    output_file=None,
    *,
    text_column=None,
    id_column=None,
    input_format=None,
    output_format=None,
    columns=None,
    class_names=None,
    label_names=False,
    batch_size=64,
    max_length=128,
    subword_samples=0,
    subword_dropout=0.1,
    max_new_tokens=40,
    num_beams=1,
    do_sample=False,
    top_k=50,
    top_p=1.0,
    temperature=1.0,
    seed=0,
    device=None,
    int8=False,
    overwrite=False,
    show_progress=True,
    trust_remote_code=False,
):
    """Run saved model folders over every text of `input_file`; write the rows to `output_file` and return them.

    Args:
        model_dirs: a model folder (written by save_pretrained, tokenizer included), or a list of them. Several
            folders must be sequence classifiers predicting the same labels: their class probabilities are averaged.
        input_file: plain text (one text per line; an empty line is an empty text), a TSV whose first line names its
            columns (tab-separated, no quoting, as NSMC's `id document label`), or JSONL (one object per line). The
            format follows the extension (`.tsv`, `.jsonl`/`.json`); any other file is TSV when its first line holds
            a tab, else plain text. `input_format` ("text", "tsv", "jsonl") says it outright.
        output_file: where the rows go: JSONL for `.jsonl`/`.json` (or `output_format="jsonl"`), else TSV with a
            header. An existing file is refused unless `overwrite`. None writes nothing (the rows are returned).
        text_column: the column (TSV) or key (JSONL) holding the texts; by default the first of
            `document, text, sentence, source, prompt, tokens` present. For token classification a JSONL value may be
            a list of words; a text is split into words at whitespace.
        id_column: the column kept as the first output column; by default `id` when present.
        columns: the output columns to keep, in this order (e.g. `["id", "label", "prob_positive"]`); default all.
        class_names: names for the classes, replacing the model's id2label in the `prob_<name>` columns and (with
            `label_names`) in `label`, e.g. `["negative", "positive"]`.
        label_names: write the predicted class's name in `label` instead of its index.
        batch_size: texts per forward (or generate) call; texts are batched by token length.
        max_length: classifiers truncate each text to this many tokens.
        subword_samples, subword_dropout: sequence classifiers also average each text's class probabilities over
            this many BPE-dropout segmentations (rate `subword_dropout`); unseeded, so figures vary slightly.
        max_new_tokens, num_beams, do_sample, top_k, top_p, temperature, seed: generation settings (greedy by
            default, so the output is reproducible).
        device: "cpu", "cuda", "cuda:1"...; default the first GPU when there is one (the CPU with `int8`).
        int8: run each model quantised to dynamic int8 (`hf_seq.quantization.quantize_dynamic_int8`), on the CPU:
            faster for recurrent models (1.4-1.8x for a BiGRU classifier, 3-10x a decode step in bench/); check the
            metric against fp32 on held-out data first.
        show_progress: a progress bar on stderr.
        trust_remote_code: load folders whose model_type is neither hf-seq's nor transformers' (runs their code).

    Returns:
        A `PredictionResult` (task, columns, rows in input order, seconds of inference).
    """
    model_dirs = [model_dirs] if isinstance(model_dirs, (str, os.PathLike)) else list(model_dirs)
    output_format = _check_settings(
        model_dirs,
        input_file,
        output_file,
        output_format,
        overwrite,
        sizes={
            "batch_size": batch_size,
            "max_length": max_length,
            "max_new_tokens": max_new_tokens,
            "num_beams": num_beams,
        },
        subword_samples=subword_samples,
        subword_dropout=subword_dropout,
    )
    task = task_of_folders(model_dirs, trust_remote_code)
    if subword_samples and task != "text-classification":
        raise ValueError(f"subword_samples applies to sequence classifiers; {model_dirs[0]} holds a {task} model")
    inputs = read_inputs(input_file, text_column, id_column, input_format, words=task == "token-classification")
    device = _device("cpu" if int8 and device is None else device)
    if int8 and device.type != "cpu":
        raise ValueError(f"int8 inference runs on the CPU (fbgemm kernels), not on {device}: give device='cpu'")
    progress = _progress_bar(len(inputs.texts) * len(model_dirs) * (1 + subword_samples), show_progress)
    try:
        if task == "text-classification":
            columns_out, rows, seconds = _classify(
                model_dirs,
                inputs.texts,
                class_names=class_names,
                label_names=label_names,
                batch_size=batch_size,
                max_length=max_length,
                subword_samples=subword_samples,
                subword_dropout=subword_dropout,
                device=device,
                int8=int8,
                progress=progress,
                trust_remote_code=trust_remote_code,
            )
        elif task == "token-classification":
            columns_out, rows, seconds = _tag(
                model_dirs[0],
                inputs.texts,
                class_names,
                batch_size,
                max_length,
                device,
                progress,
                trust_remote_code,
                int8=int8,
            )
        else:
            settings = _generation_settings(max_new_tokens, num_beams, do_sample, top_k, top_p, temperature)
            torch.manual_seed(seed)
            columns_out, rows, seconds = _generate(
                model_dirs[0], task, inputs.texts, settings, batch_size, device, progress, trust_remote_code, int8=int8
            )
    finally:
        progress.close()
    if inputs.ids is not None:
        columns_out = [inputs.id_column, *columns_out]
        rows = [{inputs.id_column: identifier, **row} for identifier, row in zip(inputs.ids, rows)]
    columns_out, rows = _select_columns(columns_out, rows, columns)
    result = PredictionResult(task=task, columns=columns_out, rows=rows, seconds=seconds)
    if output_file is not None:
        write_rows(result, output_file, output_format, overwrite=overwrite)
    return result


# ---------------------------------------------------------------------------------------------------------------------
# Checks and inputs
# ---------------------------------------------------------------------------------------------------------------------


def _check_settings(
    model_dirs, input_file, output_file, output_format, overwrite, sizes, subword_samples, subword_dropout
):
    """Refuse a bad setting before any model is loaded (`sizes`: settings that must be whole numbers >= 1); returns
    the output format."""
    if not model_dirs:
        raise ValueError("give at least one model folder")
    for model_dir in model_dirs:
        if not os.path.isdir(model_dir):
            raise FileNotFoundError(f"model folder not found: {model_dir}")
    if not os.path.isfile(input_file):
        raise FileNotFoundError(f"input file not found: {input_file}")
    for name, value in sizes.items():
        _check_at_least(name, value, 1)
    _check_at_least("subword_samples", subword_samples, 0)
    if subword_samples and not 0.0 < subword_dropout < 1.0:
        raise ValueError(f"subword_dropout must be in (0, 1), got {subword_dropout}")
    if output_file is None:
        return output_format or "tsv"
    output_format = output_format or ("jsonl" if str(output_file).endswith((".jsonl", ".json")) else "tsv")
    if output_format not in OUTPUT_FORMATS:
        raise ValueError(f"output_format must be one of {OUTPUT_FORMATS}, got {output_format!r}")
    if os.path.isdir(output_file):
        raise IsADirectoryError(f"{output_file} is a folder: give the output file's path")
    if os.path.exists(output_file) and not overwrite:
        raise FileExistsError(f"{output_file} exists: choose another output file, or pass --overwrite to replace it")
    if os.path.abspath(output_file) == os.path.abspath(input_file):
        raise ValueError(f"the output file is the input file ({input_file}): choose another output file")
    return output_format


def _device(device):
    """The torch device to run on: the one named ("cpu", "cuda", "cuda:1"...), else the first GPU if there is one."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r}: give cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {str(device)!r} was asked for, but this machine has no usable GPU: give --device cpu"
        )
    return device


def _check_at_least(name, value, smallest):
    if isinstance(value, bool) or not isinstance(value, int) or value < smallest:
        raise ValueError(f"{name} must be a whole number >= {smallest}, got {value!r}")


def task_of_folders(model_dirs, trust_remote_code=False):
    """The task the folders' head performs (one of `AUTO_CLASS_OF_TASK`), checking that an ensemble can be one."""
    from .training.common import read_model_config

    tasks, label_sets = [], {}
    for model_dir in model_dirs:
        config, _ = read_model_config(model_dir, trust_remote_code=trust_remote_code)
        architecture = (getattr(config, "architectures", None) or [None])[0]
        if architecture is None:
            raise ValueError(f"{model_dir}/config.json names no architecture: cannot tell which head to load")
        task = next((task for end, task in TASK_OF_ARCHITECTURE.items() if architecture.endswith(end)), None)
        if task is None:
            raise ValueError(
                f"{model_dir} holds a {architecture}, which predicts nothing from text: give a classifier, tagger, "
                "causal LM or encoder-decoder folder"
            )
        tasks.append(task)
        label_sets[model_dir] = config.id2label
    if len(model_dirs) > 1:
        if set(tasks) != {"text-classification"}:
            raise ValueError(
                "several model folders are an ensemble of sequence classifiers; these hold "
                + ", ".join(f"{model_dir}: {task}" for model_dir, task in zip(model_dirs, tasks))
            )
        if len({tuple(sorted(labels.items())) for labels in label_sets.values()}) > 1:
            raise ValueError(f"ensemble members must predict the same labels; they differ: {label_sets}")
    return tasks[0]


def read_inputs(path, text_column=None, id_column=None, input_format=None, words=False):
    """The texts (and ids) of a plain text, TSV or JSONL file, as `predict` describes; errors name the line.

    `words`: the texts are word lists (token classification): a string is split at whitespace.
    """
    input_format = input_format or _input_format(path, text_column)
    if input_format not in INPUT_FORMATS:
        raise ValueError(f"input_format must be one of {INPUT_FORMATS}, got {input_format!r}")
    lines = _read_lines(path)
    if input_format == "text":
        if text_column is not None or id_column is not None:
            raise ValueError(f"{path} is read as plain text (one text per line), which has no columns to name")
        inputs = PredictionInputs(texts=lines)
    elif input_format == "tsv":
        inputs = _read_tsv(path, lines, text_column, id_column)
    else:
        inputs = _read_jsonl(path, lines, text_column, id_column)
    if not inputs.texts:
        raise ValueError(f"{path} holds no texts")
    if words:
        inputs.texts = [text.split() if isinstance(text, str) else text for text in inputs.texts]
    elif any(not isinstance(text, str) for text in inputs.texts):
        raise ValueError(f"{path}: the {inputs.text_column!r} values must be strings")
    return inputs


def _input_format(path, text_column):
    name = os.fspath(path)
    if name.endswith((".jsonl", ".json")):
        return "jsonl"
    if name.endswith(".tsv"):
        return "tsv"
    first_line = _read_lines(path, limit=1)
    if not first_line or "\t" not in first_line[0]:
        return "text"
    header = first_line[0].split("\t")
    if text_column is None and not any(column in header for column in TEXT_COLUMNS):
        raise ValueError(
            f"the first line of {path} holds tabs but names none of the text columns {list(TEXT_COLUMNS)}: give "
            "--text_column naming the column of texts, or --input_format text to read each line as one text"
        )
    return "tsv"


def _read_lines(path, limit=None):
    """The file's lines without line ends (a first-line byte-order mark dropped); a byte that is not UTF-8 is named."""
    lines = []
    with open(path, "rb") as handle:
        for line_number, raw_line in enumerate(handle, start=1):
            try:
                line = raw_line.decode("utf-8")
            except UnicodeDecodeError as error:
                raise ValueError(
                    f"{path} is not UTF-8 text: invalid byte 0x{raw_line[error.start]:02x} on line {line_number}. "
                    "Convert it to UTF-8 first (e.g. `iconv -f cp949 -t utf-8`)."
                ) from None
            if line_number == 1:
                line = line.removeprefix(BYTE_ORDER_MARK)
            lines.append(line.rstrip("\r\n"))
            if limit is not None and len(lines) >= limit:
                break
    return lines


def _pick_column(path, columns, name, role):
    if name is not None:
        if name not in columns:
            raise ValueError(f"{path} has no {role} column {name!r} (columns: {columns})")
        return name
    if role == "id":
        return "id" if "id" in columns else None
    found = next((column for column in TEXT_COLUMNS if column in columns), None)
    if found is None:
        raise ValueError(
            f"{path} has none of the text columns {list(TEXT_COLUMNS)} (columns: {columns}): give --text_column"
        )
    return found


def _read_tsv(path, lines, text_column, id_column):
    if not lines:
        raise ValueError(f"{path} is empty: a TSV file starts with a header naming its columns")
    header = lines[0].split("\t")
    text_column = _pick_column(path, header, text_column, "text")
    id_column = _pick_column(path, header, id_column, "id")
    text_index = header.index(text_column)
    id_index = header.index(id_column) if id_column is not None else None
    texts, ids = [], []
    for line_number, line in enumerate(lines[1:], start=2):
        if not line:
            continue  # a blank line is not a row, as datasets' CSV reader has it
        fields = line.split("\t")
        if len(fields) != len(header):
            raise ValueError(
                f"{path} line {line_number} has {len(fields)} tab-separated fields, expected {len(header)} "
                f"({' '.join(header)}): replace a tab inside a text by a space"
            )
        texts.append(fields[text_index])
        if id_index is not None:
            ids.append(fields[id_index])
    return PredictionInputs(texts, ids if id_column else None, id_column, text_column)


def _read_jsonl(path, lines, text_column, id_column):
    records = []
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"{path} line {line_number} is not JSON ({error.msg}): give one JSON object per line"
            ) from None
        if not isinstance(record, dict):
            raise ValueError(f"{path} line {line_number} is not a JSON object: give one object per line")
        records.append((line_number, record))
    if not records:
        raise ValueError(f"{path} holds no JSON objects")
    keys = list(records[0][1])
    text_column = _pick_column(path, keys, text_column, "text")
    id_column = _pick_column(path, keys, id_column, "id")
    texts, ids = [], []
    for line_number, record in records:
        for column in (text_column, id_column):
            if column is not None and column not in record:
                raise ValueError(f"{path} line {line_number} has no {column!r} key")
        text = record[text_column]
        if text is None:
            text = ""
        if not isinstance(text, str) and not (isinstance(text, list) and all(isinstance(w, str) for w in text)):
            raise ValueError(f"{path} line {line_number}: {text_column!r} must be a string (or a list of words)")
        texts.append(text)
        if id_column is not None:
            ids.append(record[id_column])
    return PredictionInputs(texts, ids if id_column else None, id_column, text_column)


# ---------------------------------------------------------------------------------------------------------------------
# Batching
# ---------------------------------------------------------------------------------------------------------------------


def length_sorted_batches(lengths, batch_size):
    """Batches of indices of `lengths`, longest first (so a batch that does not fit shows at once), each holding
    sequences of about one length, so padding is small."""
    order = sorted(range(len(lengths)), key=lambda index: -lengths[index])
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def pad_batch(sequences, pad_token_id, padding_side="right"):
    """`input_ids` and `attention_mask` tensors of a list of id lists, padded on `padding_side`."""
    longest = max(len(ids) for ids in sequences)
    input_ids, attention_mask = [], []
    for ids in sequences:
        padding = longest - len(ids)
        if padding_side == "left":
            input_ids.append([pad_token_id] * padding + list(ids))
            attention_mask.append([0] * padding + [1] * len(ids))
        else:
            input_ids.append(list(ids) + [pad_token_id] * padding)
            attention_mask.append([1] * len(ids) + [0] * padding)
    return torch.tensor(input_ids), torch.tensor(attention_mask)


def _pad_token_id(tokenizer):
    for token_id in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if token_id is not None:
            return token_id


def _progress_bar(total, show_progress):
    from tqdm.auto import tqdm

    return tqdm(total=total, file=sys.stderr, disable=not show_progress, unit="text", dynamic_ncols=True)


def _load(model_dir, task, device, trust_remote_code, int8=False):
    """The folder's tokenizer and model (on `device`, in eval mode, quantised with `int8`), without transformers'
    loading bars, which would break into the prediction's own."""
    from transformers.utils import logging

    from .training.common import load_saved_model, load_tokenizer

    bars_were_on = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        tokenizer = load_tokenizer(model_dir, trust_remote_code=trust_remote_code)
        model = load_saved_model(model_dir, AUTO_CLASS_OF_TASK[task], trust_remote_code=trust_remote_code)
    finally:
        if bars_were_on:
            logging.enable_progress_bar()
    model = model.to(device).eval()
    if int8:
        from .quantization import quantize_dynamic_int8

        model = quantize_dynamic_int8(model)
    return tokenizer, model


def empty_text_ids(tokenizer):
    """The ids an empty text is read as: those a classifier is fine-tuned to see for an empty document."""
    from .training.encoding import empty_document_ids

    return empty_document_ids(tokenizer)


def _encode_texts(tokenizer, texts, max_length):
    """Token ids of each text, truncated to `max_length`; an empty text gets the fallback token a classifier was
    fine-tuned with (see `empty_text_ids`)."""
    fallback_ids = empty_text_ids(tokenizer)
    encoded = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    return [ids or fallback_ids for ids in encoded]


# ---------------------------------------------------------------------------------------------------------------------
# Sequence classification
# ---------------------------------------------------------------------------------------------------------------------


def _classify(
    model_dirs,
    texts,
    *,
    class_names,
    label_names,
    batch_size,
    max_length,
    subword_samples,
    subword_dropout,
    device,
    progress,
    trust_remote_code,
    int8=False,
):
    """Rows `label`, `prob_<class>`...: the argmax and the class probabilities, averaged over the members."""
    probabilities, seconds, id2label = 0.0, 0.0, None
    for model_dir in model_dirs:
        tokenizer, model = _load(model_dir, "text-classification", device, trust_remote_code, int8)
        id2label = model.config.id2label
        started = time.perf_counter()
        probabilities = probabilities + class_probabilities(
            model, tokenizer, texts, batch_size, max_length, subword_samples, subword_dropout, progress
        )
        seconds += time.perf_counter() - started
    probabilities = probabilities / len(model_dirs)
    names = _class_names(id2label, class_names, model_dirs[0])
    columns = ["label", *(f"prob_{name}" for name in names)]
    rows = []
    for row in probabilities.tolist():
        best = max(range(len(row)), key=row.__getitem__)
        rows.append({"label": names[best] if label_names else best, **dict(zip(columns[1:], row))})
    return columns, rows, seconds


def class_probabilities(
    model, tokenizer, texts, batch_size=64, max_length=128, subword_samples=0, subword_dropout=0.1, progress=None
):
    """A classifier's softmax over `texts` (a float tensor, texts x classes, in text order), batched by length.

    With `subword_samples`, the mean over the exact segmentation and that many BPE-dropout ones, as
    `hf_seq.training.evaluate_model` computes it.
    """
    encodings = [_encode_texts(tokenizer, texts, max_length)]
    if subword_samples:
        from .training.encoding import with_bpe_dropout

        sampling_tokenizer = with_bpe_dropout(tokenizer, subword_dropout)
        encodings += [_encode_texts(sampling_tokenizer, texts, max_length) for _ in range(subword_samples)]
    total = 0.0
    for encoded in encodings:
        logits = _forward_batches(model, encoded, _pad_token_id(tokenizer), batch_size, progress)
        total = total + torch.stack(logits).float().softmax(dim=-1)
    return total / len(encodings)


@torch.no_grad()
def _forward_batches(model, encoded, pad_token_id, batch_size, progress=None):
    """The model's logits for each id list of `encoded`, in order (padded on the right, batched by length)."""
    results = [None] * len(encoded)
    for batch in length_sorted_batches([len(ids) for ids in encoded], batch_size):
        input_ids, attention_mask = pad_batch([encoded[index] for index in batch], pad_token_id)
        logits = model(input_ids=input_ids.to(model.device), attention_mask=attention_mask.to(model.device)).logits
        for position, index in enumerate(batch):
            results[index] = logits[position].cpu()
        if progress is not None:
            progress.update(len(batch))
    return results


def _class_names(id2label, class_names, model_dir):
    names = [str(id2label[index]) for index in range(len(id2label))]
    if class_names is None:
        return names
    class_names = [str(name) for name in class_names]
    if len(class_names) != len(names):
        raise ValueError(
            f"class_names gives {len(class_names)} names but {model_dir} predicts {len(names)} classes ({names})"
        )
    if len(set(class_names)) != len(class_names):
        raise ValueError(f"class_names must be distinct, got {class_names}")
    return class_names


# ---------------------------------------------------------------------------------------------------------------------
# Token classification
# ---------------------------------------------------------------------------------------------------------------------


def _tag(model_dir, texts, class_names, batch_size, max_length, device, progress, trust_remote_code, int8=False):
    """Rows `tokens`, `tags`: each word's tag is the model's argmax on its first sub-token, as it was trained.

    A word cut off by `max_length` gets no tag (None).
    """
    tokenizer, model = _load(model_dir, "token-classification", device, trust_remote_code, int8)
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"token classification needs a fast tokenizer (for word_ids); {model_dir} has a slow one")
    names = _class_names(model.config.id2label, class_names, model_dir)
    started = time.perf_counter()
    non_empty = [words or [""] for words in texts]  # an empty text still goes through, and gets no tags
    encoding = tokenizer(non_empty, is_split_into_words=True, truncation=True, max_length=max_length)
    encoded = [ids or empty_text_ids(tokenizer) for ids in encoding["input_ids"]]
    logits = _forward_batches(model, encoded, _pad_token_id(tokenizer), batch_size, progress)
    rows = []
    for index, words in enumerate(texts):
        tags = [None] * len(words)
        predicted = logits[index].argmax(-1).tolist()
        for position, word in enumerate(encoding.word_ids(index)):
            if word is not None and word < len(words) and tags[word] is None:
                tags[word] = names[predicted[position]]
        rows.append({"tokens": list(words), "tags": tags})
    return ["tokens", "tags"], rows, time.perf_counter() - started


# ---------------------------------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------------------------------


def _generation_settings(max_new_tokens, num_beams, do_sample, top_k, top_p, temperature):
    settings = {"max_new_tokens": max_new_tokens, "num_beams": num_beams, "do_sample": do_sample}
    if do_sample:
        _check_at_least("top_k", top_k, 0)
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1] (the probability mass sampled from; 1 keeps all), got {top_p}")
        if not 0.0 < temperature < float("inf"):
            raise ValueError(f"temperature must be a positive number, got {temperature}")
        settings.update(top_k=top_k, top_p=top_p, temperature=temperature)
    return settings


def _generate(model_dir, task, texts, settings, batch_size, device, progress, trust_remote_code, int8=False):
    """Rows `generated_text`: a causal LM's continuation of each prompt, or an encoder-decoder's output."""
    tokenizer, model = _load(model_dir, task, device, trust_remote_code, int8)
    generation_config = GenerationConfig(
        **settings,
        pad_token_id=_pad_token_id(tokenizer),
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
        decoder_start_token_id=getattr(model.config, "decoder_start_token_id", None),
    )
    started = time.perf_counter()
    backward = getattr(model.config, "reading_direction", "forward") == "backward"
    if task == "text2text-generation":
        # The sources as train_seq2seq encodes them: no bos/eos added.
        encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
        encoded = [ids or empty_text_ids(tokenizer) for ids in encoded]
    else:
        encoded = [_prompt_ids(tokenizer, text, backward) for text in texts]
        if backward:
            generation_config.eos_token_id = tokenizer.bos_token_id  # read backward, a text ends at its start
    # A causal LM continues each prompt from its last token, so prompts are padded on the left.
    padding_side = "right" if task == "text2text-generation" else "left"
    outputs = [None] * len(texts)
    for batch in length_sorted_batches([len(ids) for ids in encoded], batch_size):
        input_ids, attention_mask = pad_batch(
            [encoded[index] for index in batch], _pad_token_id(tokenizer), padding_side
        )
        with torch.no_grad():
            generated = model.generate(
                input_ids=input_ids.to(device),
                attention_mask=attention_mask.to(device),
                generation_config=generation_config,
            )
        if task == "text-generation":
            generated = generated[:, input_ids.shape[1] :]  # the continuation only
        for position, index in enumerate(batch):
            ids = generated[position].tolist()
            if backward:
                ids = ids[::-1]  # written last to first: the text before the prompt, in reading order
            outputs[index] = tokenizer.decode(ids, skip_special_tokens=True)
        progress.update(len(batch))
    rows = [{"generated_text": text} for text in outputs]
    return ["generated_text"], rows, time.perf_counter() - started


def _prompt_ids(tokenizer, text, backward):
    """A prompt's ids as the LM reads it; an empty prompt is the bos token (a text from its start).

    A backward LM reads the previous text's eos, then the prompt's tokens last to first (see `generate_text`).
    """
    ids = tokenizer(text)["input_ids"]
    if backward:
        if tokenizer.bos_token_id is None or tokenizer.eos_token_id is None:
            raise ValueError("a backward LM needs a tokenizer with bos and eos tokens (where texts start and end)")
        if ids and ids[0] == tokenizer.bos_token_id:
            ids = ids[1:]
        return [tokenizer.eos_token_id, *ids[::-1]]
    if not ids:
        if tokenizer.bos_token_id is None:
            raise ValueError("an empty prompt needs a tokenizer with a bos token")
        ids = [tokenizer.bos_token_id]
    return ids


# ---------------------------------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------------------------------


def _select_columns(columns, rows, selected):
    if selected is None:
        return columns, rows
    selected = [selected] if isinstance(selected, str) else list(selected)
    unknown = [column for column in selected if column not in columns]
    if unknown:
        raise ValueError(f"no output column {unknown} (the output has {columns})")
    return selected, [{column: row[column] for column in selected} for row in rows]


def format_rows(result, output_format="tsv"):
    """The rows as lines of text: a TSV header and rows (word lists joined by spaces, probabilities to 6 decimals,
    tabs and line breaks inside a value as spaces), or one JSON object per row (JSON escapes line breaks)."""
    if output_format == "jsonl":
        return [json.dumps(row, ensure_ascii=False) for row in result.rows]
    lines = ["\t".join(result.columns)]
    for row in result.rows:
        lines.append("\t".join(_tsv_value(row[column]) for column in result.columns))
    return lines


def _tsv_value(value):
    if isinstance(value, float):
        return f"{value:.6f}"
    if isinstance(value, list):
        return " ".join("" if item is None else _tsv_value(item) for item in value)
    # One row per line, even when a generated byte-level token is a line break (\n, \x1c, \u2028, ...) or a tab.
    return " ".join(("" if value is None else str(value)).replace("\t", " ").splitlines())


def write_rows(result, output_file, output_format=None, overwrite=False):
    """Write the rows to `output_file` (through a temporary file, renamed when complete); an existing file is
    replaced only with `overwrite`."""
    output_format = output_format or ("jsonl" if str(output_file).endswith((".jsonl", ".json")) else "tsv")
    if os.path.exists(output_file) and not overwrite:
        raise FileExistsError(f"{output_file} exists: choose another output file, or pass --overwrite to replace it")
    directory = os.path.dirname(os.path.abspath(output_file))
    os.makedirs(directory, exist_ok=True)
    handle, temporary_path = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".predictions")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            for line in format_rows(result, output_format):
                file.write(line + "\n")
        os.replace(temporary_path, output_file)
    except BaseException:
        if os.path.exists(temporary_path):
            os.remove(temporary_path)
        raise


# ---------------------------------------------------------------------------------------------------------------------
# The text2text-generation pipeline
# ---------------------------------------------------------------------------------------------------------------------


class Text2TextGenerationPipeline(Pipeline):
    """`pipeline("text2text-generation", model=folder)`: an encoder-decoder's output text for each input text.

    The input is encoded as `train_seq2seq` encodes sources (no bos/eos added); keyword arguments such as
    `max_new_tokens` or `num_beams` go to `generate()`. Each result is `{"generated_text": ...}`.
    """

    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = True

    def _sanitize_parameters(self, **generate_kwargs):
        return {}, generate_kwargs, {}

    def preprocess(self, text):
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"] or empty_text_ids(self.tokenizer)
        input_ids = torch.tensor([ids])
        return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}

    def _forward(self, model_inputs, **generate_kwargs):
        return {"output_ids": self.model.generate(**model_inputs, **generate_kwargs)}

    def postprocess(self, model_outputs):
        return [
            {"generated_text": self.tokenizer.decode(ids, skip_special_tokens=True)}
            for ids in model_outputs["output_ids"]
        ]


def register_pipelines():
    """Register `text2text-generation` with transformers' pipelines, for encoder-decoders such as Seq2SeqRNN.

    transformers 5 dropped that pipeline and refuses the task's name (it points chat models to `text-generation`,
    which runs causal LMs only); registering it here takes the name off that list of removed tasks.
    """
    from transformers import pipelines

    if "text2text-generation" in pipelines.SUPPORTED_TASKS:
        return
    getattr(pipelines, "REMOVED_TASKS", {}).pop("text2text-generation", None)
    pipelines.PIPELINE_REGISTRY.register_pipeline(
        "text2text-generation", pipeline_class=Text2TextGenerationPipeline, pt_model=AutoModelForSeq2SeqLM, type="text"
    )


register_pipelines()
