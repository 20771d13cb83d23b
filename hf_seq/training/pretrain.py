"""Pretraining a causal language model on text files: `Trainer` on fixed blocks, or the TBPTT loop on streams."""

import os
import time

from transformers import (
    AutoModelForCausalLM,
    DataCollatorForLanguageModeling,
    PretrainedConfig,
    Trainer,
    set_seed,
)

from ..data.lm import corpus_token_ids, group_into_blocks, load_text_files, tokenize_corpus
from .callbacks import CheckpointCompleteCallback
from .checkpoints import checkpoint_elapsed_seconds, resolve_resume_checkpoint, resumes
from .common import (
    TrainingRun,
    check_length_fits_positions,
    check_positive_int,
    check_tokenizer_matches_model,
    count_parameters,
    initialise_embeddings_from_word2vec,
    is_recurrent,
    load_model,
    load_tokenizer,
    metrics_for_card,
    reads_backward,
    save_trainer_run,
    tokenizer_fingerprint,
    training_args_without_secrets,
    training_arguments_record,
)
from .metrics import perplexity
from .output_dir import prepare_output_dir
from .tbptt import make_accelerator, train_tbptt


LOOPS = ("auto", "trainer", "tbptt")


def _dataset_record(train_file, validation_file, dataset_name):
    if dataset_name:
        return [dataset_name]
    record = [{"name": _short_path(train_file), "details": "training text"}]
    if validation_file:
        record.append({"name": _short_path(validation_file), "split": "validation"})
    return record


def _short_path(path):
    """`reviews_lm/train.txt` rather than a bare `train.txt`: the folder usually names the corpus."""
    path = os.path.abspath(path)
    return os.path.join(os.path.basename(os.path.dirname(path)), os.path.basename(path))


def pretrain(
    training_args,
    train_file,
    tokenizer,
    validation_file=None,
    model=None,
    model_type="lstm",
    config_overrides=None,
    loop="auto",
    block_size=128,
    bptt=35,
    streaming=False,
    cache_dir=None,
    dataset_name=None,
    overwrite_output_dir=False,
    allow_tokenizer_mismatch=False,
    trust_remote_code=False,
    init_embeddings_from=None,
):
    """Pretrain a causal LM on a text file (one document per line) and save it, with its tokenizer, to output_dir.

    Args:
        training_args: `transformers.TrainingArguments` (output_dir, epochs or max_steps, batch size, learning rate,
            save/eval/logging steps, resume_from_checkpoint...). For the TBPTT loop the batch size is the number of
            streams per process.
        train_file, validation_file: text files, one document per line.
        tokenizer: a tokenizer object or a folder saved with `save_pretrained`.
        model: a model, a config, or a folder/Hub id to continue from; `None` builds a fresh `model_type` model
            ("lstm", "gru", "rnn", or a Transformer's model_type) sized for the tokenizer, with `config_overrides`
            (a dict, or "hidden_size=256,num_hidden_layers=1").
        loop: "trainer" (`Trainer` on independent blocks of `block_size` tokens), "tbptt" (the accelerate loop that
            carries the recurrent state across windows of `bptt` tokens; recurrent models only), or "auto"
            (tbptt for recurrent models, trainer otherwise).
        streaming: read the corpus lazily (for corpora larger than memory; needs `max_steps`).
        dataset_name: a Hub dataset id to record in run_info.json (default: the file names).
        overwrite_output_dir: empty a non-empty output_dir and train into it; without it (or resume_from_checkpoint)
            a non-empty output_dir is refused. output_dir may never be, hold or lie in a folder the run reads.
        allow_tokenizer_mismatch: continue a model folder with another tokenizer than the one it was trained with
            (refused by default: the ids would mean other tokens).
        trust_remote_code: load a model or tokenizer folder whose model_type is neither hf-seq's nor transformers'
            by running the Python files it holds (refused by default; only for folders you trust).
        init_embeddings_from: a word2vec folder (`hf-seq train-word2vec`) trained with the same tokenizer, whose
            vectors initialise a fresh model's input embeddings (and a tied LM head).

    Returns:
        A `TrainingRun`; its metrics hold `train_loss` and, with a validation file, `eval_loss` and
        `eval_perplexity` (= exp(eval_loss)).
    """
    if loop not in LOOPS:
        raise ValueError(f"loop must be one of {LOOPS}, got {loop!r}")
    check_positive_int("block_size", block_size)
    check_positive_int("bptt", bptt)
    if not os.path.isfile(train_file):
        raise FileNotFoundError(f"training text file not found: {train_file}")
    if validation_file is not None and not os.path.isfile(validation_file):
        raise FileNotFoundError(f"validation text file not found: {validation_file}")
    training_args = training_args_without_secrets(training_args)
    read_paths = {
        "the model": model,
        "the tokenizer": tokenizer,
        "the training file": train_file,
        "the validation file": validation_file,
    }
    tokenizer = load_tokenizer(tokenizer, trust_remote_code=trust_remote_code)
    check_tokenizer_matches_model(model, tokenizer, allow_tokenizer_mismatch)
    set_seed(training_args.seed)  # before the model is built, so a fresh model's initial weights are reproducible
    fresh_model = model is None or isinstance(model, PretrainedConfig)
    model = load_model(
        model, AutoModelForCausalLM, tokenizer, model_type, config_overrides, trust_remote_code=trust_remote_code
    )
    if loop == "auto":
        loop = "tbptt" if is_recurrent(model) else "trainer"
    if loop == "tbptt" and not is_recurrent(model):
        raise ValueError(f"the tbptt loop carries a recurrent state; {model.config.model_type} has none (use trainer)")
    if loop == "trainer":
        check_length_fits_positions(model.config, block_size, "block_size")
    word2vec_record = None
    if init_embeddings_from is not None:
        read_paths["the word vectors"] = init_embeddings_from
        word2vec_record = initialise_embeddings_from_word2vec(
            model, init_embeddings_from, tokenizer, fresh_model, resumes(training_args)
        )
    prepare_output_dir(training_args, overwrite_output_dir, read_paths)

    data_files = {"train": train_file, "validation": validation_file}
    run_record = {"datasets": _dataset_record(train_file, validation_file, dataset_name)}
    if word2vec_record is not None:
        run_record["init_embeddings_from"] = word2vec_record
    if loop == "tbptt":
        return _pretrain_tbptt(
            model, tokenizer, data_files, training_args, bptt, streaming, cache_dir, run_record, overwrite_output_dir
        )
    return _pretrain_with_trainer(
        model, tokenizer, data_files, training_args, block_size, streaming, cache_dir, run_record
    )


