"""NSMC with a small pretrained model: pretrain a language model on reviews_lm, fine-tune it on NSMC, and the
from-scratch rows that show what pretraining buys.

Claim: a model of at most 15M parameters, pretrained only on reviews_lm/train.txt and fine-tuned on NSMC
train, reaches >= 89.4% on the NSMC test split. Every row uses the same BPE tokenizer, trained on reviews_lm train.

Each row of the README's results table is a recipe, bench/nsmc_recipes/<card name>.json: the flags of that row
(see nsmc_recipe.py). Flags given on the command line override the recipe's, and every flag works without one:

    # pretrained row: tokenizer -> LM (reviews_lm train) -> perplexity on reviews_lm test and samples -> NSMC
    python bench/bench_nsmc_pretrained.py --data_dir ../shared/data --recipe bench/nsmc_recipes/lstm-nsmc.json
    python bench/bench_nsmc_pretrained.py --data_dir ../shared/data --family lstm  # the same flags, typed
    # a from-scratch row: same tokenizer and fine-tuning recipe, no pretraining
    python bench/bench_nsmc_pretrained.py --data_dir ../shared/data --recipe bench/nsmc_recipes/gru-nsmc-scratch.json
    # a longer-trained LM (pretrained further from lstm-lm, under a name of its own), then its classifier
    python bench/bench_nsmc_pretrained.py --data_dir ../shared/data --recipe bench/nsmc_recipes/lstm-long-nsmc-2ep.json
    # ULMFiT's forward + backward ensemble of two finished classifiers
    python bench/bench_nsmc_pretrained.py --data_dir ../shared/data \
        --recipe bench/nsmc_recipes/lstm-fwd-bwd-nsmc-ensemble.json

The defaults are the recipe of the README's results table. `--data_dir` defaults to `$HF_SEQ_DATA` (holding `nsmc/`
and `reviews_lm/`). The tokenizer is trained once into `<output_dir>/tokenizer` and reused by later rows, and an LM
once into `<output_dir>/<name>-lm`, reused by the rows that fine-tune it differently. Each run writes its model
folders under `<output_dir>`, a model card per model into `--card_dir` (default model_cards/), appends its figures to
`<output_dir>/results.jsonl`, and prints them as one JSON object on its last line. `--cards_only` renders the cards
of the runs in `<output_dir>` again.

A row runs in steps: get_tokenizer -> get_language_model (pretrain_language_model, evaluate_language_model) ->
sample_language_model -> finetune_classifier -> write_card -> record_results. An ensemble row: read its members'
rows -> evaluate_ensemble -> write_ensemble_card -> record_results.
"""

import json
import os
import time

import torch
from nsmc_lineage import (  # sibling scripts: bench/ is on the path when this one runs
    add_metric_to_run_info,
    check_same_tokenizer,
    is_finished_run,
    lm_is_complete,
    pretraining_budget,
    read_run_info,
    record_continued_pretraining,
    shared_pretraining,
)
from nsmc_recipe import (
    classifier_name,
    ensemble_name,
    hub_id,
    lm_card_name,
    lm_folder,
    parse_args,
    recorded_command,
    run_name,
)
from nsmc_results_table import latest_by_recipe
from transformers import TrainingArguments

from hf_seq.data.nsmc import load_nsmc
from hf_seq.model_card import Metric, read_run_data, render_ensemble_card, render_model_card
from hf_seq.training import evaluate_ensemble, evaluate_model, finetune, generate_text, pretrain
from hf_seq.training.common import count_parameters
from tokenizer_training import train_tokenizer


PROMPTS = ["", "이 영화", "배우들 연기가"]
TEMPERATURES = (0.7, 1.0)


# Model configurations from the flags.


