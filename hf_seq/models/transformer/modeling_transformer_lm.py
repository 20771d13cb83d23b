"""A small decoder-only Transformer language model as a Hugging Face model.

Each block is pre-norm: x + Attention(LayerNorm(x)), then x + MLP(LayerNorm(x)). Attention goes through transformers'
attention interface, so `attn_implementation="eager" | "sdpa" | "flash_attention_2" | "flex_attention"` selects the
kernel, and the key/value cache is transformers' `DynamicCache`, so `generate()` works as for its own models (greedy,
sampling, beam search). Positions are either rotary (RoPE on queries and keys) or learned absolute (GPT-2).

This folder is flat, with single-dot imports only, so `save_pretrained` can ship it as remote code.
"""

import math
from collections.abc import Callable

import torch
from torch import nn
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.cache_utils import Cache, DynamicCache
from transformers.generation import GenerationMixin
from transformers.masking_utils import create_bidirectional_mask, create_causal_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import (
    BaseModelOutputWithPast,
    CausalLMOutputWithPast,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, PreTrainedModel, slice_logits_to_keep
from transformers.processing_utils import Unpack
from transformers.pytorch_utils import Conv1D
from transformers.utils import TransformersKwargs, can_return_tuple
from transformers.utils.generic import merge_with_config_defaults
from transformers.utils.output_capturing import capture_outputs

from .cache_transformer_lm import accepts_cache_aliases, cache_keyword, cache_of
from .configuration_transformer_lm import TransformerLMConfig


class TransformerLMRotaryEmbedding(nn.Module):
    """Rotary position embedding (Su et al., 2021): at position m, the pair of dimensions (i, i + d/2) of every query
    and key is rotated by the angle m * theta^(-2i/d), so that query . key depends only on their distance."""

    def __init__(self, config: TransformerLMConfig):
        super().__init__()
        self.config = config
        # Not saved with the weights: recomputed from the config (also after loading, in `_init_weights`).
        self.register_buffer("inv_freq", self.compute_inv_freq(config), persistent=False)

    @staticmethod
    def compute_inv_freq(config: TransformerLMConfig) -> torch.Tensor:
        head_dim = config.hidden_size // config.num_attention_heads
        return 1.0 / (config.rope_theta ** (torch.arange(0, head_dim, 2, dtype=torch.float) / head_dim))

    @torch.no_grad()
    def forward(
        self, hidden_states: torch.Tensor, position_ids: torch.LongTensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and signed sin tables of shape (batch, seq, 1, 1, head_dim), to broadcast over query/key and heads."""
        angles = position_ids[..., None].float() * self.inv_freq.to(hidden_states.device)  # (batch, seq, d/2)
        cos, sin = angles.cos(), angles.sin()
        # x_i' = x_i cos - x_{i+d/2} sin and x_{i+d/2}' = x_{i+d/2} cos + x_i sin: the sign goes with the first half.
        cos = torch.cat((cos, cos), dim=-1)
        signed_sin = torch.cat((-sin, sin), dim=-1)
        dtype = hidden_states.dtype
        return cos[:, :, None, None, :].to(dtype), signed_sin[:, :, None, None, :].to(dtype)


def apply_rotary_pos_emb(query_key: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor) -> torch.Tensor:
    """Rotate queries and keys, stacked as (batch, seq, 2, heads, head_dim), by the angles of their positions.

    x * cos + (-x2, x1) * sin, written as x * cos + roll(x, d/2) * signed_sin: three operations for queries and keys
    together. At decode time these small operations cost as much as the matmuls, so their number matters.
    """
    half = query_key.shape[-1] // 2
    return torch.addcmul(query_key * cos, query_key.roll(half, dims=-1), signed_sin)


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(Q K^T * scaling + mask) V in plain PyTorch; the reference the other implementations must match."""
    attn_weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        attn_weights = attn_weights + attention_mask
    attn_weights = nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query.dtype)
    attn_weights = nn.functional.dropout(attn_weights, p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value)
    attn_output = attn_output.transpose(1, 2).contiguous()  # (batch, seq, heads, head_dim)
    return attn_output, attn_weights


class TransformerLMAttention(nn.Module):
    """Multi-head self-attention (causal, or both ways with `config.bidirectional`), one fused q/k/v projection.

    The projections are transformers' `Conv1D` (GPT-2's linear layer: y = x W + b with W stored (in, out)) rather
    than `nn.Linear` (y = x W^T + b, W stored (out, in)). A generation step multiplies one vector by every weight
    matrix, so its speed is how fast the weights stream from memory; on CPU (torch 2.13, MKL) the (in, out) layout
    did the 24 projections of a 6-layer, 384-wide decode step in 3.3 ms against 4.1 ms for nn.Linear. PEFT's LoRA
    supports `Conv1D` as it does `nn.Linear`.
    """

    def __init__(self, config: TransformerLMConfig, layer_idx: int):
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.attention_dropout = config.attention_dropout
        self.is_causal = not config.bidirectional  # read by the sdpa / flash attention functions
        self.qkv_proj = Conv1D(3 * config.hidden_size, config.hidden_size)
        self.o_proj = Conv1D(config.hidden_size, config.hidden_size)
        self.o_proj.is_residual_projection = True  # smaller initialisation, see `_init_weights`

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        cache: Cache | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch_size, seq_length, _ = hidden_states.shape
        qkv = _conv1d(self.qkv_proj, hidden_states).view(batch_size, seq_length, 3, self.num_heads, self.head_dim)
        if position_embeddings is not None:  # rotary positions: rotate queries and keys, not values
            cos, sin = position_embeddings
            query_key = apply_rotary_pos_emb(qkv[:, :, :2], cos, sin)
            query, key = query_key.transpose(1, 3).unbind(2)  # each (batch, heads, seq, head_dim)
            value = qkv[:, :, 2].transpose(1, 2)
        else:
            query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (batch, heads, seq, head_dim)

        if cache is not None:  # append this step's keys/values, get the whole history back
            key, value = cache.update(key, value, self.layer_idx)

        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        attn_output, attn_weights = attention_interface(
            self,
            query,
            key,
            value,
            attention_mask,
            dropout=self.attention_dropout if self.training else 0.0,
            scaling=self.scaling,
            **kwargs,
        )
        attn_output = attn_output.reshape(batch_size, seq_length, -1).contiguous()
        return _conv1d(self.o_proj, attn_output), attn_weights


class TransformerLMMLP(nn.Module):
    """Position-wise feed-forward layer: down(act(up(x)))."""

    def __init__(self, config: TransformerLMConfig):
        super().__init__()
        self.up_proj = Conv1D(config.intermediate_size, config.hidden_size)
        self.act_fn = ACT2FN[config.hidden_act]
        self.down_proj = Conv1D(config.hidden_size, config.intermediate_size)
        self.down_proj.is_residual_projection = True  # smaller initialisation, see `_init_weights`

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return _conv1d(self.down_proj, self.act_fn(_conv1d(self.up_proj, hidden_states)))


class TransformerLMDecoderLayer(GradientCheckpointingLayer):
    """Pre-norm block: x + dropout(Attention(LN(x))), then x + dropout(MLP(LN(x)))."""

    def __init__(self, config: TransformerLMConfig, layer_idx: int):
        super().__init__()
        self.input_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.self_attn = TransformerLMAttention(config, layer_idx)
        self.post_attention_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = TransformerLMMLP(config)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        cache: Cache | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> torch.Tensor:
        attn_output, _ = self.self_attn(
            self.input_layernorm(hidden_states),
            attention_mask=attention_mask,
            position_embeddings=position_embeddings,
            cache=cache,
            **kwargs,
        )
        hidden_states = hidden_states + self.dropout(attn_output)
        hidden_states = hidden_states + self.dropout(self.mlp(self.post_attention_layernorm(hidden_states)))
        return hidden_states


class TransformerLMPreTrainedModel(PreTrainedModel):
    config_class = TransformerLMConfig
    config: TransformerLMConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["TransformerLMDecoderLayer"]
    _skip_keys_device_placement = ["cache", "past_key_values"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    _can_record_outputs = {
        "hidden_states": TransformerLMDecoderLayer,
        "attentions": TransformerLMAttention,
    }

    def __init__(self, config: TransformerLMConfig, *inputs, **kwargs):
        # Fields set after construction were checked one by one when set; the rules tying fields together run here,
        # before any layer is built from them.
        config.validate()
        super().__init__(config, *inputs, **kwargs)

    # Copied from hf_seq.models.recurrent.modeling_recurrent.RecurrentPreTrainedModel._apply
    def _apply(self, fn, recurse=True):
        # `.to()`, `.half()`, ... give the weights new tensors: drop the decode-time copies of the old ones now,
        # rather than holding their memory until the next forward remakes them.
        for module in self.modules():
            module.__dict__.pop("_transposed_weights", None)
        return super()._apply(fn, recurse)

    @torch.no_grad()
    def _init_weights(self, module):
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, Conv1D)):
            # GPT-2's scheme: the projections that write into the residual stream start smaller, by
            # 1/sqrt(2 * layers), so the stream's variance does not grow with depth. (Marked on the layer itself:
            # transformers skips `_init_weights` for custom-code modules that own no parameters directly.)
            if getattr(module, "is_residual_projection", False):
                std = std / math.sqrt(2 * self.config.num_hidden_layers)
            init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, TransformerLMRotaryEmbedding):
            init.copy_(module.inv_freq, module.compute_inv_freq(self.config))
        elif isinstance(module, TransformerLMForSequenceClassification) and module.cls_embedding is not None:
            init.normal_(module.cls_embedding, mean=0.0, std=std)


