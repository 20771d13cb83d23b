"""A saved Seq2SeqRNN folder loads and generates on a machine without hf_seq (trust_remote_code)."""

import torch

from hf_seq.models.seq2seq_rnn import Seq2SeqRNNConfig, Seq2SeqRNNForConditionalGeneration, register_seq2seq_rnn
from tests.support.remote_code import run_without_hf_seq


register_seq2seq_rnn()

SCRIPT = """
import json, torch
from transformers import AutoConfig, AutoModel, AutoModelForSeq2SeqLM
config = AutoConfig.from_pretrained("model", trust_remote_code=True)
model = AutoModelForSeq2SeqLM.from_pretrained("model", trust_remote_code=True).eval()
AutoModel.from_pretrained("model", trust_remote_code=True)
ids = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0]])
mask = (ids != 0).long()
greedy = model.generate(ids, attention_mask=mask, max_new_tokens=5)
beam = model.generate(ids, attention_mask=mask, max_new_tokens=5, num_beams=3)
print(json.dumps({"config": type(config).__name__, "model": type(model).__name__,
                  "module": type(model).__module__, "greedy": greedy.tolist(), "beam": beam.tolist()}))
"""


def test_a_saved_folder_loads_and_generates_without_hf_seq(tmp_path):
    torch.manual_seed(0)
    config = Seq2SeqRNNConfig(
        vocab_size=20,
        hidden_size=8,
        embedding_size=6,
        encoder_layers=1,
        decoder_layers=1,
        attention="concat",
        initializer_range=0.5,
    )
    model = Seq2SeqRNNForConditionalGeneration(config).eval()
    model.save_pretrained(tmp_path / "model")

    result = run_without_hf_seq(SCRIPT, workdir=tmp_path)
    assert result["config"] == "Seq2SeqRNNConfig" and result["model"] == "Seq2SeqRNNForConditionalGeneration"
    assert not result["module"].startswith("hf_seq")
    ids = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0]])
    mask = (ids != 0).long()
    assert result["greedy"] == model.generate(ids, attention_mask=mask, max_new_tokens=5).tolist()
    assert result["beam"] == model.generate(ids, attention_mask=mask, max_new_tokens=5, num_beams=3).tolist()
