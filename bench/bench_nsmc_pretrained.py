"""NSMC with a small pretrained model: pretrain a language model on reviews_lm, fine-tune it on NSMC, and the
from-scratch rows that show what pretraining buys.

Claim: a model of at most 15M parameters, pretrained only on reviews_lm/train.txt and fine-tuned on NSMC
train, reaches >= 89.4% on the NSMC test split. Every row uses the same BPE tokenizer, trained on reviews_lm train.

    # pretrained row: tokenizer -> LM (reviews_lm train) -> perplexity on reviews_lm test and samples -> NSMC
    python bench/bench_nsmc_pretrained.py --data_dir ../shared/data --family lstm
    # from-scratch rows, same tokenizer and fine-tuning recipe, no pretraining
    python bench/bench_nsmc_pretrained.py --data_dir ../shared/data --family rnn --from_scratch
    python bench/bench_nsmc_pretrained.py --data_dir ../shared/data --family lstm --bidirectional --from_scratch
    # a longer-trained LM: pretrain that LM further, under a name of its own, then fine-tune it
    python bench/bench_nsmc_pretrained.py --data_dir ../shared/data --continue_from runs/nsmc_pretrained/lstm-lm \
        --name lstm-long --pretrain_max_steps 8000 --finetune_epochs 2
    # ULMFiT's backward LM, started from the forward LM's weights, then its classifier
    python bench/bench_nsmc_pretrained.py --data_dir ../shared/data --continue_from runs/nsmc_pretrained/lstm-long-lm \
        --name lstm-backward --reading_direction backward --pretrain_max_steps 5500 --finetune_epochs 2
    # ULMFiT's forward + backward ensemble of two finished classifiers
    python bench/bench_nsmc_pretrained.py --data_dir ../shared/data --name lstm-fwd-bwd \
        --ensemble lstm-long-nsmc-2ep lstm-backward-nsmc-2ep

The defaults are the recipe of the README's results table. `--data_dir` defaults to `$HF_SEQ_DATA` (holding `nsmc/`
and `reviews_lm/`). The tokenizer is trained once into `<output_dir>/tokenizer` and reused by later rows. Each run
writes its model folders under `<output_dir>`, a model card per model into `--card_dir` (default model_cards/),
appends its figures to `<output_dir>/results.jsonl`, and prints them as one JSON object on its last line.
`--cards_only` renders the cards of the runs in `<output_dir>` again.
"""

import argparse
import json
import os
import time

import torch
from nsmc_results_table import latest_by_recipe  # a sibling script: bench/ is on the path when this one runs
from transformers import TrainingArguments

from hf_seq.data.nsmc import load_nsmc
from hf_seq.model_card import Metric, read_run_data, render_ensemble_card, render_model_card
from hf_seq.models.recurrent.configuration_recurrent import POOLINGS as RECURRENT_POOLINGS
from hf_seq.models.transformer.configuration_transformer_lm import POOLINGS as TRANSFORMER_POOLINGS
from hf_seq.training import evaluate_ensemble, evaluate_model, finetune, generate_text, pretrain
from hf_seq.training.common import RUN_INFO_NAME, count_parameters, write_json_atomically
from tokenizer_training import train_tokenizer