# Copied from hf_seq.models.recurrent.modeling_recurrent._validate_input_ids
def _validate_input_ids(config, input_ids, inputs_embeds, past_length):
    """Exactly one of `input_ids` and `inputs_embeds`; ids shaped (batch_size, sequence_length), in the vocabulary."""
    if (input_ids is None) == (inputs_embeds is None):
        raise ValueError("Pass exactly one of `input_ids` or `inputs_embeds`.")
    if input_ids is None:
        return
    if input_ids.dim() != 2:
        raise ValueError(f"`input_ids` must have shape (batch_size, sequence_length), got {tuple(input_ids.shape)}")
    # The range check reads the ids back from the device: done on a call's first step (no cache yet), where a wrong
    # tokenizer shows, not on every decode step, and never while compiling (it would break the graph).
    if input_ids.numel() and past_length == 0 and not torch.compiler.is_compiling():
        smallest, largest = torch.stack(torch.aminmax(input_ids)).tolist()  # one read-back, not two
        if smallest < 0 or largest >= config.vocab_size:
            raise ValueError(
                f"`input_ids` holds ids outside the vocabulary [0, {config.vocab_size}): min {smallest}, "
                f"max {largest}. Was the model built for this tokenizer?"
            )


def _validate_inputs(config, input_ids, inputs_embeds, attention_mask, past_seen_tokens):
    """Clear errors for malformed inputs, instead of an index error or silently wrong results deep inside."""
    _validate_input_ids(config, input_ids, inputs_embeds, past_seen_tokens)
    if input_ids is None and (inputs_embeds.dim() != 3 or inputs_embeds.shape[-1] != config.hidden_size):
        raise ValueError(
            f"`inputs_embeds` must have shape (batch_size, sequence_length, {config.hidden_size}), "
            f"got {tuple(inputs_embeds.shape)}"
        )
    batch_size, seq_length = (input_ids if input_ids is not None else inputs_embeds).shape[:2]
    if seq_length == 0:
        raise ValueError("The input sequence is empty (sequence_length 0).")
    # A 2D mask covers the cached tokens and the new ones (a 4D mask is taken as already prepared).
    if attention_mask is not None and attention_mask.dim() == 2:
        expected = (batch_size, past_seen_tokens + seq_length)
        if tuple(attention_mask.shape) != expected:
            raise ValueError(
                f"`attention_mask` has shape {tuple(attention_mask.shape)} but must be {expected} "
                f"(batch_size, cached tokens {past_seen_tokens} + new tokens {seq_length})"
            )


