"""pretrain / finetune on Trainer, evaluate_model and generate_text on tiny models."""

import copy
import json
import math
import os
import shutil

import pytest
import torch
from datasets import ClassLabel, Dataset, DatasetDict, Features, List, Value
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

import hf_seq
from hf_seq.data import load_nsmc, sample_data_path
from hf_seq.training import (
    encode_for_token_classification,
    evaluate_ensemble,
    evaluate_model,
    finetune,
    generate_text,
    pretrain,
)
from tests.training.helpers import tiny_lstm_config, training_arguments


def test_pretrain_with_trainer_reports_perplexity(tiny_tokenizer, text_files, tmp_path):
    run = pretrain(
        training_arguments(tmp_path / "lm", max_steps=4),
        text_files[0],
        tiny_tokenizer,
        validation_file=text_files[1],
        model=tiny_lstm_config(tiny_tokenizer),
        loop="trainer",
        block_size=16,
    )
    assert run.metrics["eval_perplexity"] == pytest.approx(math.exp(run.metrics["eval_loss"]))
    assert run.metrics["eval_perplexity"] < len(tiny_tokenizer) * 2  # a trained model, not a broken one
    for name in ("config.json", "model.safetensors", "tokenizer.json", "trainer_state.json", "run_info.json"):
        assert os.path.isfile(tmp_path / "lm" / name), name
    run_info = json.loads((tmp_path / "lm" / "run_info.json").read_text())
    assert run_info["hyperparameters"]["block_size"] == 16
    assert {"name": "perplexity", "value": run.metrics["eval_perplexity"], "split": "validation"} in run_info[
        "metrics"
    ]


def test_auto_loop_and_bad_inputs(tiny_tokenizer, text_files, tmp_path):
    with pytest.raises(ValueError, match="loop"):
        pretrain(training_arguments(tmp_path), text_files[0], tiny_tokenizer, loop="fast")
    with pytest.raises(FileNotFoundError, match="not found"):
        pretrain(training_arguments(tmp_path), str(tmp_path / "missing.txt"), tiny_tokenizer)
    with pytest.raises(ValueError, match="unknown model_type"):
        pretrain(training_arguments(tmp_path), text_files[0], tiny_tokenizer, model_type="lsmt")


def test_finetune_from_a_pretrained_lm_keeps_its_body(lm_dir, tokenizer_dir, nsmc_dir, tmp_path):
    # learning_rate 0: the loaded body must come out exactly as the LM saved it.
    run = finetune(
        training_arguments(tmp_path / "classifier", max_steps=2, learning_rate=0.0),
        tokenizer_dir,
        model=lm_dir,
        dataset=nsmc_dir,
    )
    lm_weights = load_file(os.path.join(lm_dir, "model.safetensors"))
    classifier_weights = load_file(tmp_path / "classifier" / "model.safetensors")
    body = [name for name in lm_weights if name.startswith("model.")]
    assert body and all(torch.equal(lm_weights[name], classifier_weights[name]) for name in body)
    assert run.model.config.id2label == {0: "negative", 1: "positive"}
    assert run.metrics["eval_n"] == 62
    run_info = json.loads((tmp_path / "classifier" / "run_info.json").read_text())
    assert run_info["base_model_path"] == lm_dir
    assert run_info["eval_split"] == "test"


