"""Optional vLLM rollout engine for GPUs (implements `RolloutEngine`; vllm imported lazily).

UNTESTED HERE: this project's CI machine has no GPU and no vllm. The file is kept small so it
is easy to check by hand against the vLLM version you install (written for the vLLM >= 0.10 API:
`LLM(logprobs_mode=...)`, `TokensPrompt`, `SamplingParams(logprobs=0, ...)`).

Differences from `HFEngine` that matter to the trainer:
- log-probs: we ask vLLM for "processed_logprobs", i.e. after temperature. With top-k/top-p off
  that equals our convention log_softmax(logits / T); with them on, vLLM renormalises over the
  kept tokens, so rollout log-probs differ from the trainer's and the IS correction sees it.
- sampling noise comes from vLLM's own generator: the same seed gives other tokens than HFEngine.
- weight sync uses the in-process model runner, so run vLLM in-process
  (`VLLM_ENABLE_V1_MULTIPROCESSING=0`); other layouts need vLLM's collective RPC.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch

from reasonrl.rollout.base import SamplingParams
from reasonrl.types import Completion


class VLLMEngine:
    """Samples with `vllm.LLM` on a GPU.

    Args:
        model: a model directory or hub id vLLM can load.
        dtype: vLLM's dtype string ("bfloat16", "float16", "auto").
        gpu_memory_utilization: the share of GPU memory vLLM may take (leave room for training).
        llm_kwargs: any other `vllm.LLM` argument.
    """

    def __init__(
        self,
        model: str,
        *,
        dtype: str = "bfloat16",
        gpu_memory_utilization: float = 0.5,
        **llm_kwargs: Any,
    ) -> None:
        try:
            import vllm
        except ImportError as err:  # pragma: no cover - depends on the optional extra
            raise ImportError("VLLMEngine needs vllm: pip install 'reasonrl[vllm]'") from err
        self._vllm = vllm
        llm_kwargs.setdefault("logprobs_mode", "processed_logprobs")
        llm_kwargs.setdefault("enable_prefix_caching", True)  # G samples share their prompt
        self.llm = vllm.LLM(
            model=model, dtype=dtype, gpu_memory_utilization=gpu_memory_utilization, **llm_kwargs
        )

    def generate(
        self, prompt_ids: Sequence[Sequence[int]], params: SamplingParams
    ) -> list[list[Completion]]:
        """Sample `params.n` completions per prompt (see `RolloutEngine.generate`)."""
        vllm = self._vllm
        sampling = vllm.SamplingParams(
            n=params.n,
            max_tokens=params.max_new_tokens,
            temperature=0.0 if params.greedy else params.temperature,
            top_p=params.top_p,
            top_k=params.top_k if params.top_k > 0 else -1,
            stop=list(params.stop) or None,
            include_stop_str_in_output=True,  # our convention: the stop string stays
            seed=params.seed,
            logprobs=0,  # the chosen token's log-prob only
            skip_special_tokens=False,
        )
        prompts = [vllm.inputs.TokensPrompt(prompt_token_ids=list(p)) for p in prompt_ids]
        outputs = self.llm.generate(prompts, sampling, use_tqdm=False)
        return [[_completion(o) for o in request.outputs] for request in outputs]

    def load_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Copy trainer weights into the in-process vLLM model (HF parameter names)."""
        engine = self.llm.llm_engine
        try:
            runner_model = engine.model_executor.driver_worker.model_runner.model
        except AttributeError as err:  # pragma: no cover - vLLM layout dependent
            raise RuntimeError(
                "VLLMEngine.load_weights needs vLLM in-process "
                "(set VLLM_ENABLE_V1_MULTIPROCESSING=0 before creating the engine)"
            ) from err
        runner_model.load_weights(((name, t.detach()) for name, t in named_tensors))
        self.llm.reset_prefix_cache()  # cached prompt keys/values were computed by old weights


def _completion(out: Any) -> Completion:
    token_ids = tuple(int(t) for t in out.token_ids)
    logprobs = tuple(float(step[tok].logprob) for step, tok in zip(out.logprobs, token_ids))
    reason = "length" if out.finish_reason == "length" else "stop"
    return Completion(text=out.text, token_ids=token_ids, logprobs=logprobs, finish_reason=reason)
