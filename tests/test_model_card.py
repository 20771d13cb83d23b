"""hf_seq.model_card: cards say what the run recorded, and nothing else."""

import json
import sys
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard

import hf_seq
from hf_seq.model_card import (
    TEMPLATE_PATH,
    Metric,
    plot_loss_curve,
    read_run_data,
    render_ensemble_card,
    render_model_card,
)


REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def classifier_dir(tmp_path):
    """A tiny NSMC sentiment classifier folder with Trainer-style results and our run_info.json."""
    torch.manual_seed(0)
    config = hf_seq.GRUConfig(
        vocab_size=40,
        embedding_size=8,
        hidden_size=8,
        num_hidden_layers=1,
        num_labels=2,
        id2label={0: "negative", 1: "positive"},
        label2id={"negative": 0, "positive": 1},
    )
    hf_seq.GRUForSequenceClassification(config).save_pretrained(tmp_path)
    (tmp_path / "run_info.json").write_text(
        json.dumps(
            {
                "datasets": [{"id": "e9t/nsmc", "details": "4,000 shipped sample reviews"}],
                "eval_split": "test",
                "hyperparameters": {"learning_rate": 0.003, "weight_decay": 0.0},
                "training_loop": "Trainer",
                "wall_time_seconds": 12.5,
                "hardware": {"torch": "2.13.0", "cpu_count": 2},
            }
        )
    )
    (tmp_path / "all_results.json").write_text(
        json.dumps(
            {
                "eval_accuracy": 0.7815,
                "eval_loss": 0.4711,
                "eval_runtime": 3.2,
                "eval_samples_per_second": 312.0,
                "eval_n": 1000,
                "train_loss": 0.5523,
                "epoch": 2.0,
            }
        )
    )
    (tmp_path / "trainer_state.json").write_text(
        json.dumps(
            {
                "log_history": [{"step": 5, "loss": 0.69}, {"step": 10, "loss": 0.6}, {"step": 10, "eval_loss": 0.5}],
                "train_batch_size": 16,
                "num_train_epochs": 2,
                "max_steps": 10,
                "global_step": 10,
            }
        )
    )
    return tmp_path


def test_card_metadata_holds_exactly_the_measured_metrics(classifier_dir):
    run = read_run_data(classifier_dir)
    card = render_model_card(run, "alice/nsmc-gru", license="apache-2.0")

    data = ModelCard(str(card)).data  # parsed back from the YAML front matter
    assert data.datasets == ["e9t/nsmc"] and data.language == "ko" and data.license == "apache-2.0"
    assert data.pipeline_tag == "text-classification"
    measured = {(r.metric_type, r.metric_value, r.dataset_type, r.dataset_split) for r in data.eval_results}
    assert measured == {("accuracy", 0.7815, "e9t/nsmc", "test"), ("loss", 0.4711, "e9t/nsmc", "test")}
    # Speed figures are not metrics; the train loss is shown in the body but is no evaluation result.
    assert (
        "| n |" not in card.text
        and "runtime" not in card.text
        and "samples_per_second" not in card.text
        and "f1" not in card.text
    )
    assert "| loss | 0.5523 | train |" in card.text
    assert "| `learning_rate` | 0.003 |" in card.text and "| `train_batch_size` | 16 |" in card.text
    assert "0: negative, 1: positive" in card.text
    assert "- **Training loop:** Trainer" in card.text and "- **Wall time:** 12.5 s" in card.text
    assert "- **Hardware:** torch 2.13.0, cpu_count 2" in card.text
    assert f"{hf_seq.GRUForSequenceClassification.from_pretrained(classifier_dir).num_parameters():,}" in card.text


def test_nothing_unrecorded_is_invented(classifier_dir):
    for name in ("run_info.json", "all_results.json", "trainer_state.json"):
        (classifier_dir / name).unlink()
    run = read_run_data(classifier_dir)
    card = render_model_card(run, "alice/bare")

    data = ModelCard(str(card)).data
    assert data.license is None and data.datasets is None and data.eval_results is None and data.language is None
    assert "The publisher did not specify a license." in card.text
    assert "No evaluation was recorded for this run." in card.text
    assert "The run did not record which data it was trained on." in card.text
    assert "The run did not record its hyper-parameters." in card.text
    assert "No tokenizer was saved with this model" in card.text
    assert "Wall time" not in card.text and "Hardware" not in card.text
    assert plot_loss_curve(run.log_history) is None and "loss_curve" not in card.text


