"""A stand-in `vllm` module following the API of vLLM 0.10.2 - 0.11.x that `VLLMEngine` calls.

It checks the glue, not vLLM: the "model" draws made-up tokens from a per-request generator, but
every call signature, output field and state rule below follows vLLM's documented behaviour so
that glue bugs fail here instead of on a GPU:

- `LLM(model, *, <known engine args>)`; an unknown keyword raises TypeError, as vLLM's
  `EngineArgs(**kwargs)` does.
- `SamplingParams(**fields)`: only vLLM's field names (a msgspec Struct: unknown -> TypeError);
  `top_k` 0 or -1 = off; `temperature` 0 = greedy.
- `LLM.generate(prompts, sampling_params=None, *, use_tqdm=True, lora_request=None,
  priority=None)`: one SamplingParams or one per prompt (else ValueError); prompts must be
  `TokensPrompt` dicts here. Returns `RequestOutput`s in prompt order, each with `n`
  `CompletionOutput`s ordered by `index`.
- Parallel sampling as in `vllm/v1/engine/parallel_sampling.py`: child j of a request with seed s
  samples with seed s + j; without a seed every call draws fresh noise.
- `CompletionOutput`: `token_ids` keep the EOS token; `text` is the detokenized output WITHOUT
  the EOS (V1's detokenizer skips the stop token) and, on a stop string, is cut right after the
  stop string (`include_stop_str_in_output=True`) or before it, even mid-token; `finish_reason`
  "stop" (EOS: `stop_reason=None`, stop string: `stop_reason=<str>`) or "length";
  `logprobs` None unless asked, else one {token_id: Logprob} per step holding the sampled token
  (plus the top `logprobs` others).
- Sleep mode (docs.vllm.ai/en/latest/features/sleep_mode/): `sleep(level)` needs
  `enable_sleep_mode=True`; level 1 offloads weights to CPU, level 2 discards them; both free
  the KV cache. `wake_up(tags=None | ["weights"] | ["kv_cache"])`. Generating while any part is
  asleep, or from level-2 weights not reloaded since, raises here (vLLM would crash or, for
  level 2, silently produce garbage: vllm-project/vllm#29341); writing weights while they are
  asleep raises (TRL #5142).
- Weights: `LLM.collective_rpc(method, timeout=None, args=(), kwargs=None)` runs a worker method
  (by name) or a callable `f(worker, *args, **kwargs)` on each worker and returns the list of
  results; `worker.model_runner.model.load_weights(weights)` takes (HF name, tensor) pairs and
  raises KeyError on a name the model does not have. The driver worker is also reachable as
  `llm.llm_engine.model_executor.driver_worker` (a wrapper delegating to `.worker`), as in-process
  V1 (`VLLM_ENABLE_V1_MULTIPROCESSING=0`) exposes it.

`install(monkeypatch, param_names=...)` puts it in `sys.modules["vllm"]` and returns the module;
`module.llms` lists the LLMs created.
"""

from __future__ import annotations

import math
import random
import sys
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

EOS = 2
PAD = 0
VOCAB = 40

# Engine arguments the glue may pass (a subset of vLLM's EngineArgs fields).
LLM_ARGS = frozenset({
    "tokenizer", "tokenizer_mode", "skip_tokenizer_init", "trust_remote_code",
    "tensor_parallel_size", "dtype", "quantization", "revision", "seed",
    "gpu_memory_utilization", "swap_space", "cpu_offload_gb", "enforce_eager",
    "max_model_len", "max_num_seqs", "max_num_batched_tokens", "enable_prefix_caching",
    "enable_sleep_mode", "logprobs_mode", "max_logprobs", "disable_log_stats",
    "distributed_executor_backend", "worker_extension_cls", "kv_cache_memory_bytes",
    "generation_config", "load_format",
})  # fmt: skip
LOGPROBS_MODES = ("raw_logprobs", "raw_logits", "processed_logprobs", "processed_logits")
SAMPLING_FIELDS = frozenset({
    "n", "best_of", "presence_penalty", "frequency_penalty", "repetition_penalty",
    "temperature", "top_p", "top_k", "min_p", "seed", "stop", "stop_token_ids", "ignore_eos",
    "max_tokens", "min_tokens", "logprobs", "prompt_logprobs", "detokenize",
    "skip_special_tokens", "spaces_between_special_tokens", "logits_processors",
    "include_stop_str_in_output", "truncate_prompt_tokens", "output_kind", "guided_decoding",
    "logit_bias", "allowed_token_ids", "extra_args", "bad_words",
})  # fmt: skip


@dataclass
class Logprob:
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    cumulative_logprob: float | None
    logprobs: list[dict[int, Logprob]] | None
    finish_reason: str | None = None
    stop_reason: int | str | None = None


@dataclass
class RequestOutput:
    request_id: str
    prompt: str | None
    prompt_token_ids: list[int]
    prompt_logprobs: Any
    outputs: list[CompletionOutput]
    finished: bool = True


