"""The character-level spacing tagger: for every character of a text without spaces, is a space after it?

The tagger is hf-seq's bidirectional `GRUForTokenClassification` (or `LSTMForTokenClassification`) over the
characters, the approach of PyKoSpacing (Conv + BiGRU) without the convolution; with `ngram_orders` in its config
(`config_overrides={"ngram_orders": [2, 3]}`) each character's input also holds hashed embeddings of the character
n-grams across the gap after it, the character-bigram features of word segmenters. Its vocabulary is a character
tokenizer from `tokenizer_training` (algorithm "char"), saved with the model so `AutoTokenizer` loads it; every
character is looked up in that vocabulary on its own (one id per character, `<unk>` for a character it lacks), so
labels and predictions line up with the characters exactly.
"""

import os
import time

import numpy as np
import torch
from transformers import DataCollatorForTokenClassification, Trainer, TrainingArguments

from ..models.recurrent import GRUConfig, GRUForTokenClassification, LSTMConfig, LSTMForTokenClassification
from ..training.common import TrainingRun, built_config, load_tokenizer, write_run_info
from ..training.metrics import argmax_logits
from .data import space_labels
from .metrics import positions_f1


CELLS = {"gru": (GRUConfig, GRUForTokenClassification), "lstm": (LSTMConfig, LSTMForTokenClassification)}
LABELS = {0: "no_space", 1: "space"}
IGNORED = -100  # Trainer's loss and our metrics skip this label (padding, and the last character: no gap after it)
LOSS_WEIGHTINGS = ("gap", "review")


def train_character_tokenizer(texts, vocab_size: int = 3000, output_dir: str | os.PathLike | None = None):
    """A character tokenizer (tokenizer_training's "char" algorithm) on `texts`: the `vocab_size` - 260 most
    frequent characters get their own id; the rest are `<unk>` to the tagger."""
    from tokenizer_training import train_tokenizer

    return train_tokenizer(texts=texts, algorithm="char", vocab_size=vocab_size, output_dir=output_dir)


class CharacterIds:
    """Maps a string to one vocabulary id per character (`<unk>`'s id for a character the vocabulary lacks)."""

    def __init__(self, tokenizer):
        self.vocabulary = tokenizer.get_vocab()
        self.unk_token_id = tokenizer.unk_token_id
        if self.unk_token_id is None:
            raise ValueError("the tokenizer has no unk token: characters outside its vocabulary would have no id")

    def __call__(self, characters: str) -> list[int]:
        vocabulary, unk = self.vocabulary, self.unk_token_id
        return [vocabulary.get(character, unk) for character in characters]


def encode_for_tagging(dataset, tokenizer, max_length: int = 256):
    """`input_ids` (one per character of `source`) and `labels` (1: a space follows; the last character -100) from
    a dataset of spacing pairs (`hf_seq.spacing.data.spacing_pairs`). Texts are cut to `max_length` characters."""
    character_ids = CharacterIds(tokenizer)

    def encode(batch):
        input_ids, labels = [], []
        for target in batch["target"]:
            characters, gap_labels = space_labels(target)
            characters, gap_labels = characters[:max_length], gap_labels[:max_length]
            if not characters:
                continue
            gap_labels[-1] = IGNORED
            input_ids.append(character_ids(characters))
            labels.append(gap_labels)
        return {"input_ids": input_ids, "labels": labels}

    return dataset.map(encode, batched=True, remove_columns=dataset.column_names, desc="Encoding characters")


def tagging_metrics(eval_prediction) -> dict:
    """`compute_metrics` for the tagger: per-text space F1 (averaged), accuracy over gaps, exact match."""
    predictions, labels = np.asarray(eval_prediction.predictions), np.asarray(eval_prediction.label_ids)
    if predictions.ndim == labels.ndim + 1:
        predictions = predictions.argmax(axis=-1)
    f1_sum, exact, right_gaps, gaps = 0.0, 0, 0, 0
    for predicted_row, label_row in zip(predictions, labels):
        gap = label_row != IGNORED
        predicted = set(np.flatnonzero(gap & (predicted_row == 1)).tolist())
        reference = set(np.flatnonzero(gap & (label_row == 1)).tolist())
        f1_sum += positions_f1(predicted, reference)
        exact += predicted == reference
        right_gaps += int(((predicted_row == label_row) & gap).sum())
        gaps += int(gap.sum())
    count = len(labels)
    return {
        "space_f1": f1_sum / count,
        "char_accuracy": right_gaps / max(gaps, 1),
        "exact_match": exact / count,
        "n": count,
    }


