"""Fine-tuning for sequence classification (NSMC sentiment) and token classification, on `Trainer`."""

import copy
import math
import os
import re
import time

import torch
from datasets import ClassLabel, DatasetDict
from safetensors.torch import load_file, save_file
from transformers import (
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    DataCollatorForTokenClassification,
    DataCollatorWithPadding,
    PretrainedConfig,
    Trainer,
    TrainerCallback,
    set_seed,
)

from ..data.nsmc import load_nsmc
from .checkpoints import NO_RESUME, CheckpointCompleteCallback, checkpoint_dir, resolve_resume_checkpoint
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
    tokenizer_fingerprint,
    training_args_without_secrets,
    training_arguments_record,
    write_run_info,
)
from .metrics import argmax_logits, sequence_classification_metrics, token_classification_metrics
from .output_dir import prepare_output_dir


TASKS = ("sequence-classification", "token-classification")


def _label_names(dataset, label_column, task):
    columns = dataset["train"].column_names
    if label_column not in columns:
        raise ValueError(f"no column {label_column!r} in the dataset (columns: {columns})")
    feature = dataset["train"].features[label_column]
    if task == "token-classification":
        feature = getattr(feature, "feature", None) or feature  # Sequence(ClassLabel) / List(ClassLabel)
    if isinstance(feature, ClassLabel):
        return list(feature.names)
    values = dataset["train"][label_column]
    if task == "token-classification":
        values = [value for sequence in values for value in sequence]
    distinct = sorted(set(values))
    if distinct != list(range(len(distinct))):
        raise ValueError(f"labels in {label_column!r} must be 0..N-1 or a ClassLabel, found {distinct[:10]}")
    return [str(label) for label in distinct]


def empty_document_ids(tokenizer):
    """The token ids an empty document is classified from when the tokenizer adds no bos/eos of its own."""
    return [tokenizer.unk_token_id if tokenizer.unk_token_id is not None else tokenizer.eos_token_id]


def encode_for_sequence_classification(
    dataset, tokenizer, text_column="document", label_column="label", max_length=128, cache=True
):
    """Tokenise documents for a classifier (`Dataset.map(batched=True)`, cached). An empty document still gets a
    token (the tokenizer's bos/eos or unk), so it is classified, not dropped or crashed on.

    `cache=False` tokenises afresh in memory, as a BPE-dropout tokenizer needs: its every call segments differently,
    which the cache (keyed on the tokenizer, not the call) would hide.
    """
    fallback_ids = empty_document_ids(tokenizer)

    def tokenize(batch):
        encoded = tokenizer(batch[text_column], truncation=True, max_length=max_length)
        input_ids = [ids or fallback_ids for ids in encoded["input_ids"]]
        return {
            "input_ids": input_ids,
            "attention_mask": [[1] * len(ids) for ids in input_ids],
            "labels": batch[label_column],
        }

    columns = dataset[next(iter(dataset))].column_names if isinstance(dataset, DatasetDict) else dataset.column_names
    for column in (text_column, label_column):
        if column not in columns:
            raise ValueError(f"no column {column!r} in the dataset (columns: {columns})")
    uncached = {} if cache else {"keep_in_memory": True, "load_from_cache_file": False}
    return dataset.map(tokenize, batched=True, remove_columns=columns, desc="Tokenizing", **uncached)


def with_bpe_dropout(tokenizer, dropout):
    """A copy of a fast BPE tokenizer that skips each merge with probability `dropout` (BPE-dropout, Provilkov et
    al., 2020), so every call may segment a text differently. The given tokenizer keeps exact BPE."""
    if not 0.0 < dropout < 1.0:
        raise ValueError(f"subword_dropout must be in (0, 1), got {dropout}")
    model_kind = type(tokenizer.backend_tokenizer.model).__name__ if getattr(tokenizer, "is_fast", False) else None
    if model_kind != "BPE":
        found = model_kind or type(tokenizer).__name__
        raise ValueError(f"subword_dropout needs a fast BPE tokenizer, got {found}")
    sampling_tokenizer = copy.deepcopy(tokenizer)
    sampling_tokenizer.backend_tokenizer.model.dropout = dropout
    return sampling_tokenizer


