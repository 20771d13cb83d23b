"""Word2VecConfig and Word2VecModel: validation, the pad-aware mean, the loss's gradients, save/load, remote code."""

import json

import pytest
import torch
from huggingface_hub.errors import StrictDataclassClassValidationError, StrictDataclassFieldValidationError
from transformers import AutoConfig, AutoModel

from hf_seq.models.word2vec import Word2VecConfig, Word2VecModel, register_word2vec
from hf_seq.word2vec import cbow_update, negative_sampling_update
from tests.support.remote_code import run_without_hf_seq


register_word2vec()


def small_model(**overrides) -> Word2VecModel:
    torch.manual_seed(0)
    return Word2VecModel(Word2VecConfig(vocab_size=20, embedding_size=6, **overrides))


@pytest.mark.parametrize(
    "field, value",
    [
        ("architecture", "glove"),
        ("window", 0),
        ("negative", -1),
        ("subsample", 1.5),
        ("ns_exponent", float("nan")),
        ("embedding_size", 2.5),
    ],
)
def test_config_refuses_invalid_fields(field, value):
    with pytest.raises((ValueError, StrictDataclassFieldValidationError)):
        Word2VecConfig(**{field: value})


def test_config_refuses_a_pad_id_outside_the_vocabulary():
    with pytest.raises(StrictDataclassClassValidationError, match="pad_token_id"):
        Word2VecConfig(vocab_size=10, pad_token_id=10)


def test_config_names_its_remote_code():
    assert Word2VecConfig().auto_map == {
        "AutoConfig": "configuration_word2vec.Word2VecConfig",
        "AutoModel": "modeling_word2vec.Word2VecModel",
    }


def test_initial_vectors_follow_word2vec():
    model = small_model()
    bound = model.config.initializer_range / model.config.embedding_size
    assert model.embed_tokens.weight.abs().max() <= bound
    assert torch.count_nonzero(model.embed_tokens.weight[model.config.pad_token_id]) == 0
    assert torch.count_nonzero(model.output_embeddings.weight) == 0


def test_pad_never_enters_the_cbow_mean():
    model = small_model()
    with torch.no_grad():  # a pad vector that would show anywhere it was summed or counted
        model.embed_tokens.weight[0] = 1000.0
    bags = torch.tensor([[0, 0, 5, 7], [5, 7, 0, 0], [5, 0, 7, 0], [5, 7, 5, 7]])
    expected = (model.embed_tokens.weight[5] + model.embed_tokens.weight[7]) / 2
    for row in model.embed_bags(bags):
        torch.testing.assert_close(row, expected)
    assert torch.count_nonzero(model.embed_bags(torch.tensor([[0, 0]]))) == 0  # no context at all: zero


def test_the_training_update_never_touches_nor_reads_the_pad():
    model = small_model()
    with torch.no_grad():
        model.embed_tokens.weight[0] = 1000.0
        model.output_embeddings.weight.normal_()
    inputs, outputs = model.embed_tokens.weight.data.clone(), model.output_embeddings.weight.data.clone()
    contexts = torch.tensor([[0, 5, 7, 0], [0, 0, 3, 0]])
    real = contexts != 0
    hidden = torch.stack([(inputs[5] + inputs[7]) / 2, inputs[3]])
    cbow_update(
        model.embed_tokens.weight.data,
        model.output_embeddings.weight.data,
        contexts,
        real,
        torch.tensor([6, 4]),
        torch.tensor([[9, 10], [11, 12]]),
        0.1,
        pad_token_id=0,
    )
    assert torch.equal(model.embed_tokens.weight[0], inputs[0])  # the pad row is never updated
    # and the output vectors moved by exactly the steps computed from the real-context means
    reference = outputs.clone()
    negative_sampling_update(reference, hidden, torch.tensor([[6, 9, 10], [4, 11, 12]]), 0.1)
    torch.testing.assert_close(model.output_embeddings.weight.data, reference)


