"""Metrics for `Trainer(compute_metrics=...)` and the perplexity of a language model."""

import math

import numpy as np
import torch


def perplexity(mean_loss):
    """exp(mean negative log-likelihood per token); `inf` rather than an OverflowError for a diverged model."""
    try:
        return math.exp(mean_loss)
    except OverflowError:
        return float("inf")


def argmax_logits(logits, labels):
    """`preprocess_logits_for_metrics`: keep only the predicted class, so evaluation does not hold all logits."""
    if isinstance(logits, tuple):  # models may return extra outputs after the logits
        logits = logits[0]
    return torch.argmax(logits, dim=-1)


def sequence_classification_metrics(eval_prediction):
    """`compute_metrics` for sequence classification: accuracy and the number of examples `n` it was measured on."""
    predictions, labels = eval_prediction.predictions, eval_prediction.label_ids
    if isinstance(predictions, tuple):
        predictions = predictions[0]
    predictions = np.asarray(predictions)
    if predictions.ndim == 2:  # logits, when no preprocess_logits_for_metrics was used
        predictions = predictions.argmax(axis=-1)
    labels = np.asarray(labels)
    return {"accuracy": float((predictions == labels).mean()), "n": int(labels.shape[0])}


def token_classification_metrics(eval_prediction):
    """`compute_metrics` for token classification: accuracy over labelled positions (label -100 is ignored)."""
    predictions, labels = np.asarray(eval_prediction.predictions), np.asarray(eval_prediction.label_ids)
    if predictions.ndim == labels.ndim + 1:
        predictions = predictions.argmax(axis=-1)
    labelled = labels != -100
    return {
        "accuracy": float((predictions[labelled] == labels[labelled]).mean()),
        "n": int(labels.shape[0]),
        "n_tokens": int(labelled.sum()),
    }
