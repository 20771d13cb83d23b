"""What pretraining, fine-tuning and evaluation share: loading tokenizers and models, and the per-run record."""

import ast
import copy
import json
import os
import platform
import tempfile
from dataclasses import dataclass, field

import torch
from transformers import AutoConfig, AutoTokenizer, PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

# Short names for the recurrent families, as users type them on the command line.
MODEL_TYPE_ALIASES = {
    "rnn": "hf_seq_rnn",
    "lstm": "hf_seq_lstm",
    "gru": "hf_seq_gru",
    "transformer": "hf_seq_transformer_lm",
}
RECURRENT_MODEL_TYPES = ("hf_seq_rnn", "hf_seq_lstm", "hf_seq_gru")


@dataclass
class TrainingRun:
    """What a training function returns: the trained model, its tokenizer, the measured metrics, where it was saved."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    metrics: dict = field(default_factory=dict)
    output_dir: str | None = None


def load_tokenizer(tokenizer):
    """A tokenizer object as is, or one loaded with `AutoTokenizer.from_pretrained` from a folder or Hub id."""
    if isinstance(tokenizer, PreTrainedTokenizerBase):
        return tokenizer
    if tokenizer is None:
        raise ValueError("a tokenizer is required (a tokenizer object, or a folder saved with save_pretrained)")
    if _missing_local_path(tokenizer):
        raise FileNotFoundError(f"tokenizer folder not found: {tokenizer}")
    return AutoTokenizer.from_pretrained(tokenizer)


def _missing_local_path(name):
    """True for a name that is clearly a local path (not a Hub id like `user/model`) and does not exist."""
    name = os.fspath(name)
    looks_local = name.startswith(("/", "./", "../", "~")) or name.count("/") >= 2 or os.path.isabs(name)
    return looks_local and not os.path.exists(os.path.expanduser(name))


def parse_config_overrides(overrides):
    """`"hidden_size=256,dropout=0.1"` -> `{"hidden_size": 256, "dropout": 0.1}` (values read as Python literals)."""
    if not overrides:
        return {}
    if isinstance(overrides, dict):
        return dict(overrides)
    parsed = {}
    for item in overrides.split(","):
        if "=" not in item:
            raise ValueError(f"config override {item!r} is not of the form key=value (in {overrides!r})")
        key, value = (part.strip() for part in item.split("=", 1))
        try:
            parsed[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parsed[key] = value  # a bare word such as relu or orthogonal
    return parsed


def config_for_tokenizer(model_type, tokenizer, **overrides):
    """A fresh config of `model_type` ("lstm", "hf_seq_gru", a Transformer's model type...) sized for `tokenizer`.

    The vocabulary size and the pad/bos/eos ids come from the tokenizer, so model and tokenizer always agree.
    """
    model_type = MODEL_TYPE_ALIASES.get(model_type, model_type)
    special_ids = {
        "vocab_size": len(tokenizer),
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    try:
        return AutoConfig.for_model(model_type, **{**special_ids, **overrides})
    except ValueError as error:
        if "Unrecognized model identifier" in str(error):
            raise ValueError(
                f"unknown model_type {model_type!r}: use one of {sorted(MODEL_TYPE_ALIASES)} or a registered model_type"
            ) from error
        raise


def load_model(model, auto_class, tokenizer=None, model_type=None, config_overrides=None, **from_pretrained_kwargs):
    """The model to train, whatever the caller has:

    - a `PreTrainedModel`: used as is;
    - a `PretrainedConfig`: a fresh model of `auto_class` built from it;
    - a folder or Hub id: `auto_class.from_pretrained(model, **from_pretrained_kwargs)` (e.g. a pretrained LM folder
      loaded into `AutoModelForSequenceClassification`: the body is reused, the head is new);
    - `None` with `model_type`: a fresh model of that type sized for `tokenizer`, with `config_overrides`.
    """
    overrides = parse_config_overrides(config_overrides)
    if isinstance(model, PreTrainedModel):
        return model
    if isinstance(model, PretrainedConfig):
        config = copy.deepcopy(model)  # the caller's config stays as it was
        for key, value in {**overrides, **from_pretrained_kwargs}.items():  # e.g. num_labels, then id2label
            setattr(config, key, value)
        return auto_class.from_config(config)
    if model is not None:
        if _missing_local_path(model):
            raise FileNotFoundError(f"model folder not found: {model}")
        return auto_class.from_pretrained(model, **overrides, **from_pretrained_kwargs)
    if model_type is None:
        raise ValueError("give either a model (object, config or folder) or a model_type to build one from scratch")
    if tokenizer is None:
        raise ValueError("building a model from scratch needs the tokenizer (for its vocabulary size)")
    config = config_for_tokenizer(model_type, tokenizer, **overrides)
    for key, value in from_pretrained_kwargs.items():  # e.g. num_labels, then id2label, for a fresh classifier
        setattr(config, key, value)
    return auto_class.from_config(config)


def is_recurrent(model):
    """True for the hf_seq RNN/LSTM/GRU families, whose state can be carried across windows of a stream."""
    return getattr(model.config, "model_type", None) in RECURRENT_MODEL_TYPES


def reads_backward(model):
    """True for a backward model (`reading_direction="backward"`): its LM text is fed back to front."""
    return getattr(model.config, "reading_direction", "forward") == "backward"


def count_parameters(model):
    return sum(parameter.numel() for parameter in model.parameters())


def hardware_description():
    """Where a run happened, for its record (no host names or user names)."""
    description = {
        "platform": platform.platform(terse=True),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        description["gpu"] = torch.cuda.get_device_name(0)
        description["gpu_count"] = torch.cuda.device_count()
    return description


def metrics_for_card(metrics, split, dataset=None, prefix=None):
    """`{"eval_accuracy": 0.8, ...}` -> run_info's metric entries `[{"name": "accuracy", "value": 0.8, "split": ...}]`.

    Only quality figures are kept (no runtimes or throughputs); `prefix` (e.g. "eval_") is stripped and required.
    """
    # Speeds and counts are not quality figures (the counts are recorded elsewhere in run_info).
    speed_words = ("runtime", "per_second", "flos", "epoch", "global_step", "steps")
    counts = ("n", "n_tokens", "tokens")
    entries = []
    for key, value in metrics.items():
        if prefix:
            if not key.startswith(prefix):
                continue
            key = key[len(prefix) :]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or any(word in key for word in speed_words):
            continue
        if key in counts:
            continue
        entry = {"name": key, "value": value, "split": split}
        if dataset:
            entry["dataset"] = dataset
        entries.append(entry)
    return entries


def write_json_atomically(path, payload):
    """Write JSON to a temporary file beside `path`, then rename it: a crash never leaves half a file."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, temporary_path = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(payload, file, indent=2, ensure_ascii=False, default=str)
            file.write("\n")
        os.replace(temporary_path, path)
    except BaseException:
        if os.path.exists(temporary_path):
            os.remove(temporary_path)
        raise


RUN_INFO_NAME = "run_info.json"


def write_run_info(output_dir, **record):
    """Write `run_info.json`: what one run measured and how, for model cards (`hf_seq.model_card.read_run_data`).

    Keys used: `task`, `datasets` (Hub ids or `{"name", "details"}`), `metrics` (`[{"name", "value", "split"}]`),
    `eval_split`, `hyperparameters`, `log_history`, `base_model`, `wall_time_seconds`, `hardware`. Callers pass
    only measured values and settings, never credentials.
    """
    record.setdefault("hardware", hardware_description())
    write_json_atomically(os.path.join(output_dir, RUN_INFO_NAME), record)


def training_arguments_record(training_args):
    """The hyper-parameters worth recording from a `TrainingArguments` (tokens and paths of secrets excluded)."""
    keys = (
        "learning_rate",
        "weight_decay",
        "max_grad_norm",
        "num_train_epochs",
        "max_steps",
        "per_device_train_batch_size",
        "per_device_eval_batch_size",
        "gradient_accumulation_steps",
        "lr_scheduler_type",
        "warmup_steps",
        "seed",
        "train_sampling_strategy",
        "bf16",
        "fp16",
    )
    record = {key: getattr(training_args, key) for key in keys if hasattr(training_args, key)}
    record["world_size"] = training_args.world_size
    return record