def test_finetune_then_evaluate_agree_and_count_every_review(tiny_tokenizer, nsmc_dir, tmp_path):
    run = finetune(
        training_arguments(tmp_path / "classifier", max_steps=6),
        tiny_tokenizer,
        model=tiny_lstm_config(tiny_tokenizer),
        dataset=nsmc_dir,
        dataset_name="e9t/nsmc",
    )
    test_file = os.path.join(nsmc_dir, "ratings_test.txt")
    metrics = evaluate_model(str(tmp_path / "classifier"), test_file)
    assert metrics["n"] == 62  # the empty review included
    assert metrics["accuracy"] == pytest.approx(run.metrics["eval_accuracy"])

    # The same accuracy by hand, one review at a time (no padding, no Trainer).
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "classifier").eval()
    test = load_nsmc(nsmc_dir)["test"]
    correct = 0
    for document, label in zip(test["document"], test["label"]):
        input_ids = tiny_tokenizer(document, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            correct += int(model(input_ids=input_ids).logits.argmax(-1).item() == label)
    assert metrics["accuracy"] == pytest.approx(correct / len(test))
    run_info = json.loads((tmp_path / "classifier" / "run_info.json").read_text())
    assert run_info["datasets"] == ["e9t/nsmc"]


def test_trainer_resume_from_checkpoint_reproduces_the_run(tiny_tokenizer, nsmc_dir, tmp_path):
    def run(output_dir, resume=None):
        return finetune(
            training_arguments(
                output_dir, max_steps=6, save_strategy="steps", save_steps=3, resume_from_checkpoint=resume
            ),
            tiny_tokenizer,
            model=tiny_lstm_config(tiny_tokenizer, output_dropout=0.2),
            dataset=nsmc_dir,
        )

    uninterrupted = run(tmp_path / "a")
    os.makedirs(tmp_path / "b")
    shutil.copytree(tmp_path / "a" / "checkpoint-3", tmp_path / "b" / "checkpoint-3")
    resumed = run(tmp_path / "b", resume="latest")
    assert resumed.metrics["eval_accuracy"] == uninterrupted.metrics["eval_accuracy"]
    expected, actual = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert all(torch.equal(expected[name], actual[name]) for name in expected)


def test_a_resumed_run_counts_the_training_time_of_its_earlier_sittings(tiny_tokenizer, nsmc_dir, tmp_path):
    def run(resume=None):
        return finetune(
            training_arguments(
                tmp_path, max_steps=6, save_strategy="steps", save_steps=3, resume_from_checkpoint=resume
            ),
            tiny_tokenizer,
            model=tiny_lstm_config(tiny_tokenizer),
            dataset=nsmc_dir,
            overwrite_output_dir=resume is None,
        )

    first = run()
    assert first.metrics["total_train_runtime"] == round(first.metrics["train_runtime"], 2)
    marker_path = tmp_path / "checkpoint-3" / "checkpoint_complete.json"
    marker = json.loads(marker_path.read_text())
    assert 0 < marker["elapsed_seconds"] < 600
    marker["elapsed_seconds"] = 1000.0  # as if the first sitting had trained 1,000 s before its checkpoint
    marker_path.write_text(json.dumps(marker))
    shutil.rmtree(tmp_path / "checkpoint-6")  # the run was stopped after its checkpoint at step 3
    resumed = run(resume="latest")
    assert resumed.metrics["total_train_runtime"] == round(1000.0 + resumed.metrics["train_runtime"], 2)
    wall_time = json.loads((tmp_path / "run_info.json").read_text())["wall_time_seconds"]
    assert resumed.metrics["total_train_runtime"] <= wall_time < resumed.metrics["total_train_runtime"] + 60


def weight_averaging_run(tiny_tokenizer, nsmc_dir, output_dir, weight_averaging, resume=None):
    # 200 training reviews in batches of 4: 50 steps an epoch, so 0.04 epochs is the last 2 steps.
    return finetune(
        training_arguments(
            output_dir, max_steps=5, save_strategy="steps", save_steps=1, resume_from_checkpoint=resume
        ),
        tiny_tokenizer,
        model=tiny_lstm_config(tiny_tokenizer, output_dropout=0.2),
        dataset=nsmc_dir,
        weight_averaging=weight_averaging,
    )


def test_weight_averaging_keeps_the_mean_of_the_last_steps_weights(tiny_tokenizer, nsmc_dir, tmp_path):
    run = weight_averaging_run(tiny_tokenizer, nsmc_dir, tmp_path, weight_averaging=0.04)
    step_weights = {step: load_file(tmp_path / f"checkpoint-{step}" / "model.safetensors") for step in (3, 4, 5)}
    saved = load_file(tmp_path / "model.safetensors")
    for name, weight in saved.items():
        torch.testing.assert_close(weight, (step_weights[4][name] + step_weights[5][name]) / 2)
    assert not all(torch.equal(saved[name], step_weights[5][name]) for name in saved)  # not the last step's
    # Each checkpoint carries the average so far, from the first averaged step on.
    assert not os.path.exists(tmp_path / "checkpoint-3" / "weight_average.safetensors")
    average_at_4 = load_file(tmp_path / "checkpoint-4" / "weight_average.safetensors")
    assert all(torch.equal(average_at_4[name], step_weights[4][name]) for name in saved)
    # The model evaluated is the average; the last step's weights are evaluated apart and kept off the card.
    assert {"eval_accuracy", "eval_last_step_accuracy"} <= set(run.metrics)
    run_info = json.loads((tmp_path / "run_info.json").read_text())
    assert {entry["name"] for entry in run_info["metrics"]} == {"accuracy", "loss"}
    assert {entry["name"]: entry["value"] for entry in run_info["last_step_metrics"]}["accuracy"] == (
        run.metrics["eval_last_step_accuracy"]
    )
    assert run_info["hyperparameters"]["weight_averaging"] == 0.04
    with pytest.raises(ValueError, match="weight_averaging must be a number of epochs >= 0"):
        weight_averaging_run(tiny_tokenizer, nsmc_dir, tmp_path / "bad", weight_averaging=-1)


def test_weight_averaging_resumes_with_the_average_saved_in_the_checkpoint(tiny_tokenizer, nsmc_dir, tmp_path):
    # Averaging the last 3 steps (3..5); the run is resumed after step 4, with two steps already averaged.
    weight_averaging_run(tiny_tokenizer, nsmc_dir, tmp_path / "a", weight_averaging=0.06)
    shutil.copytree(tmp_path / "a" / "checkpoint-4", tmp_path / "b" / "checkpoint-4")
    weight_averaging_run(tiny_tokenizer, nsmc_dir, tmp_path / "b", weight_averaging=0.06, resume="latest")
    expected, actual = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert all(torch.equal(expected[name], actual[name]) for name in expected)

    # A checkpoint without the average (saved by a run that did not average) cannot go on averaging.
    shutil.copytree(tmp_path / "a" / "checkpoint-4", tmp_path / "c" / "checkpoint-4")
    os.remove(tmp_path / "c" / "checkpoint-4" / "weight_average.safetensors")
    with pytest.raises(ValueError, match="holds no weight average"):
        weight_averaging_run(tiny_tokenizer, nsmc_dir, tmp_path / "c", weight_averaging=0.06, resume="latest")
    assert not os.path.exists(tmp_path / "c" / "model.safetensors")


def test_token_classification_aligns_labels_to_first_subtokens(tiny_tokenizer, tmp_path):
    words = [["정말", "재밌는", "영화였다"], ["배우", "연기가", "별로", "였다"], ["최고"]] * 8
    tags = [[int(word.endswith("다")) for word in sentence] for sentence in words]
    features = Features({"tokens": List(Value("string")), "tags": List(ClassLabel(names=["O", "END"]))})
    data = Dataset.from_dict({"tokens": words, "tags": tags}, features=features)
    dataset = DatasetDict({"train": data, "test": data.select(range(6))})

    encoded = encode_for_token_classification(dataset["test"], tiny_tokenizer)
    for example, sentence_tags in zip(encoded, dataset["test"]["tags"]):
        assert [label for label in example["labels"] if label != -100] == sentence_tags
        assert len(example["labels"]) == len(example["input_ids"])

    run = finetune(
        training_arguments(tmp_path / "tagger", max_steps=4),
        tiny_tokenizer,
        model=tiny_lstm_config(tiny_tokenizer),
        dataset=dataset,
        task="token-classification",
    )
    assert run.model.config.id2label == {0: "O", 1: "END"}
    assert run.metrics["eval_n_tokens"] == sum(len(sentence) for sentence in dataset["test"]["tokens"])
    assert 0.0 <= run.metrics["eval_accuracy"] <= 1.0


def test_evaluate_language_model_stateful_and_blocks(lm_dir, text_files):
    stateful = evaluate_model(lm_dir, text_files[1], bptt=8)
    blocks = evaluate_model(lm_dir, text_files[1], stateful=False, block_size=16)
    for metrics in (stateful, blocks):
        assert metrics["perplexity"] == pytest.approx(math.exp(metrics["loss"]))
        assert metrics["n_tokens"] > 100


def test_evaluate_refuses_a_file_that_does_not_fit_the_model(lm_dir, nsmc_dir, text_files, tmp_path):
    with pytest.raises(ValueError, match="NSMC"):
        evaluate_model(lm_dir, os.path.join(nsmc_dir, "ratings_test.txt"))
    with pytest.raises(FileNotFoundError, match="test file"):
        evaluate_model(lm_dir, str(tmp_path / "missing.txt"))
    with pytest.raises(FileNotFoundError, match="model folder"):
        evaluate_model(str(tmp_path / "no-model"), text_files[1])


def untrained_classifier(directory, tokenizer, documents, seed, **config_overrides):
    """A tiny random classifier saved with its tokenizer, its head set to call half of `documents` positive."""
    torch.manual_seed(seed)
    config = tiny_lstm_config(
        tokenizer,
        num_labels=2,
        id2label={0: "negative", 1: "positive"},
        label2id={"negative": 0, "positive": 1},
        **config_overrides,
    )
    model = AutoModelForSequenceClassification.from_config(config).eval()
    with torch.no_grad():
        margins = torch.cat([model(torch.tensor([tokenizer(document)["input_ids"]])).logits for document in documents])
        # Between the two middle margins, so that no document sits on the decision boundary.
        model.classifier.bias[1] += (margins[:, 0] - margins[:, 1]).quantile(0.5)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return str(directory)


def test_an_ensemble_averages_its_members_class_probabilities(tiny_tokenizer, nsmc_dir, tmp_path):
    # A forward and a backward classifier, ULMFiT's pair in miniature: random, so that they disagree.
    test_file = os.path.join(nsmc_dir, "ratings_test.txt")
    with open(test_file, encoding="utf-8") as handle:
        rows = [line.split("\t") for line in handle.read().splitlines()[1:]]
    documents = [document for _, document, _ in rows]
    forward_dir = untrained_classifier(tmp_path / "forward", tiny_tokenizer, documents, seed=0)
    backward_dir = untrained_classifier(
        tmp_path / "backward", tiny_tokenizer, documents, seed=1, reading_direction="backward"
    )

    result = evaluate_ensemble([forward_dir, backward_dir], test_file)

    probabilities = []
    for model_dir in (forward_dir, backward_dir):
        model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
        with torch.no_grad():
            probabilities.append(
                torch.cat(
                    [
                        model(
                            torch.tensor([tiny_tokenizer(document, truncation=True, max_length=128)["input_ids"]])
                        ).logits
                        for _, document, _ in rows
                    ]
                ).softmax(-1)
            )
    labels = torch.tensor([int(label) for _, _, label in rows])
    # The members disagree on some reviews, so averaging is not the same as taking either one.
    assert (probabilities[0].argmax(-1) != probabilities[1].argmax(-1)).any()
    expected = ((probabilities[0] + probabilities[1]).argmax(-1) == labels).float().mean().item()
    assert result["n"] == len(rows) == 62
    assert result["accuracy"] == pytest.approx(expected)
    assert [member["model"] for member in result["members"]] == [forward_dir, backward_dir]
    for member in result["members"]:
        assert member["accuracy"] == pytest.approx(evaluate_model(member["model"], test_file)["accuracy"])


def character_level_copy(tokenizer, dropout):
    """Stands in for `with_bpe_dropout`: a copy that drops every merge (rate 1), i.e. one known segmentation."""
    sampling_tokenizer = copy.deepcopy(tokenizer)
    sampling_tokenizer.backend_tokenizer.model.dropout = 1.0
    return sampling_tokenizer


def test_subword_samples_average_the_probabilities_over_segmentations(tiny_tokenizer, nsmc_dir, tmp_path, monkeypatch):
    from hf_seq.training.evaluate import _class_probabilities, _evaluation_arguments

    test_file = os.path.join(nsmc_dir, "ratings_test.txt")
    with open(test_file, encoding="utf-8") as handle:
        rows = [line.split("\t") for line in handle.read().splitlines()[1:]]
    documents = [document for _, document, _ in rows]
    labels = torch.tensor([int(label) for _, _, label in rows])
    model_dirs = [
        untrained_classifier(tmp_path / f"member{seed}", tiny_tokenizer, documents, seed=seed) for seed in (0, 1)
    ]
    characters = character_level_copy(tiny_tokenizer, None)
    assert characters("재밌는 영화")["input_ids"] != tiny_tokenizer("재밌는 영화")["input_ids"]

    def probabilities(model_dir, tokenizer):
        model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
        with torch.no_grad():
            return torch.cat(
                [
                    model(
                        torch.tensor(
                            [
                                tokenizer(document or "", truncation=True, max_length=128)["input_ids"]
                                or [tokenizer.unk_token_id]
                            ]
                        )
                    ).logits
                    for document in documents
                ]
            ).softmax(-1)

    # Two samples, both the character-level segmentation: it weighs twice as much as the exact one.
    monkeypatch.setattr("hf_seq.training.evaluate.with_bpe_dropout", character_level_copy)
    expected = [
        (probabilities(model_dir, tiny_tokenizer) + 2 * probabilities(model_dir, characters)) / 3
        for model_dir in model_dirs
    ]
    assert (expected[0].argmax(-1) != probabilities(model_dirs[0], tiny_tokenizer).argmax(-1)).any()
    with _evaluation_arguments(None) as evaluation_arguments:
        averaged, _ = _class_probabilities(model_dirs[0], test_file, evaluation_arguments, 128, subword_samples=2)
    torch.testing.assert_close(averaged, expected[0])
    result = evaluate_model(model_dirs[0], test_file, subword_samples=2)
    assert result == {
        "accuracy": pytest.approx((expected[0].argmax(-1) == labels).double().mean().item()),
        "n": 62,
        "subword_samples": 2,
    }
    ensemble = evaluate_ensemble(model_dirs, test_file, subword_samples=2)
    assert ensemble["accuracy"] == pytest.approx(((expected[0] + expected[1]).argmax(-1) == labels).double().mean())
    assert ensemble["members"][0]["accuracy"] == pytest.approx(result["accuracy"])


def test_subword_samples_draw_fresh_segmentations_and_refuse_what_they_cannot_do(
    tiny_tokenizer, nsmc_dir, lm_dir, tmp_path
):
    from hf_seq.training.encoding import encode_for_sequence_classification, with_bpe_dropout

    test_file = os.path.join(nsmc_dir, "ratings_test.txt")
    dataset = load_nsmc(nsmc_dir)["test"]
    sampling_tokenizer = with_bpe_dropout(tiny_tokenizer, 0.5)
    # Uncached: every call segments anew (a cached map would return the first call's segmentation again).
    first, second = (
        encode_for_sequence_classification(dataset, sampling_tokenizer, cache=False)["input_ids"] for _ in range(2)
    )
    assert first != second
    model_dir = untrained_classifier(tmp_path / "classifier", tiny_tokenizer, dataset["document"], seed=0)
    result = evaluate_model(model_dir, test_file, subword_samples=3, subword_dropout=0.5)
    assert result["n"] == 62 and 0.0 <= result["accuracy"] <= 1.0 and result["subword_samples"] == 3
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="subword_samples must be a whole number >= 0"):
            evaluate_model(model_dir, test_file, subword_samples=bad)
    with pytest.raises(ValueError, match=r"subword_dropout must be in \(0, 1\)"):
        evaluate_model(model_dir, test_file, subword_samples=1, subword_dropout=0.0)
    with pytest.raises(ValueError, match="applies to classifiers"):
        evaluate_model(lm_dir, sample_data_path("reviews_sample_valid.txt"), subword_samples=1)