def test_metrics_in_run_info_win_and_need_a_split(classifier_dir):
    run_info = json.loads((classifier_dir / "run_info.json").read_text())
    run_info["metrics"] = [{"name": "accuracy", "value": 0.9, "split": "test"}]
    (classifier_dir / "run_info.json").write_text(json.dumps(run_info))
    accuracy = {m.split: m.value for m in read_run_data(classifier_dir).metrics if m.name == "accuracy"}
    assert accuracy == {"test": 0.9}

    run_info["metrics"] = [{"name": "accuracy", "value": 0.9}]
    (classifier_dir / "run_info.json").write_text(json.dumps(run_info))
    with pytest.raises(ValueError, match="'name', 'value' and 'split'"):
        read_run_data(classifier_dir)


def test_a_validation_file_is_listed_but_not_called_training_data(classifier_dir):
    run_info = json.loads((classifier_dir / "run_info.json").read_text())
    run_info["datasets"] = [
        {"name": "reviews_lm/train.txt", "details": "training text"},
        {"name": "reviews_lm/valid.txt", "split": "validation"},
    ]
    (classifier_dir / "run_info.json").write_text(json.dumps(run_info))
    card = render_model_card(read_run_data(classifier_dir), "alice/lm")
    assert "trained on reviews_lm/train.txt." in card.text
    assert "- reviews_lm/valid.txt: validation" in card.text


def test_a_base_model_is_named_in_the_metadata_and_the_text(classifier_dir):
    card = render_model_card(read_run_data(classifier_dir), "alice/nsmc-gru")
    assert ModelCard(str(card)).data.base_model is None and "started from the weights" not in card.text

    run_info = json.loads((classifier_dir / "run_info.json").read_text())
    run_info["base_model"] = "alice/reviews-lm"
    (classifier_dir / "run_info.json").write_text(json.dumps(run_info))
    card = render_model_card(read_run_data(classifier_dir), "alice/nsmc-gru")
    assert ModelCard(str(card)).data.base_model == "alice/reviews-lm"
    assert "Its training started from the weights of `alice/reviews-lm`." in card.text


def test_a_backward_model_says_so(classifier_dir):
    assert "backward" not in render_model_card(read_run_data(classifier_dir), "alice/nsmc-gru").text
    config = json.loads((classifier_dir / "config.json").read_text())
    config["reading_direction"] = "backward"
    (classifier_dir / "config.json").write_text(json.dumps(config))
    card = render_model_card(read_run_data(classifier_dir), "alice/nsmc-gru")
    assert "text classifier that reads each text backward (last token first) with " in card.text
    assert "| `reading_direction` | backward |" in card.text


def test_the_wall_time_is_given_to_the_hundredth_of_a_second(classifier_dir):
    run_info = json.loads((classifier_dir / "run_info.json").read_text())
    run_info["wall_time_seconds"] = 3203.4536740490003  # as time.perf_counter() differences come
    (classifier_dir / "run_info.json").write_text(json.dumps(run_info))
    assert "- **Wall time:** 3203.45 s" in render_model_card(read_run_data(classifier_dir), "alice/nsmc-gru").text


def test_ngram_features_are_listed_only_when_the_model_has_them(classifier_dir):
    assert "ngram" not in render_model_card(read_run_data(classifier_dir), "alice/nsmc-gru").text
    config = json.loads((classifier_dir / "config.json").read_text())
    config.update(ngram_orders=[2, 3], ngram_buckets=4096)
    (classifier_dir / "config.json").write_text(json.dumps(config))
    card = render_model_card(read_run_data(classifier_dir), "alice/nsmc-gru")
    assert "| `ngram_orders` | 2, 3 |" in card.text and "| `ngram_buckets` | 4096 |" in card.text


