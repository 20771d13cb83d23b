"""What pretraining, fine-tuning and evaluation share: loading tokenizers and models, and the per-run record."""

import ast
import copy
import dataclasses
import difflib
import hashlib
import json
import logging
import math
import os
import platform
import tempfile
from dataclasses import dataclass, field

import torch
from huggingface_hub.errors import StrictDataclassError
from safetensors import SafetensorError, safe_open
from transformers import (
    CONFIG_MAPPING,
    AutoConfig,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from tokenizer_training import model_config_kwargs

from ..model_card import is_quality_metric
from ..models.recurrent.configuration_recurrent import RECURRENT_MODEL_TYPES


logger = logging.getLogger(__name__)

# Short names for the recurrent families, as users type them on the command line.
MODEL_TYPE_ALIASES = {
    "rnn": "hf_seq_rnn",
    "lstm": "hf_seq_lstm",
    "gru": "hf_seq_gru",
    "transformer": "hf_seq_transformer_lm",
}


@dataclass
class TrainingRun:
    """What a training function returns: the trained model, its tokenizer, the measured metrics, where it was saved."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    metrics: dict = field(default_factory=dict)
    output_dir: str | None = None


def load_tokenizer(tokenizer, trust_remote_code=False):
    """A tokenizer object as is, or one loaded with `AutoTokenizer.from_pretrained` from a folder or Hub id.

    Never runs code from the folder unless `trust_remote_code` (transformers would otherwise ask on the terminal).
    """
    if isinstance(tokenizer, PreTrainedTokenizerBase):
        return tokenizer
    if tokenizer is None:
        raise ValueError("a tokenizer is required (a tokenizer object, or a folder saved with save_pretrained)")
    if _missing_local_path(tokenizer):
        raise FileNotFoundError(f"tokenizer folder not found: {tokenizer}")
    if os.path.isdir(tokenizer):
        _check_tokenizer_files(tokenizer)
    try:
        return AutoTokenizer.from_pretrained(tokenizer, trust_remote_code=trust_remote_code)
    except (ValueError, OSError) as error:
        if "trust_remote_code" in str(error):
            raise ValueError(_remote_code_refused(tokenizer, "its tokenizer")) from None
        raise
    except Exception as error:  # tokenizers reports a malformed tokenizer.json as a bare Exception
        raise OSError(f"the tokenizer in {tokenizer} cannot be read ({error}): save the tokenizer again") from None


# The files AutoTokenizer builds a tokenizer from: tokenizer.json (hf-seq's, and every fast tokenizer), or the
# vocabulary a slow tokenizer is converted from.
TOKENIZER_VOCABULARY_FILES = (
    "tokenizer.json",
    "vocab.json",
    "vocab.txt",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
)


def _check_tokenizer_files(folder):
    """Name the missing files of a local folder without a tokenizer (transformers says "install sentencepiece")."""
    if any(os.path.isfile(os.path.join(folder, name)) for name in TOKENIZER_VOCABULARY_FILES):
        return
    missing = ["tokenizer.json"]
    if not os.path.isfile(os.path.join(folder, "tokenizer_config.json")):
        missing.append("tokenizer_config.json")
    raise FileNotFoundError(
        f"{folder} holds no tokenizer: {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing. Save "
        "the tokenizer there (tokenizer.save_pretrained(folder); hf-seq pretrain and finetune do), or give the "
        "tokenizer's own folder"
    )


def _remote_code_refused(folder, what, model_type=None):
    reason = (
        f" names model_type {model_type!r}, which is neither hf-seq's nor transformers' own, so" if model_type else ":"
    )
    return (
        f"{folder}{reason} loading {what} would run the Python files in that folder; pass --trust_remote_code "
        "(trust_remote_code=True) only if you trust that code"
    )


def read_model_config(model_dir, trust_remote_code=False, **config_kwargs):
    """The config of a saved model (a folder or Hub id), with `config_kwargs` set on it (e.g. `num_labels`).

    A local folder is checked first, so that each problem is named with its file: config.json must exist, be
    JSON and name a model_type transformers knows (hf-seq's families are registered with it) unless
    `trust_remote_code`; without that flag the folder's code is never run and no question is asked.
    Returns `(config, unused_kwargs)`: the keyword arguments that were not config fields, for `from_pretrained`.
    """
    if os.path.isfile(model_dir):
        raise NotADirectoryError(f"{model_dir} is a file; give the model's folder (written by save_pretrained)")
    if os.path.isdir(model_dir):
        config_path = os.path.join(model_dir, "config.json")
        if not os.path.isfile(config_path):
            raise FileNotFoundError(f"{model_dir} has no config.json: it is not a folder saved with save_pretrained")
        try:
            with open(config_path, encoding="utf-8") as handle:
                model_type = json.load(handle).get("model_type")
        except (UnicodeDecodeError, json.JSONDecodeError, AttributeError) as error:
            raise ValueError(
                f"{config_path} is not a JSON object ({error}): restore the config.json saved with the model"
            ) from None
        if model_type is None:
            raise ValueError(f"{config_path} names no model_type: restore the config.json saved with the model")
        if model_type not in CONFIG_MAPPING and not trust_remote_code:
            raise ValueError(_remote_code_refused(model_dir, "it", model_type))
    try:
        return AutoConfig.from_pretrained(
            model_dir, trust_remote_code=trust_remote_code, return_unused_kwargs=True, **config_kwargs
        )
    except (ValueError, TypeError, StrictDataclassError) as error:  # a field the config class refuses
        if "trust_remote_code" in str(error):
            raise ValueError(_remote_code_refused(model_dir, "it")) from None
        raise ValueError(f"the config of {model_dir} is not valid: {error}") from None


def load_saved_model(model_dir, auto_class, trust_remote_code=False, **kwargs):
    """`auto_class.from_pretrained(model_dir, **kwargs)` after checks that name the file at fault: the config (see
    `read_model_config`) and, for a local folder, that the weights can be read and fit the config."""
    config, model_kwargs = read_model_config(model_dir, trust_remote_code=trust_remote_code, **kwargs)
    if os.path.isdir(model_dir):
        check_weights_fit_config(model_dir, auto_class, config, trust_remote_code=trust_remote_code)
    try:
        return auto_class.from_pretrained(
            model_dir, config=config, trust_remote_code=trust_remote_code, **model_kwargs
        )
    except ValueError as error:
        if "trust_remote_code" in str(error):
            raise ValueError(_remote_code_refused(model_dir, "it")) from None
        raise
    except RuntimeError as error:  # e.g. the weights of another model: transformers' report is above
        raise OSError(f"could not load the model in {model_dir}: {error}") from None


def check_weights_fit_config(model_dir, auto_class, config, trust_remote_code=False):
    """Raise OSError for a model.safetensors that cannot be read (empty, truncated, a broken header), ValueError
    for weights whose shapes differ from the ones `config` gives `auto_class` (e.g. an edited vocab_size).

    transformers reports either as a bare error or a table, without the file's name.
    """
    weight_files = _safetensors_files(model_dir)
    if not weight_files:
        if os.path.isfile(os.path.join(model_dir, "pytorch_model.bin")):
            return  # the older format: left to transformers
        raise FileNotFoundError(
            f"{model_dir} has no weights (model.safetensors is missing): give a folder saved with save_pretrained"
        )
    expected_shapes = None
    for path in weight_files:
        try:
            with safe_open(path, framework="pt") as weights:
                shapes = {key: list(weights.get_slice(key).get_shape()) for key in weights.keys()}
        except (SafetensorError, OSError) as error:
            raise OSError(
                f"{path} cannot be read ({error}): the file is empty, truncated or corrupt; save the "
                "model again or copy the file again"
            ) from None
        expected_shapes = expected_shapes or _parameter_shapes(auto_class, config, trust_remote_code)
        for key, shape in shapes.items():
            if key in expected_shapes and expected_shapes[key] != shape:
                raise ValueError(
                    f"{path} does not fit {model_dir}/config.json: {key} is {shape} in the weights but "
                    f"{expected_shapes[key]} in the model the config describes (was vocab_size or another size "
                    "edited?); restore the config.json saved with these weights"
                )


def _safetensors_files(model_dir):
    """model.safetensors, or the shards a model.safetensors.index.json lists; [] when there are neither."""
    single = os.path.join(model_dir, "model.safetensors")
    if os.path.isfile(single):
        return [single]
    index_path = os.path.join(model_dir, "model.safetensors.index.json")
    if not os.path.isfile(index_path):
        return []
    try:
        with open(index_path, encoding="utf-8") as handle:
            shards = sorted(set(json.load(handle)["weight_map"].values()))
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"{index_path} is not a safetensors index ({error!r}): save the model again") from None
    return [os.path.join(model_dir, shard) for shard in shards]


def _parameter_shapes(auto_class, config, trust_remote_code=False):
    """The shape of every weight `auto_class` builds from `config`, built on the meta device (no memory, no init)."""
    with torch.device("meta"):
        model = auto_class.from_config(config, trust_remote_code=trust_remote_code)
    return {name: list(tensor.shape) for name, tensor in model.state_dict().items()}


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


def _nearest(name, choices):
    """` (did you mean 'x'?)` for the choice closest to a misspelt `name`, or "" when none is close."""
    close = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def project_model_type(model_type):
    """The full model_type of one of hf-seq's own families, from its short name ("lstm") or its full one.

    Any other model_type is refused: transformers knows hundreds, and would build a full-size model of any of them.
    """
    if model_type in MODEL_TYPE_ALIASES.values():
        return model_type
    if model_type in MODEL_TYPE_ALIASES:
        return MODEL_TYPE_ALIASES[model_type]
    names = [*MODEL_TYPE_ALIASES, *MODEL_TYPE_ALIASES.values()]
    raise ValueError(
        f"unknown model_type {model_type!r}{_nearest(str(model_type), names)}: hf-seq builds its own families "
        f"only: {', '.join(MODEL_TYPE_ALIASES)} (or {', '.join(MODEL_TYPE_ALIASES.values())})"
    )


def config_fields(config_class):
    """The names a config of `config_class` takes: its dataclass fields (transformers 5 configs are dataclasses)
    and `num_labels`, which sets `id2label`."""
    return sorted({item.name for item in dataclasses.fields(config_class) if item.init} | {"num_labels"})


def check_config_overrides(config_class, overrides):
    """Raise ValueError for an override that names no field of `config_class`, naming the nearest field.

    A config keeps any unknown keyword as an extra attribute, so a misspelt `hiden_size=16` would otherwise be
    saved beside the default `hidden_size` and silently change nothing.
    """
    fields = config_fields(config_class)
    for key in overrides:
        if key not in fields:
            raise ValueError(
                f"config override {key!r} is not a field of {config_class.__name__}{_nearest(key, fields)}"
            )


def config_for_tokenizer(model_type, tokenizer, **overrides):
    """A fresh config of one of hf-seq's families (`model_type` "lstm", "gru", "rnn", "transformer" or their full
    names) sized for `tokenizer`, with `overrides` (each must be a field of that config).

    The vocabulary size and the pad/bos/eos ids come from the tokenizer, so model and tokenizer always agree.
    """
    config_class = CONFIG_MAPPING[project_model_type(model_type)]
    check_config_overrides(config_class, overrides)
    special_ids = model_config_kwargs(tokenizer, require_special_tokens=False)  # a Hub tokenizer may lack pad
    return built_config(config_class, {**special_ids, **overrides})


def built_config(config_class, arguments: dict):
    """`config_class(**arguments)`, a value it refuses (e.g. hidden_size="abc", ngram_orders=[1]) named in a
    one-line ValueError."""
    try:
        return config_class(**arguments)
    except (StrictDataclassError, TypeError) as error:
        raise ValueError(f"config_overrides: {' '.join(str(error).split())}") from error


def load_model(
    model,
    auto_class,
    tokenizer=None,
    model_type=None,
    config_overrides=None,
    trust_remote_code=False,
    **from_pretrained_kwargs,
):
    """The model to train, whatever the caller has:

    - a `PreTrainedModel`: used as is;
    - a `PretrainedConfig`: a fresh model of `auto_class` built from it;
    - a folder or Hub id: `auto_class.from_pretrained(model, **from_pretrained_kwargs)` (e.g. a pretrained LM folder
      loaded into `AutoModelForSequenceClassification`: the body is reused, the head is new), through
      `load_saved_model`'s checks; a folder's own code runs only with `trust_remote_code`;
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
        if overrides:  # a misspelt field would otherwise reach the model's __init__ as a keyword (a TypeError)
            config_class = type(read_model_config(model, trust_remote_code=trust_remote_code)[0])
            check_config_overrides(config_class, overrides)
        return load_saved_model(
            model, auto_class, trust_remote_code=trust_remote_code, **overrides, **from_pretrained_kwargs
        )
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


def check_length_fits_positions(config, length, setting, extra_positions=0):
    """Raise ValueError when inputs of `length` tokens (plus `extra_positions` the model adds itself) need more
    positions than a model with learned absolute positions has, naming the setting (`max_length=...`) to lower.

    Checked before any work: the model would otherwise fail at its first long batch, after training has begun.
    """
    if getattr(config, "position_embedding_type", None) != "learned":
        return  # recurrent models and rotary positions have no table to run past
    limit = config.max_position_embeddings
    if length + extra_positions > limit:
        added = f" (and {extra_positions} the model adds)" if extra_positions else ""
        raise ValueError(
            f"{setting}={length} is too long for this model: its inputs{added} need {length + extra_positions} "
            f"positions, but it learned position embeddings for only max_position_embeddings={limit}; use "
            f"{setting} <= {limit - extra_positions}"
        )


def check_positive_int(name, value):
    """Raise ValueError naming a setting that must be a positive whole number (a length, a size, a count)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


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

    Only quality figures are kept (`hf_seq.model_card.is_quality_metric`: no runtimes, throughputs or counts);
    `prefix` (e.g. "eval_") is stripped and required.
    """
    entries = []
    for key, value in metrics.items():
        if prefix:
            if not key.startswith(prefix):
                continue
            key = key[len(prefix) :]
        if not is_quality_metric(key, value):
            continue
        entry = {"name": key, "value": value, "split": split}
        if dataset:
            entry["dataset"] = dataset
        entries.append(entry)
    return entries


def _finite_json_values(value, where, path):
    """`value` with every NaN or infinity replaced by None (JSON has neither), warning once for each."""
    if isinstance(value, float) and not math.isfinite(value):
        logger.warning("%s: %s is %s, written as null", path, where or "a value", value)
        return None
    if isinstance(value, dict):
        return {key: _finite_json_values(item, f"{where}.{key}".lstrip("."), path) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_json_values(item, f"{where}[{index}]", path) for index, item in enumerate(value)]
    return value


def initialise_embeddings_from_word2vec(model, word2vec_dir, tokenizer, fresh_model, resuming) -> dict:
    """Copy word2vec vectors (`hf-seq train-word2vec`, same tokenizer) into a fresh model's input embeddings.

    Only a fresh model takes them: over trained weights, or a run resumed from a checkpoint, they would replace
    what was learned. Returns what the run record keeps of it.
    """
    if not fresh_model or resuming:
        raise ValueError(
            f"init_embeddings_from={word2vec_dir} initialises a fresh model's embeddings, but this run continues "
            "trained weights (a model folder or a checkpoint): drop init_embeddings_from, or start from a config"
        )
    from ..word2vec import init_embeddings_from

    rows_copied = init_embeddings_from(model, word2vec_dir, tokenizer)
    return {"word2vec_dir": str(word2vec_dir), "rows_copied": rows_copied}


def write_json_atomically(path, payload):
    """Write JSON to a temporary file beside `path`, then rename it: a crash never leaves half a file.

    Non-finite numbers become null (with a warning), so that any JSON reader can read the file.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    payload = _finite_json_values(payload, "", path)
    handle, temporary_path = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(payload, file, indent=2, ensure_ascii=False, default=str, allow_nan=False)
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


def save_trainer_run(trainer, train_metrics, record):
    """Save a finished `Trainer` run into its output_dir: the model with its tokenizer, trainer_state.json,
    train_results.json (`train_metrics`) and, from the main process, run_info.json (`record`, see `write_run_info`).

    Every process returns only once the folder is complete (the main process writes it).
    """
    trainer.save_model()
    trainer.save_state()
    trainer.save_metrics("train", train_metrics)
    if trainer.is_world_process_zero():
        write_run_info(trainer.args.output_dir, **record)
    trainer.accelerator.wait_for_everyone()


def tokenizer_fingerprint(tokenizer):
    """ "sha256:..." of the tokenizer's vocabulary (every token with its id, added tokens included): two tokenizers
    share it exactly when each id means the same token in both."""
    vocabulary = sorted(tokenizer.get_vocab().items(), key=lambda item: (item[1], item[0]))
    encoded = json.dumps(vocabulary, ensure_ascii=False).encode("utf-8")
    return "sha256:" + hashlib.sha256(encoded).hexdigest()


def recorded_tokenizer_fingerprint(model_dir):
    """The fingerprint of the tokenizer a saved model was trained with: the one run_info.json records, else that
    of the tokenizer files saved beside the model; None when the folder holds neither."""
    run_info_path = os.path.join(model_dir, RUN_INFO_NAME)
    if os.path.isfile(run_info_path):
        with open(run_info_path, encoding="utf-8") as handle:
            recorded = json.load(handle).get("tokenizer_fingerprint")
        if recorded:
            return recorded
    if any(os.path.isfile(os.path.join(model_dir, name)) for name in ("tokenizer.json", "tokenizer_config.json")):
        return tokenizer_fingerprint(load_tokenizer(model_dir))  # never runs the folder's code, never asks
    return None


def check_tokenizer_matches_model(model, tokenizer, allow_tokenizer_mismatch=False):
    """Raise ValueError when `tokenizer` is not the one the saved model `model` (a local folder) was trained with.

    Another tokenizer, even of the same size, gives each id another token, and the model would learn from noise
    without any error. Models in memory, Hub ids and folders with no record of their tokenizer are not checked.
    """
    if allow_tokenizer_mismatch or not isinstance(model, (str, os.PathLike)) or not os.path.isdir(model):
        return
    recorded = recorded_tokenizer_fingerprint(model)
    if recorded is None:
        logger.warning(
            "%s records no tokenizer: cannot check that the given one is the one it was trained with", model
        )
        return
    if recorded != tokenizer_fingerprint(tokenizer):
        raise ValueError(
            f"the tokenizer is not the one {model} was trained with (their vocabularies differ, so its ids would "
            "mean other tokens): use the tokenizer saved with the model, or pass allow_tokenizer_mismatch=True / "
            "--allow_tokenizer_mismatch if this is intended"
        )


def training_args_without_secrets(training_args):
    """`training_args` without the Hub token: a copy whose `hub_token` is None (the caller's object is unchanged).

    Trainer pickles its arguments into training_args.bin in the output folder and in every checkpoint, where a
    token would sit in plain text. Without it, the Hub is reached with the token from HF_TOKEN or `hf auth login`.
    """
    if training_args.hub_token is None:
        return training_args
    logger.warning(
        "hub_token is not used (Trainer would write it into training_args.bin): the Hub token comes from "
        "HF_TOKEN or `hf auth login`"
    )
    stripped = copy.copy(training_args)
    stripped.hub_token = None
    return stripped


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