def body_config(args):
    """The size and regularisation of the model body, for the LM and for a from-scratch classifier alike."""
    if args.family == "transformer":
        return {
            "hidden_size": args.hidden_size,
            "num_hidden_layers": args.num_hidden_layers,
            "num_attention_heads": args.num_attention_heads,
            "intermediate_size": args.intermediate_size,
            "max_position_embeddings": max(args.block_size, args.max_length + 1),
        }
    config = {
        "embedding_size": args.embedding_size,
        "hidden_size": args.hidden_size,
        "num_hidden_layers": args.num_hidden_layers,
        "tie_word_embeddings": True,
    }
    if args.family == "rnn":
        config["nonlinearity"] = args.nonlinearity
    if args.reading_direction:
        config["reading_direction"] = args.reading_direction
    return config


def dropout_config(args, rate):
    if args.family == "transformer":
        return {
            "hidden_dropout": rate,
            "attention_dropout": rate,
            "embedding_dropout": rate,
            "classifier_dropout": rate,
        }
    return {"embedding_dropout": rate, "dropout": rate, "output_dropout": rate}


def lm_config_overrides(args):
    """A fresh LM's size and dropout; a continued LM keeps its own, and takes only a new reading direction."""
    if not args.continue_from:
        return {**body_config(args), **dropout_config(args, args.lm_dropout)}
    return {"reading_direction": args.reading_direction} if args.reading_direction else None


def hardware_here():
    """What this run computes on, as the results rows record it ("2 CPU threads", or the GPU's name)."""
    return f"{torch.get_num_threads()} CPU threads" if not torch.cuda.is_available() else torch.cuda.get_device_name()


# The steps of a row.


def get_tokenizer(args, reviews_dir):
    """The BPE tokenizer every row shares: trained on reviews_lm train by the first row, reused by the others."""
    tokenizer_dir = os.path.join(args.output_dir, "tokenizer")
    if os.path.isfile(os.path.join(tokenizer_dir, "tokenizer.json")):
        return tokenizer_dir, 0.0
    start = time.time()
    train_tokenizer(
        files=[os.path.join(reviews_dir, "train.txt")], vocab_size=args.vocab_size, output_dir=tokenizer_dir
    )
    return tokenizer_dir, time.time() - start


def get_language_model(args, tokenizer_dir, reviews_dir):
    """The run's LM folder: pretrained and evaluated now, or a finished one of an earlier row, reused as it is."""
    lm_dir = lm_folder(args)
    if lm_is_complete(lm_dir):
        print(f"reusing the pretrained LM in {lm_dir}, with its own size (delete it to pretrain again)")
        return lm_dir
    lm_dir, _ = pretrain_language_model(args, tokenizer_dir, reviews_dir)
    evaluate_language_model(args, lm_dir, reviews_dir)
    return lm_dir


def pretrain_language_model(args, tokenizer_dir, reviews_dir):
    """Pretrain a fresh LM, or continue one (`--continue_from`) with a fresh warm-up and cosine schedule."""
    lm_dir = lm_folder(args)
    if args.continue_from:  # before an hour of training, not after
        check_same_tokenizer(args.continue_from, tokenizer_dir)
    recurrent = args.family != "transformer"
    training_args = TrainingArguments(
        output_dir=lm_dir,
        max_steps=args.pretrain_max_steps,
        per_device_train_batch_size=args.pretrain_batch_size,
        per_device_eval_batch_size=32,
        learning_rate=args.pretrain_learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=200,
        weight_decay=0.01,
        max_grad_norm=0.25 if recurrent else 1.0,
        eval_strategy="no",
        save_strategy="steps",
        save_steps=1000,
        save_total_limit=1,
        resume_from_checkpoint="latest" if args.resume else None,
        logging_steps=100,
        report_to=[],
        seed=args.seed,
    )
    run = pretrain(
        training_args,
        # A rerun of a recipe replaces its scratch folder under runs/; --resume continues it.
        overwrite_output_dir=not args.resume,
        train_file=os.path.join(reviews_dir, "train.txt"),
        validation_file=os.path.join(reviews_dir, "valid.txt"),
        tokenizer=tokenizer_dir,
        model=args.continue_from,
        model_type=args.family,
        config_overrides=lm_config_overrides(args),
        loop="tbptt" if recurrent else "trainer",
        bptt=args.bptt,
        block_size=args.block_size,
    )
    if args.continue_from:
        base_name = os.path.basename(os.path.normpath(args.continue_from)).removesuffix("-lm")
        record_continued_pretraining(lm_dir, args.continue_from, base_model=hub_id(args, lm_card_name(base_name)))
    return lm_dir, run


