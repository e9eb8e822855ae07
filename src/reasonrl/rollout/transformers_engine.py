"""A rollout engine for ANY Hugging Face causal LM, on the model's own forward and KV cache.

`hf_engine.HFEngine` is faster but its fused decoder knows only a few architectures; this engine
runs whatever `AutoModelForCausalLM` gives (gpt2, llama, qwen2/3, mistral, gemma, phi3, olmo2 ...)
through `model(input_ids, attention_mask, position_ids, cache)`, so the logits are exactly the
trainer's (`rl/logprobs.py` calls the same forward).

How a call runs:
- prompts are taken in waves of whole groups (at most `max_batch_size` rows, at least one
  prompt); a wave's prompts are left-padded and prefilled ONCE, with the attention mask and
  explicit position ids of `rl.batching.collate`, so padding is invisible, exactly as in training;
- each prompt's cache is replicated to its G = n sample rows (`Cache.batch_repeat_interleave`);
- one decode step feeds every live row its last token; finished rows leave the batch at once
  (`Cache.batch_select_indices` on the unfinished rows), so the cost follows the mean length;
- tokens and log-probs come from `sampling.sample_next` with per-sequence keys and `steps` = the
  response position, so with a seed a sequence's tokens depend only on (seed, prompt, sample
  index), not on which other prompts share the call or the wave.

Conventions (shared with every engine) are in `base.py`; the pieces common with `HFEngine`
(prompt checks, EOS ids, completion text, weight copies) are in `completions.py`.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import torch

from reasonrl.rollout.base import SamplingParams
from reasonrl.rollout.completions import check_prompts, copy_weights, eos_ids, make_completion
from reasonrl.rollout.sampling import sample_next, sequence_keys
from reasonrl.rollout.stops import StopChecker
from reasonrl.runtime.precision import autocast, resolve_dtype
from reasonrl.types import Completion, FinishReason


class TransformersEngine:
    """Batched sampler for any HF `*ForCausalLM` with a batch-editable KV cache (`RolloutEngine`).

    Args:
        model: the HF causal LM (the trainer's model when `share_weights`).
        tokenizer: used to decode completions (and to check stop strings).
        dtype: "bf16" runs the forward under bf16 autocast, "fp32" reproduces the trainer's fp32
            log-probs, "auto" picks bf16 where it is fast (`runtime.precision`), judged on the
            device the model's parameters live on.
        max_batch_size: most rows (sequences) in one wave; a prompt's G samples always go
            together, so one group may exceed it.
        eos_token_id: stop token(s); default: the generation config's / tokenizer's EOS.
        share_weights: True samples from `model` itself (a weight sync is free, `load_weights`
            skips its own tensors); False keeps a private deep copy that only `load_weights`
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
        if max_batch_size < 1:
            raise ValueError(
                f"TransformersEngine: max_batch_size must be >= 1, got {max_batch_size}"
            )
        self.model = model if share_weights else copy.deepcopy(model)
        self.tokenizer = tokenizer
        self.device = next(self.model.parameters()).device
        self.dtype = resolve_dtype(dtype, self.device)
        self._autocast_dtype = dtype
        self.max_batch_size = max_batch_size
        self.share_weights = share_weights
        self.eos_ids = eos_ids(model, tokenizer, eos_token_id)
        self.pad_id = getattr(tokenizer, "pad_token_id", None)
        self.vocab_size = int(self.model.get_input_embeddings().weight.shape[0])
        # left padding needs some valid id; it is masked out, so which one does not matter
        self._fill_id = self.pad_id if self.pad_id is not None and self.pad_id >= 0 else 0
        if self._fill_id >= self.vocab_size:
            self._fill_id = 0
        forward_args = inspect.signature(self.model.forward).parameters
        # transformers 5 renamed `past_key_values` to `cache` (the old name is deprecated)
        self._cache_arg = "cache" if "cache" in forward_args else "past_key_values"
        self._keep_last = "logits_to_keep" in forward_args  # prefill computes only the last logits
        self.stats: dict[str, int] = {}  # counters for tests and benchmarks, see reset_stats
        self.reset_stats()

    # ---------------------------------------------------------------- weights
    def load_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Copy named tensors into the engine's model (a no-op for the shared model's own tensors).

        Names are those of `model.named_parameters()` / `state_dict()`; an unknown name raises.
        """
        copy_weights(self.model, named_tensors, owner="TransformersEngine.load_weights")

    # ---------------------------------------------------------------- generation
    def generate(
        self, prompt_ids: Sequence[Sequence[int]], params: SamplingParams
    ) -> list[list[Completion]]:
        """Sample `params.n` completions for each prompt (see `RolloutEngine.generate`)."""
        prompts = check_prompts(prompt_ids, self.vocab_size, owner="TransformersEngine.generate")
        if not prompts:
            return []
        seed = params.seed
        if seed is None:  # drawn from torch's global generator, as HFEngine does
            seed = int(torch.randint(0, 2**62, (1,)).item())
        keys = sequence_keys(seed, prompts, params.n).to(self.device)
        stops = StopChecker(self.tokenizer, params.stop) if params.stop else None
        results: list[list[Completion]] = []
        with (
            torch.inference_mode(),
            _sampling_mode(self.model),
            autocast(self._autocast_dtype, self.device),
        ):
            for wave in self._waves(len(prompts), params.n):
                results.extend(self._generate_wave(prompts, wave, keys, params, stops))
        return results

    def _waves(self, n_prompts: int, n: int) -> Iterator[list[int]]:
        """Consecutive prompt indices, as many whole groups as fit `max_batch_size` (>= 1)."""
        per_wave = max(1, self.max_batch_size // n)
        for start in range(0, n_prompts, per_wave):
            yield list(range(start, min(start + per_wave, n_prompts)))

    def _generate_wave(
        self,
        prompts: list[list[int]],
        wave: list[int],
        keys: torch.Tensor,
        params: SamplingParams,
        stops: StopChecker | None,
    ) -> list[list[Completion]]:
        """Prefill the wave's prompts once, then decode until every row has finished."""
        n, max_new, dev = params.n, params.max_new_tokens, self.device
        logits, cache, mask, last_pos = self._prefill([prompts[b] for b in wave])
        cache.batch_repeat_interleave(n)  # each prompt's keys/values to its G sample rows
        logits = logits.repeat_interleave(n, dim=0)
        mask = mask.repeat_interleave(n, dim=0)
        positions = last_pos.repeat_interleave(n) + 1  # where each row's next token goes
        rows = len(wave) * n
        row_keys = torch.cat([keys[b * n : (b + 1) * n] for b in wave])
        out_tokens = torch.zeros((rows, max_new), dtype=torch.long, device=dev)
        out_logprobs = torch.zeros((rows, max_new), dtype=torch.float32, device=dev)
        lengths = [0] * rows
        reasons: list[FinishReason] = ["length"] * rows
        recent: list[list[int]] = [[] for _ in range(rows)]  # host tokens, for stop strings
        live = torch.arange(rows, device=dev)  # wave row of each batch row
        live_host = list(range(rows))
        for step in range(max_new):
            steps = torch.full((len(live_host),), step, dtype=torch.long, device=dev)
            tokens, logprobs = sample_next(
                logits,
                row_keys,
                steps,
                temperature=params.temperature,
                top_k=params.top_k,
                top_p=params.top_p,
                greedy=params.greedy,
            )
            out_tokens[live, step] = tokens
            out_logprobs[live, step] = logprobs
            keep: list[int] = []
            for r, (row, token) in enumerate(zip(live_host, tokens.tolist())):
                lengths[row] = step + 1
                stopped = False
                if stops is not None:
                    recent[row].append(token)
                    stopped = stops.hit(recent[row])
                if token in self.eos_ids or stopped:
                    reasons[row] = "stop"
                elif step + 1 < max_new:
                    keep.append(r)
            if not keep:  # always true at the last step
                break
            if len(keep) < len(live_host):  # finished rows leave the batch
                idx = torch.tensor(keep, dtype=torch.long, device=dev)
                cache.batch_select_indices(idx)
                mask, positions, tokens = mask[idx], positions[idx], tokens[idx]
                row_keys, live = row_keys[idx], live[idx]
                live_host = [live_host[r] for r in keep]
            # feed every live row its token: the cache and the mask grow by one column
            mask = torch.cat([mask, mask.new_ones((len(live_host), 1))], dim=1)
            logits = self._forward(tokens[:, None], mask, positions[:, None], cache)[:, -1]
            positions = positions + 1
            self.stats["decode_steps"] += 1
            self.stats["decode_rows"] += len(live_host)
        tokens_host, logprobs_host = out_tokens.tolist(), out_logprobs.tolist()
        groups = []
        for i in range(len(wave)):
            group = []
            for row in range(i * n, (i + 1) * n):
                m = lengths[row]
                group.append(
                    make_completion(
                        self.tokenizer,
                        tokens_host[row][:m],
                        logprobs_host[row][:m],
                        reasons[row],
                        pad_id=self.pad_id,
                        stop_ids=self.eos_ids,
                    )
                )
            groups.append(group)
        return groups

    def _prefill(
        self, prompts: list[list[int]]
    ) -> tuple[torch.Tensor, Any, torch.Tensor, torch.Tensor]:
        """One forward over the left-padded prompts (mask and position ids as `collate`).

        Returns:
            the last column's logits (P, V), the filled cache, the attention mask (P, Lp) and
            each prompt's last position id (P,).
        """
        dev, width = self.device, max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), self._fill_id, dtype=torch.long, device=dev)
        mask = torch.zeros((len(prompts), width), dtype=torch.long, device=dev)
        for i, ids in enumerate(prompts):
            input_ids[i, width - len(ids) :] = torch.tensor(ids, dtype=torch.long, device=dev)
            mask[i, width - len(ids) :] = 1
        position_ids = (mask.cumsum(dim=1) - 1).clamp(min=0)
        extra = {"logits_to_keep": 1} if self._keep_last else {}
        out = self.model(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=position_ids,
            use_cache=True,
            **extra,
        )
        self.stats["prefill_calls"] += 1
        self.stats["prefill_prompts"] += len(prompts)
        self.stats["prefill_tokens"] += sum(len(p) for p in prompts)
        return out.logits[:, -1], _returned_cache(out), mask, position_ids[:, -1]

    def _forward(
        self, input_ids: torch.Tensor, mask: torch.Tensor, position_ids: torch.Tensor, cache: Any
    ) -> torch.Tensor:
        """The model's logits (W, 1, V) for one new token per row, appended to `cache`."""
        out = self.model(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=position_ids,
            use_cache=True,
            **{self._cache_arg: cache},
        )
        return out.logits

    def reset_stats(self) -> None:
        """Zero the counters in `stats` (prefill calls / prompts / tokens, decode steps / rows).

        decode_rows sums the batch size over decode steps: with early exit it is below
        rows * steps as soon as some rows finish early.
        """
        for name in ("prefill_calls", "prefill_prompts", "prefill_tokens", "decode_steps"):
            self.stats[name] = 0
        self.stats["decode_rows"] = 0


def _returned_cache(out: Any) -> Any:
    """The KV cache a forward with use_cache=True returned (`cache` in transformers 5)."""
    cache = getattr(out, "cache", None)
    if cache is None:
        cache = getattr(out, "past_key_values", None)
    if not (hasattr(cache, "batch_repeat_interleave") and hasattr(cache, "batch_select_indices")):
        raise TypeError(
            "TransformersEngine: the model returned no batch-editable KV cache "
            f"(got {type(cache).__name__}); it needs a transformers Cache with "
            "batch_repeat_interleave / batch_select_indices"
        )
    return cache


@contextmanager
def _sampling_mode(model: torch.nn.Module) -> Iterator[None]:
    """Eval mode (no dropout) for the call, then every module's own previous mode back.

    Each module's flag is restored individually (not `model.train(prev)`), so a trainer that keeps
    some submodules in eval mode (e.g. a frozen part) finds them as it left them.
    """
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, was_training in modes:
            m.training = was_training
