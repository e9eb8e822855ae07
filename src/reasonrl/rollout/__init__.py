"""Rollout engines: sample completions (token ids, log-probs, text) from a policy.

`SamplingParams` and the `RolloutEngine` protocol live in `base.py`; the local CPU/GPU engine is
`reasonrl.rollout.hf_engine.HFEngine`, the optional vLLM one `reasonrl.rollout.vllm_engine`.
Engines are imported lazily (`from reasonrl.rollout import HFEngine` works) so that importing
this package does not import torch.
"""

from __future__ import annotations

from typing import Any

from reasonrl.rollout.base import RolloutEngine, SamplingParams

__all__ = ["HFEngine", "RolloutEngine", "SamplingParams", "VLLMEngine"]


def __getattr__(name: str) -> Any:
    if name == "HFEngine":
        from reasonrl.rollout.hf_engine import HFEngine

        return HFEngine
    if name == "VLLMEngine":
        from reasonrl.rollout.vllm_engine import VLLMEngine

        return VLLMEngine
    raise AttributeError(f"module 'reasonrl.rollout' has no attribute {name!r}")