def evaluate_language_model(args, lm_dir, reviews_dir):
    """The LM's perplexity on reviews_lm test, recorded in its run_info, and its card."""
    test_figures = evaluate_model(lm_dir, os.path.join(reviews_dir, "test.txt"))
    add_metric_to_run_info(
        lm_dir,
        {"name": "perplexity", "value": test_figures["perplexity"], "split": "test", "dataset": "reviews_lm/test.txt"},
    )
    write_card(args, lm_dir, lm_card_name(run_name(args)))


def language_model_figures(args, lm_dir):
    """The LM's figures for the results row, read back from what its run recorded."""
    record = read_run_info(lm_dir)
    perplexity = {entry["split"]: entry["value"] for entry in record["metrics"] if entry["name"] == "perplexity"}
    tokens, seconds = pretraining_budget(record)
    return {
        "lm_parameters": record.get("num_parameters"),
        "pretrain_seconds": round(seconds, 1),
        "pretrain_tokens": tokens,
        "lm_valid_perplexity": round(perplexity.get("validation", float("nan")), 2),
        "lm_test_perplexity": round(perplexity["test"], 2),
        "lm_card": os.path.join(args.card_dir, f"{lm_card_name(run_name(args))}.md"),
    }


def sample_language_model(args, lm_dir):
    """Texts the LM writes from each prompt at each temperature, printed and returned by temperature."""
    samples = {
        str(temperature): generate_text(lm_dir, PROMPTS, max_new_tokens=30, temperature=temperature, seed=args.seed)
        for temperature in TEMPERATURES
    }
    for temperature, texts in samples.items():
        for text in texts:
            print(f"[T={temperature}] {text}")
    return samples


def finetune_classifier(args, tokenizer_dir, nsmc, lm_dir=None):
    """Fine-tune the LM in lm_dir on NSMC train (a fresh classifier without one), evaluated on NSMC test."""
    classifier_dir = os.path.join(args.output_dir, classifier_name(args))
    training_args = TrainingArguments(
        output_dir=classifier_dir,
        num_train_epochs=args.finetune_epochs,
        per_device_train_batch_size=args.finetune_batch_size,
        per_device_eval_batch_size=256,
        learning_rate=args.finetune_learning_rate,
        lr_scheduler_type="linear",
        warmup_steps=200,
        weight_decay=0.01,
        max_grad_norm=1.0,
        eval_strategy="no",
        save_strategy="steps",  # a checkpoint every 1,000 steps, which --resume continues from
        save_steps=1000,
        save_total_limit=1,
        resume_from_checkpoint="latest" if args.resume else None,
        logging_steps=200,
        report_to=[],
        seed=args.seed,
        train_sampling_strategy="group_by_length",
    )
    overrides = {**dropout_config(args, args.dropout), "pooling": args.pooling}
    if lm_dir is None:
        overrides.update(body_config(args))
        if args.family != "transformer":
            overrides.update(bidirectional=args.bidirectional, initializer="xavier")
    run = finetune(
        training_args,
        tokenizer_dir,
        overwrite_output_dir=not args.resume,  # a rerun of a recipe replaces its scratch folder under runs/
        model=lm_dir,
        dataset=nsmc,
        model_type=args.family,
        config_overrides=overrides,
        eval_split="test",
        max_length=args.max_length,
        dataset_name="e9t/nsmc",
        subword_dropout=args.subword_dropout,
        layerwise_lr_decay=args.layerwise_lr_decay,
        gradual_unfreezing=args.gradual_unfreezing,
        # The Hub id the LM's card is written for; finetune records the local folder as base_model_path.
        extra_run_info={"base_model": hub_id(args, lm_card_name(run_name(args)))} if lm_dir else None,
    )
    return classifier_dir, run


