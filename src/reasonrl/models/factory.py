"""Tiny Qwen2-architecture causal LMs by named size, trained from scratch on CPU.

All sizes share the Qwen2 recipe (arXiv 2407.10671): grouped-query attention, rotary position
embeddings, RMSNorm, SiLU-gated MLP, tied input/output embeddings. `qwen2-100m` is the 12-layer
768-wide model of the Interplay paper (arXiv 2512.07783, `model_configs/qwen2_100M`); the smaller
sizes are scaled down so they train in minutes on a 2-core CPU (measured SFT tokens/s per size:
benchmarks/README.md, `benchmarks/sft_bench.py`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase, Qwen2ForCausalLM


@dataclass(frozen=True, slots=True)
class ModelSize:
    """Shape of one named model size (everything the Qwen2 config needs besides the vocabulary)."""

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    intermediate_size: int
    max_position_embeddings: int = 1024
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-6


# Parameter counts below assume the synthetic word-level vocabulary (~200-300 tokens);
# they are pinned by tests/models/test_factory.py.
MODEL_SIZES: dict[str, ModelSize] = {
    # ~1.0M: a smoke-test model; the shipped base checkpoint (about 5k SFT tok/s on one fp32
    # thread of an AVX2 CPU, benchmarks/README.md).
    "nano": ModelSize(128, 4, 4, 2, 512),
    # ~2.5M: between nano and micro (width 192, 48-dim heads).
    "tiny": ModelSize(192, 4, 4, 2, 768),
    # ~4.3M. 4 layers rather than 6 give ~1.4x the tokens/s at the same
    # width; at a 45-minute CPU budget (~20M tokens) that data matters more than depth.
    "micro": ModelSize(256, 4, 4, 2, 1024),
    # ~18M: for longer CPU runs and the MFU benchmark.
    "mini": ModelSize(512, 6, 8, 2, 1536),
    # ~103M incl. a 2.2k vocab: the Interplay paper's config (rope 1e6, eps 1e-6, 2048 positions).
    "qwen2-100m": ModelSize(768, 12, 12, 2, 3072, 2048, 1_000_000.0, 1e-6),
}


def qwen2_config_kwargs(size: str | ModelSize, *, vocab_size: int) -> dict[str, Any]:
    """Keyword arguments for `transformers.Qwen2Config` of a named size.

    Args:
        size: a key of `MODEL_SIZES` or an explicit `ModelSize`.
        vocab_size: number of token ids (the tokenizer's `len()`).

    Returns:
        A dict accepted by `Qwen2Config(**kwargs)`.
    """
    if isinstance(size, str):
        if size not in MODEL_SIZES:
            raise ValueError(f"unknown model size {size!r}; choose one of {sorted(MODEL_SIZES)}")
        size = MODEL_SIZES[size]
    shape = asdict(size)
    rope_theta = shape.pop("rope_theta")
    return {
        **shape,
        "vocab_size": vocab_size,
        "hidden_act": "silu",
        "tie_word_embeddings": True,
        "use_sliding_window": False,
        "attention_dropout": 0.0,
        "initializer_range": 0.02,
        "rope_parameters": {"rope_type": "default", "rope_theta": rope_theta},
        "use_cache": True,
    }


def build_model(
    size: str | ModelSize, tokenizer: PreTrainedTokenizerBase, *, seed: int | None = None
) -> Qwen2ForCausalLM:
    """A freshly initialised Qwen2ForCausalLM whose vocabulary and special ids match `tokenizer`.

    Args:
        size: a key of `MODEL_SIZES` (`nano`, `micro`, `mini`, `qwen2-100m`) or a `ModelSize`.
        tokenizer: supplies vocab size and pad/bos/eos ids (written into the model config so
            `generate` and saved checkpoints agree with the tokenizer).
        seed: if given, seeds torch before initialising (same seed => same weights).

    Returns:
        The model in fp32, train mode, on CPU.
    """
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    if seed is not None:
        torch.manual_seed(seed)
    kwargs = qwen2_config_kwargs(size, vocab_size=len(tokenizer))
    config = Qwen2Config(
        **kwargs,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    model = Qwen2ForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def count_parameters(model: Any, *, trainable_only: bool = False) -> int:
    """Number of distinct parameters (tied embeddings counted once)."""
    params = {id(p): p for p in model.parameters() if p.requires_grad or not trainable_only}
    return sum(p.numel() for p in params.values())