class SamplingParams:
    """vLLM's defaults for the fields the glue touches; unknown fields raise TypeError."""

    def __init__(self, **kwargs: Any) -> None:
        unknown = set(kwargs) - SAMPLING_FIELDS
        if unknown:
            raise TypeError(f"Unexpected keyword argument {sorted(unknown)[0]!r}")
        self.kwargs = dict(kwargs)
        self.n = kwargs.get("n", 1)
        self.temperature = kwargs.get("temperature", 1.0)
        self.top_p = kwargs.get("top_p", 1.0)
        self.top_k = kwargs.get("top_k", 0)
        self.seed = kwargs.get("seed")
        stop = kwargs.get("stop")
        self.stop = [stop] if isinstance(stop, str) else list(stop or [])
        self.max_tokens = kwargs.get("max_tokens", 16)
        self.logprobs = kwargs.get("logprobs")
        self.include_stop_str_in_output = kwargs.get("include_stop_str_in_output", False)
        self.skip_special_tokens = kwargs.get("skip_special_tokens", True)
        if self.n < 1 or (self.max_tokens is not None and self.max_tokens < 1):
            raise ValueError("n and max_tokens must be >= 1")
        if self.top_k < -1 or not 0.0 < self.top_p <= 1.0 or self.temperature < 0:
            raise ValueError("bad top_k / top_p / temperature")


def TokensPrompt(*, prompt_token_ids: list[int], **extra: Any) -> dict[str, Any]:  # a TypedDict
    return {"prompt_token_ids": prompt_token_ids, **extra}


class Tokenizer:
    """`LLM.get_tokenizer()`: token i decodes to "w{i}", words joined by single spaces."""

    eos_token_id = EOS
    pad_token_id = PAD

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        shown = [i for i in ids if not (skip_special_tokens and i in (EOS, PAD))]
        return " ".join(f"w{int(i)}" for i in shown)


@dataclass
class RunnerModel:
    """The model inside the worker; `load_weights` as vLLM's models define it."""

    param_names: frozenset[str] | None
    loaded: list[tuple[str, Any]] = field(default_factory=list)
    llm: LLM | None = None

    def load_weights(self, weights: Iterable[tuple[str, Any]]) -> set[str]:
        assert self.llm is not None
        if self.llm.weights_state != "awake":
            raise RuntimeError(f"load_weights into {self.llm.weights_state} weight memory")
        self.llm.events.append("load_weights")
        done = set()
        for name, tensor in weights:
            if self.param_names is not None and name not in self.param_names:
                raise KeyError(name)
            self.loaded.append((name, tensor))
            done.add(name)
        if self.param_names is None or done >= self.param_names:
            self.llm.weights_valid = True
        return done


class Worker:
    def __init__(self, model: RunnerModel) -> None:
        self.model_runner = types.SimpleNamespace(model=model)
        self.reloads = 0

    def reload_weights(self) -> None:  # reads the checkpoint again (vLLM >= 0.11)
        self.reloads += 1
        self.model_runner.model.llm.weights_valid = True


