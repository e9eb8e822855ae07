"""A stand-in `vllm` module with the API surface `reasonrl.rollout.vllm_engine` uses (vLLM >= 0.10:
`LLM(model=..., dtype=..., gpu_memory_utilization=..., logprobs_mode=..., **kw)`,
`LLM.generate(prompts, SamplingParams, use_tqdm=False)` -> RequestOutput(.outputs: CompletionOutput
(.token_ids, .logprobs: [{token: Logprob(.logprob)}], .text, .finish_reason)),
`vllm.inputs.TokensPrompt(prompt_token_ids=...)`, the in-process model runner's
`model.load_weights(iterable)` and `LLM.reset_prefix_cache()`).

It checks the glue only: the tokens are made up (`prompt[-1] + 1 + j + t` for sample j, step t).
Install it with `install(monkeypatch)`; `install` returns the module so a test can read `.llms`.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field
from typing import Any

import pytest


@dataclass
class Logprob:
    logprob: float


@dataclass
class CompletionOutput:
    token_ids: list[int]
    logprobs: list[dict[int, Logprob]]
    text: str
    finish_reason: str


@dataclass
class RequestOutput:
    outputs: list[CompletionOutput]


class SamplingParams:
    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.__dict__.update(kwargs)


def TokensPrompt(*, prompt_token_ids: list[int]) -> dict[str, Any]:  # vLLM: a TypedDict
    return {"prompt_token_ids": prompt_token_ids}


@dataclass
class RunnerModel:
    loaded: list[tuple[str, Any]] = field(default_factory=list)

    def load_weights(self, weights: Any) -> set[str]:
        self.loaded.extend(weights)
        return {name for name, _ in self.loaded}


class LLM:
    def __init__(self, model: str, **kwargs: Any) -> None:
        self.model = model
        self.kwargs = kwargs
        self.calls: list[tuple[list[dict], SamplingParams]] = []
        self.prefix_resets = 0
        runner = types.SimpleNamespace(model=RunnerModel())
        worker = types.SimpleNamespace(model_runner=runner)
        self.llm_engine = types.SimpleNamespace(
            model_executor=types.SimpleNamespace(driver_worker=worker)
        )
        sys.modules["vllm"].llms.append(self)

    def generate(
        self, prompts: list[dict], sampling_params: SamplingParams, use_tqdm: bool = True
    ) -> list[RequestOutput]:
        self.calls.append((prompts, sampling_params))
        n, length = sampling_params.n, sampling_params.max_tokens
        out = []
        for prompt in prompts:
            last = prompt["prompt_token_ids"][-1]
            outputs = []
            for j in range(n):
                ids = [last + 1 + j + t for t in range(length)]
                lps = [{tok: Logprob(-0.5 - 0.1 * t)} for t, tok in enumerate(ids)]
                text = " ".join(f"w{i}" for i in ids)
                outputs.append(CompletionOutput(ids, lps, text, "length"))
            out.append(RequestOutput(outputs))
        return out

    def reset_prefix_cache(self) -> None:
        self.prefix_resets += 1


def install(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    vllm = types.ModuleType("vllm")
    vllm.LLM = LLM
    vllm.SamplingParams = SamplingParams
    vllm.inputs = types.SimpleNamespace(TokensPrompt=TokensPrompt)
    vllm.llms = []
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    return vllm