def test_an_ensemble_refuses_what_it_cannot_average(lm_dir, tokenizer_dir, nsmc_dir, tmp_path):
    test_file = os.path.join(nsmc_dir, "ratings_test.txt")
    classifier_dir = str(tmp_path / "classifier")
    finetune(training_arguments(classifier_dir, max_steps=1), tokenizer_dir, model=lm_dir, dataset=nsmc_dir)
    with pytest.raises(ValueError, match="at least two"):
        evaluate_ensemble([classifier_dir], test_file)
    with pytest.raises(ValueError, match="sequence classifiers"):
        evaluate_ensemble([classifier_dir, lm_dir], test_file)
    with pytest.raises(ValueError, match="NSMC-format"):
        evaluate_ensemble([classifier_dir, classifier_dir], sample_data_path("reviews_sample_valid.txt"))
    relabelled_dir = tmp_path / "relabelled"
    shutil.copytree(classifier_dir, relabelled_dir)
    config = json.loads((relabelled_dir / "config.json").read_text())
    config["id2label"] = {"0": "bad", "1": "good"}
    config["label2id"] = {"bad": 0, "good": 1}
    (relabelled_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="same labels"):
        evaluate_ensemble([classifier_dir, str(relabelled_dir)], test_file)
    with pytest.raises(FileNotFoundError, match="model folder"):
        evaluate_ensemble([classifier_dir, str(tmp_path / "missing")], test_file)