class WorkerWrapper:
    """`WorkerWrapperBase`: holds `.worker` and delegates attribute access to it."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def __getattr__(self, name: str) -> Any:
        return getattr(self.worker, name)


class LLM:
    def __init__(self, model: str, **kwargs: Any) -> None:
        unknown = set(kwargs) - LLM_ARGS
        if unknown:
            raise TypeError(f"EngineArgs.__init__() got an unexpected keyword argument "
                            f"{sorted(unknown)[0]!r}")  # fmt: skip
        if kwargs.get("logprobs_mode", "raw_logprobs") not in LOGPROBS_MODES:
            raise ValueError(f"logprobs_mode must be one of {LOGPROBS_MODES}")
        module = sys.modules["vllm"]
        self.model = model
        self.kwargs = kwargs
        self.sleep_mode = bool(kwargs.get("enable_sleep_mode", False))
        self.calls: list[tuple[list[dict], Any]] = []
        self.events: list[str] = []  # sleep / wake_up / load_weights / generate, in call order
        self.prefix_resets = 0
        self.weights_state = "awake"  # "awake" | "offloaded" (level 1) | "discarded" (level 2)
        self.kv_awake = True
        self.weights_valid = True
        runner = RunnerModel(module.param_names, llm=self)
        self.worker = Worker(runner)
        self.llm_engine = types.SimpleNamespace(
            model_executor=types.SimpleNamespace(driver_worker=WorkerWrapper(self.worker))
        )
        self._requests = 0
        module.llms.append(self)

    def get_tokenizer(self) -> Tokenizer:
        return Tokenizer()

    def generate(
        self,
        prompts: Any,
        sampling_params: SamplingParams | Sequence[SamplingParams] | None = None,
        *,
        use_tqdm: bool = True,
        lora_request: Any = None,
        priority: list[int] | None = None,
    ) -> list[RequestOutput]:
        if not (self.kv_awake and self.weights_state == "awake"):
            raise RuntimeError("generate() while the engine is asleep: call wake_up() first")
        if not self.weights_valid:
            raise RuntimeError("generate() from discarded (level-2) weights: load weights first")
        prompts = [prompts] if isinstance(prompts, dict) else list(prompts)
        if sampling_params is None:
            sampling_params = SamplingParams()
        params = (
            list(sampling_params)
            if isinstance(sampling_params, Sequence)
            else [sampling_params] * len(prompts)
        )
        if len(params) != len(prompts):
            raise ValueError("The lengths of prompts and sampling_params must be the same.")
        self.calls.append((prompts, sampling_params))
        self.events.append("generate")
        out = []
        for prompt, sp in zip(prompts, params):
            if not isinstance(prompt, dict) or "prompt_token_ids" not in prompt:
                raise TypeError("this fake takes TokensPrompt(prompt_token_ids=...) prompts")
            ids = list(prompt["prompt_token_ids"])
            children = [self._sample(ids, sp, j) for j in range(sp.n)]
            out.append(RequestOutput(str(self._requests), None, ids, None, children))
            self._requests += 1
        return out

    def _sample(self, prompt: list[int], sp: SamplingParams, j: int) -> CompletionOutput:
        rng = random.Random(sp.seed + j) if sp.seed is not None else random.Random()
        tok = Tokenizer()
        tokens: list[int] = []
        steps: list[dict[int, Logprob]] = []
        reason, stop_reason, text = "length", None, ""
        for t in range(sp.max_tokens):
            # made-up "model": depends on the prompt and the step; temperature 0 = argmax
            weights = [math.exp(((prompt[-1] * 7 + t * 3 + v * 5) % 11) / 4) for v in range(VOCAB)]
            if sp.temperature == 0:
                token = max(range(VOCAB), key=weights.__getitem__)
            else:
                token = rng.choices(range(VOCAB), weights=weights)[0]
            tokens.append(token)
            steps.append({token: Logprob(math.log(weights[token] / sum(weights)), 1, f"w{token}")})
            if token == EOS:
                reason = "stop"
                break
            text = tok.decode(tokens, skip_special_tokens=sp.skip_special_tokens)
            hit = [(text.find(s), s) for s in sp.stop if s in text]
            if hit:
                at, s = min(hit)
                text = text[: at + len(s)] if sp.include_stop_str_in_output else text[:at]
                reason, stop_reason = "stop", s
                break
        if reason == "stop" and stop_reason is None:  # EOS: V1's detokenizer skips it
            text = tok.decode(tokens[:-1], skip_special_tokens=sp.skip_special_tokens)
        logprobs = steps if sp.logprobs is not None else None
        cumulative = sum(next(iter(s.values())).logprob for s in steps) if logprobs else None
        return CompletionOutput(j, text, tokens, cumulative, logprobs, reason, stop_reason)

    def collective_rpc(
        self,
        method: Any,
        timeout: float | None = None,
        args: tuple = (),
        kwargs: dict[str, Any] | None = None,
    ) -> list[Any]:
        if isinstance(method, str):
            result = getattr(self.worker, method)(*args, **(kwargs or {}))
        else:
            result = method(self.worker, *args, **(kwargs or {}))
        return [result]

    def reset_prefix_cache(self) -> bool:
        self.prefix_resets += 1
        return True

    def sleep(self, level: int = 1) -> None:
        if not self.sleep_mode:
            raise RuntimeError("sleep() needs LLM(enable_sleep_mode=True)")
        if level not in (1, 2):
            raise ValueError(f"sleep level must be 1 or 2, got {level}")
        self.reset_prefix_cache()
        self.weights_state = "offloaded" if level == 1 else "discarded"
        self.kv_awake = False
        self.events.append(f"sleep{level}")

    def wake_up(self, tags: list[str] | None = None) -> None:
        if not self.sleep_mode:
            raise RuntimeError("wake_up() needs LLM(enable_sleep_mode=True)")
        tags = ["weights", "kv_cache"] if tags is None else list(tags)
        if set(tags) - {"weights", "kv_cache"}:
            raise ValueError(f"unknown wake_up tags {tags}")
        if "weights" in tags:
            if self.weights_state == "discarded":
                self.weights_valid = False  # memory back, contents garbage until reloaded
            self.weights_state = "awake"
        if "kv_cache" in tags:
            self.kv_awake = True
        self.events.append("wake_up(" + ",".join(tags) + ")")


def install(
    monkeypatch: pytest.MonkeyPatch, param_names: Iterable[str] | None = None
) -> types.ModuleType:
    """Put the fake in `sys.modules["vllm"]`; `param_names` (default: any) are the model's."""
    vllm = types.ModuleType("vllm")
    vllm.LLM = LLM
    vllm.SamplingParams = SamplingParams
    vllm.TokensPrompt = TokensPrompt
    inputs = types.ModuleType("vllm.inputs")
    inputs.TokensPrompt = TokensPrompt
    vllm.inputs = inputs
    vllm.llms = []
    vllm.param_names = None if param_names is None else frozenset(param_names)
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "vllm.inputs", inputs)
    return vllm
