"""`hf-seq inspect …`: each subcommand writes one figure (PNG) and the numbers behind it (JSON) to --output-dir."""

import argparse
import os
from pathlib import Path

import torch

from . import cells as cells_module
from . import figures, gradients, pooling, states
from .training import char_tokenizer, read_lines, reviews_path, token_stream


def _model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="an hf_seq model folder (with its tokenizer); default: a fresh model")
    parser.add_argument("--cell", default="lstm", choices=gradients.CELLS, help="the fresh model's cell")
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--num-hidden-layers", type=int, default=2)
    parser.add_argument("--initializer", default="uniform", choices=gradients.INITIALIZERS)
    parser.add_argument("--text", default='진짜 "재밌다" (강추) ㅋㅋㅋ', help="the text to look at")


def _load_model_and_tokenizer(args):
    """The model folder's model and tokenizer, or a fresh model with a char tokenizer of the review sample."""
    if args.model:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        import hf_seq  # noqa: F401  (registers the families)

        return AutoModelForCausalLM.from_pretrained(args.model).eval(), AutoTokenizer.from_pretrained(args.model)
    tokenizer = char_tokenizer(read_lines(reviews_path(None), max_lines=2000))
    model = gradients.build_model(
        args.cell,
        len(tokenizer),
        hidden_size=args.hidden_size,
        num_hidden_layers=args.num_hidden_layers,
        initializer=args.initializer,
    )
    return model, tokenizer


def _outputs(args, name: str) -> tuple[Path, Path]:
    folder = Path(args.output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}.png", folder / f"{name}.json"


def run_gradients(args) -> None:
    lines = read_lines(reviews_path(args.train_file), max_lines=args.max_lines)
    tokenizer = char_tokenizer(lines)
    stream = token_stream(lines, tokenizer)
    cells = tuple(args.cells.split(","))
    trained = gradients.train_and_measure(
        cells,
        stream,
        len(tokenizer),
        hidden_size=args.hidden_size,
        steps=args.steps,
        train_steps=args.train_steps,
        initializer=args.initializer,
        seed=args.seed,
    )
    clipping = gradients.clipping_experiment(
        stream,
        len(tokenizer),
        hidden_size=args.hidden_size,
        train_steps=args.clip_steps,
        learning_rate=args.clip_lr,
        seed=args.seed,
    )
    png, json_path = _outputs(args, "gradient_flow")
    figures.save_figure(figures.gradient_flow_figure(trained, clipping), png)
    figures.save_json({"trained": trained, "clipping": clipping}, json_path)
    print(f"wrote {png} and {json_path}")


def run_initializers(args) -> None:
    comparison = gradients.initializer_comparison(
        tuple(args.cells.split(",")), hidden_size=args.hidden_size, steps=args.steps, seed=args.seed
    )
    png, json_path = _outputs(args, "initializers")
    figures.save_figure(figures.initializer_figure(comparison), png)
    figures.save_json(comparison, json_path)
    print(f"wrote {png} and {json_path}")


def run_states(args) -> None:
    model, tokenizer = _load_model_and_tokenizer(args)
    input_ids = states.encode_text(tokenizer, args.text)
    labels = states.token_labels(tokenizer, input_ids[0].tolist())
    result = states.states_and_gates(model, input_ids)
    png, json_path = _outputs(args, "states")
    figures.save_figure(states.states_figure(result, labels, max_units=args.max_units), png)
    figures.save_json({"text": args.text, "tokens": labels, **result}, json_path)
    print(f"wrote {png} and {json_path}")


def run_attention(args) -> None:
    if not args.model:
        args.cell = "transformer"
    model, tokenizer = _load_model_and_tokenizer(args)
    input_ids = states.encode_text(tokenizer, args.text)
    labels = states.token_labels(tokenizer, input_ids[0].tolist())
    attentions = states.transformer_attentions(model, input_ids)
    png, json_path = _outputs(args, "attention")
    figures.save_figure(states.attention_figure(attentions, labels), png)
    figures.save_json(
        {
            "text": args.text,
            "tokens": labels,
            "shape": "layers x heads x target x source",
            "attentions": attentions[:, 0].tolist(),
        },
        json_path,
    )
    print(f"wrote {png} and {json_path}")


