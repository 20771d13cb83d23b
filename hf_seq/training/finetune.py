"""Fine-tuning for sequence classification (NSMC sentiment) and token classification, on `Trainer`."""

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from datasets import DatasetDict
from transformers import (
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    DataCollatorForTokenClassification,
    DataCollatorWithPadding,
    PretrainedConfig,
    Trainer,
    set_seed,
)

from ..data.nsmc import load_nsmc
from .callbacks import CheckpointCompleteCallback, GradualUnfreezingCallback, WeightAveragingCallback
from .checkpoints import checkpoint_elapsed_seconds, resolve_resume_checkpoint, resumes
from .common import (
    TrainingRun,
    check_length_fits_positions,
    check_positive_int,
    check_tokenizer_matches_model,
    count_parameters,
    initialise_embeddings_from_word2vec,
    load_model,
    load_tokenizer,
    metrics_for_card,
    save_trainer_run,
    tokenizer_fingerprint,
    training_args_without_secrets,
    training_arguments_record,
)
from .encoding import (
    SubwordDropoutDataset,
    empty_document_ids,  # noqa: F401 (imported from here by bench/nsmc_accuracy_by_length.py)
    encode_for_sequence_classification,
    encode_for_token_classification,
    label_names,
)
from .metrics import argmax_logits, sequence_classification_metrics, token_classification_metrics
from .optimization import layerwise_optimizer
from .output_dir import prepare_output_dir


@dataclass(frozen=True)
class Task:
    """What differs between the tasks: the head, the default columns, how examples are encoded and batched, and
    the metrics."""

    auto_class: type
    text_column: str
    label_column: str
    encode: Callable
    collator_class: type
    compute_metrics: Callable


TASKS_BY_NAME = {
    "sequence-classification": Task(
        auto_class=AutoModelForSequenceClassification,
        text_column="document",
        label_column="label",
        encode=encode_for_sequence_classification,
        collator_class=DataCollatorWithPadding,
        compute_metrics=sequence_classification_metrics,
    ),
    # Each example is a list of words (`tokens`) with one label per word (`tags`).
    "token-classification": Task(
        auto_class=AutoModelForTokenClassification,
        text_column="tokens",
        label_column="tags",
        encode=encode_for_token_classification,
        collator_class=DataCollatorForTokenClassification,
        compute_metrics=token_classification_metrics,
    ),
}
TASKS = tuple(TASKS_BY_NAME)

# What run_info.json says of the dataset when none is named.
SHIPPED_SAMPLE_RECORD = {
    "name": "NSMC sample",
    "details": "the 4,000 train / 1,000 test reviews shipped with hf-seq (a CC0 sample of e9t/nsmc)",
}
CUSTOM_DATASET_RECORD = {"name": "custom", "details": "a DatasetDict given in code"}