PROMPTS = ["", "이 영화", "배우들 연기가"]
TEMPERATURES = (0.7, 1.0)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default=os.environ.get("HF_SEQ_DATA"), help="folder with nsmc/ and reviews_lm/")
    parser.add_argument("--output_dir", default="runs/nsmc_pretrained")
    parser.add_argument("--card_dir", default="model_cards")
    parser.add_argument("--family", default="lstm", choices=["rnn", "lstm", "gru", "transformer"])
    parser.add_argument("--name", help="the run's name in folder and card names (default: from the family)")
    parser.add_argument(
        "--continue_from",
        help="a finished LM folder of this output_dir to pretrain further, for "
        "--pretrain_max_steps more steps (a fresh schedule), keeping its size; needs --name",
    )
    parser.add_argument(
        "--reading_direction",
        choices=["forward", "backward"],
        help="recurrent families: backward reads each text last token first (ULMFiT's backward LM); "
        "with --continue_from, the new LM starts from the base LM's weights but reads this way",
    )
    parser.add_argument("--from_scratch", action="store_true", help="no pretraining: the NSMC classifier starts fresh")
    parser.add_argument("--bidirectional", action="store_true", help="recurrent from-scratch classifiers only")
    parser.add_argument("--nonlinearity", default="tanh", choices=["tanh", "relu"], help="for --family rnn")
    parser.add_argument("--vocab_size", type=int, default=8000)
    parser.add_argument("--embedding_size", type=int, default=256)
    parser.add_argument("--hidden_size", type=int, default=512)
    parser.add_argument("--num_hidden_layers", type=int, default=2)
    parser.add_argument("--num_attention_heads", type=int, default=4, help="Transformer only")
    parser.add_argument("--intermediate_size", type=int, default=1024, help="Transformer only")
    # Pretraining (TBPTT over carried-state streams for recurrent LMs, blocks on Trainer for the Transformer).
    parser.add_argument("--pretrain_max_steps", type=int, default=2500)
    parser.add_argument("--pretrain_batch_size", type=int, default=32)
    parser.add_argument("--pretrain_learning_rate", type=float, default=2e-3)
    parser.add_argument("--bptt", type=int, default=70)
    parser.add_argument("--block_size", type=int, default=128)
    parser.add_argument("--lm_dropout", type=float, default=0.1)
    # Fine-tuning on NSMC train, evaluated on NSMC test.
    parser.add_argument("--finetune_epochs", type=float, default=1.0)
    parser.add_argument("--finetune_batch_size", type=int, default=64)
    parser.add_argument("--finetune_learning_rate", type=float, default=1e-3)
    parser.add_argument("--dropout", type=float, default=0.3)
    parser.add_argument(
        "--pooling",
        default="max",
        choices=list(dict.fromkeys(RECURRENT_POOLINGS + TRANSFORMER_POOLINGS)),
        help="concat (last, max and mean side by side, as ULMFiT): recurrent models only",
    )
    parser.add_argument("--max_length", type=int, default=80)
    parser.add_argument("--subword_dropout", type=float, default=0.0)
    parser.add_argument(
        "--layerwise_lr_decay",
        type=float,
        default=1.0,
        help="discriminative fine-tuning: each layer's rate is this times the one above (ULMFiT: 0.38)",
    )
    parser.add_argument(
        "--gradual_unfreezing",
        type=float,
        default=0.0,
        help="epochs between unfreezing successive layer groups, head first (ULMFiT: 1)",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--cards_only", action="store_true", help="only render the cards of the runs in output_dir")
    parser.add_argument(
        "--ensemble",
        nargs="+",
        metavar="CLASSIFIER",
        help="evaluate these classifiers of output_dir (folder names) together, their class "
        "probabilities averaged (ULMFiT's forward + backward); needs --name",
    )
    args = parser.parse_args()
    if args.ensemble:
        if not args.name:
            parser.error("--ensemble needs a --name for the ensemble's row and card")
        if len(args.ensemble) < 2:
            parser.error("--ensemble needs at least two classifiers")
        for member in args.ensemble:
            if not os.path.isfile(os.path.join(args.output_dir, member, RUN_INFO_NAME)):
                parser.error(f"--ensemble {member}: no finished classifier folder {args.output_dir}/{member}")
    if not args.data_dir and not args.cards_only:
        parser.error("give --data_dir (or set HF_SEQ_DATA) to the folder holding nsmc/ and reviews_lm/")
    if args.bidirectional and (args.family == "transformer" or not args.from_scratch):
        parser.error("--bidirectional is for recurrent from-scratch classifiers (a causal LM is unidirectional)")
    poolings = TRANSFORMER_POOLINGS if args.family == "transformer" else RECURRENT_POOLINGS
    if args.pooling not in poolings:  # now, not after an hour of pretraining
        parser.error(f"--pooling {args.pooling}: --family {args.family} pools with one of {poolings}")
    if args.reading_direction == "backward" and (args.family == "transformer" or args.bidirectional):
        parser.error("--reading_direction backward is for unidirectional recurrent models")
    if args.continue_from:
        if args.from_scratch:
            parser.error("--continue_from pretrains further; it cannot be combined with --from_scratch")
        if not args.name:
            parser.error("--continue_from needs a --name for the new LM (the base LM's folder and card stay as is)")
        if not lm_is_complete(args.continue_from):
            parser.error(f"--continue_from {args.continue_from}: not a finished LM folder (weights, test perplexity)")
        if os.path.abspath(args.continue_from) == os.path.abspath(os.path.join(args.output_dir, f"{args.name}-lm")):
            parser.error(f"--name {args.name} would overwrite the LM it continues from")
    return args


def run_name(args):
    if args.name:
        return args.name
    name = {"rnn": f"rnn-{args.nonlinearity}", "lstm": "lstm", "gru": "gru", "transformer": "transformer"}[args.family]
    if args.bidirectional:
        name = "bi" + name
    return name


def classifier_name(args):
    """The classifier's folder and card name: the family, then what sets this recipe apart."""
    name = f"{run_name(args)}-nsmc" + ("-scratch" if args.from_scratch else "")
    if args.pooling != "max":
        name += f"-{args.pooling}"
    if args.finetune_epochs != 1.0:
        name += f"-{args.finetune_epochs:g}ep"
    if args.finetune_learning_rate != 1e-3:
        name += f"-lr{args.finetune_learning_rate:g}"
    if args.layerwise_lr_decay != 1.0:
        name += f"-llrd{args.layerwise_lr_decay:g}"
    if args.subword_dropout:
        name += f"-bpedrop{args.subword_dropout:g}"
    if args.gradual_unfreezing:
        name += f"-unfreeze{args.gradual_unfreezing:g}"
    return name


def lm_card_name(name):
    """The LM's card (and Hub repo) name for a run name: its folder `<name>-lm` is published as `<name>-reviews-lm`."""
    return f"{name}-reviews-lm"


def lm_repo_id(args):
    return f"hf-seq/{lm_card_name(run_name(args))}"


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


def get_tokenizer(args, reviews_dir):
    tokenizer_dir = os.path.join(args.output_dir, "tokenizer")
    if os.path.isfile(os.path.join(tokenizer_dir, "tokenizer.json")):
        return tokenizer_dir, 0.0
    start = time.time()
    train_tokenizer(
        files=[os.path.join(reviews_dir, "train.txt")], vocab_size=args.vocab_size, output_dir=tokenizer_dir
    )
    return tokenizer_dir, time.time() - start


def pretrain_language_model(args, tokenizer_dir, reviews_dir, name):
    """Pretrain a fresh LM, or continue one (`--continue_from`) with a fresh warm-up and cosine schedule."""
    lm_dir = os.path.join(args.output_dir, f"{name}-lm")
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
        logging_steps=100,
        report_to=[],
        seed=args.seed,
    )
    run = pretrain(
        training_args,
        overwrite_output_dir=True,  # a rerun of a recipe replaces its scratch folder under runs/
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
        record_continued_pretraining(lm_dir, args.continue_from)
    return lm_dir, run


def lm_config_overrides(args):
    """A fresh LM's size and dropout; a continued LM keeps its own, and takes only a new reading direction."""
    if not args.continue_from:
        return {**body_config(args), **dropout_config(args, args.lm_dropout)}
    return {"reading_direction": args.reading_direction} if args.reading_direction else None


def read_run_info(model_dir):
    with open(os.path.join(model_dir, RUN_INFO_NAME), encoding="utf-8") as handle:
        return json.load(handle)


def own_pretraining(record):
    """Tokens and seconds of the pretraining run an LM's run_info describes, without the LMs it continued from."""
    hyperparameters = record.get("hyperparameters", {})
    window = hyperparameters.get("bptt") or hyperparameters.get("block_size") or 0
    tokens = hyperparameters.get("max_steps", 0) * hyperparameters.get("per_device_train_batch_size", 0) * window
    return tokens, record.get("wall_time_seconds") or 0.0


def pretraining_budget(record):
    """Tokens and seconds of pretraining behind an LM's run_info, counting the LMs it continued from."""
    tokens, seconds = own_pretraining(record)
    earlier = record.get("continued_from")
    if earlier:
        tokens += earlier["pretrain_tokens"]
        seconds += earlier["pretrain_seconds"]
    return tokens, seconds


def lm_lineage(lm_dir):
    """The LM folders whose pretraining stands behind lm_dir: itself, then each LM it continued from."""
    lineage = []
    while lm_dir:
        lineage.append(os.path.normpath(lm_dir))
        lm_dir = read_run_info(lm_dir).get("continued_from", {}).get("path")
    return lineage


def check_same_tokenizer(base_dir, tokenizer_dir):
    with (
        open(os.path.join(base_dir, "tokenizer.json"), encoding="utf-8") as base_tokenizer,
        open(os.path.join(tokenizer_dir, "tokenizer.json"), encoding="utf-8") as tokenizer,
    ):
        if json.load(base_tokenizer) != json.load(tokenizer):
            raise ValueError(f"{base_dir} was trained with another tokenizer than {tokenizer_dir}")


def record_continued_pretraining(lm_dir, base_dir):
    """Name the LM this one continued (its card's base_model) and carry its pretraining budget forward."""
    base_record = read_run_info(base_dir)
    tokens, seconds = pretraining_budget(base_record)
    base_name = os.path.basename(os.path.normpath(base_dir)).removesuffix("-lm")
    record = read_run_info(lm_dir)
    record["base_model"] = f"hf-seq/{lm_card_name(base_name)}"
    record["continued_from"] = {"path": base_dir, "pretrain_tokens": tokens, "pretrain_seconds": seconds}
    write_json_atomically(os.path.join(lm_dir, RUN_INFO_NAME), record)


def lm_is_complete(lm_dir):
    """An LM folder this script finished: weights saved and the test perplexity recorded."""
    if not (
        os.path.isfile(os.path.join(lm_dir, RUN_INFO_NAME))
        and os.path.isfile(os.path.join(lm_dir, "model.safetensors"))
    ):
        return False
    metrics = read_run_info(lm_dir).get("metrics", [])
    return any(entry["name"] == "perplexity" and entry["split"] == "test" for entry in metrics)


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


def finetune_classifier(args, tokenizer_dir, nsmc, lm_dir=None):
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
        save_strategy="no",
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
        overwrite_output_dir=True,  # a rerun of a recipe replaces its scratch folder under runs/
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
        extra_run_info={"base_model": lm_repo_id(args)} if lm_dir else None,
    )
    return classifier_dir, run


