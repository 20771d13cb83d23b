"""Truncated backpropagation through time for recurrent language models, as a plain `accelerate` loop.

`Trainer` treats examples as independent, so it cannot carry a recurrent state from one batch to the next. Here the
corpus is laid out as contiguous streams (`hf_seq.data.lm`), batch k holds window k of every stream, and the state
left by batch k-1 starts batch k, cut from the graph with `RecurrentCache.detach()` so gradients flow through at
most `bptt` steps (pytorch/examples' word_language_model does the same with its `repackage_hidden`).

It reads the usual `TrainingArguments` (learning rate, epochs or max_steps, batch size = streams per process, warmup
and scheduler, weight decay, seed, logging/saving steps, bf16, use_cpu, resume_from_checkpoint), so the same flags
work for both loops. Gradient clipping is on by default: `max_grad_norm` (TrainingArguments' default 1.0) bounds the
gradient norm every step; a relu RNN diverges without it. Checkpoints hold `accelerator.save_state` (model,
optimizer, scheduler, every process's RNG) plus each process's position and recurrent state, so a run killed and
resumed ends with the parameters of an uninterrupted one.
"""

import functools
import itertools
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import timedelta

import torch
import torch.nn.functional as F
from accelerate import Accelerator, InitProcessGroupKwargs
from accelerate.utils import set_seed
from tqdm.auto import tqdm
from transformers import get_scheduler

from ..data.lm import StreamingBPTTBatches, bptt_dataloader
from ..models.recurrent import RecurrentCache, cache_of
from .checkpoints import checkpoint_dir, checkpoint_folders, mark_checkpoint_complete, resolve_resume_checkpoint
from .common import (
    TrainingRun,
    check_positive_int,
    count_parameters,
    metrics_for_card,
    tokenizer_fingerprint,
    training_arguments_record,
    write_run_info,
)
from .metrics import perplexity
from .optimization import weight_decay_parameter_names
from .output_dir import prepare_output_dir


LOOP_STATE_NAME = "tbptt_state_rank{rank}.pt"


def make_accelerator(training_args):
    """An `Accelerator` set up from `TrainingArguments` (device, mixed precision, collective timeout)."""
    if training_args.gradient_accumulation_steps != 1:
        raise ValueError("the TBPTT loop does not accumulate gradients: use a larger per_device_train_batch_size")
    if training_args.fp16:
        raise ValueError("the TBPTT loop supports bf16, not fp16 (no loss scaling)")
    return Accelerator(
        cpu=training_args.use_cpu,
        mixed_precision="bf16" if training_args.bf16 else "no",
        # Trainer-like scheduling: one scheduler step per optimizer step, whatever the number of processes.
        step_scheduler_with_optimizer=False,
        # A rank that dies or diverges makes the others fail fast instead of waiting 30 minutes.
        kwargs_handlers=[InitProcessGroupKwargs(timeout=timedelta(seconds=training_args.ddp_timeout))],
    )


def _next_token_loss(logits, target_ids, reduction="mean"):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), target_ids.reshape(-1), reduction=reduction)


@torch.no_grad()
def evaluate_streams(model, token_ids, accelerator, batch_size=10, bptt=35):
    """Perplexity of a recurrent LM over a 1-D token tensor read as `batch_size` streams per process, state carried.

    Every process reads its own streams; the summed loss and token counts are reduced over processes, so each
    token is counted exactly once. Returns `{"loss", "perplexity", "n_tokens"}`.
    """
    loader = bptt_dataloader(
        token_ids, batch_size, bptt, num_replicas=accelerator.num_processes, rank=accelerator.process_index
    )
    was_training = model.training
    model.eval()
    cache = None
    total_loss = torch.zeros((), dtype=torch.float64, device=accelerator.device)
    total_tokens = torch.zeros((), dtype=torch.float64, device=accelerator.device)
    for batch in loader:
        input_ids = batch["input_ids"].to(accelerator.device)
        target_ids = batch["target_ids"].to(accelerator.device)
        outputs = model(input_ids=input_ids, cache=cache, use_cache=True)
        cache = cache_of(outputs)
        total_loss += _next_token_loss(outputs.logits, target_ids, reduction="sum").double()
        total_tokens += target_ids.numel()
    total_loss = accelerator.reduce(total_loss, reduction="sum")
    total_tokens = accelerator.reduce(total_tokens, reduction="sum")
    model.train(was_training)
    mean_loss = (total_loss / total_tokens).item()
    return {"loss": mean_loss, "perplexity": perplexity(mean_loss), "n_tokens": int(total_tokens.item())}


