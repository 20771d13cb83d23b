"""Model cards filled from what a training run actually recorded.

`read_run_data(model_dir)` reads a folder written by `save_pretrained` (and the training pipeline) and
`render_model_card(run_data, repo_id)` fills the Jinja template `hf_seq/templates/model_card.md` through
`huggingface_hub.ModelCard.from_template`, with metadata in a `ModelCardData` (model-index included).

Nothing is invented: a fact the folder does not hold is left out of the card (a metric never measured, a license
never chosen, a dataset never named). What is read, in order of precedence:

- `config.json`: model family, architecture (hence the task), size hyper-parameters, labels.
- `model.safetensors` (or its shards): the number of parameters, from the tensor shapes in the header.
- `tokenizer.json` / `tokenizer_config.json`: tokenizer algorithm, vocabulary size, special tokens.
- `run_info.json` (written by hf-seq's training pipeline; every key optional):
    {"datasets": ["e9t/nsmc"] or [{"id": "e9t/nsmc", "name": ..., "details": "4,000 shipped sample reviews"}],
     "metrics": [{"name": "accuracy", "value": 0.81, "split": "test", "dataset": "e9t/nsmc"}],
     "eval_split": "test",           # the split Trainer's `eval_*` figures were measured on
     "hyperparameters": {"learning_rate": 0.001, ...},
     "training_loop": "Trainer", "wall_time_seconds": 812.5, "hardware": {"torch": "2.13.0", ...},
     "log_history": [...],           # Trainer-style log entries, for loops that write no trainer_state.json
     "tokenizer": {...},             # extra tokenizer facts to show, e.g. {"trained on": "reviews_lm train"}
     "language": "ko", "license": "apache-2.0", "base_model": "user/lm",
     "intended_use": "...", "limitations": ["...", ...]}
  A dataset given with a Hub `id` goes into the card metadata; one given only by `name` is only described.
- `all_results.json`, `eval_results.json`, `test_results.json`, `train_results.json` (Trainer's `save_metrics`):
  `{split}_{metric}` figures; `eval_` figures are attributed to `run_info["eval_split"]` when given.
- `trainer_state.json`: batch size, epochs, steps, the last evaluation (when no results file has one) and the
  `log_history` that the loss-curve image is drawn from.
"""

import io
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .models.recurrent.configuration_recurrent import RECURRENT_MODEL_TYPES


logger = logging.getLogger(__name__)

TEMPLATE_PATH = Path(__file__).parent / "templates" / "model_card.md"
LOSS_CURVE_FILE = "loss_curve.png"

FAMILIES = {
    "hf_seq_rnn": "RNN (Elman)",
    "hf_seq_lstm": "LSTM",
    "hf_seq_gru": "GRU",
    "hf_seq_transformer_lm": "Transformer (decoder-only)",
}

# Architecture class suffix -> (Hub pipeline tag, Auto class that loads it, what the model does).
TASKS = {
    "ForCausalLM": ("text-generation", "AutoModelForCausalLM", "language model"),
    "ForSequenceClassification": ("text-classification", "AutoModelForSequenceClassification", "text classifier"),
    "ForTokenClassification": ("token-classification", "AutoModelForTokenClassification", "token classifier"),
    "Model": (None, "AutoModel", "encoder (no head)"),
}

# Facts we know about datasets our runs use (language, and what to say about their limits).
KNOWN_DATASETS = {
    "e9t/nsmc": {
        "name": "NSMC (Naver Sentiment Movie Corpus)",
        "language": "ko",
        "limitation": "NSMC holds short, informal Korean movie reviews (at most 140 characters) labelled only "
        "positive or negative; other domains, neutral opinions and longer texts were not part of training.",
    },
}