# Copied from hf_seq.models.recurrent.modeling_recurrent.KNOWN_MODEL_KWARGS
# The keyword arguments transformers may pass any model (`num_items_in_batch`, `output_attentions`, ...).
KNOWN_MODEL_KWARGS = frozenset(TransformersKwargs.__annotations__)


# Copied from hf_seq.models.recurrent.modeling_recurrent._reject_unknown_kwargs
def _reject_unknown_kwargs(model_class, kwargs):
    """A misspelled argument must fail, not vanish into `**kwargs` (as a renamed cache argument once did)."""
    unknown = sorted(set(kwargs) - KNOWN_MODEL_KWARGS)
    if unknown:
        raise TypeError(f"{model_class.__name__}.forward() got unexpected keyword arguments: {', '.join(unknown)}")


# A product with at most this many rows (one position of a small batch: a decode step) reads its weight from a
# transposed copy; a longer one (a whole sequence) is a matrix-matrix product that MKL runs as fast on either layout.
# Copied from hf_seq.models.recurrent.modeling_recurrent.FEW_ROWS
FEW_ROWS = 32


# Copied from hf_seq.models.recurrent.modeling_recurrent._reads_transposed
def _reads_transposed(weight: torch.Tensor, rows: int) -> bool:
    """Whether a product of `rows` rows with `weight` takes its weight from `_inference_weight`: on CPU, outside
    compilation, when no gradient must reach the weight (`torch.no_grad()`, `generate()`, or a frozen weight)."""
    return (
        not torch.compiler.is_compiling()  # first: the checks below would break a compiled graph
        and rows <= FEW_ROWS
        and weight.device.type == "cpu"
        and not (weight.requires_grad and torch.is_grad_enabled())
        and not weight.is_inference()
    )