@dataclass
class LoopState:
    """Where the loop stands: what a checkpoint keeps of each process beside `accelerator.save_state`."""

    global_step: int = 0
    epoch: int = 0
    step_in_epoch: int = 0  # batches of the current epoch already trained on
    train_loss_sum: float = 0.0
    train_loss_count: int = 0
    log_history: list = field(default_factory=list)
    cache: RecurrentCache | None = None  # the recurrent state the next batch starts from
    # Seconds the run had trained before this sitting (a resumed run counts its earlier sittings), and when this
    # sitting started: a checkpoint records their sum, so wall_time_seconds covers every sitting.
    earlier_seconds: float = 0.0
    sitting_started: float = field(default_factory=time.time)

    def elapsed_seconds(self):
        return self.earlier_seconds + time.time() - self.sitting_started

    def state_dict(self):
        return {
            "global_step": self.global_step,
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "train_loss_sum": self.train_loss_sum,
            "train_loss_count": self.train_loss_count,
            "log_history": self.log_history,
            "hidden": None if self.cache.hidden is None else self.cache.hidden.cpu(),
            "cell": None if self.cache.cell is None else self.cache.cell.cpu(),
            "seen_tokens": self.cache.seen_tokens,
            "elapsed_seconds": self.elapsed_seconds(),
        }

    @classmethod
    def load(cls, checkpoint, accelerator):
        """The state this process saved in `checkpoint`, its recurrent state on this process's device."""
        path = os.path.join(checkpoint, LOOP_STATE_NAME.format(rank=accelerator.process_index))
        saved = torch.load(path, weights_only=True)
        cache = None
        if saved["hidden"] is not None:
            cache = RecurrentCache.from_state(
                hidden=saved["hidden"].to(accelerator.device),
                cell=None if saved["cell"] is None else saved["cell"].to(accelerator.device),
                seen_tokens=saved["seen_tokens"],
            )
        positions = ("global_step", "epoch", "step_in_epoch", "train_loss_sum", "train_loss_count", "log_history")
        # Checkpoints written before the time was recorded resume counting from zero.
        return cls(
            **{name: saved[name] for name in positions}, cache=cache, earlier_seconds=saved.get("elapsed_seconds", 0.0)
        )


