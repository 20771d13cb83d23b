"""Dynamic int8 quantisation of a trained recurrent model, for inference on CPU.

    from transformers import AutoModelForCausalLM
    from hf_seq.quantization import quantize_dynamic_int8

    model = quantize_dynamic_int8(AutoModelForCausalLM.from_pretrained("my-lstm-lm"))
    model.generate(input_ids, max_new_tokens=50)

The weights of the recurrent layers (LSTM, GRU) and of every linear layer (the LM head, the output projection, a
classifier) are stored as int8 with their scales: per output row for a linear layer, per matrix for a recurrent one.
Activations are quantised on the fly at each product (dynamic quantisation), so no calibration data is needed. The
token embedding stays fp32: a lookup reads one row of it. An Elman RNN's recurrent layers stay fp32: torch has no
dynamic int8 kernel for them (its linear layers are still quantised).

A decode step reads every weight matrix once, so a quarter of the bytes makes it several times faster
(`bench/bench_recurrent_decode.py` measures it against fp32). The price is accuracy: compare the perplexity (or the
task metric) of both models on held-out data before shipping the int8 one (the bench does with `--model --text`).

The kernels are fbgemm's (x86; `torch.backends.quantized.engine`), reached through torch's
`torch.ao.nn.quantized.dynamic` modules. torch 2.13 marks that API, and the quantized tensors it is built on,
deprecated in favour of the separate torchao package, but ships and runs it; the deprecation warnings it raises while
converting are silenced here rather than repeated for every layer. A quantised model is for inference only: it cannot
be trained, nor saved with `save_pretrained` (save the fp32 model and quantise after loading), and
`output_hidden_states` and gradient checkpointing need the fp32 recurrent layers.
"""

import warnings

import torch
from torch import nn


__all__ = ["quantize_dynamic_int8"]


def quantize_dynamic_int8(model: nn.Module) -> nn.Module:
    """Replace, in place, the LSTM, GRU and linear layers of `model` by dynamic int8 ones, and return the model.

    The model is put in eval mode. Any hf_seq model (or other `nn.Module`) works; the recurrent families run the
    quantised layers on the same paths as the fp32 ones (a whole sequence, a padded batch, a cached decode step).
    """
    device = next(model.parameters(), torch.empty(0)).device
    if device.type != "cpu":
        raise ValueError(
            f"int8 quantisation runs on the CPU (fbgemm kernels); the model is on {device}: move it with .to('cpu')"
        )
    if not set(torch.backends.quantized.supported_engines) & {"fbgemm", "x86", "qnnpack"}:
        raise RuntimeError(
            f"This torch build has no int8 CPU kernels (quantized engines: {torch.backends.quantized.supported_engines})"
        )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.ao")
        warnings.filterwarnings("ignore", message=r".*quantized tensor creation functions.*")
        from torch.ao.nn.quantized import dynamic as quantized_dynamic
        from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig

        replacements = {
            nn.Linear: (quantized_dynamic.Linear, per_channel_dynamic_qconfig),
            nn.LSTM: (quantized_dynamic.LSTM, default_dynamic_qconfig),
            nn.GRU: (quantized_dynamic.GRU, default_dynamic_qconfig),
        }
        model.eval()
        for parent in list(model.modules()):
            for name, child in list(parent.named_children()):
                if type(child) not in replacements:  # exact types: a subclass (PEFT, ...) may not convert cleanly
                    continue
                quantized_class, qconfig = replacements[type(child)]
                child.qconfig = qconfig
                setattr(parent, name, quantized_class.from_float(child))
    if hasattr(model, "save_pretrained"):  # torch cannot serialise the packed weights: say so, not deep inside
        model.save_pretrained = _refuse_to_save
    return model


def _refuse_to_save(*args, **kwargs):
    raise NotImplementedError(
        "A model quantised with quantize_dynamic_int8 cannot be saved: save the fp32 model, and quantise it again "
        "after loading it."
    )
