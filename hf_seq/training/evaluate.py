"""Evaluating a saved model on a file, and generating text from a saved language model."""

import contextlib
import os
import shutil
import tempfile

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    DataCollatorForLanguageModeling,
    DataCollatorWithPadding,
    GenerationConfig,
    Trainer,
    TrainingArguments,
)

from ..data.lm import corpus_token_ids, group_into_blocks, load_text_files, tokenize_corpus
from ..data.nsmc import NSMC_HEADER, load_nsmc_files
from .common import is_recurrent, load_saved_model, load_tokenizer, read_model_config, reads_backward
from .encoding import encode_for_sequence_classification, with_bpe_dropout
from .metrics import argmax_logits, perplexity, sequence_classification_metrics
from .tbptt import evaluate_streams, make_accelerator


def _is_nsmc_file(path):
    # A byte-order mark is not part of the header; a byte that is not UTF-8 is reported, with its line, by the
    # reader of whichever kind of file this turns out to be.
    with open(path, encoding="utf-8-sig", errors="replace") as handle:
        return handle.readline().rstrip("\r\n").split("\t") == NSMC_HEADER


def _architecture(model_dir, trust_remote_code=False):
    config, _ = read_model_config(model_dir, trust_remote_code=trust_remote_code)
    architectures = getattr(config, "architectures", None) or []
    if not architectures:
        raise ValueError(f"{model_dir}/config.json names no architecture: cannot tell which head to load")
    return architectures[0]


def evaluate_model(
    model_dir,
    test_file,
    training_args=None,
    max_length=128,
    block_size=128,
    bptt=35,
    stateful=None,
    subword_samples=0,
    subword_dropout=0.1,
    trust_remote_code=False,
):
    """Evaluate a saved model on a file and return its metrics as a dict.

    - An NSMC-format file (header `id document label`) and a sequence classifier: `{"accuracy", "n"}`, computed
      with `Trainer.predict`, which gathers every example exactly once across processes. With `subword_samples`,
      the class probabilities are averaged over the exact BPE segmentation of each document and that many
      BPE-dropout ones (rate `subword_dropout`): test-time augmentation for a model fine-tuned with
      subword_dropout. The samples come from the tokenizers library's unseeded generator, so such a figure varies
      slightly from run to run.
    - A text file (one document per line) and a causal LM: `{"perplexity", "loss", "n_tokens"}`. Recurrent models
      are read as carried-state streams (`stateful`, the default for them: as they were trained); other models, or
      `stateful=False`, as independent blocks of `block_size` tokens.

    `training_args` (optional) sets batch size, device and precision; `per_device_eval_batch_size` is the number of
    streams per process in the stateful case. A folder whose model_type is not hf-seq's or transformers' own is
    refused unless `trust_remote_code` (its Python files would run).
    """
    if not os.path.isdir(model_dir):
        raise FileNotFoundError(f"model folder not found: {model_dir}")
    if not os.path.isfile(test_file):
        raise FileNotFoundError(f"test file not found: {test_file}")
    _check_subword_samples(subword_samples, subword_dropout)
    _check_at_least("max_length", max_length, 1)
    _check_at_least("block_size", block_size, 2)
    _check_at_least("bptt", bptt, 1)
    architecture = _architecture(model_dir, trust_remote_code)
    tokenizer = load_tokenizer(model_dir, trust_remote_code=trust_remote_code)
    with _evaluation_arguments(training_args) as training_args:
        if _is_nsmc_file(test_file):
            if not architecture.endswith("ForSequenceClassification"):
                raise ValueError(
                    f"{test_file} is an NSMC (classification) file but {model_dir} holds a {architecture}"
                )
            if subword_samples:
                probabilities, labels = _class_probabilities(
                    model_dir,
                    test_file,
                    training_args,
                    max_length,
                    subword_samples,
                    subword_dropout,
                    trust_remote_code,
                )
                accuracy = _accuracy(probabilities, labels)
                return {"accuracy": accuracy, "n": len(labels), "subword_samples": subword_samples}
            return _evaluate_classifier(model_dir, tokenizer, test_file, training_args, max_length, trust_remote_code)
        if subword_samples:
            raise ValueError("subword_samples applies to classifiers (an NSMC-format file), not to perplexity")
        if not architecture.endswith("ForCausalLM"):
            raise ValueError(
                f"{test_file} is a plain text file (perplexity) but {model_dir} holds a {architecture}; "
                f"a classifier needs an NSMC-format file with the header {NSMC_HEADER}"
            )
        return _evaluate_language_model(
            model_dir, tokenizer, test_file, training_args, block_size, bptt, stateful, trust_remote_code
        )