def train_tbptt(
    model,
    train_data,
    training_args,
    eval_token_ids=None,
    bptt=35,
    tokenizer=None,
    accelerator=None,
    run_record=None,
    overwrite_output_dir=False,
):
    """Train a recurrent causal LM with truncated BPTT over contiguous streams, and save it to `output_dir`.

    Args:
        model: an hf_seq RNN/LSTM/GRU `...ForCausalLM`.
        train_data: the training corpus, either a 1-D tensor of token ids (laid out as
            `per_device_train_batch_size * world_size` streams, each process reading its own) or an iterable of
            tokenised documents from a streaming dataset (read as `per_device_train_batch_size` streams per process;
            give each process its own shard).
        training_args: a `transformers.TrainingArguments`; see the module docstring for the fields used.
        eval_token_ids: 1-D tensor of validation token ids, evaluated after every epoch (and at the end).
        bptt: the window length, i.e. how many steps gradients flow back through.
        tokenizer: saved with the model when given.
        accelerator: an existing `Accelerator` (default: one made from `training_args`).
        run_record: extra facts for `run_info.json` (data files, tokenizer...).
        overwrite_output_dir: empty a non-empty output_dir first; without it (or resume_from_checkpoint) a
            non-empty output_dir is refused.

    Returns:
        A `TrainingRun` whose metrics hold `train_loss`, `eval_loss`/`eval_perplexity` (when evaluated),
        `train_runtime`, `global_step` and `epoch`.
    """
    check_positive_int("bptt", bptt)
    if not hasattr(model.config, "model_type") or getattr(model.config, "rnn_type", None) is None:
        raise ValueError(f"train_tbptt needs an hf_seq recurrent causal LM, got {type(model).__name__}")
    args = training_args
    accelerator = accelerator or make_accelerator(args)
    set_seed(args.seed)
    epoch_batches = functools.partial(_epoch_batches, train_data, args.per_device_train_batch_size, bptt, accelerator)
    steps_per_epoch = None if _is_streaming(train_data) else len(epoch_batches())
    total_steps = _total_steps(args, steps_per_epoch)
    checkpoint = resolve_resume_checkpoint(args.resume_from_checkpoint, args.output_dir)
    prepare_output_dir(args, overwrite_output_dir)

    optimizer, scheduler = _optimizer_and_scheduler(model, args, total_steps)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    state = _start_state(checkpoint, accelerator)
    progress = tqdm(
        total=total_steps,
        initial=state.global_step,
        desc="TBPTT training",
        disable=bool(args.disable_tqdm) or not accelerator.is_local_main_process,
    )
    tokens_this_run, eval_seconds = 0, 0.0  # for the training throughput (this process, this run only)
    epoch_metrics = {}
    start_time = time.time()
    model.train()
    while state.global_step < total_steps:
        batches = epoch_batches()
        if state.step_in_epoch:  # resuming mid-epoch: the batches before the checkpoint were already trained on
            batches = itertools.islice(batches, state.step_in_epoch, None)
        ran_to_its_end, tokens = _train_epoch(
            model, optimizer, scheduler, accelerator, args, state, batches, total_steps, progress
        )
        tokens_this_run += tokens
        if ran_to_its_end:
            # Evaluate, then start the next epoch from fresh state, as pytorch/examples does.
            state.epoch, state.step_in_epoch, state.cache = state.epoch + 1, 0, None
            if eval_token_ids is not None:
                eval_start = time.time()
                epoch_metrics = _evaluate_and_log(model, eval_token_ids, accelerator, args, bptt, state, progress)
                eval_seconds += time.time() - eval_start
            if steps_per_epoch is None and state.global_step == 0:
                raise ValueError("the streaming corpus gives no batch (too few tokens for the streams and bptt)")
    progress.close()
    train_runtime = time.time() - start_time

    metrics = _training_metrics(state, train_runtime, eval_seconds, tokens_this_run, accelerator, steps_per_epoch)
    if eval_token_ids is not None:
        if state.step_in_epoch:  # the run stopped mid-epoch: measure the final model
            epoch_metrics = _evaluate_and_log(model, eval_token_ids, accelerator, args, bptt, state, progress)
        metrics.update(epoch_metrics)

    accelerator.wait_for_everyone()
    model = accelerator.unwrap_model(model)
    if accelerator.is_main_process:
        _save_model(model, tokenizer, args.output_dir)
        _write_run_info(model, tokenizer, args, metrics, state.log_history, bptt, run_record)
    accelerator.wait_for_everyone()
    return TrainingRun(model=model, tokenizer=tokenizer, metrics=metrics, output_dir=args.output_dir)


def _start_state(checkpoint, accelerator):
    """A fresh run's loop state, or the one saved in `checkpoint` (accelerate restores the model, optimizer,
    scheduler and RNG states)."""
    if checkpoint is None:
        return LoopState()
    accelerator.load_state(checkpoint)
    state = LoopState.load(checkpoint, accelerator)
    accelerator.print(
        f"Resumed from {checkpoint} at step {state.global_step} (epoch {state.epoch}, batch {state.step_in_epoch})"
    )
    return state


def _is_streaming(train_data):
    return not isinstance(train_data, torch.Tensor)


def _epoch_batches(train_data, batch_size, bptt, accelerator):
    """One epoch's batches: batch k holds window k of every stream this process reads."""
    if _is_streaming(train_data):
        return torch.utils.data.DataLoader(
            StreamingBPTTBatches(train_data, batch_size, bptt),
            batch_size=None,
            generator=torch.Generator().manual_seed(0),  # keeps the global RNG (dropout) untouched
        )
    return bptt_dataloader(
        train_data, batch_size, bptt, num_replicas=accelerator.num_processes, rank=accelerator.process_index
    )


