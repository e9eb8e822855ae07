"""The rollout seam: sampling settings and the engine protocol every backend implements.

An engine turns prompt token ids into `Completion`s (reasonrl.types): response token ids, the
sampler's own log-probs of those tokens, decoded text and a finish reason. The trainer only talks
to this protocol, so the local CPU engine (`hf_engine.HFEngine`) and the optional vLLM engine
(`vllm_engine.VLLMEngine`) are interchangeable.

Conventions shared by every engine (the trainer relies on them):
- `Completion.logprobs[t] = log_softmax(logits_t / T)[token_t]` with T = `temperature`, i.e. the
  log-prob the trainer computes with the same temperature, over the FULL vocabulary: top-k/top-p
  truncation decides which token is drawn but is not renormalised into the reported log-prob.
  With `greedy=True` the temperature is ignored and log-probs are of the T=1 distribution.
- `Completion.token_ids` holds the response only, including the EOS token when one was sampled.
- `Completion.text` is `tokenizer.decode(token_ids, skip_special_tokens=False)` with pad tokens
  dropped first, so the text a reward sees matches the tokens that get trained.
- A stop string ends the sequence at the token that completes it; that token and the stop string
  stay in `token_ids` and `text` (nothing is cut mid-token), finish reason "stop".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:  # torch stays out of `import reasonrl.rollout`
    import torch

    from reasonrl.types import Completion


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """How to sample completions.

    n: completions per prompt (the group size G); the prompt is encoded once and shared.
    max_new_tokens: hard cap on response tokens; hitting it gives finish_reason "length".
    temperature: logits are divided by it before sampling and before computing log-probs;
        0 means greedy (the T -> 0 limit: `greedy` is set to True).
    top_p: nucleus sampling, keep the smallest set of tokens whose probability reaches top_p
        (arXiv 1904.09751); 1.0 = off.
    top_k: keep the k most likely tokens; 0 = off.
    greedy: take the argmax (temperature ignored; log-probs reported at T=1).
    stop: stop strings, matched on the decoded response text.
    seed: makes sampling reproducible: the same seed, prompt and sample index give the same tokens
        whatever else is in the batch. None draws a seed from torch's global generator.
    """

    n: int = 1
    max_new_tokens: int = 128
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    greedy: bool = False
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.temperature == 0 and not self.greedy:  # T = 0 is the argmax, everywhere
            object.__setattr__(self, "greedy", True)
        if self.n < 1:
            raise ValueError(f"SamplingParams.n must be >= 1, got {self.n}")
        if self.max_new_tokens < 1:
            raise ValueError(
                f"SamplingParams.max_new_tokens must be >= 1, got {self.max_new_tokens}"
            )
        if not self.greedy and not self.temperature > 0.0:
            raise ValueError(
                f"SamplingParams.temperature must be > 0 (use greedy=True for argmax), "
                f"got {self.temperature}"
            )
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"SamplingParams.top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"SamplingParams.top_k must be >= 0 (0 = off), got {self.top_k}")
        if isinstance(self.stop, str):
            raise TypeError("SamplingParams.stop must be a tuple of strings, not a single string")
        if any(not s for s in self.stop):
            raise ValueError("SamplingParams.stop must not contain empty strings")


@runtime_checkable
class RolloutEngine(Protocol):
    """Samples completions for token-id prompts; receives weight updates from the trainer."""

    def generate(
        self, prompt_ids: Sequence[Sequence[int]], params: SamplingParams
    ) -> list[list[Completion]]:
        """Sample `params.n` completions per prompt.

        Args:
            prompt_ids: B prompts, each a sequence of token ids (no padding).
            params: sampling settings.

        Returns:
            B lists of G = params.n completions, in prompt order.
        """
        ...

    def load_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Copy the trainer's weights (names as in the HF model's `named_parameters()`)."""
        ...