@contextlib.contextmanager
def _evaluation_arguments(training_args):
    """The caller's TrainingArguments, or evaluation defaults whose output folder is removed afterwards."""
    if training_args is not None:
        yield training_args
        return
    temporary_dir = tempfile.mkdtemp(prefix="hf-seq-evaluate-")
    try:
        yield TrainingArguments(
            output_dir=temporary_dir,
            per_device_eval_batch_size=64,
            report_to="none",
            dataloader_pin_memory=torch.cuda.is_available(),
        )
    finally:
        shutil.rmtree(temporary_dir, ignore_errors=True)


def _check_at_least(name, value, smallest):
    if isinstance(value, bool) or not isinstance(value, int) or value < smallest:
        raise ValueError(f"{name} must be a whole number >= {smallest}, got {value!r}")


def _check_subword_samples(subword_samples, subword_dropout):
    if isinstance(subword_samples, bool) or not isinstance(subword_samples, int) or subword_samples < 0:
        raise ValueError(f"subword_samples must be a whole number >= 0, got {subword_samples!r}")
    if subword_samples and not 0.0 < subword_dropout < 1.0:
        raise ValueError(f"subword_dropout must be in (0, 1), got {subword_dropout}")


def evaluate_ensemble(
    model_dirs,
    test_file,
    training_args=None,
    max_length=128,
    subword_samples=0,
    subword_dropout=0.1,
    trust_remote_code=False,
):
    """Evaluate sequence classifiers as one ensemble on an NSMC-format file: their class probabilities averaged.

    This is how ULMFiT combines a forward and a backward model. Each member reads the file with its own tokenizer
    (and, with `subword_samples`, averages its own over BPE-dropout segmentations first, as `evaluate_model` does).
    Returns `{"accuracy", "n", "members": [{"model", "accuracy"}, ...]}` (the members' own accuracies alongside).
    """
    model_dirs = list(model_dirs)
    if len(model_dirs) < 2:
        raise ValueError(f"an ensemble needs at least two classifiers, got {len(model_dirs)}")
    for model_dir in model_dirs:
        if not os.path.isdir(model_dir):
            raise FileNotFoundError(f"model folder not found: {model_dir}")
    if not os.path.isfile(test_file):
        raise FileNotFoundError(f"test file not found: {test_file}")
    if not _is_nsmc_file(test_file):
        raise ValueError(f"an ensemble is evaluated on an NSMC-format file (header {NSMC_HEADER}); {test_file} is not")
    _check_subword_samples(subword_samples, subword_dropout)
    _check_at_least("max_length", max_length, 1)
    label_sets = {}
    for model_dir in model_dirs:
        architecture = _architecture(model_dir, trust_remote_code)
        if not architecture.endswith("ForSequenceClassification"):
            raise ValueError(f"ensemble members must be sequence classifiers; {model_dir} holds a {architecture}")
        label_sets[model_dir] = read_model_config(model_dir, trust_remote_code=trust_remote_code)[0].id2label
    if len({tuple(sorted(labels.items())) for labels in label_sets.values()}) > 1:
        raise ValueError(f"ensemble members must predict the same labels; they differ: {label_sets}")

    with _evaluation_arguments(training_args) as training_args:
        probabilities, members, labels = [], [], None
        for model_dir in model_dirs:
            member_probabilities, labels = _class_probabilities(
                model_dir, test_file, training_args, max_length, subword_samples, subword_dropout, trust_remote_code
            )
            probabilities.append(member_probabilities)
            members.append({"model": model_dir, "accuracy": _accuracy(member_probabilities, labels)})
        ensemble_probabilities = torch.stack(probabilities).mean(dim=0)
        metrics = {"accuracy": _accuracy(ensemble_probabilities, labels), "n": len(labels), "members": members}
        if subword_samples:
            metrics["subword_samples"] = subword_samples
        return metrics


def _class_probabilities(
    model_dir, test_file, training_args, max_length, subword_samples=0, subword_dropout=0.1, trust_remote_code=False
):
    """One classifier's softmax over the file's examples, in file order (Trainer.predict gathers each once), and
    the labels. With `subword_samples`, the mean softmax over the exact segmentation and that many BPE-dropout ones.
    """
    tokenizer = load_tokenizer(model_dir, trust_remote_code=trust_remote_code)
    model = load_saved_model(model_dir, AutoModelForSequenceClassification, trust_remote_code=trust_remote_code)
    dataset, encoded = _read_test_file(test_file, tokenizer, training_args, max_length)
    encodings = [encoded]
    if subword_samples:
        sampling_tokenizer = with_bpe_dropout(tokenizer, subword_dropout)
        for _ in range(subword_samples):  # uncached: each pass must draw its own segmentations
            encodings.append(
                encode_for_sequence_classification(dataset, sampling_tokenizer, max_length=max_length, cache=False)
            )
    probabilities = 0.0
    for encoded in encodings:
        prediction = _predict_classifier(model, tokenizer, encoded, training_args)
        probabilities += torch.as_tensor(prediction.predictions, dtype=torch.float32).softmax(dim=-1)
    return probabilities / len(encodings), torch.as_tensor(prediction.label_ids)