def finetune(
    training_args,
    tokenizer,
    model=None,
    dataset=None,
    task="sequence-classification",
    text_column=None,
    label_column=None,
    eval_split="test",
    max_length=128,
    model_type=None,
    config_overrides=None,
    dataset_name=None,
    extra_run_info=None,
    subword_dropout=0.0,
    layerwise_lr_decay=1.0,
    gradual_unfreezing=0.0,
    weight_averaging=0.0,
    overwrite_output_dir=False,
    allow_tokenizer_mismatch=False,
    trust_remote_code=False,
    init_embeddings_from=None,
):
    """Fine-tune a classifier with `Trainer` and save it, with its tokenizer and run_info.json, to output_dir.

    Args:
        training_args: `transformers.TrainingArguments` (output_dir, epochs, batch size, eval/save strategy,
            resume_from_checkpoint...).
        tokenizer: a tokenizer object or a folder saved with `save_pretrained`.
        model: a pretrained LM folder (its body is loaded into `AutoModelFor{Sequence,Token}Classification`, the
            head is new), a classifier folder, a config or a model; `None` builds a fresh `model_type` model.
        dataset: a `DatasetDict` with a `train` split (and `eval_split`), or anything `load_nsmc` takes (a folder
            with the NSMC files, a Hub id); `None` loads the NSMC sample shipped with the package.
        task: "sequence-classification" (columns `document`/`label` by default) or "token-classification"
            (columns `tokens`/`tags`: a list of words and one label per word).
        eval_split: the split to evaluate on after training (skipped when the dataset lacks it).
        max_length: documents are truncated to this many tokens.
        dataset_name: the Hub dataset id to record in run_info.json (e.g. "e9t/nsmc").
        subword_dropout: BPE-dropout probability for the training documents (sequence classification with a BPE
            tokenizer): each epoch re-tokenises them with merges dropped at this rate. 0 tokenises once, exactly.
        layerwise_lr_decay: discriminative learning rates: the head trains at `training_args.learning_rate`, each
            layer below at this factor times the rate above it (ULMFiT uses 1/2.6). 1 trains everything alike.
        gradual_unfreezing: epochs (fractions allowed) between unfreezing successive layer groups, top down: the
            head alone first, then each body layer, then the embeddings (ULMFiT unfreezes one per epoch). 0 trains
            every layer from the first step. With several processes it needs `ddp_find_unused_parameters=True`.
        weight_averaging: average the weights over the last this many epochs (fractions allowed) and keep the mean
            (SWA): the model saved and evaluated is the average. The weights of the last step are evaluated too
            (`eval_last_step_*` metrics) so the two can be compared. 0 keeps the last step's weights.
        overwrite_output_dir: empty a non-empty output_dir and train into it; without it (or resume_from_checkpoint)
            a non-empty output_dir is refused. output_dir may never be, hold or lie in a folder the run reads (so
            a classifier never replaces the LM it is fine-tuned from).
        allow_tokenizer_mismatch: fine-tune a model folder with another tokenizer than the one it was trained with
            (refused by default: the ids would mean other tokens).
        trust_remote_code: load a model or tokenizer folder whose model_type is neither hf-seq's nor transformers'
            by running the Python files it holds (refused by default; only for folders you trust).
        init_embeddings_from: a word2vec folder (`hf-seq train-word2vec`) trained with the same tokenizer, whose
            vectors initialise a fresh model's input embeddings (and a tied LM head).

    Returns:
        A `TrainingRun` whose metrics hold `train_loss` and `eval_accuracy`, `eval_n` (examples evaluated).
    """
    _check_settings(
        training_args, task, max_length, subword_dropout, layerwise_lr_decay, gradual_unfreezing, weight_averaging
    )
    training_args = training_args_without_secrets(training_args)
    read_paths = {"the model": model, "the tokenizer": tokenizer, "the dataset": dataset}
    checkpoint = resolve_resume_checkpoint(training_args.resume_from_checkpoint, training_args.output_dir)
    tokenizer = load_tokenizer(tokenizer, trust_remote_code=trust_remote_code)
    check_tokenizer_matches_model(model, tokenizer, allow_tokenizer_mismatch)
    dataset, dataset_record = _load_dataset(dataset, dataset_name)
    parts = TASKS_BY_NAME[task]
    text_column, label_column = text_column or parts.text_column, label_column or parts.label_column
    base_model = model if isinstance(model, (str, os.PathLike)) else None
    fresh_model = model is None or isinstance(model, PretrainedConfig)
    model = _load_classifier(
        model, task, dataset, label_column, tokenizer, model_type, config_overrides, training_args, trust_remote_code
    )
    # A "cls" pooling classifier appends one learned token after the text, which takes a position too.
    appended_positions = int(task == "sequence-classification" and getattr(model.config, "pooling", None) == "cls")
    check_length_fits_positions(model.config, max_length, "max_length", extra_positions=appended_positions)
    if init_embeddings_from is not None:
        read_paths["the word vectors"] = init_embeddings_from
        word2vec_record = initialise_embeddings_from_word2vec(
            model, init_embeddings_from, tokenizer, fresh_model, resumes(training_args)
        )
        extra_run_info = {**(extra_run_info or {}), "init_embeddings_from": word2vec_record}
    prepare_output_dir(training_args, overwrite_output_dir, read_paths)

    trainer = _make_trainer(
        model,
        tokenizer,
        dataset,
        parts,
        training_args,
        text_column,
        label_column,
        max_length,
        eval_split,
        subword_dropout,
    )
    earlier_seconds = checkpoint_elapsed_seconds(checkpoint)  # a resumed run's earlier sittings
    weight_average = _add_callbacks(trainer, model, gradual_unfreezing, weight_averaging, checkpoint, earlier_seconds)
    if layerwise_lr_decay != 1.0:
        trainer.optimizer = layerwise_optimizer(model, training_args, layerwise_lr_decay)
    start_time = time.time()
    train_metrics, metrics = _train_and_evaluate(trainer, checkpoint, weight_average)
    metrics["total_train_runtime"] = round(earlier_seconds + train_metrics["train_runtime"], 2)  # every sitting
    wall_time = earlier_seconds + time.time() - start_time

    hyperparameters = {
        "max_length": max_length,
        "subword_dropout": subword_dropout,
        "layerwise_lr_decay": layerwise_lr_decay,
        "gradual_unfreezing": gradual_unfreezing,
        "weight_averaging": weight_averaging,
    }
    record = _run_record(
        trainer, task, tokenizer, dataset, dataset_record, eval_split, metrics, hyperparameters, wall_time
    )
    if base_model is not None:
        record["base_model_path"] = os.fspath(base_model)
    record.update(extra_run_info or {})
    save_trainer_run(trainer, train_metrics, record)
    return TrainingRun(model=trainer.model, tokenizer=tokenizer, metrics=metrics, output_dir=training_args.output_dir)