def add_metric_to_run_info(model_dir, metric):
    """Record a figure measured after training (e.g. the LM's test perplexity) in run_info.json for the card."""
    record = read_run_info(model_dir)
    record["metrics"] = [
        entry
        for entry in record.get("metrics", [])
        if entry.get("name") != metric["name"] or entry.get("split") != metric["split"]
    ] + [metric]
    write_json_atomically(os.path.join(model_dir, RUN_INFO_NAME), record)


def write_card(model_dir, card_dir, card_name):
    card = render_model_card(read_run_data(model_dir), repo_id=f"hf-seq/{card_name}", language="ko")
    os.makedirs(card_dir, exist_ok=True)
    path = os.path.join(card_dir, f"{card_name}.md")
    card.save(path)
    return path


def rewrite_cards(args):
    """Render the card of every model folder and ensemble row under output_dir again (after a template change)."""
    for folder in sorted(os.listdir(args.output_dir)):
        model_dir = os.path.join(args.output_dir, folder)
        if os.path.isfile(os.path.join(model_dir, RUN_INFO_NAME)):
            card_name = lm_card_name(folder.removesuffix("-lm")) if folder.endswith("-lm") else folder
            print(write_card(model_dir, args.card_dir, card_name))
    results_path = os.path.join(args.output_dir, "results.jsonl")
    records = latest_by_recipe(results_path).values() if os.path.isfile(results_path) else []
    for record in records:
        if "members" in record:  # an ensemble row: its card is rendered from the row and the members' configs
            member_dirs = [os.path.join(args.output_dir, member["classifier"]) for member in record["members"]]
            print(write_ensemble_card(args, record, member_dirs))