def review_weighted_loss(outputs, labels, num_items_in_batch=None) -> torch.Tensor:
    """Cross-entropy averaged over each review's gaps, then over the batch's reviews: every review weighs alike,
    as in the per-review space F1 (the model's own loss, a mean over all gaps, weighs long reviews more)."""
    logits = outputs["logits"]
    per_gap = torch.nn.functional.cross_entropy(
        logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORED, reduction="none"
    ).view_as(labels)
    return _mean_over_gaps(per_gap, labels, "review")


def distillation_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    teacher_probabilities: torch.Tensor,
    distillation_weight: float = 0.5,
    loss_weighting: str = "gap",
) -> torch.Tensor:
    """Per gap, (1 - distillation_weight) x the cross-entropy to the label + distillation_weight x the cross-entropy
    to the teachers' probabilities (knowledge distillation); averaged over gaps, or per review then over reviews
    (`loss_weighting`, as in `review_weighted_loss`)."""
    log_probabilities = logits.float().log_softmax(dim=-1)
    to_labels = -log_probabilities.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    to_teachers = -(teacher_probabilities.float() * log_probabilities).sum(dim=-1)
    per_gap = (1 - distillation_weight) * to_labels + distillation_weight * to_teachers
    return _mean_over_gaps(per_gap.masked_fill(labels == IGNORED, 0.0), labels, loss_weighting)


def _mean_over_gaps(per_gap: torch.Tensor, labels: torch.Tensor, loss_weighting: str) -> torch.Tensor:
    """The mean of a per-gap loss (zero where the label is ignored): over all gaps ("gap"), or over each review's
    gaps and then over the reviews that have any ("review")."""
    gaps_per_review = (labels != IGNORED).sum(dim=1)
    if loss_weighting == "gap":
        return per_gap.sum() / gaps_per_review.sum().clamp(min=1)
    per_review = per_gap.sum(dim=1) / gaps_per_review.clamp(min=1)
    return per_review.sum() / (gaps_per_review > 0).sum().clamp(min=1)


