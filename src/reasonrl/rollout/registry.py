"""Rollout engines by name: `ENGINES[name](args, model, tokenizer) -> RolloutEngine`.

`rollout.engine` in a recipe names an entry; `reasonrl.rl.build.make_engine` turns the config into
plain `EngineArgs` (this layer does not read configs) and calls the factory. A factory imports its
engine lazily, so importing this module (or `reasonrl.rollout`) imports neither torch nor vllm.

    hf     `HFEngine` on the trainer's own model object (weights shared, a sync is free)
    vllm   `VLLMEngine`: vLLM loads its own copy from `args.model_path` (the directory the policy
           was loaded from); the trainer then pushes weights with `load_weights` after each step.

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
    options: engine-specific extras passed through as keyword arguments.
    """

    model_path: str
    dtype: str = "auto"
    device: str = "cpu"
    max_batch_size: int = 256
    options: dict[str, Any] = field(default_factory=dict)


EngineFactory = Callable[[EngineArgs, Any, Any], RolloutEngine]


def hf_engine(args: EngineArgs, model: Any, tokenizer: Any) -> RolloutEngine:
    """`HFEngine` sharing the trainer's model (weights are read in place, no copy)."""
    from reasonrl.rollout.hf_engine import HFEngine

    return HFEngine(
        model, tokenizer, dtype=args.dtype, max_batch_size=args.max_batch_size, **args.options
    )


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


ENGINES: dict[str, EngineFactory] = {"hf": hf_engine, "vllm": vllm_engine}


def register_engine(name: str, factory: EngineFactory) -> None:
    """Add (or replace) the factory behind `rollout.engine: name`."""
    ENGINES[name] = factory


def create_engine(name: str, args: EngineArgs, model: Any, tokenizer: Any) -> RolloutEngine:
    """The engine `name` built from `args`; an unknown name raises ValueError listing the known."""
    if name not in ENGINES:
        raise ValueError(f"unknown rollout engine {name!r}; known: {sorted(ENGINES)}")
    return ENGINES[name](args, model, tokenizer)
