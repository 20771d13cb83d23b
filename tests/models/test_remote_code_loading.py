"""A saved model folder loads on a machine without hf_seq, with no prompt and no model-type warning.

transformers' AutoTokenizer reads the model's config.json before the tokenizer files; a config naming custom code
makes it ask "Do you wish to run the custom code? [y/N]" unless `trust_remote_code` is given. So the tokenizer files
name a class transformers knows (`TokenizersBackend`): with `trust_remote_code=False` the tokenizer loads and no code
runs; with `trust_remote_code=True` model and tokenizer load silently.
"""

import pytest
import torch
from transformers import AutoModelForCausalLM

import hf_seq
from tests.support.remote_code import run_without_hf_seq
from tokenizer_training import train_tokenizer


CONFIGS = {
    "lstm": lambda vocab: hf_seq.LSTMConfig(vocab_size=vocab, hidden_size=8, embedding_size=8, num_hidden_layers=1),
    "rnn": lambda vocab: hf_seq.RNNConfig(vocab_size=vocab, hidden_size=8, embedding_size=8, num_hidden_layers=1),
    "transformer": lambda vocab: hf_seq.TransformerLMConfig(
        vocab_size=vocab, hidden_size=8, num_attention_heads=2, num_hidden_layers=1
    ),
}

SCRIPT = """
import json, sys, torch, transformers
from transformers import AutoModel, AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer
transformers.logging.set_verbosity_warning()
plain = AutoTokenizer.from_pretrained("model", trust_remote_code=False)
print("plain tokenizer loaded", file=sys.stderr, flush=True)
tokenizer = AutoTokenizer.from_pretrained("model", trust_remote_code=True)
model = AutoModelForCausalLM.from_pretrained("model", trust_remote_code=True)
AutoModel.from_pretrained("model", trust_remote_code=True)
AutoModelForSequenceClassification.from_pretrained("model", trust_remote_code=True, num_labels=2)
ids = tokenizer("좋은 영화", return_tensors="pt")["input_ids"]
print(json.dumps({"plain": type(plain).__name__, "tokenizer": type(tokenizer).__name__,
                  "ids": ids.tolist(), "config": type(model.config).__name__}))
"""


@pytest.mark.parametrize("family", CONFIGS)
def test_a_saved_folder_loads_without_hf_seq_with_no_prompt_nor_model_type_warning(tmp_path, family):
    tokenizer = train_tokenizer(texts=["좋은 영화 입니다", "별로 였다 정말"] * 20, vocab_size=320, limit_alphabet=50)
    model = AutoModelForCausalLM.from_config(CONFIGS[family](len(tokenizer)))
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")

    result = run_without_hf_seq(
        SCRIPT, workdir=tmp_path, extra_env={"TRANSFORMERS_VERBOSITY": "warning"}, capture_stderr=True
    )
    assert result["plain"] == result["tokenizer"] == "TokenizersBackend"
    assert result["ids"] == tokenizer("좋은 영화", return_tensors="pt")["input_ids"].tolist()
    assert result["config"] == type(model.config).__name__
    assert "Do you wish to run the custom code" not in result["output"]
    # Only the trust_remote_code=False tokenizer load may fall back to a plain config; the model loads never do.
    model_loads = result["output"].split("plain tokenizer loaded")[-1]
    assert "to instantiate a model of type" not in model_loads, model_loads
    assert torch.equal(torch.tensor(result["ids"]), tokenizer("좋은 영화", return_tensors="pt")["input_ids"])