def run_cells(args) -> None:
    lines = read_lines(reviews_path(args.train_file), max_lines=args.max_lines)
    if args.mark_rich:
        lines = cells_module.mark_rich_lines(lines)
    held_out = lines[-args.num_texts :]  # read after training, not trained on
    model, tokenizer, record = cells_module.train_char_lstm(
        lines[: -args.num_texts],
        hidden_size=args.hidden_size,
        steps=args.train_steps,
        max_seconds=args.max_seconds,
        seed=args.seed,
    )
    found = cells_module.find_interpretable_cells(model, tokenizer, held_out, top_k=3)
    rows = cells_module.render_rows(model, tokenizer, held_out, found)
    png, json_path = _outputs(args, "cells")
    figures.coloured_text_png(rows, png)
    png.with_suffix(".html").write_text(cells_module.rows_to_html(rows), encoding="utf-8")
    found["training"] = {
        "steps": len(record.losses),
        "seconds": record.seconds,
        "final_loss": record.losses[-1],
        "first_loss": record.losses[0],
        "train_lines": len(lines) - args.num_texts,
        "hidden_size": args.hidden_size,
        "mark_rich": args.mark_rich,
    }
    figures.save_json(found, json_path)
    print(f"wrote {png}, {png.with_suffix('.html')} and {json_path}")


def run_pooling(args) -> None:
    result = pooling.compare_poolings(
        args.train_file,
        args.test_file,
        poolings=tuple(args.poolings.split(",")),
        steps=args.steps,
        max_train=args.max_train,
        hidden_size=args.hidden_size,
        eval_every=args.eval_every,
        seed=args.seed,
    )
    png, json_path = _outputs(args, "pooling")
    figures.save_figure(pooling.pooling_figure(result), png)
    figures.save_json(result, json_path)
    png.with_suffix(".md").write_text(pooling.pooling_table(result) + "\n", encoding="utf-8")
    print(pooling.pooling_table(result))
    print(f"wrote {png} and {json_path}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hf-seq inspect", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, function, help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text)
        command.add_argument("--output-dir", default="inspect")
        command.add_argument("--seed", type=int, default=0)
        command.set_defaults(function=function)
        return command

    command = add(
        "gradients", run_gradients, "gradient norm by distance, at init and trained; relu with/without clipping"
    )
    command.add_argument("--train-file", help="review lines (default: $HF_SEQ_REVIEWS_TRAIN or the shipped sample)")
    command.add_argument("--max-lines", type=int, default=3000)
    command.add_argument("--cells", default=",".join(gradients.CELLS))
    command.add_argument("--hidden-size", type=int, default=64)
    command.add_argument("--steps", type=int, default=60, help="sequence length T")
    command.add_argument("--train-steps", type=int, default=200)
    command.add_argument("--initializer", default="uniform", choices=gradients.INITIALIZERS)
    command.add_argument("--clip-steps", type=int, default=100)
    command.add_argument("--clip-lr", type=float, default=2.0)

    command = add("initializers", run_initializers, "gradient norm by distance at init for each initialiser")
    command.add_argument("--cells", default="rnn_tanh,rnn_relu,lstm,gru")
    command.add_argument("--hidden-size", type=int, default=64)
    command.add_argument("--steps", type=int, default=60)

    command = add("states", run_states, "hidden states, cell states and gates over a text (recurrent models)")
    _model_arguments(command)
    command.add_argument("--max-units", type=int, default=24)

    command = add("attention", run_attention, "self-attention per layer and head over a text (Transformer)")
    _model_arguments(command)

    command = add("cells", run_cells, "train a char LSTM and find cells tracking quotes, brackets, position, ㅋㅋ")
    command.add_argument("--train-file", help="review lines (default: $HF_SEQ_REVIEWS_TRAIN or the shipped sample)")
    command.add_argument("--max-lines", type=int, default=6000)
    command.add_argument("--num-texts", type=int, default=300, help="held-out reviews read for the correlations")
    command.add_argument("--hidden-size", type=int, default=128)
    command.add_argument("--train-steps", type=int, default=1000)
    command.add_argument("--max-seconds", type=float, default=None)
    command.add_argument(
        "--mark-rich",
        action="store_true",
        help="train and read on the reviews holding quotes or brackets, each with one review without",
    )

    command = add(
        "pooling", run_pooling, "Transformer classifier with last/mean/max/cls pooling (and encoders), one table"
    )
    command.add_argument(
        "--train-file",
        default=os.path.join(os.path.dirname(os.path.dirname(__file__)), "sample_data", "nsmc_sample_train.txt"),
    )
    command.add_argument("--test-file", default=None, help="reported only, never used for selection")
    command.add_argument(
        "--poolings", default=",".join(pooling.POOLINGS), help=f"comma-separated, of {', '.join(pooling.VARIANTS)}"
    )
    command.add_argument("--steps", type=int, default=300)
    command.add_argument("--max-train", type=int, default=None)
    command.add_argument("--hidden-size", type=int, default=64)
    command.add_argument("--eval-every", type=int, default=50)
    return parser


def inspect_cli(argv: list[str] | None = None) -> int:
    """Entry point of `hf-seq inspect SUBCOMMAND …`; returns the exit status."""
    args = build_parser().parse_args(argv)
    torch.manual_seed(args.seed)
    args.function(args)
    return 0