# Copied from hf_seq.models.recurrent.modeling_recurrent._inference_weight
def _inference_weight(module: nn.Module, name: str, parts: int = 1) -> torch.Tensor:
    """The weight `module.<name>` (out, in), as the transposed view of a contiguous (in, out) copy of it; with
    `parts` > 1, that copy cut by columns into `parts` equal blocks, shaped (parts, in, out / parts rounded up) and
    zero-padded, for `_split_linear` (a bias (out,) is cut the same way, shaped (parts, 1, out / parts rounded up)).

    A decode step multiplies one row per sequence by every weight matrix, so its speed is how fast the weights stream
    from memory. On CPU (torch 2.13, MKL) `F.linear(x, W)` with W stored (out, in) ran such products at about a quarter
    of the memory bandwidth, and the same product on W stored (in, out) near it (the Transformer family stores its
    projections that way for this reason). The copy is made on first use and made again whenever the weight changes:
    an in-place change (an optimizer step, `load_state_dict`) bumps its version counter, a new tensor has a new address
    (the entry holds the old tensor, so no new one can take that address). Copies are not saved: checkpoints keep the
    (out, in) layout. They cost the memory of the weights they copy.
    """
    weight = getattr(module, name)
    copies = module.__dict__.setdefault("_transposed_weights", {})
    entry = copies.get(name)
    if entry is None or entry[0].data_ptr() != weight.data_ptr() or entry[1] != (weight._version, parts):
        with torch.inference_mode(False):  # a plain tensor, usable later with autograd on (e.g. a frozen model)
            source = weight.detach()
            entry = copies[name] = (source, (weight._version, parts), _decode_layout(source, parts))
    return entry[2]


