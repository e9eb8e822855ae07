"""The local rollout engine: fast batched sampling from a Hugging Face Qwen2/Llama causal LM.

How it stays fast on a CPU (numbers in benchmarks/README.md):
- its own fused forward with a preallocated ragged KV cache (`decoder.py`); bf16 matmuls where
  the CPU has native bf16 (on AVX2-only CPUs bf16 is ~10x slower than fp32: "auto" avoids it);
- decode attention reads the cache in place: keys stored transposed, both buffers contiguous and
  only as wide as the longest row (+ < 32 columns), because a bf16 `bmm` copies a sliced operand
  first (that copy was about a third of the quickstart's generation time, issue 24);
- each prompt is prefilled once and its keys/values copied to its G = n sample rows;
- finished rows leave the batch at once (swap-remove, `batch.remove_rows`) and, when more
  sequences wait than `max_batch_size` allows, free rows are refilled with new prompts
  (continuous batching), so step time follows the mean completion length, not the longest;
- sampling is vectorised over rows (`sampling.sample_next`); the only per-step host work is one
  check for finished rows (plus decoding tails when stop strings are set).

Conventions (shared with every engine) are in `base.py`: log-probs are log_softmax(logits / T) of
the chosen token over the full vocabulary, response tokens include a sampled EOS, stop strings stay
in the output. Reproducibility: with a fixed seed, a sequence's tokens depend only on the seed,
its prompt and its sample index, not on batch composition (see `sampling.py`).
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import torch

from reasonrl.rollout.active import ActiveRows, admit_rows, remove_rows
from reasonrl.rollout.base import SamplingParams
from reasonrl.rollout.completions import check_prompts, copy_weights, eos_ids, make_completion
from reasonrl.rollout.decoder import DecoderWeights, decode_step, pack_weights, unsupported_reason
from reasonrl.rollout.sampling import sample_next, sequence_keys
from reasonrl.rollout.stops import StopChecker
from reasonrl.runtime.precision import resolve_dtype
from reasonrl.types import Completion

# Refill only when at least this fraction of max_batch_size is free, so each (re)prefill and
# cache concatenation is amortised over many new rows.
_REFILL_FRACTION = 1 / 4


class HFEngine:
    """Batched sampler for a Qwen2/Llama `*ForCausalLM` (implements `RolloutEngine`).

    Args:
        model: the HF causal LM (the trainer's model when `share_weights`).
        tokenizer: used to decode completions (and to check stop strings).
        dtype: "bf16" runs matmuls and the KV cache in bfloat16 (residual stream and norms stay
            float32, as under autocast); "fp32" reproduces the trainer's fp32 log-probs; "auto"
            picks bf16 only where it is fast (`fast_bf16_available`: not on AVX2-only CPUs).
        max_batch_size: most rows (sequences) decoded at once; more wait and fill freed rows.
            A prompt's G samples always enter together, so one group may exceed it.
        eos_token_id: stop token(s); default: the tokenizer's / generation config's EOS.
        share_weights: True reads the weights of `model` itself, re-packing them whenever a
            parameter changed (in-place optimizer steps are detected through tensor versions), so
            `load_weights` has nothing to do. False keeps a private copy that only `load_weights`
            changes.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        dtype: Literal["auto", "bf16", "fp32"] = "auto",
        max_batch_size: int = 256,
        eos_token_id: int | Sequence[int] | None = None,
        share_weights: bool = True,
    ) -> None:
        reason = unsupported_reason(model)
        if reason is not None:
            raise ValueError(f"HFEngine: unsupported model: {reason}")
        if max_batch_size < 1:
            raise ValueError(f"HFEngine: max_batch_size must be >= 1, got {max_batch_size}")
        self.model = model if share_weights else copy.deepcopy(model)
        self.tokenizer = tokenizer
        self.dtype = resolve_dtype(dtype)
        self.max_batch_size = max_batch_size
        self.share_weights = share_weights
        self.eos_ids = eos_ids(model, tokenizer, eos_token_id)
        self.pad_id = getattr(tokenizer, "pad_token_id", None)
        self.vocab_size = int(model.config.vocab_size)
        self.stats: dict[str, int] = {}  # counters for tests and benchmarks, see reset_stats
        self._packed: DecoderWeights | None = None
        self._packed_key: tuple[tuple[int, int], ...] | None = None
        self.reset_stats()

    # ---------------------------------------------------------------- weights
    def load_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Copy named tensors into the engine's model (a no-op for the shared model's own tensors).

        Names are those of `model.named_parameters()` / `state_dict()`; an unknown name raises.
        """
        copy_weights(self.model, named_tensors, owner="HFEngine.load_weights")
        self._packed = None  # re-pack on next use (versions would catch it too)

    def _weights(self) -> DecoderWeights:
        # a parameter's _version increases with every in-place change (optimizer.step, copy_)
        key = tuple((p._version, p.data_ptr()) for p in self.model.parameters())
        if self._packed is None or key != self._packed_key:
            self._packed = pack_weights(self.model, self.dtype)
            self._packed_key = key
        return self._packed

    # ---------------------------------------------------------------- generation
    def generate(
        self, prompt_ids: Sequence[Sequence[int]], params: SamplingParams
    ) -> list[list[Completion]]:
        """Sample `params.n` completions for each prompt (see `RolloutEngine.generate`)."""
        prompts = check_prompts(prompt_ids, self.vocab_size, owner="HFEngine.generate")
        results: list[list[Completion | None]] = [[None] * params.n for _ in prompts]
        if not prompts:
            return []
        seed = params.seed
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,)).item())
        keys = sequence_keys(seed, prompts, params.n)
        capacity = max(len(p) for p in prompts) + params.max_new_tokens
        stops = StopChecker(self.tokenizer, params.stop) if params.stop else None
        waiting = deque(range(len(prompts)))
        with torch.inference_mode():
            w = self._weights()
            batch: ActiveRows | None = None
            while waiting or (batch is not None and batch.size > 0):
                if waiting and self._should_admit(batch, params.n):
                    batch = self._admit(w, batch, prompts, waiting, keys, params, capacity)
                else:
                    assert batch is not None
                    self._step(w, batch, params)
                done = batch.finished(self.eos_ids, params.max_new_tokens, stops)
                if done is not None:
                    for r, reason in done:
                        completion = self._completion(batch, r, reason)
                        results[batch.prompt_of[r]][batch.sample_of[r]] = completion
                    batch = remove_rows(batch, [r for r, _ in done])
        if any(c is None for group in results for c in group):  # pragma: no cover - a bug
            raise RuntimeError("HFEngine.generate: a sequence was never finished")
        return [[c for c in group if c is not None] for group in results]

    def _should_admit(self, batch: ActiveRows | None, n: int) -> bool:
        if batch is None or batch.size == 0:
            return True
        free = self.max_batch_size - batch.size
        return free >= n and free >= self.max_batch_size * _REFILL_FRACTION

    def _admit(
        self,
        w: DecoderWeights,
        batch: ActiveRows | None,
        prompts: list[list[int]],
        waiting: deque[int],
        keys: torch.Tensor,
        params: SamplingParams,
        capacity: int,
    ) -> ActiveRows:
        """Prefill as many waiting prompts as fit (at least one) and sample their first token."""
        free = self.max_batch_size - (batch.size if batch is not None else 0)
        take = [waiting.popleft()]
        while waiting and (len(take) + 1) * params.n <= free:
            take.append(waiting.popleft())
        self.stats["prefill_calls"] += 1
        self.stats["prefill_prompts"] += len(take)
        self.stats["prefill_tokens"] += sum(len(prompts[i]) for i in take)
        items = [(i, prompts[i]) for i in take]
        return admit_rows(w, batch, items, keys, params, capacity, track_text=bool(params.stop))

    def _step(self, w: DecoderWeights, batch: ActiveRows, params: SamplingParams) -> None:
        """One decode step for every row of the batch."""
        batch.reserve(batch.span_after_step())
        logits = decode_step(w, batch.pending, batch.positions, batch.k, batch.v, batch.rope)
        tokens, logprobs = sample_next(
            logits,
            batch.keys,
            batch.ngen,
            temperature=params.temperature,
            top_k=params.top_k,
            top_p=params.top_p,
            greedy=params.greedy,
        )
        batch.record(tokens, logprobs)
        self.stats["decode_steps"] += 1
        self.stats["decode_rows"] += batch.size

    def _completion(
        self, batch: ActiveRows, r: int, reason: Literal["stop", "length"]
    ) -> Completion:
        tokens, logprobs = batch.output(r)
        return self._completion_from(tokens, logprobs, reason)

    def _completion_from(
        self, tokens: list[int], logprobs: list[float], reason: Literal["stop", "length"]
    ) -> Completion:
        return make_completion(
            self.tokenizer, tokens, logprobs, reason, pad_id=self.pad_id, stop_ids=self.eos_ids
        )

    def reset_stats(self) -> None:
        """Zero the counters in `stats` (prefill calls / prompts / tokens, decode steps / rows)."""
        for name in ("prefill_calls", "prefill_prompts", "prefill_tokens", "decode_steps"):
            self.stats[name] = 0
        self.stats["decode_rows"] = 0
