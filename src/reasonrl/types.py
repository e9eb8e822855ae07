"""Typed records that flow through one RL step.

Shape legend used across reasonrl:
    B  prompts in a step          G  completions per prompt (group size)
    N  = B * G sequences          T  response tokens (padded)      L  prompt + response tokens

A field never changes meaning mid-pipeline: `RewardResult.score` stays the reward, advantages are
computed into their own tensor in `Batch`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # torch stays out of `import reasonrl`
    import torch

FinishReason = Literal["stop", "length"]


@dataclass(frozen=True, slots=True)
class Sample:
    """One problem: the prompt text, the gold answer and task-specific metadata.

    `meta` holds what a verifier needs (e.g. the gold trace and op count of a synthetic problem,
    the unit tests of a code problem). `id` is stable across runs (used for held-out splits).
    """

    id: str
    prompt: str
    answer: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Completion:
    """One sampled continuation of a prompt, as the rollout engine produced it.

    token_ids: response tokens only (prompt excluded), including a final EOS if one was sampled.
    logprobs: the sampler's own log-probability of each token in `token_ids` (same length), kept so
        the trainer can correct for rollout/trainer mismatch (arXiv 2512.01374).
    finish_reason: "stop" (EOS or stop string) or "length" (hit max_new_tokens: truncated).
    """

    text: str
    token_ids: tuple[int, ...]
    logprobs: tuple[float, ...]
    finish_reason: FinishReason = "stop"

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"


@dataclass(frozen=True, slots=True)
class RewardResult:
    """Output of a reward function. `score=None` means "not applicable" (not zero).

    score: the reward. None = not applicable to this sample (a combination skips it).
    info: extra diagnostics only (e.g. the synthetic task's `process` and error counts, a
        grader's extraction rule, `failed`/`error`/`error_kind` on a failure); nothing that one
        of the typed fields below already says.
    answer: the answer the completion gave, already normalised by the task so that equal answers
        compare equal as strings (maj@k votes on it); None = no answer parsed. The task's gold
        answer in the same form comes from the reward's `gold_answer` (`rewards.api.gold_answer`).
    outcome: whether the final answer is right; None = the reward does not know (then a full
        score, >= 1, counts as right in evaluation).
    verified: process-verified, every step and the answer right (strict pass@k); None = not a
        process-verified task.

    `RewardResult(score, info)` keeps working: the typed fields come after `info`, with defaults.
    """

    score: float | None
    info: dict[str, Any] = field(default_factory=dict)
    answer: str | None = None
    outcome: bool | None = None
    verified: bool | None = None


@dataclass(frozen=True, slots=True)
class Rollout:
    """A prompt, one completion of it and its reward; `group` indexes the prompt within the step."""

    sample: Sample
    prompt_ids: tuple[int, ...]
    completion: Completion
    reward: RewardResult
    group: int
    advantage: float | None = None  # the completion's mean advantage over its trained tokens


@dataclass(frozen=True, slots=True)
class Batch:
    """Padded tensors for the update: prompts left-padded to P columns, responses right-padded to T.

    Every response therefore starts at column P, so the logits that predict it are `[:, P-1:P+T-1]`.

    input_ids       (N, P+T) long   left-padded prompt, then response, then right padding
    attention_mask  (N, P+T) long   1 on real tokens
    position_ids    (N, P+T) long   0.. over real tokens (so padding side changes nothing)
    response_mask   (N, T) float    1 on response tokens with loss (0 on padding / tool output)
    rollout_logprobs(N, T) float    the sampler's log-probs of the response tokens
    advantages      (N, T) float    per-token advantages
    old_logprobs    (N, T) float | None   trainer log-probs before the update (PPO denominator)
    ref_logprobs    (N, T) float | None   reference-model log-probs (only when KL is enabled)
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    response_mask: torch.Tensor
    rollout_logprobs: torch.Tensor
    advantages: torch.Tensor
    old_logprobs: torch.Tensor | None = None
    ref_logprobs: torch.Tensor | None = None

    @property
    def prompt_len(self) -> int:
        return self.input_ids.shape[1] - self.response_mask.shape[1]

    def to(self, device: str | torch.device) -> Batch:
        moved = {
            name: (None if getattr(self, name) is None else getattr(self, name).to(device))
            for name in self.__dataclass_fields__
        }
        return Batch(**moved)

    def select(self, index: torch.Tensor) -> Batch:
        """Rows `index` of every tensor (micro-batching)."""
        picked = {
            name: (None if getattr(self, name) is None else getattr(self, name)[index])
            for name in self.__dataclass_fields__
        }
        return Batch(**picked)

    def with_fields(self, **changes: Any) -> Batch:
        return replace(self, **changes)