# Copied from hf_seq.models.recurrent.modeling_recurrent._decode_layout
def _decode_layout(weight: torch.Tensor, parts: int) -> torch.Tensor:
    if parts == 1:
        return weight.t().contiguous().t()
    out_features = weight.shape[0]
    width = -(-out_features // parts)
    padded = weight.new_zeros(parts * width, *weight.shape[1:])
    padded[:out_features] = weight
    if weight.dim() == 1:  # a bias, added to each block's products by `torch.baddbmm`
        return padded.view(parts, 1, width)
    return padded.view(parts, width, -1).transpose(1, 2).contiguous()


# A `_linear` weight of at least this many elements (4 MB in fp32: an output layer) is streamed by every thread at
# once in a few-row product, a block of its columns each: MKL runs a one-row product on one thread, which reads
# memory at about half the rate two threads reach on the 2-core machine of docs/benchmarks.md.
# Copied from hf_seq.models.recurrent.modeling_recurrent.SPLIT_MIN_ELEMENTS
SPLIT_MIN_ELEMENTS = 2**20


# Copied from hf_seq.models.recurrent.modeling_recurrent._product_parts
def _product_parts(weight: torch.Tensor) -> int:
    threads = torch.get_num_threads()
    return threads if threads > 1 and weight.numel() >= SPLIT_MIN_ELEMENTS else 1


# Copied from hf_seq.models.recurrent.modeling_recurrent._split_linear
def _split_linear(
    hidden_states: torch.Tensor, blocks: torch.Tensor, bias_blocks: torch.Tensor | None, out_features: int
):
    """`F.linear(hidden_states, W, b)` from the column blocks of W and b (`_inference_weight(..., parts)`): one batched
    product, which torch spreads over its threads, a block each (the sums agree with one product's to rounding)."""
    rows = hidden_states.reshape(-1, hidden_states.shape[-1])
    rows = rows.expand(blocks.shape[0], *rows.shape)
    if bias_blocks is None:
        products = torch.bmm(rows, blocks)  # (parts, rows, width)
    else:
        products = torch.baddbmm(bias_blocks, rows, blocks)
    outputs = products.transpose(0, 1).reshape(rows.shape[1], -1)[:, :out_features]  # a view for one row
    return outputs.view(*hidden_states.shape[:-1], out_features)


# Copied from hf_seq.models.recurrent.modeling_recurrent._linear
def _linear(layer: nn.Module, hidden_states: torch.Tensor) -> torch.Tensor:
    """`layer(hidden_states)`; for a plain `nn.Linear` and a product with few rows, on the decode-time weight copy."""
    if (
        type(layer) is nn.Linear  # not a subclass or a quantised layer, and no hooks: those run as themselves
        and not (layer._forward_hooks or layer._forward_pre_hooks)
        and _reads_transposed(layer.weight, hidden_states.numel() // hidden_states.shape[-1])
    ):
        parts = _product_parts(layer.weight)
        if parts > 1:
            blocks = _inference_weight(layer, "weight", parts)
            bias_blocks = None if layer.bias is None else _inference_weight(layer, "bias", parts)
            return _split_linear(hidden_states, blocks, bias_blocks, layer.out_features)
        return nn.functional.linear(hidden_states, _inference_weight(layer, "weight"), layer.bias)
    return layer(hidden_states)


def _conv1d(layer: Conv1D, hidden_states: torch.Tensor) -> torch.Tensor:
    """`layer(hidden_states)`; a product of few rows with a weight of more inputs than outputs (the MLP's down
    projection) reads a contiguous (out, in) copy of that weight (`_inference_weight`) instead.

    MKL's one-row products ran faster from (in, out) when the outputs outnumber the inputs, and from (out, in) when the
    inputs do: 8 against 11-12 GB/s for the 1536 -> 384 projection of docs/benchmarks.md
    (`bench/bench_one_row_products.py`). Square and widening projections keep the stored layout.
    """
    weight = layer.weight
    if (
        type(layer) is Conv1D  # not a subclass or a wrapped (LoRA) layer, and no hooks: those run as themselves
        and not (layer._forward_hooks or layer._forward_pre_hooks)
        and weight.shape[0] > weight.shape[1]
        and _reads_transposed(weight, hidden_states.numel() // hidden_states.shape[-1])
    ):
        return nn.functional.linear(hidden_states, _inference_weight(layer, "weight").t(), layer.bias)
    return layer(hidden_states)


class TransformerLMModel(TransformerLMPreTrainedModel):
    """The decoder stack without a head: embeddings -> blocks -> final layer norm."""

    def __init__(self, config: TransformerLMConfig):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        if config.position_embedding_type == "learned":
            self.embed_positions = nn.Embedding(config.max_position_embeddings, config.hidden_size)
            self.rotary_emb = None
        else:
            self.embed_positions = None
            self.rotary_emb = TransformerLMRotaryEmbedding(config)
        self.dropout = nn.Dropout(config.embedding_dropout)
        self.layers = nn.ModuleList(
            [TransformerLMDecoderLayer(config, layer_idx) for layer_idx in range(config.num_hidden_layers)]
        )
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.gradient_checkpointing = False
        self.post_init()

    @merge_with_config_defaults
    @capture_outputs
    @accepts_cache_aliases
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BaseModelOutputWithPast:
        _reject_unknown_kwargs(type(self), kwargs)
        past_seen_tokens = cache.get_seq_length() if cache is not None else 0
        _validate_inputs(self.config, input_ids, inputs_embeds, attention_mask, past_seen_tokens)
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)
        if self.config.bidirectional:
            if cache is not None:
                raise ValueError(
                    "A bidirectional model (config.bidirectional=True) attends to later tokens and cannot decode with "
                    "a cache: call it on the whole sequence without `cache`"
                )
            use_cache = False
        if use_cache and cache is None:
            cache = DynamicCache(config=self.config)
        seq_length = inputs_embeds.shape[1]

        caller_gave_positions = position_ids is not None
        if position_ids is None:
            if attention_mask is not None and attention_mask.ndim == 2:
                # Count real tokens only, so left padding does not shift the positions (as generate() does).
                position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, -seq_length:]
            else:
                positions = torch.arange(past_seen_tokens, past_seen_tokens + seq_length, device=inputs_embeds.device)
                position_ids = positions.unsqueeze(0)

        hidden_states = inputs_embeds
        position_embeddings = None
        if self.embed_positions is not None:
            # A learned table has no row past its end: fail clearly instead of indexing out of range. Positions count
            # real tokens only, so left padding does not bring an input closer to the limit. The exact count needs a
            # read-back from the device, paid for the caller's positions, or when the padded length passes the limit.
            longest = past_seen_tokens + seq_length
            if caller_gave_positions or longest > self.config.max_position_embeddings:
                longest = int(position_ids.max()) + 1
            if longest > self.config.max_position_embeddings:
                raise ValueError(
                    f"The input needs {longest} positions, but this model learned position embeddings for only "
                    f"max_position_embeddings={self.config.max_position_embeddings}: shorten the input (with the "
                    f"cached tokens and any tokens to generate) to at most that many tokens"
                )
            hidden_states = hidden_states + self.embed_positions(position_ids)
        else:
            position_embeddings = self.rotary_emb(hidden_states, position_ids)
        hidden_states = self.dropout(hidden_states)

        if self.config.bidirectional:  # padding hidden from every token, nothing else
            attention_mask = create_bidirectional_mask(
                config=self.config, inputs_embeds=inputs_embeds, attention_mask=attention_mask
            )
        else:
            attention_mask = create_causal_mask(
                config=self.config,
                inputs_embeds=inputs_embeds,
                attention_mask=attention_mask,
                position_ids=position_ids,
                **cache_keyword(cache),
            )
        for decoder_layer in self.layers:
            hidden_states = decoder_layer(
                hidden_states,
                attention_mask=attention_mask,
                position_embeddings=position_embeddings,
                cache=cache,
                **kwargs,
            )
        hidden_states = self.norm(hidden_states)
        return BaseModelOutputWithPast(last_hidden_state=hidden_states, **cache_keyword(cache if use_cache else None))


class TransformerLMForCausalLM(TransformerLMPreTrainedModel, GenerationMixin):
    """The decoder with a language-modelling head; `labels` are shifted inside, -100 is ignored."""

    # Output projection = input embedding (Press & Wolf, 2017), when config.tie_word_embeddings is set.
    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}

    def __init__(self, config: TransformerLMConfig):
        if config.bidirectional:
            raise ValueError(
                "TransformerLMForCausalLM predicts each next token from the ones before it and needs causal attention: "
                "set bidirectional=False (bidirectional=True is for the classification heads)"
            )
        super().__init__(config)
        self.model = TransformerLMModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    @can_return_tuple
    @accepts_cache_aliases
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs: Unpack[TransformersKwargs],
    ) -> CausalLMOutputWithPast:
        outputs: BaseModelOutputWithPast = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            **kwargs,
        )
        # generate() asks for the last position's logits only (logits_to_keep=1): no (seq x vocab) matmul wasted.
        logits = _linear(self.lm_head, slice_logits_to_keep(outputs.last_hidden_state, logits_to_keep))

        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.vocab_size, **kwargs)
        return CausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            **cache_keyword(cache_of(outputs)),
        )