def test_generate_text_continues_the_prompt_reproducibly(lm_dir):
    first = generate_text(lm_dir, ["영화", ""], max_new_tokens=8, seed=3)
    second = generate_text(lm_dir, ["영화", ""], max_new_tokens=8, seed=3)
    assert first == second and len(first) == 2
    assert first[0].startswith("영화") and len(first[0]) > len("영화")
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate_text(lm_dir, ["영화"], max_new_tokens=0)


@pytest.mark.parametrize("loop", ["tbptt", "trainer"])
def test_a_backward_lm_learns_text_from_its_end_and_writes_what_comes_before(tiny_tokenizer, tmp_path, loop):
    # One review (no token twice), repeated: a backward LM that has learnt it writes it back from its last word.
    review = "배우 연기가 정말 최고의 영화"
    corpus = tmp_path / "corpus.txt"
    corpus.write_text((review + "\n") * 200, encoding="utf-8")
    lm_dir = tmp_path / "backward-lm"
    config = tiny_lstm_config(tiny_tokenizer, hidden_size=32, initializer="xavier", reading_direction="backward")
    pretrain(
        training_arguments(lm_dir, max_steps=150, learning_rate=3e-2),
        str(corpus),
        tiny_tokenizer,
        model=config,
        loop=loop,
        bptt=12,
        block_size=12,
    )
    assert generate_text(str(lm_dir), ["영화"], max_new_tokens=20, do_sample=False) == [review]
    # Scored in its own reading order the review is easy; the same weights reading forward find it hard.
    backward_perplexity = evaluate_model(str(lm_dir), str(corpus), block_size=12, bptt=12)["perplexity"]
    forward_dir = tmp_path / "forward-twin"
    forward = AutoModelForCausalLM.from_pretrained(lm_dir)
    forward.config.reading_direction = "forward"
    forward.save_pretrained(forward_dir)
    tiny_tokenizer.save_pretrained(forward_dir)
    forward_perplexity = evaluate_model(str(forward_dir), str(corpus), block_size=12, bptt=12)["perplexity"]
    assert backward_perplexity * 3 < forward_perplexity


