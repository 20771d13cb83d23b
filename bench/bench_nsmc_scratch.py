"""NSMC sentiment from scratch on the full data: a recurrent classifier with our BPE tokenizer vs a linear baseline.

Claim: a BiGRU/BiLSTM classifier trained from scratch (no pretraining) on NSMC train, with a BPE tokenizer
trained by `tokenizer_training` on the same documents, reaches >= 88.0% accuracy on the 50K test split. The bar is the
linear baseline measured in the same run: character 1-4-gram TF-IDF + logistic regression (scikit-learn).

    python bench/bench_nsmc_scratch.py --data_dir ../shared/data [--cell gru] [--epochs 3] [--output_dir runs/nsmc]

`--data_dir` defaults to `$HF_SEQ_DATA` (a folder holding `nsmc/ratings_{train,test}.txt`). The last line printed is
one JSON object with every figure. `--ensemble DIR [DIR ...]` trains nothing: it evaluates classifiers this script
saved as one ensemble (class probabilities averaged), beside the linear baseline measured in the same run.
"""

import argparse
import json
import os
import time

import torch
from transformers import TrainingArguments

from hf_seq.data.nsmc import load_nsmc
from hf_seq.models.recurrent.configuration_recurrent import POOLINGS
from hf_seq.training.common import RUN_INFO_NAME
from hf_seq.training.evaluate import evaluate_ensemble
from hf_seq.training.finetune import finetune
from tokenizer_training import train_tokenizer


