"""A compact inference forward for Llama-style decoders (Qwen2, Qwen3, Llama, Mistral) with a ragged
KV cache.

Why our own forward instead of `model(...)`: on a 2-core CPU with a few-million-parameter model a
decode step is dominated by per-op overhead (mask building, cache bookkeeping, 3 separate q/k/v
matmuls). Here q/k/v and gate/up are fused into one matmul each, the KV cache is one preallocated
buffer per layer, and nothing is rebuilt per step. The maths is the HF modelling code's
(transformers 5.x `models/{llama,qwen2,qwen3,mistral}/modeling_*.py`): RMSNorm
(x * rsqrt(mean(x^2) + eps) * w, in float32), rotary embeddings (rotate-half convention,
arXiv 2104.09864) with the model's own `rotary_emb.inv_freq` and `attention_scaling` (so the
static scaled variants linear, llama3, yarn, longrope work unchanged), grouped-query attention
(arXiv 2305.13245), SwiGLU MLP (arXiv 2002.05202). Qwen3 adds an RMSNorm over head_dim of every
query and key head before RoPE (`q_norm`/`k_norm`); it is an optional per-layer weight, so the
Qwen2/Llama path runs no extra op.

Architecture differences that the fused path does not implement are refused by
`unsupported_reason` (the one place that decides): length-dependent RoPE (dynamic NTK, longrope
with distinct long/short factors), sliding windows that can bite, non-silu MLPs, MLP biases.

KV layout ("ragged"): every row's sequence starts at column 0 of the cache; row r holds `length[r]`
valid columns. Prompts are prefilled right-padded, so no row is ever shifted; a decode step writes
column `length[r]` of each row and attends to columns `<= length[r]`. Keys are stored transposed
(nL, W, kvh, hd, Cw) and values as (nL, W, kvh, Cw, hd), both contiguous per layer, so the decode
step's two batched products read the buffers in place (see `decode_step`).

Shapes: W rows, P prompts, Lp padded prompt length, C cache capacity, H hidden, V vocabulary,
nL layers, kvh key/value heads, hd head dim, Cw <= C the cache's current width.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

SUPPORTED_MODEL_TYPES = ("qwen2", "qwen3", "llama", "mistral")
# RoPE types whose inverse frequencies are fixed when the rotary module is built
# (transformers modeling_rope_utils.ROPE_INIT_FUNCTIONS). `dynamic_rope_update` recomputes them
# from the current sequence length for any type containing "dynamic" and switches longrope between
# its short and long factors at original_max_position_embeddings; a precomputed table cannot.
STATIC_ROPE_TYPES = ("default", "linear", "llama3", "yarn", "longrope")


@dataclass(frozen=True, slots=True)
class _Layer:
    ln1: torch.Tensor  # (H,) float32
    wqkv: torch.Tensor  # (h*hd + 2*kvh*hd, H) compute dtype
    bqkv: torch.Tensor | None
    wo: torch.Tensor  # (H, h*hd)
    bo: torch.Tensor | None
    ln2: torch.Tensor  # (H,) float32
    wgu: torch.Tensor  # (2*I, H)
    wdown: torch.Tensor  # (H, I)
    qk_norm: torch.Tensor | None  # (h + kvh, hd) float32: Qwen3's q_norm rows, then k_norm rows


@dataclass(frozen=True, slots=True)
class DecoderWeights:
    """Inference copies of a model's weights, fused and cast once per weight version."""

    embed: torch.Tensor  # (V, H) float32 (the residual stream is kept in float32)
    layers: tuple[_Layer, ...]
    norm: torch.Tensor  # (H,) float32
    lm_head: torch.Tensor  # (V, H) compute dtype
    n_heads: int
    n_kv_heads: int
    head_dim: int
    eps: float
    inv_freq: torch.Tensor  # (hd/2,) float32, the model's rotary_emb.inv_freq
    attention_scaling: float  # rotary_emb.attention_scaling: cos/sin multiplier (yarn, longrope)
    max_len: int | None  # a sliding window that never bites up to this length (else None)
    dtype: torch.dtype