# Config fields shown as the model's size, when present.
SIZE_KEYS = [
    "vocab_size",
    "embedding_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
    "position_embedding_type",
    "nonlinearity",
    "bidirectional",
    "reading_direction",
    "tie_word_embeddings",
]
# Figures that describe speed, progress or counts, not quality: those named so, and those whose name holds one of
# the words (the counts are recorded elsewhere in run_info).
NON_METRICS = {
    "n",
    "n_tokens",
    "tokens",
    "samples",
    "model_preparation_time",
    "jit_compilation_time",
    "mem_cpu_alloc_delta",
    "mem_cpu_peaked_delta",
}
NON_METRIC_WORDS = ("runtime", "per_second", "flos", "epoch", "global_step", "steps")
RESULT_FILES = ["all_results.json", "eval_results.json", "test_results.json", "train_results.json"]
SPLIT_PREFIXES = {"eval", "test", "train", "predict", "validation"}


@dataclass
class Metric:
    """One measured figure: what, how much, on which split of which dataset (a Hub id, when known)."""

    name: str
    value: float
    split: str
    dataset: str | None = None

    @property
    def display_value(self) -> str:
        return f"{self.value:.4f}" if isinstance(self.value, float) else str(self.value)


@dataclass
class RunData:
    """Everything a card may say about a model, as read from its folder."""

    architecture: str
    model_type: str
    family: str
    task: str | None
    auto_class: str
    description: str
    num_parameters: int | None
    size: dict
    tokenizer: dict
    datasets: list[dict]
    hyperparameters: dict
    compute: dict  # how the run was done: training loop, wall time, hardware
    metrics: list[Metric]
    log_history: list[dict]
    language: str | list[str] | None = None
    license: str | None = None
    base_model: str | None = None
    intended_use: str | None = None
    limitations: list[str] = field(default_factory=list)


def _read_json(path: Path) -> dict | list | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error