# Copied from hf_seq.models.recurrent.modeling_recurrent._masked_mean
def _masked_mean(hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The mean over each row's real tokens (zeros for a row without any)."""
    is_real = attention_mask.to(device=hidden_states.device, dtype=torch.bool)
    # masked_fill rather than multiply: outputs at padded positions may be anything, even NaN.
    summed = hidden_states.masked_fill(~is_real[..., None], 0.0).sum(dim=1)
    return summed / is_real.sum(dim=1, keepdim=True).clamp(min=1).to(hidden_states.dtype)


# Copied from hf_seq.models.recurrent.modeling_recurrent._masked_max
def _masked_max(hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The element-wise maximum over each row's real tokens (zeros for a row without any)."""
    is_real = attention_mask.to(device=hidden_states.device, dtype=torch.bool)
    masked = hidden_states.masked_fill(~is_real[..., None], torch.finfo(hidden_states.dtype).min)
    # A row with no real token at all pools to zeros rather than the dtype's minimum.
    return torch.where(is_real.any(dim=1, keepdim=True), masked.max(dim=1).values, 0.0)


def pool_hidden_states(
    hidden_states: torch.Tensor, attention_mask: torch.Tensor, pooling: str, cls_position: int = -1
) -> torch.Tensor:
    """Summarise (batch, seq, hidden) into (batch, hidden) over the real tokens only (left or right padding).

    `"last"`: the rightmost real token; `"mean"` / `"max"`: the mean / element-wise maximum over real tokens; `"cls"`:
    position `cls_position`, where the classifier put its learned token (last when causal, first when bidirectional).
    """
    if pooling == "cls":
        return hidden_states[:, cls_position]
    if pooling == "last":
        is_real = attention_mask.to(device=hidden_states.device, dtype=torch.bool)
        positions = torch.arange(hidden_states.shape[1], device=hidden_states.device)
        last_real_index = (positions * is_real).argmax(-1)
        return hidden_states[torch.arange(hidden_states.shape[0], device=hidden_states.device), last_real_index]
    if pooling == "mean":
        return _masked_mean(hidden_states, attention_mask)
    if pooling == "max":
        return _masked_max(hidden_states, attention_mask)
    raise ValueError(f"pooling must be one of 'last', 'mean', 'max', 'cls', got {pooling!r}")


class TransformerLMForSequenceClassification(TransformerLMPreTrainedModel):
    """The decoder with a classification head over a pooled summary of the sequence (`config.pooling`)."""

    # The loss is a plain mean over the batch: Trainer must not expect it to be normalised by num_items_in_batch.
    accepts_loss_kwargs = False

    def __init__(self, config: TransformerLMConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = TransformerLMModel(config)
        # A learned [CLS]-like token: with causal attention only the final position sees the whole sequence, so it
        # is appended after the input; a bidirectional encoder puts it first, as BERT does.
        self.cls_position = 0 if config.bidirectional else -1
        self.cls_embedding = nn.Parameter(torch.empty(config.hidden_size)) if config.pooling == "cls" else None
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> SequenceClassifierOutput:
        _validate_inputs(self.config, input_ids, inputs_embeds, attention_mask, past_seen_tokens=0)
        batch_size, seq_length = input_ids.shape if input_ids is not None else inputs_embeds.shape[:2]
        device = input_ids.device if input_ids is not None else inputs_embeds.device
        if attention_mask is None:  # no mask: every token is real
            attention_mask = torch.ones(batch_size, seq_length, dtype=torch.long, device=device)

        if self.cls_embedding is not None:
            if inputs_embeds is None:
                inputs_embeds = self.model.embed_tokens(input_ids)
                input_ids = None
            inputs_embeds, attention_mask, position_ids = self._add_cls_token(
                inputs_embeds, attention_mask, position_ids
            )

        outputs: BaseModelOutputWithPast = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            use_cache=False,
            **kwargs,
        )
        pooled = pool_hidden_states(outputs.last_hidden_state, attention_mask, self.config.pooling, self.cls_position)
        logits = self.classifier(self.dropout(pooled))

        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels, pooled_logits=logits, config=self.config)
        return SequenceClassifierOutput(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )

    def _add_cls_token(
        self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.LongTensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.LongTensor | None]:
        """The learned summary token joined to the input at `cls_position`, with its mask entry and position."""
        batch_size = inputs_embeds.shape[0]
        cls_token = self.cls_embedding.to(inputs_embeds.dtype).expand(batch_size, 1, -1)
        cls_mask = attention_mask.new_ones(batch_size, 1)
        if self.cls_position == 0:  # first, at position 0; the input's positions move one on
            if position_ids is not None:
                position_ids = torch.cat([torch.zeros_like(position_ids[:, :1]), position_ids + 1], dim=-1)
            return torch.cat([cls_token, inputs_embeds], 1), torch.cat([cls_mask, attention_mask], 1), position_ids
        if position_ids is not None:  # last, right after the last position
            position_ids = torch.cat([position_ids, position_ids.max(dim=-1, keepdim=True).values + 1], dim=-1)
        return torch.cat([inputs_embeds, cls_token], 1), torch.cat([attention_mask, cls_mask], 1), position_ids


class TransformerLMForTokenClassification(TransformerLMPreTrainedModel):
    """The decoder with a per-token classification head (each token sees its left context; both sides with
    `config.bidirectional`)."""

    accepts_loss_kwargs = False  # a plain mean loss, as for sequence classification

    def __init__(self, config: TransformerLMConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = TransformerLMModel(config)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> TokenClassifierOutput:
        outputs: BaseModelOutputWithPast = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            use_cache=False,
            **kwargs,
        )
        logits = self.classifier(self.dropout(outputs.last_hidden_state))

        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels, config=self.config)
        return TokenClassifierOutput(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )


__all__ = [
    "TransformerLMPreTrainedModel",
    "TransformerLMModel",
    "TransformerLMForCausalLM",
    "TransformerLMForSequenceClassification",
    "TransformerLMForTokenClassification",
]