def unsupported_reason(model: Any) -> str | None:
    """Why `pack_weights` cannot handle `model`, or None when it can.

    Accepts a model or just its config (`model.config` when present, else `model` itself), so a
    recipe can be refused at config load; the rotary-module checks run only when a model is given.
    """
    cfg = getattr(model, "config", model)
    kind = getattr(cfg, "model_type", None)
    if kind not in SUPPORTED_MODEL_TYPES:
        names = ", ".join(SUPPORTED_MODEL_TYPES)
        return f"model_type {kind!r} is not supported by the fused decoder ({names})"
    act = getattr(cfg, "hidden_act", "silu")
    if act != "silu":
        return f"hidden_act {act!r} is not supported by the fused decoder (only silu)"
    if getattr(cfg, "mlp_bias", False):
        return "MLP biases (mlp_bias=True) are not supported by the fused decoder"
    reason = _rope_reason(cfg)
    if reason is not None:
        return reason
    window = _sliding_window(cfg)
    max_pos = getattr(cfg, "max_position_embeddings", None)
    if window is not None and (max_pos is None or window < max_pos):
        return (
            f"sliding-window attention (sliding_window={window} < max_position_embeddings="
            f"{max_pos}) is not supported by the fused decoder"
        )
    if model is not cfg:
        rotary = getattr(getattr(model, "model", None), "rotary_emb", None)
        inv_freq = getattr(rotary, "inv_freq", None)
        if not isinstance(inv_freq, torch.Tensor) or not hasattr(rotary, "attention_scaling"):
            return (
                "the model has no model.rotary_emb.inv_freq / attention_scaling to read RoPE from"
            )
        if 2 * inv_freq.numel() != _head_dim(cfg):
            return (
                f"partial rotary embeddings ({inv_freq.numel()} frequencies for head_dim "
                f"{_head_dim(cfg)}) are not supported by the fused decoder"
            )
    return None


def _rope_reason(cfg: Any) -> str | None:
    rope = getattr(cfg, "rope_parameters", None) or {}
    if any(isinstance(v, dict) for v in rope.values()):
        return "per-layer-type RoPE parameters are not supported by the fused decoder"
    rope_type = rope.get("rope_type", "default")
    if "dynamic" in rope_type:
        return (
            f"rope_type {rope_type!r} recomputes its frequencies from the sequence length, which "
            f"the fused decoder does not (static types: {', '.join(STATIC_ROPE_TYPES)})"
        )
    if rope_type == "longrope" and list(rope.get("long_factor") or []) != list(
        rope.get("short_factor") or []
    ):
        return (
            "rope_type 'longrope' with long_factor != short_factor switches frequencies past "
            "original_max_position_embeddings, which the fused decoder does not"
        )
    if rope_type not in STATIC_ROPE_TYPES:
        return (
            f"rope_type {rope_type!r} is not supported by the fused decoder "
            f"({', '.join(STATIC_ROPE_TYPES)})"
        )
    if rope.get("partial_rotary_factor", 1.0) != 1.0:
        return "partial rotary embeddings (partial_rotary_factor != 1) are not supported"
    return None


def _sliding_window(cfg: Any) -> int | None:
    """The attention window some layer applies, or None when every layer attends to all tokens.

    Mistral applies `config.sliding_window` in every layer. Qwen2/Qwen3 apply it only in layers
    whose `layer_types[i]` is "sliding_attention" (their configs build those from
    `use_sliding_window` and `max_window_layers`, and null `sliding_window` unless
    use_sliding_window). Llama has none.
    """
    kind = cfg.model_type
    window = getattr(cfg, "sliding_window", None)
    if kind == "mistral":
        return window
    if kind in ("qwen2", "qwen3") and "sliding_attention" in (
        getattr(cfg, "layer_types", None) or []
    ):
        return window
    return None


def _head_dim(cfg: Any) -> int:
    # the attention modules' own expression (Mistral's, which also covers head_dim=None)
    return getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads


def _cat_bias(*linears: torch.nn.Linear) -> torch.Tensor | None:
    if all(lin.bias is None for lin in linears):
        return None
    return torch.cat(
        [
            lin.bias if lin.bias is not None else lin.weight.new_zeros(lin.out_features)
            for lin in linears
        ]
    )