@pytest.mark.parametrize("loop", ["tbptt", "trainer"])
def test_pretrain_on_a_streamed_corpus(tiny_tokenizer, text_files, tmp_path, loop):
    run = pretrain(
        training_arguments(tmp_path / "lm", max_steps=3),
        text_files[0],
        tiny_tokenizer,
        model=tiny_lstm_config(tiny_tokenizer),
        loop=loop,
        bptt=8,
        block_size=16,
        streaming=True,
    )
    assert run.metrics["train_loss"] > 0
    if loop == "trainer":
        assert json.loads((tmp_path / "lm" / "trainer_state.json").read_text())["global_step"] == 3
    else:
        assert run.metrics["global_step"] == 3
    with pytest.raises(ValueError, match="max_steps"):
        pretrain(
            training_arguments(tmp_path / "lm2"),
            text_files[0],
            tiny_tokenizer,
            model=tiny_lstm_config(tiny_tokenizer),
            loop="tbptt",
            streaming=True,
        )


def test_a_transformer_pretrains_on_blocks_and_refuses_tbptt(tiny_tokenizer, text_files, tmp_path):
    tiny = "hidden_size=16,num_hidden_layers=1,num_attention_heads=2,max_position_embeddings=32"
    run = pretrain(
        training_arguments(tmp_path / "lm", max_steps=2),
        text_files[0],
        tiny_tokenizer,
        validation_file=text_files[1],
        model_type="transformer",
        config_overrides=tiny,
        block_size=16,
    )
    assert run.model.config.model_type == "hf_seq_transformer_lm"  # loop="auto" chose Trainer on blocks
    assert os.path.isfile(tmp_path / "lm" / "trainer_state.json")
    assert evaluate_model(str(tmp_path / "lm"), text_files[1], block_size=16)["perplexity"] == pytest.approx(
        run.metrics["eval_perplexity"], rel=1e-4
    )
    with pytest.raises(ValueError, match="recurrent"):
        pretrain(
            training_arguments(tmp_path / "lm2", max_steps=2),
            text_files[0],
            tiny_tokenizer,
            model_type="transformer",
            config_overrides=tiny,
            loop="tbptt",
        )