def _accuracy(probabilities, labels):
    return (probabilities.argmax(-1) == labels).double().mean().item()


def _evaluate_classifier(model_dir, tokenizer, test_file, training_args, max_length, trust_remote_code=False):
    model = load_saved_model(model_dir, AutoModelForSequenceClassification, trust_remote_code=trust_remote_code)
    _, encoded = _read_test_file(test_file, tokenizer, training_args, max_length)
    prediction = _predict_classifier(
        model,
        tokenizer,
        encoded,
        training_args,
        compute_metrics=sequence_classification_metrics,
        preprocess_logits_for_metrics=argmax_logits,  # only the predicted class is kept, not every logit
    )
    return {"accuracy": prediction.metrics["test_accuracy"], "n": prediction.metrics["test_n"]}


def _read_test_file(test_file, tokenizer, training_args, max_length):
    """An NSMC-format file as a Dataset, and tokenised for a classifier (the main process tokenises it first)."""
    with training_args.main_process_first(desc="tokenizing"):
        dataset = load_nsmc_files({"test": test_file})["test"]
        return dataset, encode_for_sequence_classification(dataset, tokenizer, max_length=max_length)


def _predict_classifier(model, tokenizer, encoded, training_args, **trainer_kwargs):
    """`Trainer.predict` of a sequence classifier over tokenised documents."""
    trainer = Trainer(
        model=model,
        args=training_args,
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
        **trainer_kwargs,
    )
    return trainer.predict(encoded, metric_key_prefix="test")


def _evaluate_language_model(
    model_dir, tokenizer, test_file, training_args, block_size, bptt, stateful, trust_remote_code=False
):
    model = load_saved_model(model_dir, AutoModelForCausalLM, trust_remote_code=trust_remote_code)
    if stateful is None:
        stateful = is_recurrent(model)
    if stateful and not is_recurrent(model):
        raise ValueError(f"stateful evaluation needs a recurrent model, {model_dir} holds a {model.config.model_type}")
    if stateful:
        accelerator = make_accelerator(training_args)
        with accelerator.main_process_first():
            tokenized = tokenize_corpus(
                load_text_files({"test": test_file})["test"], tokenizer, reverse=reads_backward(model)
            )
        model = accelerator.prepare_model(model, evaluation_mode=True)
        return evaluate_streams(
            model,
            corpus_token_ids(tokenized),
            accelerator,
            batch_size=training_args.per_device_eval_batch_size,
            bptt=bptt,
        )
    with training_args.main_process_first(desc="tokenizing"):
        tokenized = tokenize_corpus(load_text_files({"test": test_file}), tokenizer, reverse=reads_backward(model))
        blocks = group_into_blocks(tokenized, block_size)["test"]
    if len(blocks) == 0:
        raise ValueError(f"{test_file} has fewer than block_size={block_size} tokens")
    trainer = Trainer(
        model=model,
        args=training_args,
        data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
        processing_class=tokenizer,
    )
    metrics = trainer.evaluate(blocks, metric_key_prefix="test")
    # Each block of n tokens gives n - 1 predictions (the model shifts its labels inside).
    return {
        "perplexity": perplexity(metrics["test_loss"]),
        "loss": metrics["test_loss"],
        "n_tokens": len(blocks) * (block_size - 1),
    }


