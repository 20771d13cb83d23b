"""The accelerate TBPTT loop: carried state, learning, clipping, checkpoints and exact resume, saved output."""

import json
import os
import shutil

import pytest
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

import hf_seq
from hf_seq.data import batchify, corpus_token_ids, load_text_files, tokenize_corpus
from hf_seq.training import evaluate_streams, train_tbptt
from tests.training.helpers import tiny_lstm_config, training_arguments


@pytest.fixture(scope="module")
def corpus(tiny_tokenizer, text_files):
    tokenized = tokenize_corpus(load_text_files({"train": text_files[0], "validation": text_files[1]}), tiny_tokenizer)
    return corpus_token_ids(tokenized["train"]), corpus_token_ids(tokenized["validation"])


def test_stateful_evaluation_equals_one_pass_over_each_stream(tiny_tokenizer, corpus):
    torch.manual_seed(0)
    model = hf_seq.LSTMForCausalLM(tiny_lstm_config(tiny_tokenizer)).eval()
    token_ids = corpus[1][:203]
    result = evaluate_streams(model, token_ids, Accelerator(cpu=True), batch_size=2, bptt=6)

    streams = batchify(token_ids, 2)
    with torch.no_grad():
        logits = model(input_ids=streams[:, :-1]).logits
    expected = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), streams[:, 1:].reshape(-1))
    assert result["n_tokens"] == streams[:, 1:].numel()
    assert result["loss"] == pytest.approx(expected.item(), abs=1e-5)


def test_training_lowers_perplexity_and_saves_a_loadable_model(tiny_tokenizer, corpus, tmp_path):
    train_ids, valid_ids = corpus
    torch.manual_seed(0)
    model = hf_seq.LSTMForCausalLM(tiny_lstm_config(tiny_tokenizer, embedding_size=32, hidden_size=32))
    before = evaluate_streams(model, valid_ids, Accelerator(cpu=True), batch_size=4, bptt=10)
    args = training_arguments(tmp_path / "lm", num_train_epochs=2, per_device_train_batch_size=8, learning_rate=1e-2)
    run = train_tbptt(model, train_ids, args, eval_token_ids=valid_ids, bptt=10, tokenizer=tiny_tokenizer)

    assert run.metrics["eval_perplexity"] < 0.5 * before["perplexity"]
    assert run.metrics["epoch"] == 2
    assert run.metrics["train_tokens_per_second"] > 0
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "lm")
    for (name, saved), trained in zip(reloaded.state_dict().items(), run.model.state_dict().values()):
        assert torch.equal(saved, trained), name
    run_info = json.loads((tmp_path / "lm" / "run_info.json").read_text())
    recorded = {(m["name"], m["split"]): m["value"] for m in run_info["metrics"]}
    assert recorded[("perplexity", "validation")] == pytest.approx(run.metrics["eval_perplexity"])
    assert run_info["hyperparameters"]["bptt"] == 10
    assert os.path.isfile(tmp_path / "lm" / "tokenizer.json")


@pytest.mark.parametrize("max_grad_norm, expected_calls", [(1.0, 3), (0.0, 0)])
def test_gradients_are_clipped_by_default(
    tiny_tokenizer, corpus, tmp_path, monkeypatch, max_grad_norm, expected_calls
):
    norms = []
    original = Accelerator.clip_grad_norm_

    def recording_clip(self, parameters, max_norm, *args, **kwargs):
        norms.append(max_norm)
        return original(self, parameters, max_norm, *args, **kwargs)

    monkeypatch.setattr(Accelerator, "clip_grad_norm_", recording_clip)
    model = hf_seq.LSTMForCausalLM(tiny_lstm_config(tiny_tokenizer))
    args = training_arguments(tmp_path / "lm", max_steps=3, max_grad_norm=max_grad_norm)
    train_tbptt(model, corpus[0], args, bptt=8)
    assert norms == [max_grad_norm] * expected_calls
    assert training_arguments(tmp_path).max_grad_norm == 1.0  # the default: clipping on