def test_closed_form_update_is_sgd_on_the_forward_loss():
    model = small_model()
    with torch.no_grad():
        model.output_embeddings.weight.normal_()
        model.embed_tokens.weight.normal_()
        model.embed_tokens.weight[0] = 0
    bags = torch.tensor([[3, 4, 0], [5, 0, 0], [6, 7, 8]])
    targets = torch.tensor([[1, 9, 10], [2, 11, 12], [13, 14, 15]])
    labels = torch.zeros(3, 3)
    labels[:, 0] = 1
    output = model(bags, targets, labels=labels)
    (output.loss * len(bags)).backward()  # the loop sums the pairs' losses (word2vec's per-pair SGD)
    hidden = output.context_embeddings.detach()
    outputs = model.output_embeddings.weight.data.clone()
    learning_rate = 0.05
    hidden_step = negative_sampling_update(outputs, hidden, targets, learning_rate)
    torch.testing.assert_close(
        outputs - model.output_embeddings.weight.data, -learning_rate * model.output_embeddings.weight.grad
    )
    # word2vec gives each context vector the whole gradient of the mean: |bag| times autograd's share of it
    sizes = (bags != 0).sum(1, keepdim=True)
    grad_of_mean = torch.stack([model.embed_tokens.weight.grad[bag[0]] for bag in bags]) * sizes
    torch.testing.assert_close(hidden_step, -learning_rate * grad_of_mean)


def test_a_negative_equal_to_the_positive_is_skipped_and_later_columns_see_earlier_steps():
    torch.manual_seed(0)
    outputs = torch.randn(8, 4)
    hidden = torch.randn(2, 4)
    learning_rate = 0.1
    # Row 0 draws its positive (3) again as a negative: word2vec.c skips that draw, so row 0 only has the positive.
    updated = outputs.clone()
    hidden_step = negative_sampling_update(updated, hidden, torch.tensor([[3, 3], [5, 6]]), learning_rate)
    reference = outputs.clone()
    expected_step = negative_sampling_update(reference, hidden[:1], torch.tensor([[3]]), learning_rate)
    torch.testing.assert_close(hidden_step[0], expected_step[0])
    # The positive of row 1 (5) is a negative of row 0: that column reads it as the positives' column left it.
    updated = outputs.clone()
    negative_sampling_update(updated, hidden, torch.tensor([[3, 5], [5, 6]]), learning_rate)
    after_positive = outputs[5] + learning_rate * (1 - torch.sigmoid(outputs[5] @ hidden[1])) * hidden[1]
    negative_step = -learning_rate * torch.sigmoid(after_positive @ hidden[0]) * hidden[0]
    torch.testing.assert_close(updated[5], after_positive + negative_step)


def test_forward_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="same batch size"):
        small_model()(torch.tensor([[1, 2]]), torch.tensor([[1], [2]]))


def test_save_and_load_are_exact(tmp_path):
    model = small_model(architecture="skipgram")
    with torch.no_grad():
        model.output_embeddings.weight.normal_()
        model.token_counts.copy_(torch.arange(20) * 7)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    loaded = AutoModel.from_pretrained(tmp_path)
    assert type(loaded) is Word2VecModel
    assert loaded.config.architecture == "skipgram"
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    assert loaded.token_counts.dtype == torch.int64
    assert type(AutoConfig.from_pretrained(tmp_path)) is Word2VecConfig


SCRIPT = """
import json, torch
from transformers import AutoModel
model = AutoModel.from_pretrained("model", trust_remote_code=True)
print(json.dumps({"class": type(model).__name__, "config": type(model.config).__name__,
                  "vectors": model.embed_tokens.weight.tolist(), "counts": model.token_counts.tolist(),
                  "bag": model.embed_bags(torch.tensor([[0, 3, 4]])).tolist()}))
"""


def test_a_saved_folder_loads_as_remote_code_without_hf_seq(tmp_path):
    model = small_model()
    with torch.no_grad():
        model.token_counts.copy_(torch.arange(20))
    model.save_pretrained(tmp_path / "model")
    assert {"configuration_word2vec.py", "modeling_word2vec.py"} <= {p.name for p in (tmp_path / "model").iterdir()}
    assert (
        json.loads((tmp_path / "model" / "config.json").read_text())["auto_map"]["AutoModel"]
        == "modeling_word2vec.Word2VecModel"
    )
    result = run_without_hf_seq(SCRIPT, workdir=tmp_path)
    assert result["class"] == "Word2VecModel" and result["config"] == "Word2VecConfig"
    assert torch.equal(torch.tensor(result["vectors"]), model.embed_tokens.weight.detach())
    assert result["counts"] == list(range(20))
    torch.testing.assert_close(torch.tensor(result["bag"]), model.embed_bags(torch.tensor([[0, 3, 4]])).detach())