def _pretrain_tbptt(
    model, tokenizer, data_files, training_args, bptt, streaming, cache_dir, run_record, overwrite_output_dir
):
    accelerator = make_accelerator(training_args)
    # Tokenise once, on the main process first, so the others read datasets' cache instead of racing to write it.
    with accelerator.main_process_first():
        raw = load_text_files(data_files, streaming=streaming, cache_dir=cache_dir)
        tokenized = tokenize_corpus(raw, tokenizer, reverse=reads_backward(model))
    eval_token_ids = corpus_token_ids(tokenized["validation"]) if "validation" in tokenized else None
    if streaming:
        # Each process reads its own documents; every process needs its own streams.
        from datasets.distributed import split_dataset_by_node

        train_data = split_dataset_by_node(
            tokenized["train"], rank=accelerator.process_index, world_size=accelerator.num_processes
        )
        if eval_token_ids is not None:
            raise ValueError("with streaming=True, evaluate separately (hf-seq evaluate) instead of a validation file")
    else:
        train_data = corpus_token_ids(tokenized["train"])
    return train_tbptt(
        model,
        train_data,
        training_args,
        eval_token_ids=eval_token_ids,
        bptt=bptt,
        tokenizer=tokenizer,
        accelerator=accelerator,
        run_record=run_record,
        overwrite_output_dir=overwrite_output_dir,
    )


def _pretrain_with_trainer(model, tokenizer, data_files, training_args, block_size, streaming, cache_dir, run_record):
    checkpoint = resolve_resume_checkpoint(training_args.resume_from_checkpoint, training_args.output_dir)
    with training_args.main_process_first(desc="tokenizing the corpus"):
        raw = load_text_files(data_files, streaming=streaming, cache_dir=cache_dir)
        blocks = group_into_blocks(tokenize_corpus(raw, tokenizer, reverse=reads_backward(model)), block_size)
    if not streaming and len(blocks["train"]) == 0:
        raise ValueError(f"the training text has fewer than block_size={block_size} tokens")
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=blocks["train"],
        eval_dataset=blocks.get("validation", None),
        # Copies input_ids into labels (the model shifts them); blocks are full, so nothing is padded.
        data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
        processing_class=tokenizer,
    )
    earlier_seconds = checkpoint_elapsed_seconds(checkpoint)  # a resumed run's earlier sittings
    trainer.add_callback(CheckpointCompleteCallback(earlier_seconds))  # the last: it marks each checkpoint complete
    start_time = time.time()
    train_result = trainer.train(resume_from_checkpoint=checkpoint)
    metrics = dict(train_result.metrics)
    if "validation" in blocks:
        eval_metrics = trainer.evaluate()
        eval_metrics["eval_perplexity"] = perplexity(eval_metrics["eval_loss"])
        metrics.update(eval_metrics)
        trainer.save_metrics("eval", eval_metrics)
    metrics["total_train_runtime"] = round(earlier_seconds + train_result.metrics["train_runtime"], 2)  # every sitting
    wall_time = earlier_seconds + time.time() - start_time
    record = {
        "task": "causal-lm",
        "training_loop": "Trainer",
        "model_type": model.config.model_type,
        "num_parameters": count_parameters(model),
        "datasets": run_record["datasets"],
        "metrics": metrics_for_card(metrics, "validation", prefix="eval_"),
        "eval_split": "validation",
        "hyperparameters": {**training_arguments_record(training_args), "block_size": block_size},
        "wall_time_seconds": round(wall_time, 2),
        "tokenizer_fingerprint": tokenizer_fingerprint(tokenizer),
    }
    save_trainer_run(trainer, train_result.metrics, record)
    return TrainingRun(model=trainer.model, tokenizer=tokenizer, metrics=metrics, output_dir=training_args.output_dir)