def test_an_ensemble_card_names_its_members_and_their_own_figures():
    members = [
        {
            "repo_id": "alice/forward",
            "num_parameters": 1000,
            "reading_direction": "forward",
            "metrics": [Metric("accuracy", 0.8855, "test", "e9t/nsmc")],
        },
        {
            "repo_id": "alice/backward",
            "num_parameters": 1200,
            "reading_direction": "backward",
            "metrics": [Metric("accuracy", 0.8841, "test", "e9t/nsmc")],
        },
    ]
    card = render_ensemble_card("alice/both", members, [Metric("accuracy", 0.8932, "test", "e9t/nsmc")], language="ko")
    data = ModelCard(str(card)).data
    assert data.base_model == ["alice/forward", "alice/backward"] and data.datasets == ["e9t/nsmc"]
    results = [(r.metric_type, r.metric_value, r.dataset_split) for r in data.eval_results]
    assert results == [("accuracy", 0.8932, "test")]
    assert "An ensemble of 2 text classifiers (2,200 parameters in all)" in card.text
    assert "| [`alice/backward`](https://huggingface.co/alice/backward) | backward | 1,200 | 0.8841 |" in card.text
    assert "| **ensemble** | — | 2,200 | **0.8932** |" in card.text
    with pytest.raises(ValueError, match="at least two"):
        render_ensemble_card("alice/one", members[:1], [])


def test_an_ensemble_card_gives_a_figure_only_its_members_have_a_column_of_its_own():
    members = [
        {
            "repo_id": "alice/forward",
            "num_parameters": 1000,
            "metrics": [Metric("accuracy", 0.8855, "test", "e9t/nsmc"), Metric("base LM perplexity", 90.5, "lm test")],
        },
        {
            "repo_id": "alice/backward",
            "num_parameters": 1200,
            "reading_direction": "backward",
            "metrics": [Metric("base LM perplexity", 89.5, "lm test"), Metric("accuracy", 0.8841, "test", "e9t/nsmc")],
        },
    ]
    card = render_ensemble_card("alice/both", members, [Metric("accuracy", 0.8932, "test", "e9t/nsmc")])
    assert "| member | reads | parameters | accuracy (test) | base LM perplexity (lm test) |" in card.text
    assert (
        "| [`alice/forward`](https://huggingface.co/alice/forward) | forward | 1,000 | 0.8855 | 90.5000 |" in card.text
    )
    assert (
        "| [`alice/backward`](https://huggingface.co/alice/backward) | backward | 1,200 | 0.8841 | 89.5000 |"
        in card.text
    )
    assert "| **ensemble** | — | 2,200 | **0.8932** | — |" in card.text
    # a member figure is not the ensemble's: the model index holds the ensemble's accuracy alone
    assert [r.metric_type for r in ModelCard(str(card)).data.eval_results] == ["accuracy"]


def test_loss_curve_is_a_png_and_optional(classifier_dir, monkeypatch):
    log_history = read_run_data(classifier_dir).log_history
    assert plot_loss_curve(log_history).startswith(b"\x89PNG")
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # as if matplotlib were not installed
    assert plot_loss_curve(log_history) is None


def test_bad_run_data_is_reported(classifier_dir, tmp_path):
    (classifier_dir / "trainer_state.json").write_text("{not json")
    with pytest.raises(ValueError, match="trainer_state.json is not valid JSON"):
        read_run_data(classifier_dir)
    with pytest.raises(FileNotFoundError, match="no config.json"):
        read_run_data(tmp_path / "empty")


def test_template_in_model_cards_matches_the_shipped_one():
    assert (REPO_ROOT / "model_cards" / "templates" / "model_card.md").read_text() == TEMPLATE_PATH.read_text()


def test_run_info_and_results_files_keep_the_same_figures():
    from hf_seq.model_card import _metrics_from_results
    from hf_seq.training.common import metrics_for_card

    figures = {
        "eval_loss": 0.5,
        "eval_accuracy": 0.8,
        "eval_n": 62,
        "eval_runtime": 1.2,
        "eval_samples_per_second": 50.0,
        "eval_steps_per_second": 5.0,
        "eval_tokens_per_second": 900.0,
        "eval_model_preparation_time": 0.01,
        "eval_flag": True,
    }
    written = {entry["name"] for entry in metrics_for_card(figures, "test", prefix="eval_")}
    read = {metric.name for metric in _metrics_from_results(figures, "test", None)}
    assert written == read == {"loss", "accuracy"}
