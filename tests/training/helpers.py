"""Helpers shared by the training tests (fixtures live in conftest.py)."""

from transformers import TrainingArguments

import hf_seq


def tiny_lstm_config(tokenizer, **overrides):
    settings = {"embedding_size": 16, "hidden_size": 16, "num_hidden_layers": 1}
    settings.update(overrides)
    return hf_seq.LSTMConfig(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **settings,
    )


def training_arguments(output_dir, **overrides):
    """TrainingArguments for tiny CPU test runs: no reports, no progress bars, no checkpoints unless asked."""
    settings = {
        "output_dir": str(output_dir),
        "per_device_train_batch_size": 4,
        "per_device_eval_batch_size": 8,
        "learning_rate": 5e-3,
        "report_to": "none",
        "disable_tqdm": True,
        "use_cpu": True,
        "save_strategy": "no",
        "dataloader_pin_memory": False,
        "seed": 0,
    }
    settings.update(overrides)
    return TrainingArguments(**settings)