@torch.no_grad()
def pack_weights(model: Any, dtype: torch.dtype) -> DecoderWeights:
    """Fuse and cast the weights of a supported `*ForCausalLM` for `prefill` / `decode_step`.

    Matmul weights are stored in `dtype` (bf16: fast path on CPUs with avx512_bf16); norms and the
    embedding stay float32 like the residual stream, mirroring what autocast does in training.
    """
    reason = unsupported_reason(model)
    if reason is not None:
        raise ValueError(f"pack_weights: unsupported model: {reason}")
    cfg, base = model.config, model.model

    def cast(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t.detach().to(dtype).contiguous()

    n_heads, n_kv_heads, head_dim = cfg.num_attention_heads, cfg.num_key_value_heads, _head_dim(cfg)
    layers = []
    for layer in base.layers:
        att, mlp = layer.self_attn, layer.mlp
        qk_norm = None
        if getattr(att, "q_norm", None) is not None:  # Qwen3: one (hd,) weight shared by heads
            qk_norm = torch.cat(
                [
                    att.q_norm.weight.detach().float().expand(n_heads, head_dim),
                    att.k_norm.weight.detach().float().expand(n_kv_heads, head_dim),
                ]
            )
        layers.append(
            _Layer(
                ln1=layer.input_layernorm.weight.detach().float(),
                wqkv=cast(torch.cat([att.q_proj.weight, att.k_proj.weight, att.v_proj.weight])),
                bqkv=cast(_cat_bias(att.q_proj, att.k_proj, att.v_proj)),
                wo=cast(att.o_proj.weight),
                bo=cast(att.o_proj.bias),
                ln2=layer.post_attention_layernorm.weight.detach().float(),
                wgu=cast(torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight])),
                wdown=cast(mlp.down_proj.weight),
                qk_norm=qk_norm,
            )
        )
    rotary = base.rotary_emb  # its own frequencies, scaled variants included
    window = _sliding_window(cfg)  # None, or a window unsupported_reason found never to bite
    return DecoderWeights(
        embed=base.embed_tokens.weight.detach().float(),
        layers=tuple(layers),
        norm=base.norm.weight.detach().float(),
        lm_head=cast(model.lm_head.weight),
        n_heads=n_heads,
        n_kv_heads=n_kv_heads,
        head_dim=head_dim,
        eps=float(cfg.rms_norm_eps),
        inv_freq=rotary.inv_freq.detach().float().clone(),  # float32, as HF's forward casts it
        attention_scaling=float(rotary.attention_scaling),
        max_len=window,
        dtype=dtype,
    )


def _rms_norm(
    x: torch.Tensor, weight: torch.Tensor, eps: float, dtype: torch.dtype
) -> torch.Tensor:
    x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return (weight * x).to(dtype)