def is_quality_metric(name: str, value) -> bool:
    """True for a figure a card shows as a metric (`accuracy`, `loss`, `perplexity`, the name without its split
    prefix): a number that says how good the model is, not how fast or on how much it ran."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return name not in NON_METRICS and not any(word in name for word in NON_METRIC_WORDS)


def count_stored_parameters(model_dir: str | os.PathLike) -> int | None:
    """Number of stored parameters, from the safetensors headers (no tensor is loaded)."""
    from safetensors import safe_open

    model_dir = Path(model_dir)
    index = _read_json(model_dir / "model.safetensors.index.json")
    files = sorted(set(index["weight_map"].values())) if index else ["model.safetensors"]
    if not all((model_dir / name).is_file() for name in files):
        return None
    total = 0
    for name in files:
        with safe_open(str(model_dir / name), framework="numpy") as weights:
            for key in weights.keys():
                total += math.prod(weights.get_slice(key).get_shape())
    return total


def _tokenizer_facts(model_dir: Path, extra: dict) -> dict:
    facts = {}
    tokenizer_json = model_dir / "tokenizer.json"
    if tokenizer_json.is_file():
        from tokenizers import Tokenizer

        spec = _read_json(tokenizer_json)
        facts["Algorithm"] = spec.get("model", {}).get("type")
        facts["Vocabulary size"] = Tokenizer.from_file(str(tokenizer_json)).get_vocab_size(with_added_tokens=True)
        for part in ("normalizer", "pre_tokenizer"):
            if spec.get(part):
                kind = spec[part].get("type")
                steps = spec[part].get("normalizers") or spec[part].get("pretokenizers") or []
                inner = [step.get("type") for step in steps]
                facts[part.replace("_", "-").capitalize()] = f"{kind} ({', '.join(inner)})" if inner else kind
    tokenizer_config = _read_json(model_dir / "tokenizer_config.json") or {}
    if tokenizer_config.get("tokenizer_class"):
        facts["Class"] = f"`{tokenizer_config['tokenizer_class']}`"
    special = []
    for name in ("bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token"):
        token = tokenizer_config.get(name)
        token = token.get("content") if isinstance(token, dict) else token
        if token:
            special.append(f"{name.removesuffix('_token')} `{token}`")
    if special:
        facts["Special tokens"] = ", ".join(special)
    if facts or extra:
        facts.update({str(key): value for key, value in extra.items()})
    return {key: value for key, value in facts.items() if value is not None}


def _datasets(run_info: dict) -> list[dict]:
    raw = run_info.get("datasets", run_info.get("dataset", []))
    raw = [raw] if isinstance(raw, (str, dict)) else raw
    datasets = []
    for entry in raw:
        entry = {"id": entry} if isinstance(entry, str) else dict(entry)
        if not entry.get("id") and not entry.get("name"):
            raise ValueError(f"run_info.json: a dataset needs an 'id' (Hub dataset id) or a 'name', got {entry}")
        known = KNOWN_DATASETS.get(entry.get("id"), {})
        entry.setdefault("name", known.get("name", entry.get("id")))
        datasets.append(entry)
    return datasets


def _metrics_from_results(figures: dict, eval_split: str | None, dataset: str | None) -> list[Metric]:
    metrics = []
    for key, value in figures.items():
        prefix, _, name = key.partition("_")
        if prefix not in SPLIT_PREFIXES or not name or not is_quality_metric(name, value):
            continue
        split = eval_split if prefix == "eval" and eval_split else prefix
        metrics.append(Metric(name=name, value=value, split=split, dataset=None if split == "train" else dataset))
    return metrics


def read_run_data(model_dir: str | os.PathLike) -> RunData:
    """Collect what the card may say about the model saved in `model_dir` (see the module docstring)."""
    model_dir = Path(model_dir)
    config = _read_json(model_dir / "config.json")
    if config is None:
        raise FileNotFoundError(f"{model_dir} holds no config.json: is it a folder written by save_pretrained?")
    run_info = _read_json(model_dir / "run_info.json") or {}
    trainer_state = _read_json(model_dir / "trainer_state.json") or {}

    architecture = (config.get("architectures") or ["unknown"])[0]
    model_type = config.get("model_type", "unknown")
    family = FAMILIES.get(model_type, model_type)
    if model_type == "hf_seq_rnn" and config.get("nonlinearity"):
        family = f"RNN (Elman, {config['nonlinearity']})"
    suffix = next((s for s in TASKS if architecture.endswith(s)), "Model")
    task, auto_class, description = TASKS[suffix]

    size = {key: config[key] for key in SIZE_KEYS if config.get(key) is not None}
    if config.get("ngram_orders"):  # shown only when used: most models have none
        size["ngram_orders"] = ", ".join(str(order) for order in config["ngram_orders"])
        size["ngram_buckets"] = config.get("ngram_buckets")
    if task in ("text-classification", "token-classification"):
        if config.get("pooling") and task == "text-classification":
            size["pooling"] = config["pooling"]
        if config.get("id2label"):
            size["labels"] = ", ".join(
                f"{i}: {label}" for i, label in sorted(config["id2label"].items(), key=lambda item: int(item[0]))
            )

    datasets = _datasets(run_info)
    hub_dataset_ids = [d["id"] for d in datasets if d.get("id")]
    # A metric names its dataset; without one, it is attributed to the only Hub dataset the run used, if any.
    default_dataset = hub_dataset_ids[0] if len(hub_dataset_ids) == 1 else None

    metrics = []
    for entry in run_info.get("metrics", []):
        if not {"name", "value", "split"} <= set(entry):
            raise ValueError(f"run_info.json: each metric needs 'name', 'value' and 'split', got {entry}")
        metrics.append(Metric(entry["name"], entry["value"], entry["split"], entry.get("dataset", default_dataset)))
    eval_split = run_info.get("eval_split")
    for file_name in RESULT_FILES:
        metrics += _metrics_from_results(_read_json(model_dir / file_name) or {}, eval_split, default_dataset)
    log_history = trainer_state.get("log_history") or run_info.get("log_history") or []
    last_eval = next((entry for entry in reversed(log_history) if any(k.startswith("eval_") for k in entry)), None)
    if last_eval:
        metrics += _metrics_from_results(last_eval, eval_split, default_dataset)
    unique_metrics = {}
    for metric in metrics:  # the first source wins: run_info, then results files, then the trainer state
        unique_metrics.setdefault((metric.name, metric.split), metric)

    hyperparameters = dict(run_info.get("hyperparameters", {}))
    for key in ("train_batch_size", "num_train_epochs", "max_steps", "global_step", "logging_steps", "eval_steps"):
        if trainer_state.get(key) is not None:
            hyperparameters.setdefault(key, trainer_state[key])

    compute = {}
    if run_info.get("training_loop"):
        compute["Training loop"] = run_info["training_loop"]
    if run_info.get("wall_time_seconds") is not None:
        compute["Wall time"] = f"{round(float(run_info['wall_time_seconds']), 2)} s"
    hardware = run_info.get("hardware") or {}
    if hardware:
        compute["Hardware"] = ", ".join(f"{key} {value}" for key, value in hardware.items())

    language = run_info.get("language")
    if language is None:
        languages = sorted({KNOWN_DATASETS[d]["language"] for d in hub_dataset_ids if d in KNOWN_DATASETS})
        language = languages[0] if len(languages) == 1 else (languages or None)
    limitations = run_info.get("limitations")
    limitations = [limitations] if isinstance(limitations, str) else limitations

    return RunData(
        architecture=architecture,
        model_type=model_type,
        family=family,
        task=task,
        auto_class=auto_class,
        description=description,
        num_parameters=count_stored_parameters(model_dir),
        size=size,
        tokenizer=_tokenizer_facts(model_dir, run_info.get("tokenizer", {})),
        datasets=datasets,
        hyperparameters=hyperparameters,
        compute=compute,
        metrics=list(unique_metrics.values()),
        log_history=log_history,
        language=language,
        license=run_info.get("license"),
        base_model=run_info.get("base_model"),
        intended_use=run_info.get("intended_use"),
        limitations=limitations or [],
    )


def plot_loss_curve(log_history: list[dict]) -> bytes | None:
    """A PNG of training (and evaluation) loss against the step, or None when nothing was logged.

    matplotlib is optional: without it the card simply has no image (and a warning says so).
    """
    logged = [entry for entry in log_history if "step" in entry]
    train = [(entry["step"], entry["loss"]) for entry in logged if "loss" in entry]
    evaluation = [(entry["step"], entry["eval_loss"]) for entry in logged if "eval_loss" in entry]
    if not train and not evaluation:
        return None
    try:
        from matplotlib.figure import Figure  # the object API: no pyplot, no global backend switch
    except ImportError:
        logger.warning("matplotlib is not installed: the model card will have no loss-curve image")
        return None
    figure = Figure(figsize=(6, 3.5), dpi=100)
    axes = figure.subplots()
    for points, label, style in ((train, "training loss", "-"), (evaluation, "evaluation loss", "o-")):
        if points:
            steps, losses = zip(*points)
            axes.plot(steps, losses, style, label=label)
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _default_intended_use(run: RunData) -> str:
    trained_on = ", ".join(d["name"] for d in run.datasets)
    domain = f" in the domain of its training data ({trained_on})" if trained_on else ""
    if run.task == "text-generation":
        return (
            f"Scoring (perplexity) and generating text{domain}; a small, fast baseline for research and teaching "
            "on language modelling."
        )
    if run.task == "text-classification":
        labels = f" into the labels {run.size['labels']}" if "labels" in run.size else ""
        return f"Classifying short texts{labels}{domain}; a small, fast baseline for research and teaching."
    if run.task == "token-classification":
        return f"Labelling each token of a text{domain}; a small, fast baseline for research and teaching."
    return f"Producing contextual representations of text{domain} for a task-specific head."


def _default_limitations(run: RunData) -> list[str]:
    limitations = [KNOWN_DATASETS[d["id"]]["limitation"] for d in run.datasets if d.get("id") in KNOWN_DATASETS]
    if run.datasets:
        limitations.append("Trained only on the data above: expect lower quality on text from other domains.")
    if run.model_type in RECURRENT_MODEL_TYPES:
        limitations.append(
            "A recurrent model carries its context in a fixed-size state, so information from far "
            "back in a long text fades."
        )
    limitations.append(
        "Its outputs were not evaluated for bias, toxicity or factual accuracy: do not use it for "
        "decisions about people."
    )
    return limitations


def _eval_result(task: str, metric: Metric) -> EvalResult:
    """A model-index entry for one measured figure, naming its dataset as people know it."""
    return EvalResult(
        task_type=task,
        dataset_type=metric.dataset,
        dataset_name=KNOWN_DATASETS.get(metric.dataset, {}).get("name", metric.dataset),
        dataset_split=metric.split,
        metric_type=metric.name,
        metric_name=metric.name,
        metric_value=metric.value,
    )


def render_model_card(
    run: RunData,
    repo_id: str,
    *,
    license: str | None = None,
    language: str | None = None,
    loss_curve_file: str | None = None,
) -> ModelCard:
    """Fill the card template from `run`; `license` / `language` given here win over those in run_info.json.

    `loss_curve_file` is the repo path of the loss-curve image when one is pushed with the card.
    """
    license = license or run.license
    language = language or run.language
    model_name = repo_id.split("/")[-1]
    hub_dataset_ids = [d["id"] for d in run.datasets if d.get("id")]

    # model-index holds evaluation results only: a known task, a Hub dataset and a split other than train.
    eval_results = [
        _eval_result(run.task, metric)
        for metric in run.metrics
        if run.task and metric.dataset and metric.split != "train"
    ]
    family_tag = run.model_type.removeprefix("hf_seq_").replace("_", "-")
    card_data = ModelCardData(
        language=language,
        license=license,
        library_name="transformers",
        pipeline_tag=run.task,
        tags=["hf-seq", family_tag, "custom_code"]
        + (["recurrent"] if run.model_type in RECURRENT_MODEL_TYPES else []),
        datasets=hub_dataset_ids or None,
        base_model=run.base_model,
        metrics=sorted({result.metric_type for result in eval_results}) or None,
        model_name=model_name if eval_results else None,
        eval_results=eval_results or None,
    )

    layers = run.size.get("num_hidden_layers")
    summary = f"A {f'{layers}-layer ' if layers else ''}{run.family} {run.description}"
    if run.size.get("reading_direction") == "backward":
        summary += " that reads each text backward (last token first)"
    if run.num_parameters is not None:
        summary += f" with {run.num_parameters:,} parameters"
    trained_on = [d["name"] for d in run.datasets if d.get("split") != "validation"]
    if trained_on:
        summary += f", trained on {', '.join(trained_on)}"
    summary += "."
    if run.base_model:  # the metadata names it too; the text says what it means for these weights
        summary += f" Its training started from the weights of `{run.base_model}`."

    training_datasets = [
        {
            "id": d.get("id"),
            "name": d["name"],
            "details": "; ".join(
                str(d[key]) for key in ("details", "split", "num_examples") if d.get(key) is not None
            ),
        }
        for d in run.datasets
    ]
    return ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATE_PATH),
        model_name=model_name,
        repo_id=repo_id,
        summary=summary,
        family=run.family,
        architecture=run.architecture,
        auto_class=run.auto_class,
        num_parameters=run.num_parameters,
        size=run.size,
        tokenizer=run.tokenizer,
        training_datasets=training_datasets,
        hyperparameters=run.hyperparameters,
        compute=run.compute,
        loss_curve=loss_curve_file,
        metrics=run.metrics,
        intended_use=run.intended_use or _default_intended_use(run),
        limitations=run.limitations or _default_limitations(run),
        license=license,
    )


def render_ensemble_card(
    repo_id: str,
    members: list[dict],
    metrics: list[Metric],
    *,
    language: str | None = None,
    license: str | None = None,
) -> ModelCard:
    """A card for classifiers used together, their class probabilities averaged (`hf_seq.training.evaluate_ensemble`).

    `members`: one dict per classifier, `{"repo_id", "num_parameters", "reading_direction", "metrics": [Metric]}`
    (each member's own figures); `metrics`: the ensemble's. A figure only members have (e.g. their base LM's
    perplexity) gets a column of its own, "—" for the ensemble. As for single models, only what was measured is shown.
    """
    if len(members) < 2:
        raise ValueError(f"an ensemble card needs at least two members, got {len(members)}")
    eval_results = [_eval_result("text-classification", metric) for metric in metrics if metric.dataset]
    model_name = repo_id.split("/")[-1]
    card_data = ModelCardData(
        language=language,
        license=license,
        library_name="transformers",
        pipeline_tag="text-classification",
        tags=["hf-seq", "ensemble"],
        base_model=[member["repo_id"] for member in members],
        datasets=sorted({metric.dataset for metric in metrics if metric.dataset}) or None,
        metrics=sorted({result.metric_type for result in eval_results}) or None,
        model_name=model_name if eval_results else None,
        eval_results=eval_results or None,
    )
    total_parameters = sum(member["num_parameters"] for member in members)
    ensemble_figures = {(metric.name, metric.split): f"**{metric.display_value}**" for metric in metrics}
    columns = list(ensemble_figures)  # the ensemble's figures first, then any only its members have
    for member in members:
        columns += [key for key in ((m.name, m.split) for m in member.get("metrics", [])) if key not in columns]
    lines = [
        "---",
        card_data.to_yaml(),
        "---",
        "",
        f"# {model_name}",
        "",
        f"An ensemble of {len(members)} text classifiers ({total_parameters:,} parameters in all): each reads the "
        "text on its own and their class probabilities are averaged, as ULMFiT combines a forward and a backward "
        "model. It is not one checkpoint: load each member from its own repository.",
        "",
        "## Members",
        "",
        "| member | reads | parameters | " + " | ".join(f"{name} ({split})" for name, split in columns) + " |",
        "|---|---|---|" + "---|" * len(columns),
    ]
    for member in members:
        own = {(metric.name, metric.split): metric.display_value for metric in member.get("metrics", [])}
        lines.append(
            f"| [`{member['repo_id']}`](https://huggingface.co/{member['repo_id']}) | "
            f"{member.get('reading_direction', 'forward')} | {member['num_parameters']:,} | "
            + " | ".join(own.get(column, "—") for column in columns)
            + " |"
        )
    lines.append(
        "| **ensemble** | — | "
        + f"{total_parameters:,} | "
        + " | ".join(ensemble_figures.get(column, "—") for column in columns)
        + " |"
    )
    lines += [
        "",
        "## How to use",
        "",
        "```python",
        "from huggingface_hub import snapshot_download",
        "from hf_seq.training import evaluate_ensemble",
        "",
        f"members = [snapshot_download(repo_id) for repo_id in {[member['repo_id'] for member in members]!r}]",
        'print(evaluate_ensemble(members, "ratings_test.txt"))  # or: hf-seq evaluate --model FOLDER FOLDER ...',
        "```",
        "",
        "To classify new text, run each member (`AutoModelForSequenceClassification`, `trust_remote_code=True` "
        "without hf_seq installed) with its own tokenizer and average the softmax of their logits.",
        "",
        "## Limitations",
        "",
        "The members share their limitations (see their cards); averaging costs one forward pass per member.",
    ]
    return ModelCard("\n".join(lines) + "\n")