class SubwordDropoutDataset(torch.utils.data.Dataset):
    """Training documents re-tokenised every time they are read, with BPE-dropout (Provilkov et al., 2020).

    Each epoch then sees a different segmentation of every document: a regulariser for small labelled sets. The
    tokenizers library draws the dropped merges from its own unseeded generator, so such a run is not bit-for-bit
    reproducible; everything else (order, initial weights, model dropout) still follows the seed.
    """

    def __init__(self, dataset, tokenizer, dropout, text_column="document", label_column="label", max_length=128):
        # A private copy: the caller's tokenizer (saved with the model, used for evaluation) keeps exact BPE.
        self.tokenizer = with_bpe_dropout(tokenizer, dropout)
        for column in (text_column, label_column):
            if column not in dataset.column_names:
                raise ValueError(f"no column {column!r} in the dataset (columns: {dataset.column_names})")
        self.texts = list(dataset[text_column])
        self.labels = list(dataset[label_column])
        self.max_length = max_length
        self.fallback_ids = empty_document_ids(tokenizer)

    def __len__(self):
        return len(self.texts)

    def __getitem__(self, index):
        input_ids = self.tokenizer(self.texts[index], truncation=True, max_length=self.max_length)["input_ids"]
        input_ids = input_ids or self.fallback_ids
        return {"input_ids": input_ids, "attention_mask": [1] * len(input_ids), "labels": self.labels[index]}


# The layer a parameter belongs to: `model.layers.3.` (Transformer), `weight_hh_l1[_reverse]` (fused nn.RNN/LSTM/GRU).
LAYER_INDEX_PATTERN = re.compile(r"\.layers\.(\d+)\.|_l(\d+)(?:_reverse)?$")


def parameter_depth(name, num_hidden_layers):
    """0 for the embeddings, 1..L for the body's layers, L + 1 for what sits on top (final norm, head)."""
    if ".embed_" in f".{name}":
        return 0
    match = LAYER_INDEX_PATTERN.search(name)
    if match:
        return 1 + int(match.group(1) or match.group(2))
    return num_hidden_layers + 1


def layerwise_parameter_groups(model, learning_rate, layerwise_lr_decay, weight_decay, decay_parameter_names):
    """Optimizer groups with discriminative learning rates (ULMFiT): the head trains at `learning_rate` and each
    layer below it at `layerwise_lr_decay` times the rate of the layer above, down to the embeddings.

    Pretrained lower layers hold general features; smaller steps there keep fine-tuning from overwriting them.
    """
    num_hidden_layers = model.config.num_hidden_layers
    groups = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        depth = parameter_depth(name, num_hidden_layers)
        decays = name in decay_parameter_names
        key = (depth, decays)
        if key not in groups:
            groups[key] = {
                "params": [],
                "lr": learning_rate * layerwise_lr_decay ** (num_hidden_layers + 1 - depth),
                "weight_decay": weight_decay if decays else 0.0,
            }
        groups[key]["params"].append(parameter)
    return [groups[key] for key in sorted(groups)]


def optimizer_steps(epochs, args, train_dataloader):
    """How many optimizer steps `epochs` epochs (fractions allowed) of this dataloader make: at least 1."""
    steps_per_epoch = max(math.ceil(len(train_dataloader) / args.gradient_accumulation_steps), 1)
    return max(round(epochs * steps_per_epoch), 1)


