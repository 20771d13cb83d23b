"""Dynamic int8 quantisation of the recurrent models (`hf_seq.quantization.quantize_dynamic_int8`)."""

import copy

import pytest
import torch
from torch import nn
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoModelForTokenClassification

import hf_seq
from hf_seq.quantization import quantize_dynamic_int8


VOCAB = 60
CELLS = {"lstm": hf_seq.LSTMConfig, "gru": hf_seq.GRUConfig, "rnn": hf_seq.RNNConfig}


def make_config(cell, **overrides):
    fields = {"vocab_size": VOCAB, "embedding_size": 32, "hidden_size": 32, "num_hidden_layers": 2, **overrides}
    return CELLS[cell](**fields)


def relative_error(actual, expected):
    return ((actual - expected).abs().max() / expected.abs().max()).item()


@pytest.mark.parametrize("cell", list(CELLS))
def test_quantised_lm_stores_int8_layers_and_its_logits_stay_close(cell):
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(make_config(cell)).eval()
    quantized = quantize_dynamic_int8(copy.deepcopy(model))
    assert not isinstance(quantized.lm_head, nn.Linear)
    # torch has dynamic int8 kernels for LSTM and GRU layers; an Elman RNN keeps its fp32 recurrent layers.
    assert isinstance(quantized.model.rnn, nn.RNNBase) == (cell == "rnn")
    inputs = torch.randint(4, VOCAB, (3, 10), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, actual = model(inputs).logits, quantized(inputs).logits
    assert 0 < relative_error(actual, expected) < 0.05


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_quantised_lm_generates_with_its_cache_as_without(cell):
    torch.manual_seed(0)
    quantized = quantize_dynamic_int8(AutoModelForCausalLM.from_config(make_config(cell)))
    assert not quantized.training
    prompt = torch.randint(4, VOCAB, (2, 6), generator=torch.Generator().manual_seed(2))
    settings = {"max_new_tokens": 8, "min_new_tokens": 8, "do_sample": False, "pad_token_id": 0}
    cached = quantized.generate(prompt, **settings)
    assert cached.shape == (2, 14)
    assert torch.equal(cached, quantized.generate(prompt, use_cache=False, **settings))


def test_quantised_classifier_keeps_padding_invariance():
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(make_config("lstm", num_labels=3))
    quantized = quantize_dynamic_int8(model)
    inputs = torch.randint(4, VOCAB, (1, 7), generator=torch.Generator().manual_seed(3))
    padded = torch.cat([inputs, torch.zeros(1, 3, dtype=torch.long)], dim=1)
    mask = torch.cat([torch.ones(1, 7), torch.zeros(1, 3)], dim=1).long()
    with torch.no_grad():
        torch.testing.assert_close(quantized(padded, attention_mask=mask).logits, quantized(inputs).logits)


def test_quantised_tagger_with_ngram_features_keeps_them_in_fp32_and_stays_close():
    torch.manual_seed(0)
    config = make_config("gru", num_labels=2, bidirectional=True, ngram_orders=[2, 3], ngram_buckets=97)
    model = AutoModelForTokenClassification.from_config(config).eval()
    quantized = quantize_dynamic_int8(model)
    assert torch.equal(quantized.model.ngram_embeddings.weight, model.model.ngram_embeddings.weight)
    inputs = torch.randint(4, VOCAB, (1, 9), generator=torch.Generator().manual_seed(3))
    padded = torch.cat([inputs, torch.zeros(1, 3, dtype=torch.long)], dim=1)
    mask = torch.cat([torch.ones(1, 9), torch.zeros(1, 3)], dim=1).long()
    with torch.no_grad():
        alone = quantized(inputs).logits
        torch.testing.assert_close(quantized(padded, attention_mask=mask).logits[:, :9], alone)
        assert relative_error(alone, model(inputs).logits) < 0.05


def test_quantisation_refuses_a_model_off_the_cpu():
    model = AutoModelForCausalLM.from_config(make_config("lstm")).to("meta")
    with pytest.raises(ValueError, match="runs on the CPU.*the model is on meta: move it with .to\\('cpu'\\)"):
        quantize_dynamic_int8(model)


def test_quantised_model_refuses_what_needs_fp32_layers(tmp_path):
    quantized = quantize_dynamic_int8(AutoModelForCausalLM.from_config(make_config("lstm")))
    with pytest.raises(ValueError, match="fp32"):
        quantized(torch.randint(4, VOCAB, (1, 4)), output_hidden_states=True)
    with pytest.raises(NotImplementedError, match="save the fp32 model"):
        quantized.save_pretrained(tmp_path)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_quantised_seq2seq_decodes_step_by_step_with_its_int8_layers(cell):
    """Input feeding runs the decoder one position at a time: the int8 layers step as modules."""
    from transformers import AutoModelForSeq2SeqLM

    torch.manual_seed(0)
    config = hf_seq.Seq2SeqRNNConfig(
        vocab_size=VOCAB,
        cell=cell,
        embedding_size=16,
        hidden_size=32,
        encoder_layers=2,
        decoder_layers=2,
        input_feeding=True,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
    )
    model = AutoModelForSeq2SeqLM.from_config(config).eval()
    quantized = quantize_dynamic_int8(copy.deepcopy(model))
    assert not isinstance(quantized.model.decoder.rnn, nn.RNNBase)
    source = torch.randint(4, VOCAB, (2, 7), generator=torch.Generator().manual_seed(1))
    target = torch.randint(4, VOCAB, (2, 5), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = model(input_ids=source, decoder_input_ids=target).logits
        actual = quantized(input_ids=source, decoder_input_ids=target).logits
    assert 0 < relative_error(actual, expected) < 0.05
    settings = {"max_new_tokens": 6, "min_new_tokens": 6, "do_sample": False}
    for num_beams in (1, 2):
        assert quantized.generate(source, num_beams=num_beams, **settings).shape == (2, 7)
    with pytest.raises(ValueError, match="fp32"):
        quantized(input_ids=source, decoder_input_ids=target, output_hidden_states=True)