def test_subword_dropout_resegments_each_read_and_leaves_the_tokenizer_exact(tiny_tokenizer, nsmc_dir):
    from hf_seq.training.encoding import SubwordDropoutDataset

    train = load_nsmc(nsmc_dir)["train"]
    dataset = SubwordDropoutDataset(train, tiny_tokenizer, dropout=0.3, max_length=512)  # nothing truncated
    document = max(train["document"], key=len)
    index = list(train["document"]).index(document)
    exact_ids = tiny_tokenizer(document)["input_ids"]
    segmentations = {tuple(dataset[index]["input_ids"]) for _ in range(20)}
    assert len(segmentations) > 1 and any(list(ids) != exact_ids for ids in segmentations)
    for ids in segmentations:  # another segmentation of the same text, not another text
        assert tiny_tokenizer.decode(list(ids), skip_special_tokens=True) == tiny_tokenizer.decode(
            exact_ids, skip_special_tokens=True
        )
    assert dataset[index]["labels"] == train["label"][index]
    # The caller's tokenizer (saved with the model, used at test time) still segments exactly.
    assert tiny_tokenizer.backend_tokenizer.model.dropout is None
    assert tiny_tokenizer(document)["input_ids"] == exact_ids
    empty = list(train["document"]).index("")
    assert dataset[empty]["input_ids"] == [tiny_tokenizer.bos_token_id]  # classified, not dropped