class GradualUnfreezingCallback(TrainerCallback):
    """Gradual unfreezing (ULMFiT): training starts with only the top layer group (the head) trainable, and every
    `epochs_per_group` epochs the next group down joins, down to the embeddings.

    The new head first learns from features that stay put instead of sending its early, random gradients into the
    pretrained layers. Every parameter stays in the optimizer; a frozen one has `requires_grad=False`, so it gets no
    gradient and the optimizer leaves it (and its weight decay) alone. The groups in training follow from
    `global_step` alone, so a resumed run freezes exactly what the uninterrupted one did.
    """

    def __init__(self, model, epochs_per_group):
        num_hidden_layers = model.config.num_hidden_layers
        self.top_depth = num_hidden_layers + 1
        self.parameters_by_depth = [
            (parameter_depth(name, num_hidden_layers), parameter)
            for name, parameter in model.named_parameters()
            if parameter.requires_grad
        ]
        self.epochs_per_group = epochs_per_group
        self.steps_per_group = None

    def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
        self.steps_per_group = optimizer_steps(self.epochs_per_group, args, train_dataloader)

    def lowest_trainable_depth(self, global_step):
        return max(self.top_depth - global_step // self.steps_per_group, 0)

    def on_step_begin(self, args, state, control, **kwargs):
        lowest = self.lowest_trainable_depth(state.global_step)
        for depth, parameter in self.parameters_by_depth:
            parameter.requires_grad_(depth >= lowest)

    def on_train_end(self, args, state, control, **kwargs):
        for _, parameter in self.parameters_by_depth:  # the saved model is a normal, fully trainable one
            parameter.requires_grad_(True)


class WeightAveragingCallback(TrainerCallback):
    """Tail weight averaging (SWA, Izmailov et al., 2018): a running mean of the weights after each optimizer step of
    the last `epochs` epochs, which `finetune` puts into the model when training ends.

    Late in training the weights keep moving around a minimum as each batch pulls them its way; their mean sits
    nearer its centre and usually generalises better than wherever the last step left them. The mean is written into
    every checkpoint, so a run resumed from one averages exactly what the uninterrupted run did.
    """

    FILE_NAME = "weight_average.safetensors"

    def __init__(self, model, epochs, resume_checkpoint=None):
        self.parameters = dict(model.named_parameters())
        self.epochs = epochs
        self.resume_checkpoint = resume_checkpoint
        self.first_step = None
        self.average = {}
        self.count = 0

    def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
        averaging_steps = optimizer_steps(self.epochs, args, train_dataloader)
        self.first_step = max(state.max_steps - averaging_steps + 1, 1)
        if self.resume_checkpoint is not None and state.global_step >= self.first_step:
            path = os.path.join(self.resume_checkpoint, self.FILE_NAME)
            if not os.path.isfile(path):
                raise ValueError(
                    f"{self.resume_checkpoint} holds no weight average ({self.FILE_NAME}), so this "
                    "run cannot go on averaging from it: resume with the weight_averaging it had"
                )
            self.average = {name: tensor.to(self.parameters[name].device) for name, tensor in load_file(path).items()}
            self.count = state.global_step - self.first_step + 1

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step < self.first_step:
            return
        self.count += 1
        with torch.no_grad():
            for name, parameter in self.parameters.items():
                if name in self.average:
                    self.average[name].lerp_(parameter.detach(), 1.0 / self.count)
                else:
                    self.average[name] = parameter.detach().clone()

    def on_save(self, args, state, control, **kwargs):
        if self.count and state.is_world_process_zero:
            checkpoint = checkpoint_dir(args.output_dir, state.global_step)
            save_file(
                {name: tensor.contiguous() for name, tensor in self.average.items()},
                os.path.join(checkpoint, self.FILE_NAME),
            )

    def copy_average_into_model(self):
        """Replace the model's weights by their average (a no-op if training stopped before averaging began)."""
        with torch.no_grad():
            for name, tensor in self.average.items():
                self.parameters[name].copy_(tensor)


def encode_for_token_classification(dataset, tokenizer, tokens_column="tokens", label_column="tags", max_length=128):
    """Tokenise pre-split words; each word's label goes on its first sub-token, the rest get -100 (ignored)."""
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("token classification needs a fast tokenizer (for word_ids)")

    def tokenize(batch):
        encoded = tokenizer(batch[tokens_column], is_split_into_words=True, truncation=True, max_length=max_length)
        all_labels = []
        for index, word_labels in enumerate(batch[label_column]):
            labels, previous_word = [], None
            for word in encoded.word_ids(index):
                labels.append(-100 if word is None or word == previous_word else word_labels[word])
                previous_word = word
            all_labels.append(labels)
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"], "labels": all_labels}

    columns = dataset[next(iter(dataset))].column_names if isinstance(dataset, DatasetDict) else dataset.column_names
    for column in (tokens_column, label_column):
        if column not in columns:
            raise ValueError(f"no column {column!r} in the dataset (columns: {columns})")
    return dataset.map(tokenize, batched=True, remove_columns=columns, desc="Tokenizing")


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
    training_args = training_args_without_secrets(training_args)
    read_paths = {"the model": model, "the tokenizer": tokenizer, "the dataset": dataset}
    checkpoint = resolve_resume_checkpoint(training_args.resume_from_checkpoint, training_args.output_dir)
    tokenizer = load_tokenizer(tokenizer, trust_remote_code=trust_remote_code)
    check_tokenizer_matches_model(model, tokenizer, allow_tokenizer_mismatch)
    dataset_record = [dataset_name] if dataset_name else None
    if dataset is None:
        dataset_record = dataset_record or [
            {
                "name": "NSMC sample",
                "details": "the 4,000 train / 1,000 test reviews shipped with hf-seq (a CC0 sample of e9t/nsmc)",
            }
        ]
    elif isinstance(dataset, (str, os.PathLike)):
        folder_name = os.path.basename(os.path.normpath(dataset))
        dataset_record = dataset_record or [{"name": folder_name, "details": "NSMC-format files"}]
    if dataset is None or isinstance(dataset, (str, os.PathLike)):
        dataset = load_nsmc(dataset)
    if not isinstance(dataset, DatasetDict) or "train" not in dataset:
        raise ValueError("finetune needs a DatasetDict with a 'train' split")
    if task == "sequence-classification":
        text_column, label_column = text_column or "document", label_column or "label"
    else:
        text_column, label_column = text_column or "tokens", label_column or "tags"
    label_names = _label_names(dataset, label_column, task)
    label_kwargs = {
        "num_labels": len(label_names),
        "id2label": dict(enumerate(label_names)),
        "label2id": {name: index for index, name in enumerate(label_names)},
    }
    if task == "sequence-classification":
        auto_class = AutoModelForSequenceClassification
    else:
        auto_class = AutoModelForTokenClassification
    base_model = model if isinstance(model, (str, os.PathLike)) else None
    fresh_model = model is None or isinstance(model, PretrainedConfig)
    set_seed(training_args.seed)  # before the model is built: the new head's initial weights are reproducible
    model = load_model(
        model, auto_class, tokenizer, model_type, config_overrides, trust_remote_code=trust_remote_code, **label_kwargs
    )
    # A "cls" pooling classifier appends one learned token after the text, which takes a position too.
    appended_positions = int(task == "sequence-classification" and getattr(model.config, "pooling", None) == "cls")
    check_length_fits_positions(model.config, max_length, "max_length", extra_positions=appended_positions)
    if init_embeddings_from is not None:
        read_paths["the word vectors"] = init_embeddings_from
        resuming = training_args.resume_from_checkpoint not in NO_RESUME
        word2vec_record = initialise_embeddings_from_word2vec(
            model, init_embeddings_from, tokenizer, fresh_model, resuming
        )
        extra_run_info = {**(extra_run_info or {}), "init_embeddings_from": word2vec_record}
    prepare_output_dir(training_args, overwrite_output_dir, read_paths)

    with training_args.main_process_first(desc="tokenizing"):
        if task == "sequence-classification":
            encoded = encode_for_sequence_classification(dataset, tokenizer, text_column, label_column, max_length)
            collator = DataCollatorWithPadding(tokenizer)
            compute_metrics = sequence_classification_metrics
        else:
            encoded = encode_for_token_classification(dataset, tokenizer, text_column, label_column, max_length)
            collator = DataCollatorForTokenClassification(tokenizer)
            compute_metrics = token_classification_metrics
    eval_dataset = encoded.get(eval_split, None)
    train_dataset = encoded["train"]
    if subword_dropout:
        train_dataset = SubwordDropoutDataset(
            dataset["train"], tokenizer, subword_dropout, text_column, label_column, max_length
        )
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=collator,
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
        preprocess_logits_for_metrics=argmax_logits,
    )
    if gradual_unfreezing:
        trainer.add_callback(GradualUnfreezingCallback(model, gradual_unfreezing))
    weight_averaging_callback = None
    if weight_averaging:
        # The callback reads the average saved in the checkpoint this run resumes from, if any.
        weight_averaging_callback = WeightAveragingCallback(model, weight_averaging, checkpoint)
        trainer.add_callback(weight_averaging_callback)
    trainer.add_callback(CheckpointCompleteCallback())  # the last callback: it marks each checkpoint complete
    if layerwise_lr_decay != 1.0:
        # Trainer's own optimizer choice (`optim`, betas, eps) and weight-decay rule, with one group per layer. Set
        # before train(), this is what passing `optimizers=` does; Trainer still builds the scheduler over it.
        optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(training_args, model)
        groups = layerwise_parameter_groups(
            model,
            training_args.learning_rate,
            layerwise_lr_decay,
            training_args.weight_decay,
            set(trainer.get_decay_parameter_names(model)),
        )
        trainer.optimizer = optimizer_cls(groups, **optimizer_kwargs)
    start_time = time.time()
    train_result = trainer.train(resume_from_checkpoint=checkpoint)
    metrics = dict(train_result.metrics)
    if weight_averaging_callback is not None:
        if eval_dataset is not None:
            metrics.update(trainer.evaluate(metric_key_prefix="eval_last_step"))
        weight_averaging_callback.copy_average_into_model()
    if eval_dataset is not None:
        eval_metrics = trainer.evaluate()
        metrics.update(eval_metrics)
        trainer.save_metrics("eval", eval_metrics)
    wall_time = time.time() - start_time
    trainer.save_model()
    trainer.save_state()
    trainer.save_metrics("train", train_result.metrics)
    if trainer.is_world_process_zero():
        # The model's own figures; with weight averaging, those of the last step's weights are kept apart.
        final_metrics = {key: value for key, value in metrics.items() if not key.startswith("eval_last_step_")}
        record = {
            "task": task,
            "training_loop": "Trainer",
            "model_type": model.config.model_type,
            "num_parameters": count_parameters(model),
            "datasets": dataset_record or [{"name": "custom", "details": "a DatasetDict given in code"}],
            "metrics": metrics_for_card(final_metrics, eval_split, prefix="eval_"),
            "eval_split": eval_split,
            "split_sizes": {name: len(split) for name, split in dataset.items()},
            "hyperparameters": {
                **training_arguments_record(training_args),
                "max_length": max_length,
                "subword_dropout": subword_dropout,
                "layerwise_lr_decay": layerwise_lr_decay,
                "gradual_unfreezing": gradual_unfreezing,
                "weight_averaging": weight_averaging,
            },
            "wall_time_seconds": round(wall_time, 2),
            "tokenizer_fingerprint": tokenizer_fingerprint(tokenizer),
        }
        if weight_averaging_callback is not None and eval_dataset is not None:
            record["last_step_metrics"] = metrics_for_card(metrics, eval_split, prefix="eval_last_step_")
        if base_model is not None:
            record["base_model_path"] = os.fspath(base_model)
        record.update(extra_run_info or {})
        write_run_info(training_args.output_dir, **record)
    # Every process returns only once the model folder is complete (the main process writes it).
    trainer.accelerator.wait_for_everyone()
    return TrainingRun(model=trainer.model, tokenizer=tokenizer, metrics=metrics, output_dir=training_args.output_dir)
