"""Small helpers for the tests that run `Trainer` for a few steps on a tiny model."""

from transformers import TrainingArguments


def training_arguments(output_dir, steps, learning_rate):
    """CPU, seeded, a loss logged every step, nothing saved or reported."""
    return TrainingArguments(
        output_dir=str(output_dir),
        max_steps=steps,
        per_device_train_batch_size=8,
        learning_rate=learning_rate,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
    )


def logged_losses(trainer):
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