def _check_settings(
    training_args, task, max_length, subword_dropout, layerwise_lr_decay, gradual_unfreezing, weight_averaging
):
    """Raise ValueError for a setting out of range, before any work."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    check_positive_int("max_length", max_length)
    if subword_dropout and task != "sequence-classification":
        raise ValueError("subword_dropout applies to sequence classification only")
    if not 0.0 < layerwise_lr_decay <= 1.0:
        raise ValueError(f"layerwise_lr_decay must be in (0, 1], got {layerwise_lr_decay}")
    if not gradual_unfreezing >= 0.0:
        raise ValueError(f"gradual_unfreezing must be a number of epochs >= 0, got {gradual_unfreezing}")
    if not weight_averaging >= 0.0:
        raise ValueError(f"weight_averaging must be a number of epochs >= 0, got {weight_averaging}")
    if gradual_unfreezing and training_args.world_size > 1 and not training_args.ddp_find_unused_parameters:
        # DDP waits for a gradient of every parameter it was built with; frozen ones send none.
        raise ValueError("gradual_unfreezing with several processes needs ddp_find_unused_parameters=True")


def _load_dataset(dataset, dataset_name):
    """The `DatasetDict` to fine-tune on (`None`, a folder or a Hub id: NSMC, read by `load_nsmc`), and what
    run_info.json says of it (None for a DatasetDict given in code without a `dataset_name`)."""
    dataset_record = [dataset_name] if dataset_name else None
    if dataset is None:
        dataset_record = dataset_record or [SHIPPED_SAMPLE_RECORD]
    elif isinstance(dataset, (str, os.PathLike)):
        folder_name = os.path.basename(os.path.normpath(dataset))
        dataset_record = dataset_record or [{"name": folder_name, "details": "NSMC-format files"}]
    if dataset is None or isinstance(dataset, (str, os.PathLike)):
        dataset = load_nsmc(dataset)
    if not isinstance(dataset, DatasetDict) or "train" not in dataset:
        raise ValueError("finetune needs a DatasetDict with a 'train' split")
    return dataset, dataset_record


def _load_classifier(
    model, task, dataset, label_column, tokenizer, model_type, config_overrides, training_args, trust_remote_code
):
    """The classifier to train, with one output per label of the dataset (see `load_model`)."""
    names = label_names(dataset, label_column, task)
    label_kwargs = {
        "num_labels": len(names),
        "id2label": dict(enumerate(names)),
        "label2id": {name: index for index, name in enumerate(names)},
    }
    set_seed(training_args.seed)  # before the model is built: the new head's initial weights are reproducible
    return load_model(
        model,
        TASKS_BY_NAME[task].auto_class,
        tokenizer,
        model_type,
        config_overrides,
        trust_remote_code=trust_remote_code,
        **label_kwargs,
    )


def _make_trainer(
    model, tokenizer, dataset, parts, training_args, text_column, label_column, max_length, eval_split, subword_dropout
):
    """A `Trainer` over the encoded dataset: every split tokenised once, or, with subword_dropout, the training
    documents tokenised anew at every read."""
    with training_args.main_process_first(desc="tokenizing"):
        encoded = parts.encode(dataset, tokenizer, text_column, label_column, max_length)
    train_dataset = encoded["train"]
    if subword_dropout:
        train_dataset = SubwordDropoutDataset(
            dataset["train"], tokenizer, subword_dropout, text_column, label_column, max_length
        )
    return Trainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=encoded.get(eval_split, None),
        data_collator=parts.collator_class(tokenizer),
        processing_class=tokenizer,
        compute_metrics=parts.compute_metrics,
        preprocess_logits_for_metrics=argmax_logits,
    )


def _add_callbacks(trainer, model, gradual_unfreezing, weight_averaging, checkpoint, earlier_seconds):
    """Gradual unfreezing and weight averaging when asked for, then the checkpoint marker (counting the
    `earlier_seconds` of a resumed run's earlier sittings); returns the weight averaging callback (None without it)."""
    if gradual_unfreezing:
        trainer.add_callback(GradualUnfreezingCallback(model, gradual_unfreezing))
    weight_average = None
    if weight_averaging:
        # The callback reads the average saved in the checkpoint this run resumes from, if any.
        weight_average = WeightAveragingCallback(model, weight_averaging, checkpoint)
        trainer.add_callback(weight_average)
    trainer.add_callback(CheckpointCompleteCallback(earlier_seconds))  # the last: it marks each checkpoint complete
    return weight_average


def _train_and_evaluate(trainer, checkpoint, weight_average):
    """Train, put the weight average (if any) into the model, and evaluate on the eval split (if the dataset has
    it). Returns Trainer's training figures, and those merged with the evaluation's."""
    train_result = trainer.train(resume_from_checkpoint=checkpoint)
    metrics = dict(train_result.metrics)
    if weight_average is not None:
        if trainer.eval_dataset is not None:
            metrics.update(trainer.evaluate(metric_key_prefix="eval_last_step"))
        weight_average.copy_average_into_model()
    if trainer.eval_dataset is not None:
        eval_metrics = trainer.evaluate()
        metrics.update(eval_metrics)
        trainer.save_metrics("eval", eval_metrics)
    return train_result.metrics, metrics


def _run_record(trainer, task, tokenizer, dataset, dataset_record, eval_split, metrics, hyperparameters, wall_time):
    """What run_info.json says of the run (`write_run_info`)."""
    # The model's own figures; with weight averaging, those of the last step's weights are kept apart.
    final_metrics = {key: value for key, value in metrics.items() if not key.startswith("eval_last_step_")}
    record = {
        "task": task,
        "training_loop": "Trainer",
        "model_type": trainer.model.config.model_type,
        "num_parameters": count_parameters(trainer.model),
        "datasets": dataset_record or [CUSTOM_DATASET_RECORD],
        "metrics": metrics_for_card(final_metrics, eval_split, prefix="eval_"),
        "eval_split": eval_split,
        "split_sizes": {name: len(split) for name, split in dataset.items()},
        "hyperparameters": {**training_arguments_record(trainer.args), **hyperparameters},
        "wall_time_seconds": round(wall_time, 2),
        "tokenizer_fingerprint": tokenizer_fingerprint(tokenizer),
    }
    if len(final_metrics) < len(metrics):  # weight averaging: the last step's weights were measured too
        record["last_step_metrics"] = metrics_for_card(metrics, eval_split, prefix="eval_last_step_")
    return record