def linear_baseline(nsmc):
    """Character 1-4-gram TF-IDF + logistic regression: (test accuracy, seconds for fit + predict)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    start = time.time()
    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 4), min_df=2, sublinear_tf=True)
    train_features = vectorizer.fit_transform(nsmc["train"]["document"])
    classifier = LogisticRegression(C=4.0, max_iter=1000)
    classifier.fit(train_features, nsmc["train"]["label"])
    predictions = classifier.predict(vectorizer.transform(nsmc["test"]["document"]))
    accuracy = float((predictions == torch.tensor(nsmc["test"]["label"]).numpy()).mean())
    return accuracy, time.time() - start


def ensemble_figures(model_dirs, test_file, max_length, subword_samples, subword_dropout):
    """Evaluate saved classifiers as one ensemble; their parameters and training minutes are read from run_info."""
    run_infos = []
    for model_dir in model_dirs:
        with open(os.path.join(model_dir, RUN_INFO_NAME), encoding="utf-8") as handle:
            run_infos.append(json.load(handle))
    start = time.time()
    metrics = evaluate_ensemble(
        model_dirs, test_file, max_length=max_length, subword_samples=subword_samples, subword_dropout=subword_dropout
    )
    return {
        "model": f"ensemble of {len(model_dirs)}",
        "members": [{**member, "accuracy": round(member["accuracy"], 4)} for member in metrics["members"]],
        "num_parameters": sum(run_info["num_parameters"] for run_info in run_infos),
        "test_accuracy": round(metrics["accuracy"], 4),
        "test_n": metrics["n"],
        "members_training_minutes": round(sum(run_info["wall_time_seconds"] for run_info in run_infos) / 60, 1),
        "evaluation_seconds": round(time.time() - start, 1),
        "subword_samples": subword_samples,
        "goal": "test_accuracy >= 0.88 and above the baseline",
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default=os.environ.get("HF_SEQ_DATA"), help="folder with nsmc/ratings_*.txt")
    parser.add_argument("--output_dir", default="runs/bench_nsmc_scratch")
    parser.add_argument("--cell", default="gru", choices=["rnn", "lstm", "gru"])
    parser.add_argument("--vocab_size", type=int, default=16000)
    parser.add_argument("--embedding_size", type=int, default=256)
    parser.add_argument("--hidden_size", type=int, default=256)
    parser.add_argument("--num_hidden_layers", type=int, default=1)
    parser.add_argument("--pooling", default="max", choices=POOLINGS)
    parser.add_argument("--dropout", type=float, default=0.3)
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--learning_rate", type=float, default=2e-3)
    parser.add_argument("--max_length", type=int, default=80)
    parser.add_argument("--subword_dropout", type=float, default=0.0, help="BPE-dropout on the training documents")
    parser.add_argument(
        "--weight_averaging",
        type=float,
        default=0.0,
        help="keep the mean of the weights over the last this many epochs (SWA)",
    )
    parser.add_argument(
        "--train_sampling_strategy",
        default="group_by_length",
        help="group_by_length batches reviews of similar length: ~1.7x faster on CPU, same result",
    )
    parser.add_argument("--tokenizer", help="an existing tokenizer folder (default: train one on NSMC train)")
    parser.add_argument(
        "--init_embeddings_from",
        help="a word2vec folder (hf-seq train-word2vec) of the same tokenizer: the classifier's embeddings start there",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--skip_baseline", action="store_true")
    parser.add_argument(
        "--ensemble",
        nargs="+",
        metavar="MODEL_DIR",
        help="evaluate these saved classifiers as one ensemble instead of training",
    )
    parser.add_argument(
        "--subword_samples",
        type=int,
        default=0,
        help="with --ensemble: test-time augmentation, this many BPE-dropout segmentations per review",
    )
    parser.add_argument(
        "--eval_subword_dropout",
        type=float,
        default=0.2,
        help="with --subword_samples: the BPE-dropout rate of those segmentations",
    )
    args = parser.parse_args()
    if not args.data_dir:
        parser.error("give --data_dir (or set HF_SEQ_DATA) to the folder holding nsmc/ratings_{train,test}.txt")
    for model_dir in args.ensemble or []:
        if not os.path.isfile(os.path.join(model_dir, RUN_INFO_NAME)):
            parser.error(f"--ensemble: {model_dir} is not a finished classifier folder (no {RUN_INFO_NAME})")
    nsmc_dir = os.path.join(args.data_dir, "nsmc")
    nsmc = load_nsmc(nsmc_dir)
    print(f"NSMC: {len(nsmc['train'])} train, {len(nsmc['test'])} test; torch {torch.get_num_threads()} threads")

    results = {"command": vars(args)}
    if not args.skip_baseline:
        accuracy, seconds = linear_baseline(nsmc)
        results.update(baseline_accuracy=round(accuracy, 4), baseline_seconds=round(seconds, 1))
        print(f"char 1-4-gram TF-IDF + logistic regression: accuracy {accuracy:.4f} in {seconds:.0f} s")

    if args.ensemble:
        test_file = os.path.join(nsmc_dir, "ratings_test.txt")
        results.update(
            ensemble_figures(
                args.ensemble, test_file, args.max_length, args.subword_samples, args.eval_subword_dropout
            )
        )
        print(
            f"{results['model']} from scratch: accuracy {results['test_accuracy']:.4f} on NSMC test "
            f"({results['members_training_minutes']} min of training, {results['evaluation_seconds']:.0f} s "
            "to evaluate)"
        )
        print(json.dumps(results))
        return

    start = time.time()
    if args.tokenizer:
        tokenizer = args.tokenizer
    else:
        tokenizer = train_tokenizer(
            dataset=nsmc["train"],
            text_column="document",
            vocab_size=args.vocab_size,
            output_dir=os.path.join(args.output_dir, "tokenizer"),
            overwrite=True,
        )
        results["tokenizer_seconds"] = round(time.time() - start, 1)

    training_args = TrainingArguments(
        output_dir=os.path.join(args.output_dir, f"bi{args.cell}"),
        num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=256,
        learning_rate=args.learning_rate,
        lr_scheduler_type="linear",
        warmup_steps=200,
        weight_decay=0.01,
        max_grad_norm=1.0,
        eval_strategy="no",
        save_strategy="no",
        logging_steps=200,
        report_to=[],
        seed=args.seed,
        train_sampling_strategy=args.train_sampling_strategy,
        dataloader_num_workers=0,
    )
    run = finetune(
        training_args,
        tokenizer,
        overwrite_output_dir=True,  # a rerun of a recipe replaces its scratch folder under runs/
        dataset=nsmc,
        model_type=args.cell,
        config_overrides={
            "bidirectional": True,
            "embedding_size": args.embedding_size,
            "hidden_size": args.hidden_size,
            "num_hidden_layers": args.num_hidden_layers,
            "pooling": args.pooling,
            "embedding_dropout": args.dropout,
            "dropout": args.dropout,
            "output_dropout": args.dropout,
            "initializer": "xavier",
        },
        eval_split="test",
        max_length=args.max_length,
        dataset_name="e9t/nsmc",
        subword_dropout=args.subword_dropout,
        weight_averaging=args.weight_averaging,
        init_embeddings_from=args.init_embeddings_from,
    )
    wall = time.time() - start
    accuracy = run.metrics["eval_accuracy"]
    results.update(
        model=f"Bi{args.cell.upper()}",
        num_parameters=sum(p.numel() for p in run.model.parameters()),
        test_accuracy=round(accuracy, 4),
        test_n=run.metrics.get("eval_n"),
        neural_wall_seconds=round(wall, 1),
        **(
            {"last_step_test_accuracy": round(run.metrics["eval_last_step_accuracy"], 4)}
            if args.weight_averaging
            else {}
        ),
        goal="test_accuracy >= 0.88 and above the baseline",
    )
    print(f"Bi{args.cell.upper()} from scratch: accuracy {accuracy:.4f} on NSMC test in {wall / 60:.1f} min")
    if args.weight_averaging:
        print(f"  the last step's weights, before averaging: {run.metrics['eval_last_step_accuracy']:.4f}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
