"""Rollout engines by name: `ENGINES[name](args, model, tokenizer) -> RolloutEngine`.

`rollout.engine` in a recipe names an entry; `reasonrl.rl.build.make_engine` turns the config into
plain `EngineArgs` (this layer does not read configs) and calls the factory. A factory imports its
engine lazily, so importing this module (or `reasonrl.rollout`) imports neither torch nor vllm.

    fused  `HFEngine`: the fast CPU decoder (rollout/decoder.py) for qwen2, qwen3, llama, mistral
    hf     `TransformersEngine`: any transformers causal LM, its own forward and KV cache
    vllm   `VLLMEngine`: vLLM loads its own copy from `args.model_path` (the directory the policy
           was loaded from); the trainer then pushes weights with `load_weights` after each step.
    auto   fused on CPU where `fused_unsupported_reason` is None, else hf (`choose_engine`)

The local engines share the trainer's model object (a weight sync is free) unless
`args.share_weights` is False (a LoRA run: the engine holds a plain merged copy).

A new engine: `register_engine("name", factory)`; `rollout.engine` is a Literal in the config, so
it must be added there too before a recipe can name it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reasonrl.rollout.base import RolloutEngine


@dataclass(frozen=True)
class EngineArgs:
    """What an engine factory may use, derived from the run's config by the caller.

    model_path: local directory of the policy checkpoint (`builtin:` already resolved).
    dtype: compute dtype, "auto" | "bf16" | "fp32" (`model.dtype`).
    device: torch device string (`model.device`).
    max_batch_size: most sequences decoded at once (`rollout.max_batch_size`).
    share_weights: local engines sample from the trainer's model object itself (False: from a
        private copy that only `load_weights` changes).
    options: engine-specific extras passed through as keyword arguments.
    """

    model_path: str
    dtype: str = "auto"
    device: str = "cpu"
    max_batch_size: int = 256
    share_weights: bool = True
    options: dict[str, Any] = field(default_factory=dict)


EngineFactory = Callable[[EngineArgs, Any, Any], RolloutEngine]


def fused_engine(args: EngineArgs, model: Any, tokenizer: Any) -> RolloutEngine:
    """`HFEngine` (the fused CPU decoder) on the trainer's model."""
    from reasonrl.rollout.hf_engine import HFEngine

    return HFEngine(
        model,
        tokenizer,
        dtype=args.dtype,
        max_batch_size=args.max_batch_size,
        share_weights=args.share_weights,
        **args.options,
    )


def hf_engine(args: EngineArgs, model: Any, tokenizer: Any) -> RolloutEngine:
    """`TransformersEngine`: the model's own forward and KV cache (any causal LM, any device)."""
    from reasonrl.rollout.transformers_engine import TransformersEngine

    return TransformersEngine(
        model,
        tokenizer,
        dtype=args.dtype,
        max_batch_size=args.max_batch_size,
        share_weights=args.share_weights,
        **args.options,
    )


def fused_unsupported_reason(model: Any, device: str = "cpu") -> str | None:
    """Why the fused decoder cannot run `model` on `device`, or None when it can."""
    if not str(device).startswith("cpu"):
        return f"the fused decoder runs on CPU only (model.device={device}); use rollout.engine=hf"
    from reasonrl.rollout.decoder import unsupported_reason

    return unsupported_reason(model)


def choose_engine(name: str, model: Any, device: str = "cpu") -> str:
    """The engine `name` resolves to: `auto` -> fused where it supports the model, else hf."""
    if name != "auto":
        return name
    return "fused" if fused_unsupported_reason(model, device) is None else "hf"


# vLLM's dtype names; "auto" means bf16 where it is fast, and vLLM runs only on GPUs, where it is.
VLLM_DTYPES = {"auto": "bfloat16", "bf16": "bfloat16", "fp32": "float32"}


def vllm_engine(args: EngineArgs, model: Any, tokenizer: Any) -> RolloutEngine:
    """`VLLMEngine` loading `args.model_path`; `model` and `tokenizer` are not used (vLLM keeps its
    own copy, kept current by the trainer's `load_weights` after every step).

    `VLLMEngine.load_weights` reaches the model inside the engine's process, so vLLM's V1
    multiprocessing is switched off here unless the environment already chose.
    """
    from reasonrl.rollout.vllm_engine import VLLMEngine

    if args.dtype not in VLLM_DTYPES:
        raise ValueError(f"vllm engine: unknown dtype {args.dtype!r}; use {sorted(VLLM_DTYPES)}")
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    options = {"max_num_seqs": args.max_batch_size, **args.options}
    return VLLMEngine(args.model_path, dtype=VLLM_DTYPES[args.dtype], **options)


ENGINES: dict[str, EngineFactory] = {"fused": fused_engine, "hf": hf_engine, "vllm": vllm_engine}


def local_engine(
    model: Any,
    tokenizer: Any,
    *,
    name: str = "auto",
    dtype: str = "auto",
    max_batch_size: int = 256,
) -> RolloutEngine:
    """A local engine (`auto`, `fused` or `hf`) sampling from `model` itself, on its device: what
    evaluation uses when no run's engine is given."""
    device = str(next(model.parameters()).device)
    args = EngineArgs(model_path="", dtype=dtype, device=device, max_batch_size=max_batch_size)
    return create_engine(name, args, model, tokenizer)


def register_engine(name: str, factory: EngineFactory) -> None:
    """Add (or replace) the factory behind `rollout.engine: name`."""
    ENGINES[name] = factory


def create_engine(name: str, args: EngineArgs, model: Any, tokenizer: Any) -> RolloutEngine:
    """The engine `name` (`auto` resolved by `choose_engine`) built from `args`; an unknown name
    raises ValueError listing the known."""
    name = choose_engine(name, model, args.device)
    if name not in ENGINES:
        raise ValueError(f"unknown rollout engine {name!r}; known: {sorted(ENGINES)}")
    return ENGINES[name](args, model, tokenizer)