def generate_text(
    model_dir,
    prompts,
    max_new_tokens=40,
    do_sample=True,
    top_k=50,
    top_p=0.95,
    temperature=1.0,
    num_return_sequences=1,
    seed=0,
    trust_remote_code=False,
):
    """Generate from a saved model with `model.generate`; returns the decoded texts.

    A causal LM continues each prompt (the prompt is part of the text returned). An empty prompt starts from the
    tokenizer's bos token, i.e. a review from scratch. A backward LM (`reading_direction="backward"`) takes the
    prompt as the end of a text and writes what comes before it, back to the text's bos; the text is returned in
    reading order. A seq2seq model (hf-seq train-seq2seq) takes each prompt as a source and returns its output
    alone. A classifier has no head that predicts tokens; a folder's own code runs only with `trust_remote_code`.
    """
    if not os.path.isdir(model_dir):
        raise FileNotFoundError(f"model folder not found: {model_dir}")
    if isinstance(prompts, str):
        prompts = [prompts]
    _check_generation_settings(max_new_tokens, do_sample, top_k, top_p, temperature, num_return_sequences)
    architecture = _architecture(model_dir, trust_remote_code)
    is_seq2seq = architecture.endswith("ForConditionalGeneration")
    if not (is_seq2seq or architecture.endswith("ForCausalLM")):
        raise ValueError(
            f"{model_dir} holds a {architecture}, which has no language-model head to generate with; "
            "give a causal LM folder (one written by hf-seq pretrain) or a seq2seq one (hf-seq train-seq2seq)"
        )
    tokenizer = load_tokenizer(model_dir, trust_remote_code=trust_remote_code)
    auto_class = AutoModelForSeq2SeqLM if is_seq2seq else AutoModelForCausalLM
    model = load_saved_model(model_dir, auto_class, trust_remote_code=trust_remote_code)
    model.eval()
    generation_config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=do_sample,
        top_k=top_k if do_sample else None,
        top_p=top_p if do_sample else None,
        temperature=temperature if do_sample else None,
        num_return_sequences=num_return_sequences,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    torch.manual_seed(seed)
    if is_seq2seq:
        return _generate_from_sources(model, tokenizer, prompts, generation_config)
    return _continue_prompts(model, tokenizer, prompts, generation_config)


def _continue_prompts(model, tokenizer, prompts, generation_config):
    """A causal LM's continuation of each prompt, prompt included (a backward LM's in reading order)."""
    backward = reads_backward(model)
    if backward:
        if tokenizer.bos_token_id is None or tokenizer.eos_token_id is None:
            raise ValueError("a backward LM needs a tokenizer with bos and eos tokens (where texts start and end)")
        generation_config.eos_token_id = tokenizer.bos_token_id  # read backward, a text ends at its start
    texts = []
    for prompt in prompts:
        input_ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
        if backward:
            input_ids = _backward_prompt(input_ids, tokenizer)
        elif input_ids.shape[1] == 0:
            if tokenizer.bos_token_id is None:
                raise ValueError("an empty prompt needs a tokenizer with a bos token")
            input_ids = torch.tensor([[tokenizer.bos_token_id]])
        with torch.no_grad():
            output_ids = model.generate(
                input_ids=input_ids, attention_mask=torch.ones_like(input_ids), generation_config=generation_config
            )
        if backward:
            output_ids = output_ids.flip(1)
        texts.extend(tokenizer.batch_decode(output_ids, skip_special_tokens=True))
    return texts


def _generate_from_sources(model, tokenizer, sources, generation_config):
    """A seq2seq model's output for each source, encoded as in training (`hf_seq.seq2seq.tokenize_pairs`)."""
    generation_config.decoder_start_token_id = model.config.decoder_start_token_id
    texts = []
    for source in sources:
        input_ids = tokenizer(source, add_special_tokens=False, return_tensors="pt")["input_ids"]
        if input_ids.shape[1] == 0:
            raise ValueError("a seq2seq model needs a non-empty source text to generate from")
        with torch.no_grad():
            output_ids = model.generate(
                input_ids=input_ids, attention_mask=torch.ones_like(input_ids), generation_config=generation_config
            )
        texts.extend(tokenizer.batch_decode(output_ids, skip_special_tokens=True))
    return texts


def _check_generation_settings(max_new_tokens, do_sample, top_k, top_p, temperature, num_return_sequences):
    """Refuse settings generate() would ignore, misread or fail on deep inside (each error names the setting)."""
    _check_at_least("max_new_tokens", max_new_tokens, 1)
    _check_at_least("num_return_sequences", num_return_sequences, 1)
    if not do_sample:
        if num_return_sequences > 1:
            raise ValueError("num_return_sequences > 1 needs do_sample=True: greedy decoding gives one result")
        return  # top_k, top_p and temperature apply to sampling only
    _check_at_least("top_k", top_k, 0)
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1] (the probability mass sampled from; 1 keeps all), got {top_p}")
    if not temperature > 0.0 or temperature == float("inf"):
        raise ValueError(
            f"temperature must be a positive number (1 samples the model's own probabilities), got {temperature}"
        )


def _backward_prompt(input_ids, tokenizer):
    """A prompt in a backward LM's reading order: the previous text's eos, then the prompt's tokens last to first.

    That is how each document starts in the reversed stream the LM was pretrained on (see `tokenize_corpus`).
    """
    tokens = input_ids[0].tolist()
    if tokens and tokens[0] == tokenizer.bos_token_id:
        tokens = tokens[1:]  # the bos is where the backward LM stops, not where it starts
    return torch.tensor([[tokenizer.eos_token_id] + tokens[::-1]])
