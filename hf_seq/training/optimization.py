"""Which parameters train how: the weight-decay rule both loops follow, and discriminative (layer-wise) learning
rates for fine-tuning."""

import re

from transformers import Trainer


# The layer a parameter belongs to: `model.layers.3.` (Transformer), `weight_hh_l1[_reverse]` (fused nn.RNN/LSTM/GRU).
LAYER_INDEX_PATTERN = re.compile(r"\.layers\.(\d+)\.|_l(\d+)(?:_reverse)?$")


def weight_decay_parameter_names(model):
    """The names of the parameters weight decay applies to, by `Trainer`'s rule: every one but the biases and the
    weights of normalisation layers. The TBPTT loop follows it too, so both loops decay the same parameters.

    (`Trainer.get_decay_parameter_names` reads nothing from the trainer, so no trainer is needed to ask it.)
    """
    return set(Trainer.get_decay_parameter_names(None, model))


def parameter_depth(name, num_hidden_layers):
    """0 for the embeddings, 1..L for the body's layers, L + 1 for what sits on top (final norm, head)."""
    if ".embed_" in f".{name}":
        return 0
    match = LAYER_INDEX_PATTERN.search(name)
    if match:
        return 1 + int(match.group(1) or match.group(2))
    return num_hidden_layers + 1


def layerwise_parameter_groups(model, learning_rate, layerwise_lr_decay, weight_decay, decay_parameter_names):
    """Optimizer groups with discriminative learning rates (ULMFiT): the head trains at `learning_rate` and each
    layer below it at `layerwise_lr_decay` times the rate of the layer above, down to the embeddings.

    Pretrained lower layers hold general features; smaller steps there keep fine-tuning from overwriting them.
    """
    num_hidden_layers = model.config.num_hidden_layers
    groups = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        depth = parameter_depth(name, num_hidden_layers)
        decays = name in decay_parameter_names
        key = (depth, decays)
        if key not in groups:
            groups[key] = {
                "params": [],
                "lr": learning_rate * layerwise_lr_decay ** (num_hidden_layers + 1 - depth),
                "weight_decay": weight_decay if decays else 0.0,
            }
        groups[key]["params"].append(parameter)
    return [groups[key] for key in sorted(groups)]


def layerwise_optimizer(model, training_args, layerwise_lr_decay):
    """The optimizer `Trainer` would build (`optim`, betas, eps, its weight-decay rule), with one group per layer
    at its discriminative learning rate. Set as `trainer.optimizer` before `train()`, Trainer builds its scheduler
    over it (as for `optimizers=`)."""
    optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(training_args, model)
    groups = layerwise_parameter_groups(
        model,
        training_args.learning_rate,
        layerwise_lr_decay,
        training_args.weight_decay,
        weight_decay_parameter_names(model),
    )
    return optimizer_cls(groups, **optimizer_kwargs)