def _rope(x: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor) -> torch.Tensor:
    """HF's x * cos + rotate_half(x) * sin, with rotate_half(x) * sin = roll(x) * signed_sin.

    rotate_half(x) = (-x2, x1) and roll(x, hd/2) = (x2, x1), so folding the sign into the table
    saves a negation and a concatenation per call (about 2x faster here), with the same products.
    """
    return x * cos + torch.roll(x, x.shape[-1] // 2, dims=-1) * signed_sin


def rope_table(w: DecoderWeights, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and signed-sin tables (length, hd) for positions 0..length-1, in float32 like HF.

    HF's rotary forward: cos/sin of position * inv_freq, times `attention_scaling`, cast to the
    compute dtype. Every generation and prefill builds its table here, so this is also where a
    sliding window (accepted only as >= max_position_embeddings) is checked never to bite.
    """
    if w.max_len is not None and length > w.max_len:
        raise ValueError(
            f"rope_table: {length} positions exceed the model's sliding_window {w.max_len}, "
            "which the fused decoder does not implement"
        )
    freqs = torch.arange(length, dtype=torch.float32)[:, None] * w.inv_freq
    cos, sin = freqs.cos(), freqs.sin()  # (length, hd/2): HF duplicates these halves
    if w.attention_scaling != 1.0:
        cos, sin = cos * w.attention_scaling, sin * w.attention_scaling
    return torch.cat((cos, cos), dim=-1).to(w.dtype), torch.cat((-sin, sin), dim=-1).to(w.dtype)


def _qkv(
    w: DecoderWeights, layer: _Layer, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rotated q (N, h, hd), rotated k (N, kvh, hd) and v (N, kvh, hd) from the residual x."""
    qkv = F.linear(_rms_norm(x, layer.ln1, w.eps, w.dtype), layer.wqkv, layer.bqkv)
    heads = w.n_heads + w.n_kv_heads
    qk = qkv[:, : heads * w.head_dim].unflatten(-1, (heads, w.head_dim))
    if layer.qk_norm is not None:  # Qwen3: RMSNorm over head_dim of each q/k head, before RoPE
        qk = _rms_norm(qk.float(), layer.qk_norm, w.eps, w.dtype)
    qk = _rope(qk, cos, sin)
    v = qkv[:, heads * w.head_dim :].unflatten(-1, (w.n_kv_heads, w.head_dim))
    return qk[:, : w.n_heads], qk[:, w.n_heads :], v


def _mlp(layer: _Layer, h: torch.Tensor) -> torch.Tensor:
    gate, up = F.linear(h, layer.wgu).chunk(2, dim=-1)
    return F.linear(F.silu(gate) * up, layer.wdown)


# Rows per MLP call in prefill: keeps the (rows, 2*I) intermediate in cache (measured ~20% faster
# on the MLP for 6k prompt tokens than one call over all of them).
_MLP_CHUNK = 512


def _mlp_residual(w: DecoderWeights, layer: _Layer, x: torch.Tensor) -> torch.Tensor:
    """x + MLP(RMSNorm(x)), row chunk by row chunk."""
    if x.shape[0] <= _MLP_CHUNK:
        return x + _mlp(layer, _rms_norm(x, layer.ln2, w.eps, w.dtype))  # promotes to fp32
    out = torch.empty_like(x)
    for i in range(0, x.shape[0], _MLP_CHUNK):
        part = x[i : i + _MLP_CHUNK]
        out[i : i + _MLP_CHUNK] = part + _mlp(layer, _rms_norm(part, layer.ln2, w.eps, w.dtype))
    return out


def _logits(w: DecoderWeights, x: torch.Tensor) -> torch.Tensor:
    return F.linear(_rms_norm(x, w.norm, w.eps, w.dtype), w.lm_head).float()


def prefill(
    w: DecoderWeights, tokens: torch.Tensor, lengths: torch.Tensor
) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """Encode right-padded prompts; return next-token logits and the prompts' keys/values.

    Matmuls run on the packed real tokens only (no padding waste); attention runs on the padded
    (P, Lp) layout with a causal mask, which never lets a real token see padding on its right.

    Args:
        w: packed weights.
        tokens: (P, Lp) int64 prompt ids, right-padded (pad value irrelevant).
        lengths: (P,) int64 true prompt lengths (>= 1).

    Returns:
        logits (P, V) float32 at each prompt's last token, and per layer the keys and values
        (P, kvh, Lp, hd) in the compute dtype (padding columns are zeros and must stay masked).
    """
    n_prompts, width = tokens.shape
    valid = torch.arange(width)[None, :] < lengths[:, None]  # (P, Lp)
    positions = torch.arange(width).expand(n_prompts, width)[valid]  # (Ntok,)
    last = torch.cumsum(lengths, 0) - 1  # each prompt's last token among the packed rows
    x = w.embed[tokens[valid]]  # (Ntok, H) float32 residual stream
    cos, sin = rope_table(w, width)
    cos, sin = cos[positions][:, None, :], sin[positions][:, None, :]  # broadcast over heads
    keys, values = [], []
    for i, layer in enumerate(w.layers):
        q, k, v = _qkv(w, layer, x, cos, sin)
        k_pad, v_pad = _pad(k, valid), _pad(v, valid)  # (P, kvh, Lp, hd)
        keys.append(k_pad)
        values.append(v_pad)
        if i < len(w.layers) - 1:
            attn = F.scaled_dot_product_attention(
                _pad(q, valid), k_pad, v_pad, is_causal=True, enable_gqa=True
            )
            attn = attn.transpose(1, 2)[valid].flatten(1)  # (Ntok, h*hd)
        else:
            # the last layer's outputs matter only at each prompt's last token (its keys and
            # values above were all needed): skip attention/MLP elsewhere, ~1/nL of the prefill
            x = x[last]
            see = (torch.arange(width)[None, :] < lengths[:, None])[:, None, None, :]
            attn = F.scaled_dot_product_attention(
                q[last][:, :, None, :], k_pad, v_pad, attn_mask=see, enable_gqa=True
            ).flatten(1)  # (P, h*hd)
        x = x + F.linear(attn, layer.wo, layer.bo).float()
        x = _mlp_residual(w, layer, x)
    return _logits(w, x), keys, values


def _pad(flat: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """(Ntok, heads, hd) packed rows -> (P, heads, Lp, hd) right-padded with zeros."""
    out = flat.new_zeros((*valid.shape, *flat.shape[1:]))
    out[valid] = flat
    return out.transpose(1, 2)


def decode_step(
    w: DecoderWeights,
    tokens: torch.Tensor,
    positions: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    rope: tuple[torch.Tensor, torch.Tensor],
) -> torch.Tensor:
    """Append one token per row to the cache (in place) and return the next-token logits.

    Attention runs over the cache's whole width Cw (columns past a row's position are masked with
    -inf and get probability exactly 0), so both bmm operands are the contiguous per-layer
    buffers: a bf16 `bmm` copies any strided (sliced) operand first, which cost more than the
    product itself here (~half of a decode step at 70 rows x 140 columns, issue 24). The caller
    keeps Cw close to the longest row (`active.ActiveRows.reserve`, 32-column steps).

    Args:
        w: packed weights.
        tokens: (W,) int64 token fed at this step.
        positions: (W,) int64 its position = the row's current length; it is written there
            (< Cw).
        k_cache: (nL, W, kvh, hd, Cw) ragged key cache, TRANSPOSED (keys along the last axis, so
            q @ K^T reads it as stored); updated in place.
        v_cache: (nL, W, kvh, Cw, hd) ragged value cache, updated in place.
        rope: `rope_table(w, C)` for C >= Cw, computed once per generation.

    Returns:
        (W, V) float32 logits.
    """
    n_rows, kvh, width = tokens.shape[0], w.n_kv_heads, k_cache.shape[-1]
    rows = torch.arange(n_rows)
    groups = w.n_heads // kvh
    # additive mask (W*kvh, 1, Cw), broadcast over the g query heads of a kv head:
    # column j visible to row r iff j <= positions[r]
    hidden = (torch.arange(width)[None, :] > positions[:, None])[:, None, None, :]
    mask = torch.zeros((n_rows, kvh, 1, width), dtype=w.dtype).masked_fill_(hidden, float("-inf"))
    mask = mask.view(-1, 1, width)
    scale = w.head_dim**-0.5
    x = w.embed[tokens]  # (W, H)
    cos, sin = rope[0][positions][:, None, :], rope[1][positions][:, None, :]
    for i, layer in enumerate(w.layers):
        q, k, v = _qkv(w, layer, x, cos, sin)
        k_cache[i][rows, :, :, positions] = k
        v_cache[i][rows, :, positions] = v
        # grouped-query attention without repeating K/V: one (g, hd) x (hd, Cw) product per
        # (row, kv head); the (W*kvh, hd, Cw) / (W*kvh, Cw, hd) operands are views
        scores = torch.baddbmm(
            mask, q.reshape(-1, groups, w.head_dim), k_cache[i].flatten(0, 1), alpha=scale
        )
        probs = torch.softmax(scores.float(), dim=-1).to(w.dtype)
        attn = torch.bmm(probs, v_cache[i].flatten(0, 1)).view(n_rows, -1)
        x = x + F.linear(attn, layer.wo, layer.bo)  # promotes to float32: same sum as .float()
        x = _mlp_residual(w, layer, x)
    return _logits(w, x)