def _total_steps(args, steps_per_epoch):
    """`max_steps`, or the optimizer steps of `num_train_epochs` epochs (`steps_per_epoch` is None when streaming)."""
    if args.max_steps and args.max_steps > 0:
        total_steps = args.max_steps
    elif steps_per_epoch is None:
        raise ValueError("a streaming corpus has no known length: set max_steps")
    else:
        total_steps = math.ceil(args.num_train_epochs * steps_per_epoch)
    if total_steps < 1:
        raise ValueError("nothing to train: the corpus gives no batch (too few tokens for the streams and bptt)")
    return total_steps


def _optimizer_and_scheduler(model, args, total_steps):
    """AdamW as TrainingArguments set it, with weight decay by the rule Trainer follows, and its scheduler."""
    decays = weight_decay_parameter_names(model)
    parameter_groups = [
        {"params": [p for n, p in model.named_parameters() if n in decays], "weight_decay": args.weight_decay},
        {"params": [p for n, p in model.named_parameters() if n not in decays], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(
        parameter_groups, lr=args.learning_rate, betas=(args.adam_beta1, args.adam_beta2), eps=args.adam_epsilon
    )
    scheduler = get_scheduler(
        args.lr_scheduler_type,
        optimizer=optimizer,
        num_warmup_steps=args.get_warmup_steps(total_steps),
        num_training_steps=total_steps,
    )
    return optimizer, scheduler


def _train_epoch(model, optimizer, scheduler, accelerator, args, state, batches, total_steps, progress):
    """Train on `batches` until they run out (returns True) or `total_steps` is reached (False); logs and saves
    checkpoints on the way. Also returns how many tokens this process read."""
    logging_steps = _as_steps(args.logging_steps, total_steps)
    save_steps = _as_steps(args.save_steps, total_steps) if args.save_strategy == "steps" else 0
    tokens = 0
    for batch in batches:
        if state.global_step >= total_steps:  # max_steps reached mid-epoch
            return False, tokens
        loss, batch_tokens = _train_step(model, optimizer, scheduler, accelerator, args.max_grad_norm, state, batch)
        tokens += batch_tokens
        progress.update(1)
        if logging_steps and state.global_step % logging_steps == 0:
            state.log_history.append(
                {"step": state.global_step, "loss": round(loss, 4), "learning_rate": scheduler.get_last_lr()[0]}
            )
            progress.set_postfix(loss=f"{loss:.3f}")
        if save_steps and state.global_step % save_steps == 0 and state.global_step < total_steps:
            _save_checkpoint(accelerator, args.output_dir, state, args.save_total_limit)
    return True, tokens


def _train_step(model, optimizer, scheduler, accelerator, max_grad_norm, state, batch):
    """One optimizer step on one window of every stream, from the state the previous window left; returns the
    loss and the number of tokens read."""
    input_ids = batch["input_ids"].to(accelerator.device)
    target_ids = batch["target_ids"].to(accelerator.device)
    with accelerator.autocast():
        outputs = model(input_ids=input_ids, cache=state.cache, use_cache=True)
        loss = _next_token_loss(outputs.logits, target_ids)
    accelerator.backward(loss)
    if max_grad_norm and max_grad_norm > 0:
        accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    # Keep the state, drop its history: the next window starts where this one ended.
    state.cache = cache_of(outputs).detach()
    loss = loss.item()
    state.global_step += 1
    state.step_in_epoch += 1
    state.train_loss_sum += loss
    state.train_loss_count += 1
    return loss, input_ids.numel()


def _evaluate_and_log(model, eval_token_ids, accelerator, args, bptt, state, progress):
    result = evaluate_streams(
        model, eval_token_ids, accelerator, batch_size=args.per_device_eval_batch_size, bptt=bptt
    )
    metrics = {
        "eval_loss": result["loss"],
        "eval_perplexity": result["perplexity"],
        "eval_tokens": result["n_tokens"],
    }
    state.log_history.append({"step": state.global_step, "epoch": state.epoch, **metrics})
    if accelerator.is_local_main_process:
        progress.write(
            f"epoch {state.epoch}: valid loss {result['loss']:.4f}, valid perplexity {result['perplexity']:.2f}"
        )
    return metrics


def _training_metrics(state, train_runtime, eval_seconds, tokens_this_run, accelerator, steps_per_epoch):
    training_seconds = max(train_runtime - eval_seconds, 1e-9)  # epoch-end evaluations excluded
    return {
        "train_loss": state.train_loss_sum / max(state.train_loss_count, 1),
        "train_runtime": round(train_runtime, 2),  # this sitting
        "total_train_runtime": round(state.elapsed_seconds(), 2),  # every sitting of a resumed run
        # Tokens read by all processes per second of training.
        "train_tokens_per_second": tokens_this_run * accelerator.num_processes / training_seconds,
        "global_step": state.global_step,
        "epoch": state.epoch + (state.step_in_epoch / steps_per_epoch if steps_per_epoch else 0),
    }


def _as_steps(value, total_steps):
    """TrainingArguments' logging/save steps: an int, or a float in (0, 1) meaning a fraction of the run."""
    if not value:
        return 0
    if value < 1:
        return max(1, math.ceil(value * total_steps))
    return int(value)


def _save_checkpoint(accelerator, output_dir, state, save_total_limit=None):
    """Write `checkpoint-<step>` atomically: everything goes into a temporary folder renamed once complete."""
    final_dir = checkpoint_dir(output_dir, state.global_step)
    temporary_dir = final_dir + ".tmp"
    if accelerator.is_main_process and os.path.exists(temporary_dir):
        shutil.rmtree(temporary_dir)  # left by a run killed while saving
    accelerator.wait_for_everyone()
    accelerator.save_state(temporary_dir)
    torch.save(state.state_dict(), os.path.join(temporary_dir, LOOP_STATE_NAME.format(rank=accelerator.process_index)))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        mark_checkpoint_complete(temporary_dir, state.global_step)  # the one rule of completeness both loops follow
        if os.path.exists(final_dir):
            shutil.rmtree(final_dir)
        os.replace(temporary_dir, final_dir)
        if save_total_limit:
            _delete_old_checkpoints(output_dir, keep=save_total_limit)
    accelerator.wait_for_everyone()


def _delete_old_checkpoints(output_dir, keep):
    for folder in checkpoint_folders(output_dir)[:-keep]:
        shutil.rmtree(folder, ignore_errors=True)


def _save_model(model, tokenizer, output_dir):
    """save_pretrained into a temporary folder, then move the files into output_dir (nothing half-written)."""
    os.makedirs(output_dir, exist_ok=True)
    temporary_dir = os.path.join(output_dir, ".saving")
    shutil.rmtree(temporary_dir, ignore_errors=True)
    model.save_pretrained(temporary_dir)
    if tokenizer is not None:
        tokenizer.save_pretrained(temporary_dir)
    for name in os.listdir(temporary_dir):
        os.replace(os.path.join(temporary_dir, name), os.path.join(output_dir, name))
    os.rmdir(temporary_dir)


def _write_run_info(model, tokenizer, args, metrics, log_history, bptt, run_record):
    record = {
        "task": "causal-lm",
        "training_loop": "truncated BPTT (accelerate)",
        "model_type": model.config.model_type,
        "num_parameters": count_parameters(model),
        "metrics": metrics_for_card(metrics, "train", prefix="train_")
        + metrics_for_card(metrics, "validation", prefix="eval_"),
        "eval_split": "validation",
        "hyperparameters": {**training_arguments_record(args), "bptt": bptt},
        "log_history": log_history,
        "wall_time_seconds": metrics["total_train_runtime"],  # every sitting of a resumed run
    }
    if tokenizer is not None:
        record["tokenizer_fingerprint"] = tokenizer_fingerprint(tokenizer)
    record.update(run_record or {})
    write_run_info(args.output_dir, **record)


__all__ = ["evaluate_streams", "make_accelerator", "train_tbptt"]
