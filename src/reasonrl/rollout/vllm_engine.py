"""Optional vLLM rollout engine for GPUs (implements `RolloutEngine`; vllm imported lazily).

Written for vLLM 0.10.2 - 0.11.x (the `vllm` extra pins `vllm>=0.10.2,<0.12`): the V1 engine
run in-process (`VLLM_ENABLE_V1_MULTIPROCESSING=0`, which `registry.vllm_engine` sets), one GPU
(tensor_parallel_size=1), sharing it with the trainer ("colocated"). This project's CI has no GPU
and cannot install vllm: `tests/rollout/fake_vllm.py` follows the documented API below and checks
the glue; `tests/rollout/test_vllm_engine.py::test_real_vllm` (marked gpu) runs the real thing.

The vLLM API used, and where it is documented:
- `LLM(model, dtype=, gpu_memory_utilization=, enable_prefix_caching=, enable_sleep_mode=,
  logprobs_mode=, **engine_args)`; `logprobs_mode="processed_logprobs"`: "Processed means the
  values after applying all processors, including temperature and top_k/top_p"
  (https://docs.vllm.ai/en/stable/configuration/engine_args/#-logprobs-mode). An earlier
  docstring of the option said only "after applying such processors"; which release first
  folded temperature and top-k/top-p in was not verified here: `test_real_vllm` checks it.
- `LLM.generate(prompts, sampling_params, use_tqdm=False)` with `TokensPrompt(prompt_token_ids=)`
  and one `SamplingParams` per prompt; each `CompletionOutput` has `token_ids`, `text`,
  `finish_reason`, `stop_reason` and `logprobs: list[dict[token_id, Logprob(.logprob)]]`
  (https://docs.vllm.ai/en/v0.10.2/api/vllm/logprobs.html). With `n` > 1 the V1 engine splits a
  request into n children that share the prompt's KV blocks through prefix caching; child j of a
  request with seed s samples with seed s + j (`vllm/v1/engine/parallel_sampling.py`).
- Sleep mode (https://docs.vllm.ai/en/latest/features/sleep_mode/, `LLM.sleep`/`LLM.wake_up` in
  `vllm/entrypoints/llm.py`): with `LLM(enable_sleep_mode=True)`, `llm.sleep(level=1)` offloads
  the weights to CPU memory and discards the KV cache; `level=2` discards both ("good for ...
  update the model, where previous model weights are not needed"). `llm.wake_up(tags=["weights"])`
  then `tags=["kv_cache"]` restores them in two stages "to avoid OOM during weight updates".
  After level 2 the woken weight memory holds garbage until weights are loaded again
  (https://github.com/vllm-project/vllm/issues/29341).
- Weight sync: `LLM.collective_rpc(f, args=(weights,))` runs `f(worker, weights)` on every worker
  (a callable is allowed besides a worker method name), and `worker.model_runner.model
  .load_weights(iterable of (HF name, tensor))` is each model's loader of HF checkpoint names,
  the same call the RLHF examples' worker extensions make
  (https://docs.vllm.ai/en/v0.10.2/examples/offline_inference/rlhf_utils.html). In-process the
  tensors are passed by reference; with V1 multiprocessing they would be pickled (slow, and it
  needs VLLM_ALLOW_INSECURE_SERIALIZATION=1).

Where the completions differ from `base.py`'s conventions (HFEngine):
- log-probs are vLLM's processed log-probs of the sampled token (`logprobs=0`): after temperature
  and after top-k/top-p truncation, i.e. renormalised over the kept tokens. With top-k/top-p off
  this is our log_softmax(logits / T); with them on it is higher than the trainer's full-vocab
  value. Either way vLLM's kernels (bf16, other reductions) give log-probs that differ from the
  trainer's forward, so turn the rollout/trainer IS correction on (`algo.is_level`).
- sampling noise is vLLM's: the same seed gives other tokens than HFEngine. A run is
  reproducible: each request's seed is derived from (`SamplingParams.seed`, prompt tokens,
  repeat index) by `sampling.sequence_keys`, so it does not depend on the prompt's batch position;
  `seed=None` draws the base seed from torch's global generator (`seed_everything` fixes it).
  vLLM does not promise bitwise batch invariance of its logits, so a prompt sampled in another
  batch may still drift after a near-tie.
- finish reasons: vLLM's "stop" (EOS, a stop token or a stop string) and "length" (max_tokens or
  the model's context) map to ours; anything else (an aborted request) raises.
- `token_ids` keep the EOS and the token that completed a stop string, as vLLM returns them.
  `text` is NOT vLLM's text (which drops the EOS and cuts right after the stop string, mid-token):
  it is decoded from `token_ids` with vLLM's tokenizer by `completions.make_completion`, the rule
  every engine shares. Stop strings are still matched by vLLM, on its detokenized output.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch

from reasonrl.rollout.base import SamplingParams
from reasonrl.rollout.completions import eos_ids, make_completion
from reasonrl.rollout.sampling import sequence_keys
from reasonrl.types import Completion

SLEEP_LEVELS = (1, 2)
_SEED_MASK = (1 << 62) - 1  # per-request seeds < 2**62, so vLLM's seed + j stays below 2**63


class VLLMEngine:
    """Samples with `vllm.LLM` on a GPU.

    Args:
        model: a model directory or hub id vLLM can load (HF layout; its parameter names are the
            ones `load_weights` receives).
        dtype: vLLM's dtype string ("bfloat16", "float16", "float32", "auto").
        gpu_memory_utilization: the share of GPU memory vLLM may take, weights and KV cache
            (leave room for training when colocated).
        enable_sleep_mode: create the LLM with vLLM's sleep mode so `sleep()` frees its GPU
            memory during the update; without it `sleep()`/`wake_up()` are no-ops.
        sleep_level: 1 (weights offloaded to CPU memory, KV cache dropped) or 2 (both dropped:
            no CPU copy, and the weights must be synced before the next rollout, which the
            trainer does anyway after every step).
        llm_kwargs: any other `vllm.LLM` engine argument (e.g. `max_num_seqs`, `max_model_len`).
    """

    def __init__(
        self,
        model: str,
        *,
        dtype: str = "bfloat16",
        gpu_memory_utilization: float = 0.5,
        enable_sleep_mode: bool = False,
        sleep_level: int = 1,
        **llm_kwargs: Any,
    ) -> None:
        try:
            import vllm
            from vllm.inputs import TokensPrompt
        except ImportError as err:
            raise ImportError(
                "VLLMEngine needs vllm, which runs on CUDA GPUs: on a GPU machine, "
                "pip install 'reasonrl[vllm]'"
            ) from err
        if sleep_level not in SLEEP_LEVELS:
            raise ValueError(f"VLLMEngine: sleep_level must be 1 or 2, got {sleep_level}")
        self._vllm = vllm
        self._tokens_prompt = TokensPrompt
        llm_kwargs.setdefault("logprobs_mode", "processed_logprobs")
        llm_kwargs.setdefault("enable_prefix_caching", True)  # the n children share their prompt
        self.llm = vllm.LLM(
            model=model,
            dtype=dtype,
            gpu_memory_utilization=gpu_memory_utilization,
            enable_sleep_mode=enable_sleep_mode,
            **llm_kwargs,
        )
        self.sleep_mode = enable_sleep_mode
        self.sleep_level = sleep_level
        self.tokenizer = self.llm.get_tokenizer()
        self.pad_id = getattr(self.tokenizer, "pad_token_id", None)
        self.eos_ids = eos_ids(None, self.tokenizer, None)
        self._weights_asleep = False
        self._kv_asleep = False
        self._weights_stale = False  # level-2 weights woken but not loaded since

    def generate(
        self, prompt_ids: Sequence[Sequence[int]], params: SamplingParams
    ) -> list[list[Completion]]:
        """Sample `params.n` completions per prompt (see `RolloutEngine.generate`)."""
        prompts = [[int(t) for t in p] for p in prompt_ids]
        for i, prompt in enumerate(prompts):
            if not prompt:
                raise ValueError(f"VLLMEngine.generate: prompt {i} is empty (needs >= 1 token)")
        if not prompts:
            return []
        self._ready_to_generate()
        base = params.seed
        if base is None:  # from torch's global generator, so seed_everything fixes the run
            base = int(torch.randint(0, 2**62, (), dtype=torch.int64))
        requests = [self._sampling(params, seed) for seed in request_seeds(base, prompts)]
        inputs = [self._tokens_prompt(prompt_token_ids=p) for p in prompts]
        outputs = self.llm.generate(inputs, requests, use_tqdm=False)
        return [
            [self._completion(o) for o in sorted(request.outputs, key=lambda o: o.index)]
            for request in outputs
        ]

    def load_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Copy the trainer's weights (HF parameter names) into vLLM's model on every worker.

        Wakes the weight memory first if the engine sleeps (writing into offloaded memory would
        be lost or crash). The prefix cache is reset: its keys/values came from the old weights.
        """
        if self._weights_asleep:
            self.llm.wake_up(tags=["weights"])
            self._weights_asleep = False
        weights = [(name, tensor.detach()) for name, tensor in named_tensors]
        self.llm.collective_rpc(_load_into_model, args=(weights,))
        self._weights_stale = False
        self.llm.reset_prefix_cache()

    def sleep(self) -> None:
        """Free vLLM's GPU memory (KV cache; weights offloaded at level 1, dropped at level 2).

        Call it after a rollout, before the trainer's update. A no-op without sleep mode or when
        already asleep.
        """
        if not self.sleep_mode or (self._weights_asleep and self._kv_asleep):
            return
        self.llm.sleep(level=self.sleep_level)
        self._weights_asleep = self._kv_asleep = True
        if self.sleep_level == 2:
            self._weights_stale = True

    def wake_up(self) -> None:
        """Restore the weight memory; then call `load_weights` (required after level 2).

        The KV cache comes back at the next `generate`, after the weight sync, so the sync runs
        without the cache's memory (vLLM's two-stage wake-up). A no-op without sleep mode.
        """
        if self.sleep_mode and self._weights_asleep:
            self.llm.wake_up(tags=["weights"])
            self._weights_asleep = False

    def _ready_to_generate(self) -> None:
        if self._weights_stale:
            raise RuntimeError(
                "VLLMEngine.generate: the weights were discarded by sleep(level=2); "
                "call wake_up() then load_weights(...) before generating"
            )
        if self._weights_asleep:  # level 1: the CPU copy is current
            self.llm.wake_up(tags=["weights"])
            self._weights_asleep = False
        if self._kv_asleep:
            self.llm.wake_up(tags=["kv_cache"])
            self._kv_asleep = False

    def _sampling(self, params: SamplingParams, seed: int) -> Any:
        return self._vllm.SamplingParams(
            n=params.n,
            max_tokens=params.max_new_tokens,
            temperature=0.0 if params.greedy else params.temperature,  # vLLM: 0 = greedy
            top_p=params.top_p,
            top_k=params.top_k,  # 0 = off in both
            stop=list(params.stop) or None,
            include_stop_str_in_output=True,  # our convention: the stop string stays
            seed=seed,
            logprobs=0,  # the sampled token's log-prob only
            skip_special_tokens=False,
        )

    def _completion(self, out: Any) -> Completion:
        reason = out.finish_reason
        if reason not in ("stop", "length"):
            raise RuntimeError(f"VLLMEngine: vLLM finished a request with reason {reason!r}")
        if out.logprobs is None:
            raise RuntimeError("VLLMEngine: vLLM returned no log-probs (logprobs=0 was asked)")
        tokens = [int(t) for t in out.token_ids]
        logprobs = [float(step[t].logprob) for step, t in zip(out.logprobs, tokens, strict=True)]
        return make_completion(
            self.tokenizer, tokens, logprobs, reason, pad_id=self.pad_id, stop_ids=self.eos_ids
        )


def request_seeds(seed: int, prompts: Sequence[Sequence[int]]) -> list[int]:
    """One vLLM seed per prompt from `sampling.sequence_keys` (seed, prompt tokens, repeats).

    vLLM gives the j-th of a request's n samples the seed + j, so these are spread over 62 bits
    (neighbouring prompts do not share noise) and stay below 2**63 after adding j.
    """
    keys = sequence_keys(seed, prompts, 1).tolist()
    return [(lo | hi << 32) & _SEED_MASK for lo, hi in keys]


def _load_into_model(worker: Any, weights: list[tuple[str, torch.Tensor]]) -> Any:
    """Run on each vLLM worker by `collective_rpc`: the model's own HF-name weight loader."""
    return worker.model_runner.model.load_weights(weights)
