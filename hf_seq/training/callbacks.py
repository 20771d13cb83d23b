"""The `Trainer` callbacks of hf-seq's training runs: ULMFiT's gradual unfreezing, tail weight averaging (SWA), the
teacher-forcing schedule of scheduled sampling, and the marker that says a checkpoint is complete (added last, after
every callback that writes into checkpoints)."""

import math
import os
import time

import torch
from accelerate import PartialState
from safetensors.torch import load_file, save_file
from transformers import TrainerCallback

from .checkpoints import checkpoint_dir, mark_checkpoint_complete
from .optimization import parameter_depth


def optimizer_steps(epochs, args, train_dataloader):
    """How many optimizer steps `epochs` epochs (fractions allowed) of this dataloader make: at least 1."""
    steps_per_epoch = max(math.ceil(len(train_dataloader) / args.gradient_accumulation_steps), 1)
    return max(round(epochs * steps_per_epoch), 1)


class GradualUnfreezingCallback(TrainerCallback):
    """Gradual unfreezing (ULMFiT): training starts with only the top layer group (the head) trainable, and every
    `epochs_per_group` epochs the next group down joins, down to the embeddings.

    The new head first learns from features that stay put instead of sending its early, random gradients into the
    pretrained layers. Every parameter stays in the optimizer; a frozen one has `requires_grad=False`, so it gets no
    gradient and the optimizer leaves it (and its weight decay) alone. The groups in training follow from
    `global_step` alone, so a resumed run freezes exactly what the uninterrupted one did.
    """

    def __init__(self, model, epochs_per_group):
        num_hidden_layers = model.config.num_hidden_layers
        self.top_depth = num_hidden_layers + 1
        self.parameters_by_depth = [
            (parameter_depth(name, num_hidden_layers), parameter)
            for name, parameter in model.named_parameters()
            if parameter.requires_grad
        ]
        self.epochs_per_group = epochs_per_group
        self.steps_per_group = None

    def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
        self.steps_per_group = optimizer_steps(self.epochs_per_group, args, train_dataloader)

    def lowest_trainable_depth(self, global_step):
        return max(self.top_depth - global_step // self.steps_per_group, 0)

    def on_step_begin(self, args, state, control, **kwargs):
        lowest = self.lowest_trainable_depth(state.global_step)
        for depth, parameter in self.parameters_by_depth:
            parameter.requires_grad_(depth >= lowest)

    def on_train_end(self, args, state, control, **kwargs):
        for _, parameter in self.parameters_by_depth:  # the saved model is a normal, fully trainable one
            parameter.requires_grad_(True)


class WeightAveragingCallback(TrainerCallback):
    """Tail weight averaging (SWA, Izmailov et al., 2018): a running mean of the weights after each optimizer step of
    the last `epochs` epochs, which `finetune` puts into the model when training ends.

    Late in training the weights keep moving around a minimum as each batch pulls them its way; their mean sits
    nearer its centre and usually generalises better than wherever the last step left them. The mean is written into
    every checkpoint, so a run resumed from one averages exactly what the uninterrupted run did.
    """

    FILE_NAME = "weight_average.safetensors"

    def __init__(self, model, epochs, resume_checkpoint=None):
        self.parameters = dict(model.named_parameters())
        self.epochs = epochs
        self.resume_checkpoint = resume_checkpoint
        self.first_step = None
        self.average = {}
        self.count = 0

    def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
        averaging_steps = optimizer_steps(self.epochs, args, train_dataloader)
        self.first_step = max(state.max_steps - averaging_steps + 1, 1)
        if self.resume_checkpoint is not None and state.global_step >= self.first_step:
            path = os.path.join(self.resume_checkpoint, self.FILE_NAME)
            if not os.path.isfile(path):
                raise ValueError(
                    f"{self.resume_checkpoint} holds no weight average ({self.FILE_NAME}), so this "
                    "run cannot go on averaging from it: resume with the weight_averaging it had"
                )
            self.average = {name: tensor.to(self.parameters[name].device) for name, tensor in load_file(path).items()}
            self.count = state.global_step - self.first_step + 1

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step < self.first_step:
            return
        self.count += 1
        with torch.no_grad():
            for name, parameter in self.parameters.items():
                if name in self.average:
                    self.average[name].lerp_(parameter.detach(), 1.0 / self.count)
                else:
                    self.average[name] = parameter.detach().clone()

    def on_save(self, args, state, control, **kwargs):
        if self.count and state.is_world_process_zero:
            checkpoint = checkpoint_dir(args.output_dir, state.global_step)
            save_file(
                {name: tensor.contiguous() for name, tensor in self.average.items()},
                os.path.join(checkpoint, self.FILE_NAME),
            )

    def copy_average_into_model(self):
        """Replace the model's weights by their average (a no-op if training stopped before averaging began)."""
        with torch.no_grad():
            for name, tensor in self.average.items():
                self.parameters[name].copy_(tensor)


class CheckpointCompleteCallback(TrainerCallback):
    """Marks each `Trainer` checkpoint complete once it is: add it after every callback that writes into
    checkpoints (its `on_save` must run last).

    Every process writes files into a checkpoint (each its own RNG state), so the main process marks it only after
    all of them are done. A kill before the marker leaves a folder that `resolve_resume_checkpoint` skips. Trainer
    deletes checkpoints beyond `save_total_limit` before the callbacks run, so with `save_total_limit=1` a kill in
    that short window leaves no complete checkpoint (the run then starts afresh, saying so).

    The marker also records the seconds trained so far over every sitting: `earlier_seconds` (what the checkpoint a
    run resumes from recorded, `checkpoints.checkpoint_elapsed_seconds`) plus this sitting's.
    """

    def __init__(self, earlier_seconds: float = 0.0):
        self.earlier_seconds = earlier_seconds
        self.sitting_started = time.time()

    def elapsed_seconds(self) -> float:
        return self.earlier_seconds + time.time() - self.sitting_started

    def on_train_begin(self, args, state, control, **kwargs):
        self.sitting_started = time.time()

    def on_save(self, args, state, control, **kwargs):
        PartialState().wait_for_everyone()
        if args.should_save:  # the process(es) that write the checkpoint's shared files
            checkpoint = checkpoint_dir(args.output_dir, state.global_step)
            mark_checkpoint_complete(checkpoint, state.global_step, self.elapsed_seconds())


class TeacherForcingScheduleCallback(TrainerCallback):
    """Lowers the model's `teacher_forcing_ratio` linearly from `start` to `floor` over training (scheduled sampling,
    Bengio et al., 2015): early on the decoder learns from the reference tokens, later more and more from its own
    predictions, as at inference. The ratio of the step is logged as `teacher_forcing_ratio`.

    Args:
        floor (`float`): the ratio reached at the end of the decay (and kept after it).
        start (`float`, defaults to 1.0): the ratio at step 0.
        decay_steps (`int`, *optional*): steps over which the ratio decays; by default the whole run (`max_steps`).
        restore_at_end (`bool`, defaults to `True`): put the model's own ratio back when training ends, so the saved
            config keeps the value it was built with.
    """

    def __init__(self, floor: float, start: float = 1.0, decay_steps: int | None = None, restore_at_end: bool = True):
        if not 0.0 <= floor <= start <= 1.0:
            raise ValueError(f"need 0 <= floor <= start <= 1, got floor={floor}, start={start}")
        self.floor, self.start, self.decay_steps, self.restore_at_end = floor, start, decay_steps, restore_at_end
        self._original_ratio = None
        self.current_ratio = start

    def ratio_at(self, step: int, max_steps: int) -> float:
        decay_steps = self.decay_steps or max(max_steps, 1)
        progress = min(step / decay_steps, 1.0)
        return self.start + (self.floor - self.start) * progress

    @staticmethod
    def _config(model):
        return getattr(model, "module", model).config  # unwrap DistributedDataParallel

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self._original_ratio = self._config(model).teacher_forcing_ratio

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        self.current_ratio = self.ratio_at(state.global_step, state.max_steps)
        self._config(model).teacher_forcing_ratio = self.current_ratio

    def on_log(self, args, state, control, logs=None, **kwargs):
        # Trainer has already copied `logs` into the history, so the ratio is added to both.
        if logs is not None and "loss" in logs:
            logs["teacher_forcing_ratio"] = self.current_ratio
            if state.log_history and "loss" in state.log_history[-1]:
                state.log_history[-1]["teacher_forcing_ratio"] = self.current_ratio

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if self.restore_at_end and self._original_ratio is not None:
            self._config(model).teacher_forcing_ratio = self._original_ratio