def test_finetune_with_subword_dropout_records_it(tiny_tokenizer, nsmc_dir, tmp_path):
    run = finetune(
        training_arguments(tmp_path / "classifier", max_steps=4),
        tiny_tokenizer,
        model=tiny_lstm_config(tiny_tokenizer),
        dataset=nsmc_dir,
        subword_dropout=0.1,
    )
    assert run.metrics["eval_n"] == 62
    run_info = json.loads((tmp_path / "classifier" / "run_info.json").read_text())
    assert run_info["hyperparameters"]["subword_dropout"] == 0.1
    saved = json.loads((tmp_path / "classifier" / "tokenizer.json").read_text())
    assert saved["model"]["dropout"] is None


def test_subword_dropout_bad_inputs(tiny_tokenizer, nsmc_dir, tmp_path):
    from hf_seq.training.encoding import SubwordDropoutDataset
    from tokenizer_training import train_tokenizer

    train = load_nsmc(nsmc_dir)["train"]
    with pytest.raises(ValueError, match=r"subword_dropout must be in \(0, 1\)"):
        SubwordDropoutDataset(train, tiny_tokenizer, dropout=1.5)
    word_tokenizer = train_tokenizer(texts=list(train["document"]), algorithm="word", vocab_size=300)
    with pytest.raises(ValueError, match="needs a fast BPE tokenizer, got WordLevel"):
        SubwordDropoutDataset(train, word_tokenizer, dropout=0.1)
    with pytest.raises(ValueError, match="no column 'text'"):
        SubwordDropoutDataset(train, tiny_tokenizer, dropout=0.1, text_column="text")
    with pytest.raises(ValueError, match="sequence classification only"):
        finetune(
            training_arguments(tmp_path / "tagger", max_steps=1),
            tiny_tokenizer,
            model=tiny_lstm_config(tiny_tokenizer),
            dataset=nsmc_dir,
            task="token-classification",
            subword_dropout=0.1,
        )


def test_layerwise_parameter_groups_give_each_layer_its_rate():
    from hf_seq.training.optimization import layerwise_parameter_groups

    lstm = AutoModelForSequenceClassification.from_config(
        hf_seq.LSTMConfig(
            vocab_size=50, embedding_size=8, hidden_size=8, num_hidden_layers=2, bidirectional=True, num_labels=2
        )
    )
    transformer = AutoModelForSequenceClassification.from_config(
        hf_seq.TransformerLMConfig(
            vocab_size=50,
            hidden_size=8,
            num_attention_heads=2,
            num_hidden_layers=2,
            intermediate_size=16,
            num_labels=2,
        )
    )
    for model in (lstm, transformer):
        decay_names = {name for name, _ in model.named_parameters() if name.endswith("weight")}
        groups = layerwise_parameter_groups(model, 1.0, 0.5, 0.01, decay_names)
        rate_of = {id(parameter): group["lr"] for group in groups for parameter in group["params"]}
        decay_of = {id(parameter): group["weight_decay"] for group in groups for parameter in group["params"]}
        parameters = dict(model.named_parameters())
        assert len(rate_of) == len(parameters)  # every parameter in exactly one group
        expected = {"model.embed_tokens.weight": 0.125, "classifier.weight": 1.0, "classifier.bias": 1.0}
        if model is lstm:
            expected.update(
                {
                    "model.rnn.weight_ih_l0": 0.25,
                    "model.rnn.weight_hh_l0_reverse": 0.25,
                    "model.rnn.weight_ih_l1_reverse": 0.5,
                    "model.rnn.bias_hh_l1": 0.5,
                }
            )
        else:
            expected.update(
                {
                    "model.layers.0.mlp.up_proj.weight": 0.25,
                    "model.layers.1.self_attn.o_proj.bias": 0.5,
                    "model.norm.weight": 1.0,
                }
            )
        for name, rate in expected.items():
            assert rate_of[id(parameters[name])] == rate, name
            assert decay_of[id(parameters[name])] == (0.01 if name in decay_names else 0.0), name