def classifier_figures(classifier_run):
    """The classifier's figures for the results row."""
    config = classifier_run.model.config
    return {
        "body": f"{config.num_hidden_layers}×{config.hidden_size}",
        "classifier_parameters": count_parameters(classifier_run.model),
        "finetune_seconds": round(classifier_run.metrics.get("total_train_runtime", 0.0), 1),  # every sitting
        "nsmc_test_accuracy": round(classifier_run.metrics["eval_accuracy"], 4),
        "nsmc_test_n": classifier_run.metrics.get("eval_n"),
    }


def record_results(args, record):
    """Append a row to `<output_dir>/results.jsonl` and print it as the last line."""
    with open(os.path.join(args.output_dir, "results.jsonl"), "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(json.dumps(record, ensure_ascii=False))


def run_row(args):
    """One row: the tokenizer, the LM (unless from scratch) and its samples, then the NSMC classifier."""
    reviews_dir = os.path.join(args.data_dir, "reviews_lm")
    nsmc = load_nsmc(os.path.join(args.data_dir, "nsmc"))
    name = run_name(args)
    results = {
        "command": recorded_command(args),
        "model": name,
        "classifier": classifier_name(args),
        "pretrained": not args.from_scratch,
        "hardware": hardware_here(),
    }
    print(f"{name}: NSMC {len(nsmc['train'])} train / {len(nsmc['test'])} test; {results['hardware']}")

    tokenizer_dir, seconds = get_tokenizer(args, reviews_dir)
    results["tokenizer_seconds"] = round(seconds, 1)

    lm_dir = None
    if not args.from_scratch:
        lm_dir = get_language_model(args, tokenizer_dir, reviews_dir)
        results.update(language_model_figures(args, lm_dir))
        results["samples"] = sample_language_model(args, lm_dir)

    classifier_dir, classifier_run = finetune_classifier(args, tokenizer_dir, nsmc, lm_dir)
    results.update(classifier_figures(classifier_run))
    if lm_dir is not None:
        add_metric_to_run_info(
            classifier_dir,
            {
                "name": "perplexity",
                "value": results["lm_test_perplexity"],
                "split": "test",
                "dataset": "reviews_lm/test.txt (base LM)",
            },
        )
    results["classifier_card"] = write_card(args, classifier_dir, classifier_name(args))
    print(
        f"{name}{' (from scratch)' if args.from_scratch else ''}: NSMC test accuracy "
        f"{results['nsmc_test_accuracy']:.4f}"
    )
    record_results(args, results)


# An ensemble row.


def member_rows(args):
    """The results rows of the ensemble's members, which must have been evaluated with one max_length."""
    rows = latest_by_recipe(os.path.join(args.output_dir, "results.jsonl"))
    missing = [member for member in args.ensemble if member not in rows]
    if missing:
        raise SystemExit(f"no results row for {missing} in {args.output_dir}/results.jsonl")
    members = [rows[member] for member in args.ensemble]
    max_lengths = {row["command"]["max_length"] for row in members}
    if len(max_lengths) > 1:
        raise SystemExit(f"the members were evaluated with different max_length: {sorted(max_lengths)}")
    return members


def run_ensemble(args):
    """Evaluate finished classifiers together on NSMC test and record the ensemble's row and card.

    The pretraining behind the ensemble is every LM in its members' lineages, each counted once (a backward LM
    continued from the forward one shares that LM's tokens and minutes).
    """
    members = member_rows(args)
    member_dirs = [os.path.join(args.output_dir, member) for member in args.ensemble]
    start = time.time()
    result = evaluate_ensemble(
        member_dirs,
        os.path.join(args.data_dir, "nsmc", "ratings_test.txt"),
        max_length=members[0]["command"]["max_length"],
    )
    evaluation_seconds = time.time() - start

    lineage, pretrain_tokens, pretrain_seconds = shared_pretraining(
        [lm_folder(args, row["model"]) for row in members if row["pretrained"]]
    )
    record = {
        "command": recorded_command(args),
        "model": args.name,
        "classifier": ensemble_name(args),
        "pretrained": any(row["pretrained"] for row in members),
        # Where the members were trained (the row's wall time is theirs); the averaging itself ran here.
        "hardware": " / ".join(sorted({row["hardware"] for row in members})),
        "evaluation_hardware": hardware_here(),
        "members": [
            {
                "classifier": name,
                "nsmc_test_accuracy": round(member["accuracy"], 4),
                "recorded_accuracy": row["nsmc_test_accuracy"],
                "lm_test_perplexity": row.get("lm_test_perplexity"),
                "classifier_parameters": row["classifier_parameters"],
                "finetune_epochs": row["command"]["finetune_epochs"],
            }
            for name, member, row in zip(args.ensemble, result["members"], members, strict=True)
        ],
        "pretrained_lms": lineage,
        "pretrain_tokens": pretrain_tokens,
        "pretrain_seconds": round(pretrain_seconds, 1),
        "classifier_parameters": sum(row["classifier_parameters"] for row in members),
        "finetune_seconds": round(sum(row["finetune_seconds"] for row in members), 1),
        "ensemble_eval_seconds": round(evaluation_seconds, 1),
        "nsmc_test_accuracy": round(result["accuracy"], 4),
        "nsmc_test_n": result["n"],
    }
    record["ensemble_card"] = write_ensemble_card(args, record, member_dirs)
    print(
        f"{args.name}: NSMC test accuracy {record['nsmc_test_accuracy']:.4f} (members: "
        + ", ".join(f"{member['classifier']} {member['nsmc_test_accuracy']:.4f}" for member in record["members"])
        + ")"
    )
    record_results(args, record)


# Model cards.


def write_card(args, model_dir, card_name):
    card = render_model_card(read_run_data(model_dir), repo_id=hub_id(args, card_name), language="ko")
    os.makedirs(args.card_dir, exist_ok=True)
    path = os.path.join(args.card_dir, f"{card_name}.md")
    card.save(path)
    return path


def write_ensemble_card(args, record, member_dirs):
    members = []
    for member, member_dir in zip(record["members"], member_dirs, strict=True):
        with open(os.path.join(member_dir, "config.json"), encoding="utf-8") as handle:
            config = json.load(handle)
        members.append(
            {
                "repo_id": hub_id(args, member["classifier"]),
                "num_parameters": member["classifier_parameters"],
                "reading_direction": config.get("reading_direction", "forward"),
                "metrics": [Metric("accuracy", member["nsmc_test_accuracy"], "test", "e9t/nsmc")]
                + (
                    [Metric("base LM perplexity", member["lm_test_perplexity"], "reviews_lm test")]
                    if member.get("lm_test_perplexity") is not None
                    else []
                ),  # none for a member trained from scratch
            }
        )
    card_name = record["classifier"]
    card = render_ensemble_card(
        hub_id(args, card_name),
        members,
        [Metric("accuracy", record["nsmc_test_accuracy"], "test", "e9t/nsmc")],
        language="ko",
    )
    os.makedirs(args.card_dir, exist_ok=True)
    path = os.path.join(args.card_dir, f"{card_name}.md")
    card.save(path)
    return path


def rewrite_cards(args):
    """Render the card of every model folder and ensemble row under output_dir again (after a template change)."""
    for folder in sorted(os.listdir(args.output_dir)):
        model_dir = os.path.join(args.output_dir, folder)
        if is_finished_run(model_dir):
            card_name = lm_card_name(folder.removesuffix("-lm")) if folder.endswith("-lm") else folder
            print(write_card(args, model_dir, card_name))
    results_path = os.path.join(args.output_dir, "results.jsonl")
    records = latest_by_recipe(results_path).values() if os.path.isfile(results_path) else []
    for record in records:
        if "members" in record:  # an ensemble row: its card is rendered from the row and the members' configs
            member_dirs = [os.path.join(args.output_dir, member["classifier"]) for member in record["members"]]
            print(write_ensemble_card(args, record, member_dirs))


def main():
    args = parse_args(description=__doc__.splitlines()[0])
    if args.cards_only:
        rewrite_cards(args)
    elif args.ensemble:
        run_ensemble(args)
    else:
        run_row(args)


if __name__ == "__main__":
    main()