def test_resume_from_a_checkpoint_reproduces_the_uninterrupted_run(tiny_tokenizer, corpus, tmp_path):
    def run(output_dir, resume=None):
        torch.manual_seed(0)
        model = hf_seq.LSTMForCausalLM(tiny_lstm_config(tiny_tokenizer, embedding_dropout=0.2, output_dropout=0.2))
        args = training_arguments(
            output_dir, max_steps=9, save_strategy="steps", save_steps=4, resume_from_checkpoint=resume
        )
        return train_tbptt(model, corpus[0], args, bptt=8)

    uninterrupted = run(tmp_path / "a")
    assert sorted(os.listdir(tmp_path / "a" / "checkpoint-4")) == sorted(os.listdir(tmp_path / "a" / "checkpoint-8"))
    os.makedirs(tmp_path / "b")
    shutil.copytree(tmp_path / "a" / "checkpoint-4", tmp_path / "b" / "checkpoint-4")
    resumed = run(tmp_path / "b", resume="latest")
    assert resumed.metrics["global_step"] == 9
    assert resumed.metrics["train_loss"] == uninterrupted.metrics["train_loss"]
    final_a = load_file(tmp_path / "a" / "model.safetensors")
    final_b = load_file(tmp_path / "b" / "model.safetensors")
    assert final_a.keys() == final_b.keys()
    for name in final_a:
        assert torch.equal(final_a[name], final_b[name]), name


def test_a_resumed_run_counts_the_training_time_of_its_earlier_sittings(tiny_tokenizer, corpus, tmp_path):
    def run(resume=None):
        torch.manual_seed(0)
        model = hf_seq.LSTMForCausalLM(tiny_lstm_config(tiny_tokenizer))
        args = training_arguments(
            tmp_path, max_steps=6, save_strategy="steps", save_steps=4, resume_from_checkpoint=resume
        )
        return train_tbptt(model, corpus[0], args, bptt=8, overwrite_output_dir=resume is None)

    run()
    state_path = tmp_path / "checkpoint-4" / "tbptt_state_rank0.pt"
    state = torch.load(state_path, weights_only=True)
    assert 0 < state["elapsed_seconds"] < 600
    state["elapsed_seconds"] = 1000.0  # as if the first sitting had trained 1,000 s before its checkpoint
    torch.save(state, state_path)
    resumed = run(resume="latest")
    with open(tmp_path / "run_info.json", encoding="utf-8") as handle:
        wall_time = json.load(handle)["wall_time_seconds"]
    assert wall_time == resumed.metrics["total_train_runtime"]
    assert 1000.0 + resumed.metrics["train_runtime"] <= wall_time < 1000.0 + resumed.metrics["train_runtime"] + 5


def test_bad_arguments_fail_clearly(tiny_tokenizer, corpus, tmp_path):
    model = hf_seq.LSTMForCausalLM(tiny_lstm_config(tiny_tokenizer))
    with pytest.raises(ValueError, match="bptt"):
        train_tbptt(model, corpus[0], training_arguments(tmp_path), bptt=0)
    with pytest.raises(ValueError, match="accumulate"):
        train_tbptt(model, corpus[0], training_arguments(tmp_path, gradient_accumulation_steps=2), bptt=8)
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        train_tbptt(
            model, corpus[0], training_arguments(tmp_path, resume_from_checkpoint=str(tmp_path / "no")), bptt=8
        )
    with pytest.raises(ValueError, match="too few"):
        train_tbptt(model, corpus[0][:5], training_arguments(tmp_path), bptt=8)  # 4 streams need 8 tokens


@pytest.mark.parametrize("family", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("sizes", [{}, {"tie_word_embeddings": False}, {"embedding_size": 8, "hidden_size": 16}])
def test_weight_decay_applies_to_the_matrices_and_spares_the_biases(family, sizes):
    from hf_seq.training.optimization import weight_decay_parameter_names

    config = getattr(hf_seq, f"{family}Config")(
        **{"vocab_size": 30, "embedding_size": 8, "hidden_size": 8, "num_hidden_layers": 2, **sizes}
    )
    model = getattr(hf_seq, f"{family}ForCausalLM")(config)
    decayed = weight_decay_parameter_names(model)
    for name, parameter in model.named_parameters():  # the TBPTT loop's groups, as Trainer forms them
        assert (name in decayed) == (parameter.ndim >= 2), name