def test_gradual_unfreezing_schedule_goes_top_down_and_ends_fully_trainable():
    from types import SimpleNamespace

    from hf_seq.training.callbacks import GradualUnfreezingCallback

    model = AutoModelForSequenceClassification.from_config(
        hf_seq.LSTMConfig(vocab_size=50, embedding_size=8, hidden_size=8, num_hidden_layers=2, num_labels=2)
    )
    callback = GradualUnfreezingCallback(model, epochs_per_group=0.5)
    # 8 batches, 2 per optimizer step: 4 steps an epoch, a new group every 2 steps.
    callback.on_train_begin(SimpleNamespace(gradient_accumulation_steps=2), None, None, train_dataloader=[None] * 8)
    parameters = dict(model.named_parameters())

    def trainable_at(step):
        callback.on_step_begin(None, SimpleNamespace(global_step=step), None)
        return {name for name, parameter in parameters.items() if parameter.requires_grad}

    head = {"classifier.weight", "classifier.bias"}
    top_layer = {f"model.rnn.{kind}_{part}_l1" for kind in ("weight", "bias") for part in ("ih", "hh")}
    bottom_layer = {name.replace("_l1", "_l0") for name in top_layer}
    assert trainable_at(0) == trainable_at(1) == head
    assert trainable_at(2) == trainable_at(3) == head | top_layer
    assert trainable_at(4) == head | top_layer | bottom_layer
    assert trainable_at(6) == trainable_at(100) == set(parameters)
    trainable_at(0)
    callback.on_train_end(None, None, None)
    assert all(parameter.requires_grad for parameter in parameters.values())


def test_finetune_with_gradual_unfreezing_trains_only_what_is_unfrozen(lm_dir, tokenizer_dir, nsmc_dir, tmp_path):
    lm_weights = load_file(os.path.join(lm_dir, "model.safetensors"))
    embeddings, recurrent = "model.embed_tokens.weight", "model.rnn.weight_hh_l0"
    # One layer group per step: the head trains from step 0, the LSTM layer from step 1, the embeddings would join
    # at step 2, which a 2-step run never reaches.
    run = finetune(
        training_arguments(tmp_path / "stepwise", max_steps=2),
        tokenizer_dir,
        model=lm_dir,
        dataset=nsmc_dir,
        gradual_unfreezing=1e-6,
    )
    weights = load_file(tmp_path / "stepwise" / "model.safetensors")
    torch.testing.assert_close(weights[embeddings], lm_weights[embeddings], atol=0, rtol=0)
    assert not torch.allclose(weights[recurrent], lm_weights[recurrent], atol=1e-6, rtol=0)
    assert all(parameter.requires_grad for parameter in run.model.parameters())
    assert (
        json.loads((tmp_path / "stepwise" / "run_info.json").read_text())["hyperparameters"]["gradual_unfreezing"]
        == 1e-6
    )

    # A group every 100 epochs: in 2 steps only the head trains and the whole pretrained body stays as it was.
    finetune(
        training_arguments(tmp_path / "head_only", max_steps=2),
        tokenizer_dir,
        model=lm_dir,
        dataset=nsmc_dir,
        gradual_unfreezing=100,
    )
    weights = load_file(tmp_path / "head_only" / "model.safetensors")
    for name in (embeddings, recurrent, "model.rnn.weight_ih_l0"):
        torch.testing.assert_close(weights[name], lm_weights[name], atol=0, rtol=0)
    with pytest.raises(ValueError, match="gradual_unfreezing must be a number of epochs >= 0"):
        finetune(
            training_arguments(tmp_path / "bad", max_steps=1),
            tokenizer_dir,
            model=lm_dir,
            dataset=nsmc_dir,
            gradual_unfreezing=-1,
        )


def test_finetune_with_layerwise_lr_decay_keeps_the_lower_layers(lm_dir, tokenizer_dir, nsmc_dir, tmp_path):
    # A vanishing decay: the embeddings (lowest) barely move while the new head trains at the full rate.
    finetune(
        training_arguments(tmp_path / "classifier", max_steps=3),
        tokenizer_dir,
        model=lm_dir,
        dataset=nsmc_dir,
        layerwise_lr_decay=1e-4,
    )
    lm_weights = load_file(os.path.join(lm_dir, "model.safetensors"))
    classifier_weights = load_file(tmp_path / "classifier" / "model.safetensors")
    embeddings = "model.embed_tokens.weight"
    torch.testing.assert_close(classifier_weights[embeddings], lm_weights[embeddings], atol=1e-9, rtol=0)
    run_info = json.loads((tmp_path / "classifier" / "run_info.json").read_text())
    assert run_info["hyperparameters"]["layerwise_lr_decay"] == 1e-4

    # Without decay the same run moves the embeddings: the check above can fail.
    finetune(training_arguments(tmp_path / "plain", max_steps=3), tokenizer_dir, model=lm_dir, dataset=nsmc_dir)
    plain_weights = load_file(tmp_path / "plain" / "model.safetensors")
    assert not torch.allclose(plain_weights[embeddings], lm_weights[embeddings], atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match=r"layerwise_lr_decay must be in \(0, 1\]"):
        finetune(
            training_arguments(tmp_path / "bad", max_steps=1),
            tokenizer_dir,
            model=lm_dir,
            dataset=nsmc_dir,
            layerwise_lr_decay=0.0,
        )