class DistillationTrainer(Trainer):
    """`Trainer` for a tagger learning from teacher taggers as well as from the labels: its loss is
    `distillation_loss` against the mean of the teachers' probabilities (the teachers run without gradients)."""

    def __init__(
        self,
        *args,
        teachers,
        distillation_weight: float,
        loss_weighting: str,
        teacher_id_maps: list | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.teachers = [teacher.to(self.args.device).eval() for teacher in teachers]
        # One `teacher_ids` map (or None) per teacher: the tagger's ids in that teacher's vocabulary.
        id_maps = teacher_id_maps or [None] * len(teachers)
        self.teacher_id_maps = [None if ids is None else ids.to(self.args.device) for ids in id_maps]
        self.distillation_weight = distillation_weight
        self.loss_weighting = loss_weighting

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        input_ids, attention_mask = inputs["input_ids"], inputs["attention_mask"]
        outputs = model(input_ids=input_ids, attention_mask=attention_mask)
        loss = distillation_loss(
            outputs.logits,
            inputs["labels"],
            self.teacher_probabilities(input_ids, attention_mask),
            self.distillation_weight,
            self.loss_weighting,
        )
        return (loss, outputs) if return_outputs else loss

    @torch.no_grad()
    def teacher_probabilities(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The mean of the teachers' probabilities on a batch of the tagger's ids, each teacher reading it in its
        own ids."""
        probabilities = []
        for teacher, id_map in zip(self.teachers, self.teacher_id_maps):
            teacher_input_ids = input_ids if id_map is None else id_map[input_ids]
            logits = teacher(input_ids=teacher_input_ids, attention_mask=attention_mask).logits
            probabilities.append(logits.float().softmax(dim=-1))
        return torch.stack(probabilities).mean(dim=0)


def teacher_ids(tokenizer, teacher_tokenizer) -> torch.Tensor | None:
    """For each id of `tokenizer`, the id of the same token in `teacher_tokenizer` (its `<unk>` where it lacks it),
    so a teacher with another character vocabulary reads the tagger's batches as its own characters; None when the
    two vocabularies agree. A character outside the tagger's vocabulary reaches the teacher as `<unk>`."""
    vocabulary, teacher_vocabulary = tokenizer.get_vocab(), teacher_tokenizer.get_vocab()
    if vocabulary == teacher_vocabulary:
        return None
    unk_token_id = teacher_tokenizer.unk_token_id
    if unk_token_id is None:
        raise ValueError(
            "a teacher's tokenizer has another vocabulary than the tagger's and no unk token: give its tokenizer"
        )
    ids = torch.full((max(vocabulary.values()) + 1,), unk_token_id, dtype=torch.long)
    for token, index in vocabulary.items():
        ids[index] = teacher_vocabulary.get(token, unk_token_id)
    return ids


def tagger_config(tokenizer, cell: str = "gru", **overrides):
    """The config of a bidirectional character tagger over `tokenizer`'s vocabulary, with two labels."""
    if cell not in CELLS:
        raise ValueError(f"unknown cell {cell!r}: choose one of {', '.join(CELLS)}")
    config_class, _ = CELLS[cell]
    arguments = {
        "vocab_size": len(tokenizer),
        "embedding_size": 64,
        "hidden_size": 128,
        "num_hidden_layers": 2,
        "bidirectional": True,
        "tie_word_embeddings": False,
        "num_labels": len(LABELS),
        "id2label": dict(LABELS),
        "label2id": {label: index for index, label in LABELS.items()},
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    arguments.update(overrides)
    return built_config(config_class, arguments)


def train_spacing_tagger(
    train_dataset,
    *,
    output_dir: str | os.PathLike,
    tokenizer=None,
    eval_dataset=None,
    model: str | os.PathLike | None = None,
    cell: str = "gru",
    config_overrides: dict | None = None,
    vocab_size: int = 3000,
    max_length: int = 256,
    num_train_epochs: float = 1.0,
    max_steps: int = -1,
    batch_size: int = 64,
    learning_rate: float = 3e-3,
    warmup_ratio: float = 0.02,
    max_grad_norm: float = 1.0,
    loss_weighting: str = "gap",
    teachers: list | None = None,
    distillation_weight: float = 0.5,
    eval_steps: int | None = None,
    logging_steps: int = 100,
    seed: int = 0,
    overwrite: bool = False,
) -> TrainingRun:
    """Train a spacing tagger on spacing pairs with `Trainer`, keep the checkpoint best on `eval_dataset`'s space F1,
    and save it with its tokenizer and `run_info.json` to `output_dir`.

    Args:
        train_dataset, eval_dataset: `datasets.Dataset`s of spacing pairs (`source`/`target`, see
            `hf_seq.spacing.data.spacing_pairs`).
        tokenizer: a character tokenizer (object or folder); by default the tokenizer of `model`, or one trained on
            the training targets with `vocab_size` entries.
        model: a tagger folder to continue training (its config and tokenizer are kept; `cell` and
            `config_overrides` are then ignored).
        cell: "gru" or "lstm"; `config_overrides` sets any other config field (e.g. `{"hidden_size": 256}`).
        loss_weighting: "gap" (the model's loss: every gap of the batch weighs alike) or "review"
            (`review_weighted_loss`: every review weighs alike, as in the space F1 averaged over reviews).
        teachers: tagger folders to distil: the loss becomes `distillation_loss` against the mean of their
            probabilities, with `distillation_weight` (0: the labels only, 1: the teachers only). The first teacher's
            tokenizer is the default one; a teacher with another vocabulary reads the same characters through its own
            ids (`teacher_ids`).
        eval_steps: evaluate (and keep the best checkpoint) every this many steps; by default once per epoch.
        overwrite: replace a non-empty `output_dir`.
    """
    output_dir = os.fspath(output_dir)
    if os.path.isdir(output_dir) and os.listdir(output_dir) and not overwrite:
        raise FileExistsError(f"output folder {output_dir} is not empty: choose another, or pass overwrite=True")
    if loss_weighting not in LOSS_WEIGHTINGS:
        raise ValueError(f"unknown loss_weighting {loss_weighting!r}: choose one of {', '.join(LOSS_WEIGHTINGS)}")
    if isinstance(distillation_weight, bool) or not 0 <= distillation_weight <= 1:
        raise ValueError(f"distillation_weight must be between 0 and 1, got {distillation_weight!r}")
    teacher_folders = [os.fspath(teacher) for teacher in teachers or []]
    saved_teachers = [_saved_tagger(folder) for folder in teacher_folders]
    if model is None:  # a bad cell or field fails before any tokenizer training or encoding
        if cell not in CELLS:
            raise ValueError(f"unknown cell {cell!r}: choose one of {', '.join(CELLS)}")
        built_config(CELLS[cell][0], config_overrides or {})
    started = time.perf_counter()
    if tokenizer is None:  # a saved tagger's own, else the teachers', else one trained on the training targets
        tokenizer = model if model is not None else (saved_teachers[0].tokenizer if saved_teachers else None)
    if tokenizer is None:
        tokenizer = train_character_tokenizer(train_dataset["target"], vocab_size)
    tokenizer = load_tokenizer(tokenizer)
    teacher_id_maps = [teacher_ids(tokenizer, teacher.tokenizer) for teacher in saved_teachers]
    train_features = encode_for_tagging(train_dataset, tokenizer, max_length)
    eval_features = encode_for_tagging(eval_dataset, tokenizer, max_length) if eval_dataset is not None else None

    torch.manual_seed(seed)
    base_model = None if model is None else os.fspath(model)
    model = _tagger_model(model, tokenizer, cell, config_overrides)
    config = model.config
    evaluation = "no" if eval_features is None else ("steps" if eval_steps else "epoch")
    arguments = TrainingArguments(
        output_dir=output_dir,
        num_train_epochs=num_train_epochs,
        max_steps=max_steps,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size * 2,
        learning_rate=learning_rate,
        lr_scheduler_type="linear",
        warmup_steps=warmup_ratio,
        max_grad_norm=max_grad_norm,
        eval_strategy=evaluation,
        eval_steps=eval_steps,
        save_strategy=evaluation,
        save_steps=eval_steps,
        save_total_limit=1,
        load_best_model_at_end=eval_features is not None,
        metric_for_best_model="space_f1",
        greater_is_better=True,
        train_sampling_strategy="group_by_length",  # batches of similar lengths: less padding for the recurrent layers to run over
        logging_steps=logging_steps,
        report_to=[],
        seed=seed,
        use_cpu=True,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    if saved_teachers:
        trainer_class = DistillationTrainer
        loss_options = {
            "teachers": [teacher.model for teacher in saved_teachers],
            "teacher_id_maps": teacher_id_maps,
            "distillation_weight": distillation_weight,
            "loss_weighting": loss_weighting,
        }
    else:
        trainer_class = Trainer
        loss_options = {"compute_loss_func": review_weighted_loss if loss_weighting == "review" else None}
    trainer = trainer_class(
        model=model,
        args=arguments,
        train_dataset=train_features,
        eval_dataset=eval_features,
        data_collator=DataCollatorForTokenClassification(tokenizer, label_pad_token_id=IGNORED),
        processing_class=tokenizer,
        compute_metrics=tagging_metrics,
        preprocess_logits_for_metrics=argmax_logits,
        **loss_options,
    )
    train_result = trainer.train()
    metrics = dict(train_result.metrics)
    if eval_features is not None:
        metrics.update(trainer.evaluate())
    trainer.save_model(output_dir)
    _remove_checkpoints(output_dir)
    write_run_info(
        output_dir,
        task="token-classification",
        datasets=[{"name": "spacing pairs", "details": f"{len(train_features)} training texts"}],
        metrics=[
            {"name": key.removeprefix("eval_"), "value": value, "split": "validation"}
            for key, value in metrics.items()
            if key in ("eval_space_f1", "eval_char_accuracy", "eval_exact_match")
        ],
        base_model=base_model,
        hyperparameters={
            "cell": config.rnn_type.lower(),
            "config": {
                key: getattr(config, key)
                for key in (
                    "embedding_size",
                    "hidden_size",
                    "num_hidden_layers",
                    "ngram_orders",
                    "ngram_buckets",
                    "token_classifier_context",
                )
            },
            "loss_weighting": loss_weighting,
            "teachers": teacher_folders,
            "distillation_weight": distillation_weight if teacher_folders else None,
            "num_train_epochs": num_train_epochs,
            "max_steps": max_steps,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "max_length": max_length,
            "seed": seed,
        },
        log_history=trainer.state.log_history,
        wall_time_seconds=time.perf_counter() - started,
    )
    return TrainingRun(model=trainer.model, tokenizer=tokenizer, metrics=metrics, output_dir=output_dir)


def _tagger_model(model, tokenizer, cell, config_overrides):
    """A new tagger for the tokenizer's vocabulary, or the saved tagger `model` (a folder) to train further."""
    if model is None:
        config = tagger_config(tokenizer, cell, **(config_overrides or {}))
        return CELLS[cell][1](config)
    tagger = _saved_tagger(os.fspath(model)).model
    if tagger.config.vocab_size != len(tokenizer):
        raise ValueError(
            f"{model} is a tagger for another vocabulary (vocab_size {tagger.config.vocab_size}, tokenizer "
            f"{len(tokenizer)}): leave the tokenizer out to keep its own"
        )
    return tagger


def _saved_tagger(folder):
    """The spacing tagger saved in `folder` and its tokenizer, as `restore.load_spacing_model` loads them (naming a
    folder that holds no spacing model); a seq2seq spacing model is refused."""
    from .restore import load_spacing_model  # restore imports this module

    saved = load_spacing_model(folder)
    if saved.is_seq2seq:
        raise ValueError(f"{folder} is a seq2seq spacing model: give a folder saved by train_spacing_tagger")
    return saved


def _remove_checkpoints(output_dir):
    """The checkpoints Trainer kept to pick the best one; the best is saved in `output_dir` itself."""
    import shutil

    for name in os.listdir(output_dir):
        if name.startswith("checkpoint-"):
            shutil.rmtree(os.path.join(output_dir, name), ignore_errors=True)