def hardware_here():
    """What this run computes on, as the results rows record it ("2 CPU threads", or the GPU's name)."""
    return f"{torch.get_num_threads()} CPU threads" if not torch.cuda.is_available() else torch.cuda.get_device_name()


def run_ensemble(args):
    """Evaluate finished classifiers together on NSMC test and record the ensemble's row and card.

    The pretraining behind the ensemble is every LM in its members' lineages, each counted once (a backward LM
    continued from the forward one shares that LM's tokens and minutes).
    """
    rows = latest_by_recipe(os.path.join(args.output_dir, "results.jsonl"))
    missing = [member for member in args.ensemble if member not in rows]
    if missing:
        raise SystemExit(f"no results row for {missing} in {args.output_dir}/results.jsonl")
    members = [rows[member] for member in args.ensemble]
    max_lengths = {row["command"]["max_length"] for row in members}
    if len(max_lengths) > 1:
        raise SystemExit(f"the members were evaluated with different max_length: {sorted(max_lengths)}")
    member_dirs = [os.path.join(args.output_dir, member) for member in args.ensemble]
    start = time.time()
    result = evaluate_ensemble(
        member_dirs, os.path.join(args.data_dir, "nsmc", "ratings_test.txt"), max_length=max_lengths.pop()
    )
    evaluation_seconds = time.time() - start

    lineage = []
    for row in members:
        if row["pretrained"]:
            lineage += [
                lm for lm in lm_lineage(os.path.join(args.output_dir, f"{row['model']}-lm")) if lm not in lineage
            ]
    budgets = [own_pretraining(read_run_info(lm)) for lm in lineage]
    record = {
        "command": vars(args),
        "model": args.name,
        "classifier": f"{args.name}-nsmc-ensemble",
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
        "pretrain_tokens": sum(tokens for tokens, _ in budgets),
        "pretrain_seconds": round(sum(seconds for _, seconds in budgets), 1),
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
    with open(os.path.join(args.output_dir, "results.jsonl"), "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(json.dumps(record, ensure_ascii=False))


def write_ensemble_card(args, record, member_dirs):
    members = []
    for member, member_dir in zip(record["members"], member_dirs, strict=True):
        with open(os.path.join(member_dir, "config.json"), encoding="utf-8") as handle:
            config = json.load(handle)
        members.append(
            {
                "repo_id": f"hf-seq/{member['classifier']}",
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
        f"hf-seq/{card_name}",
        members,
        [Metric("accuracy", record["nsmc_test_accuracy"], "test", "e9t/nsmc")],
        language="ko",
    )
    os.makedirs(args.card_dir, exist_ok=True)
    path = os.path.join(args.card_dir, f"{card_name}.md")
    card.save(path)
    return path


def main():
    args = parse_args()
    if args.cards_only:
        rewrite_cards(args)
        return
    if args.ensemble:
        run_ensemble(args)
        return
    reviews_dir = os.path.join(args.data_dir, "reviews_lm")
    nsmc = load_nsmc(os.path.join(args.data_dir, "nsmc"))
    name = run_name(args)
    results = {
        "command": vars(args),
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
        lm_dir = os.path.join(args.output_dir, f"{name}-lm")
        if not lm_is_complete(lm_dir):
            lm_dir, _ = pretrain_language_model(args, tokenizer_dir, reviews_dir, name)
            test_figures = evaluate_model(lm_dir, os.path.join(reviews_dir, "test.txt"))
            add_metric_to_run_info(
                lm_dir,
                {
                    "name": "perplexity",
                    "value": test_figures["perplexity"],
                    "split": "test",
                    "dataset": "reviews_lm/test.txt",
                },
            )
            write_card(lm_dir, args.card_dir, lm_card_name(name))
        else:
            print(f"reusing the pretrained LM in {lm_dir}, with its own size (delete it to pretrain again)")
        results.update(language_model_figures(args, lm_dir))
        results["samples"] = {
            str(temperature): generate_text(
                lm_dir, PROMPTS, max_new_tokens=30, temperature=temperature, seed=args.seed
            )
            for temperature in TEMPERATURES
        }
        for temperature, texts in results["samples"].items():
            for text in texts:
                print(f"[T={temperature}] {text}")

    classifier_dir, classifier_run = finetune_classifier(args, tokenizer_dir, nsmc, lm_dir)
    config = classifier_run.model.config
    results["body"] = f"{config.num_hidden_layers}×{config.hidden_size}"
    results["classifier_parameters"] = count_parameters(classifier_run.model)
    results["finetune_seconds"] = round(classifier_run.metrics.get("train_runtime", 0.0), 1)
    results["nsmc_test_accuracy"] = round(classifier_run.metrics["eval_accuracy"], 4)
    results["nsmc_test_n"] = classifier_run.metrics.get("eval_n")
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
    results["classifier_card"] = write_card(classifier_dir, args.card_dir, classifier_name(args))
    print(
        f"{name}{' (from scratch)' if args.from_scratch else ''}: NSMC test accuracy "
        f"{results['nsmc_test_accuracy']:.4f}"
    )
    with open(os.path.join(args.output_dir, "results.jsonl"), "a", encoding="utf-8") as handle:
        handle.write(json.dumps(results, ensure_ascii=False) + "\n")
    print(json.dumps(results, ensure_ascii=False))


if __name__ == "__main__":
    main()
