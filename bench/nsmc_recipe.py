"""The flags of a bench_nsmc_pretrained.py run, the rules they obey, and the names they give its folders and cards.

A recipe file (bench/nsmc_recipes/<card name>.json, one per row of the README's NSMC table) is a saved set of
these flags, as one JSON object: `{"family": "lstm", "finetune_epochs": 2}` stands for `--family lstm
--finetune_epochs 2`; `true` turns a switch such as `--from_scratch` on, a list gives `--ensemble` its folders.
The recipe's flags come first and the command line's after them, so a flag given on the command line wins.
"""

import argparse
import json
import os
import sys

from nsmc_lineage import is_finished_run, lm_is_complete

from hf_seq.models.recurrent.configuration_recurrent import POOLINGS as RECURRENT_POOLINGS
from hf_seq.models.transformer.configuration_transformer_lm import POOLINGS as TRANSFORMER_POOLINGS
from hf_seq.training.checkpoints import latest_complete_checkpoint


# The Hub organisation every card and every recorded `base_model` names (`--hub_organization` to change it).
HUB_ORGANIZATION = "hf-seq"
# Flags that say where a run's flags come from and whom its cards name, not what it trains and measures: a results
# row's recorded command leaves them out, so it reads the same whether the run was started from a recipe or not.
NOT_RECORDED = ("recipe", "hub_organization", "resume")


def build_parser(description=None):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--recipe",
        metavar="JSON",
        help="a recipe file (e.g. bench/nsmc_recipes/lstm-long-nsmc-2ep.json): a saved set of these flags; "
        "flags given on the command line override the recipe's",
    )
    parser.add_argument("--data_dir", default=os.environ.get("HF_SEQ_DATA"), help="folder with nsmc/ and reviews_lm/")
    parser.add_argument("--output_dir", default="runs/nsmc_pretrained")
    parser.add_argument("--card_dir", default="model_cards")
    parser.add_argument(
        "--hub_organization",
        default=HUB_ORGANIZATION,
        help="the Hub organisation in the cards' repo ids and in the base_model a training run records",
    )
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
    parser.add_argument(
        "--resume",
        action="store_true",
        help="recurrent LMs: continue the row's interrupted pretraining or fine-tuning from the newest complete "
        "checkpoint in its LM or classifier folder (saved every 1,000 steps), with the same flags, instead of starting "
        "it again",
    )
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
    return parser


def recipe_flags(parser, path):
    """A recipe file's flags as command-line arguments, for `parser` to read as if they were typed."""
    try:
        with open(path, encoding="utf-8") as handle:
            recipe = json.load(handle)
    except (OSError, ValueError) as error:
        parser.error(f"--recipe {path}: {error}")
    if not isinstance(recipe, dict):
        parser.error(f"--recipe {path}: a recipe is one JSON object of flags, not {type(recipe).__name__}")
    defaults = vars(parser.parse_args([]))
    flags = []
    for key, value in recipe.items():
        if key == "recipe":
            parser.error(f"--recipe {path}: a recipe holds flags, not another recipe")
        if key not in defaults:
            parser.error(f"--recipe {path}: {key!r} is not a flag of this script")
        if isinstance(defaults[key], bool):  # a switch: true turns it on, false leaves it off
            if not isinstance(value, bool):
                parser.error(f"--recipe {path}: {key} is a switch; give it true or false, not {value!r}")
            flags += [f"--{key}"] if value else []
        elif isinstance(value, list):
            flags += [f"--{key}", *(str(item) for item in value)]
        elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
            flags.append(f"--{key}={value}")  # one token, so a value starting with "-" is not read as a flag
        else:
            parser.error(f"--recipe {path}: {key}={value!r} is not a value a flag takes")
    return flags


def read_args(argv=None, description=None):
    """The parser and the flags of a run, a recipe's (`--recipe`) first and then the command line's, not yet checked."""
    parser = build_parser(description)
    argv = list(argv) if argv is not None else sys.argv[1:]
    first_pass = argparse.ArgumentParser(add_help=False)
    first_pass.add_argument("--recipe")
    recipe = first_pass.parse_known_args(argv)[0].recipe
    flags = recipe_flags(parser, recipe) if recipe else []
    return parser, parser.parse_args(flags + argv)


def check_args(parser, args):
    """The rules a set of flags obeys, checked before any training (not after an hour of pretraining)."""
    if args.ensemble:
        if not args.name:
            parser.error("--ensemble needs a --name for the ensemble's row and card")
        if len(args.ensemble) < 2:
            parser.error("--ensemble needs at least two classifiers")
        for member in args.ensemble:
            if not is_finished_run(os.path.join(args.output_dir, member)):
                parser.error(f"--ensemble {member}: no finished classifier folder {args.output_dir}/{member}")
    if not args.data_dir and not args.cards_only:
        parser.error("give --data_dir (or set HF_SEQ_DATA) to the folder holding nsmc/ and reviews_lm/")
    if args.bidirectional and (args.family == "transformer" or not args.from_scratch):
        parser.error("--bidirectional is for recurrent from-scratch classifiers (a causal LM is unidirectional)")
    poolings = TRANSFORMER_POOLINGS if args.family == "transformer" else RECURRENT_POOLINGS
    if args.pooling not in poolings:
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
        if os.path.abspath(args.continue_from) == os.path.abspath(lm_folder(args)):
            parser.error(f"--name {args.name} would overwrite the LM it continues from")
    if args.resume:
        check_resume(parser, args)


def check_resume(parser, args):
    """--resume continues a recurrent row: its interrupted pretraining (a checkpoint in an unfinished LM folder) or,
    once its LM is complete, its fine-tuning (from the classifier folder's newest checkpoint, if it has one)."""
    if args.ensemble or args.from_scratch or args.cards_only:
        parser.error("--resume continues an interrupted pretraining; this run pretrains nothing")
    if args.family == "transformer":
        parser.error("--resume is for the recurrent LMs' TBPTT pretraining; rerun a Transformer row from the start")
    lm_dir = lm_folder(args)
    if not lm_is_complete(lm_dir) and latest_complete_checkpoint(lm_dir) is None:
        parser.error(f"--resume: no complete checkpoint in {lm_dir} to continue from; run without --resume")


def parse_args(argv=None, description=None):
    parser, args = read_args(argv, description)
    check_args(parser, args)
    return args


def recorded_command(args):
    """The flags a results row records as its command."""
    return {key: value for key, value in vars(args).items() if key not in NOT_RECORDED}


# Names: a run's folders under output_dir, its cards under card_dir, and their Hub ids.


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


def ensemble_name(args):
    """An ensemble row's name, in results.jsonl and as its card's name."""
    return f"{args.name}-nsmc-ensemble"


def lm_folder(args, name=None):
    """The folder of the LM of run `name` (default: this run's) under output_dir."""
    return os.path.join(args.output_dir, f"{name or run_name(args)}-lm")


def lm_card_name(name):
    """The LM's card (and Hub repo) name for a run name: its folder `<name>-lm` is published as `<name>-reviews-lm`."""
    return f"{name}-reviews-lm"


def hub_id(args, card):
    """The Hub repo id a card is written for."""
    return f"{args.hub_organization}/{card}"
