"""Compute precision: where bf16 is fast, what "auto" means, and the autocast context.

One resolver for the rollout engine, the RL update and SFT. Master weights stay fp32; bf16 is
used for matmuls only, through autocast (training) or packed weights (the rollout engine).
"""

from __future__ import annotations

from contextlib import nullcontext

import torch

_DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}


def fast_bf16_available(device: str | torch.device = "cpu") -> bool:
    """Whether bf16 matmuls are fast here: any CUDA device, or a CPU with native bf16 (avx512_bf16
    or AMX). On an AVX2-only CPU, bf16 matmuls are emulated and about 10x SLOWER than fp32
    (measured: benchmarks/README.md), so "auto" picks fp32 there.
    """
    if torch.device(device).type == "cuda":
        return True
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_dtype(dtype: str, device: str | torch.device = "cpu") -> torch.dtype:
    """ "bf16" / "fp32" as asked; "auto" = bf16 where `fast_bf16_available`, else fp32."""
    if dtype == "auto":
        return torch.bfloat16 if fast_bf16_available(device) else torch.float32
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be 'auto', 'bf16' or 'fp32', got {dtype!r}")
    return _DTYPES[dtype]


def dtype_name(dtype: str, device: str | torch.device = "cpu") -> str:
    """The resolved dtype as a config spelling: "bf16" or "fp32" (for logs and benchmarks)."""
    return "bf16" if resolve_dtype(dtype, device) == torch.bfloat16 else "fp32"


def autocast(dtype: str, device: str | torch.device = "cpu") -> torch.autocast | nullcontext:
    """bf16 autocast for "bf16", and for "auto" where bf16 is fast (native bf16 CPU or CUDA)."""
    if resolve_dtype(dtype, device) == torch.bfloat16:
        return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)
    return nullcontext()
