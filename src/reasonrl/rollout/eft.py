"""The EFT rollout engine: sample from a large base up-scaled by a small pair's fine-tuning delta.

EFT (arXiv 2310.12962; the formula is `algos.eft.eft_logprobs`) needs, at every decode step, the
next-token distributions of three causal LMs that share one tokenizer: the large base, the small
fine-tuned model and the small base. `EFTModel` wraps the three as ONE causal LM whose "logits"
are the normalised EFT log-probs and whose KV cache (`EFTCache`) holds the three models' caches,
so `TransformersEngine`'s decode loop runs on it unchanged:

- the prompt is prefilled in all three models (same left-padded ids, mask and position ids);
- each step feeds the drawn token to all three, each appending to its own cache: the caches stay
  in step because every batch edit (G-fold replication of a prompt's rows, dropping finished
  rows) is applied to all three at once;
- sampling (temperature, top-k, top-p, seeded per-sequence noise: `sampling.sample_next`), stop
  strings (`stops.StopChecker`) and completion records (`completions.make_completion`) are the
  shared ones, so the conventions of `base.py` hold: `Completion.logprobs` are log-probs of the
  EFT distribution at temperature T (log_softmax(eft / T)[token]).

Cost per token: one forward of each model (the large base dominates when it is the big one).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from reasonrl.algos.eft import DEFAULT_BETA, eft_logprobs
from reasonrl.rollout.completions import copy_weights
from reasonrl.rollout.transformers_engine import TransformersEngine


class EFTCache:
    """The three models' KV caches, edited together (the batch edits the engine makes)."""

    def __init__(self, caches: Sequence[Any]) -> None:
        self.caches = list(caches)

    def batch_repeat_interleave(self, repeats: int) -> None:
        """Replicate every row `repeats` times in all three caches (one prompt -> G samples)."""
        for cache in self.caches:
            cache.batch_repeat_interleave(repeats)

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep rows `indices` in all three caches (finished rows leave the batch)."""
        for cache in self.caches:
            cache.batch_select_indices(indices)


@dataclass
class EFTOutput:
    """What `EFTModel.forward` returns: EFT log-probs as `logits` (W, L, V) and the cache."""

    logits: torch.Tensor
    cache: EFTCache | None


def vocab_size_of(model: Any) -> int:
    """Rows of the model's output (LM head) matrix: the V its logits have."""
    head = model.get_output_embeddings()
    if head is None:
        head = model.get_input_embeddings()
    return int(head.weight.shape[0])


class EFTModel(torch.nn.Module):
    """Three causal LMs as one whose logits are the EFT log-probs (`algos.eft.eft_logprobs`).

    Args:
        large_base: the large base model (its device, embeddings and generation config are the
            wrapper's).
        small_ft: the small fine-tuned model.
        small_base: the small base model it was fine-tuned from.
        beta: weight of the delta log pi_ft^S - log pi_base^S (1 = up-scaling, 0 = the large
            base alone); >= 0.

    Raises:
        ValueError: the three output vocabularies differ (EFT adds log-probs token by token, so
            the models must share one tokenizer), or beta < 0.
    """

    def __init__(
        self, large_base: Any, small_ft: Any, small_base: Any, *, beta: float = DEFAULT_BETA
    ) -> None:
        super().__init__()
        if not beta >= 0:
            raise ValueError(f"EFTModel: beta must be >= 0, got {beta}")
        sizes = [vocab_size_of(m) for m in (large_base, small_ft, small_base)]
        if len(set(sizes)) != 1:
            raise ValueError(
                "EFTModel: the three models need one shared vocabulary; output sizes "
                f"large_base={sizes[0]}, small_ft={sizes[1]}, small_base={sizes[2]}"
            )
        self.large_base, self.small_ft, self.small_base = large_base, small_ft, small_base
        self.beta = float(beta)
        self.generation_config = getattr(large_base, "generation_config", None)
        self.config = getattr(large_base, "config", None)
        self._args = [_forward_args(m) for m in self.members()]

    def members(self) -> tuple[Any, Any, Any]:
        """(large_base, small_ft, small_base), the order of `EFTCache.caches`."""
        return (self.large_base, self.small_ft, self.small_base)

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.large_base.get_input_embeddings()

    def get_output_embeddings(self) -> torch.nn.Module | None:
        return self.large_base.get_output_embeddings()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        use_cache: bool = False,
        cache: EFTCache | None = None,
        logits_to_keep: int = 0,
    ) -> EFTOutput:
        """EFT log-probs at every kept position (all when logits_to_keep = 0), same inputs to
        all three models; with `use_cache`, each model reads and extends its own cache."""
        outs = []
        for i, (model, (cache_arg, keeps)) in enumerate(zip(self.members(), self._args)):
            extra: dict[str, Any] = {}
            if cache is not None:
                extra[cache_arg] = cache.caches[i]
            if keeps and logits_to_keep:
                extra["logits_to_keep"] = logits_to_keep
            outs.append(
                model(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    position_ids=position_ids,
                    use_cache=use_cache,
                    **extra,
                )
            )
        logits = [o.logits for o in outs]
        if logits_to_keep:  # a model without logits_to_keep returned every position
            logits = [z[:, -logits_to_keep:] for z in logits]
        combined = eft_logprobs(*logits, beta=self.beta)
        new_cache = None
        if use_cache:
            new_cache = cache if cache is not None else EFTCache([_cache_of(o) for o in outs])
        return EFTOutput(logits=combined, cache=new_cache)


class EFTEngine(TransformersEngine):
    """`RolloutEngine` sampling from EFT(large_base, small_ft, small_base) (arXiv 2310.12962).

    The decode loop, waves, early exit, sampler and completions are `TransformersEngine`'s, run
    on `EFTModel`; see the module docstring for how the three caches stay in step.

    Args:
        large_base, small_ft, small_base: HF causal LMs sharing one tokenizer / vocabulary.
        tokenizer: the shared tokenizer (decodes completions, checks stop strings).
        beta: weight of the small pair's delta (1 = EFT up-scaling, 0 = the large base).
        dtype, max_batch_size, eos_token_id: as `TransformersEngine` (EOS: the large base's).
        share_weights: False deep-copies the three models.
    """

    def __init__(
        self,
        large_base: Any,
        small_ft: Any,
        small_base: Any,
        tokenizer: Any,
        *,
        beta: float = DEFAULT_BETA,
        dtype: Literal["auto", "bf16", "fp32"] = "auto",
        max_batch_size: int = 256,
        eos_token_id: int | Sequence[int] | None = None,
        share_weights: bool = True,
    ) -> None:
        super().__init__(
            EFTModel(large_base, small_ft, small_base, beta=beta),
            tokenizer,
            dtype=dtype,
            max_batch_size=max_batch_size,
            eos_token_id=eos_token_id,
            share_weights=share_weights,
        )

    def load_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Copy weights into the SMALL FINE-TUNED model (the one a trainer would be tuning);
        names are its own `named_parameters()`."""
        copy_weights(self.model.small_ft, named_tensors, owner="EFTEngine.load_weights")


def _forward_args(model: Any) -> tuple[str, bool]:
    """(name of the cache argument, whether logits_to_keep is accepted) of `model.forward`."""
    params = inspect.signature(model.forward).parameters
    # transformers 5 renamed `past_key_values` to `cache` (the old name is deprecated)
    return ("cache" if "cache" in params else "past_key_values"), "logits_to_keep" in params


def _cache_of(out: Any) -> Any:
    cache = getattr(out, "cache", None)
    return cache if cache is not None else getattr(out, "past_key_values", None)
