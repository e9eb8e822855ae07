"""A generative pairwise judge (Pairwise-RL, arXiv 2504.04950) usable as a reward.

The judge is any causal LM. It reads a prompt showing the question and two responses, A and B,
and its next-token logits over two answer tokens give

    p(A > B) = exp(l_yes) / (exp(l_yes) + exp(l_no))        (the YES/NO probability, renormalised)

A response y is compared with an anchor y_ref (default: the sample's reference solution, e.g. the
synthetic task's gold trace), in BOTH orders to cancel position bias (techniques.md §11):

    R(x, y) = 0.5 * [ p(y > y_ref | y shown first) + 1 - p(y_ref > y | y_ref shown first) ]

so R(y, z) + R(z, y) = 1 for any judge (swapping the two responses mirrors the reward around 0.5).
`batch` scores a whole rollout batch in one padded forward (2 prompts per completion).
The answer tokens must each be one token of the judge's vocabulary (" YES"/" NO" for most
instruction-tuned LMs; "A"/"B" with the synthetic task's word-level tokenizer).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from reasonrl.models.reward_model import pad_right
from reasonrl.types import Completion, RewardResult, Sample

DEFAULT_TEMPLATE = (
    "{question}\nResponse A: {a}\nResponse B: {b}\nIs response A better than response B? Answer:"
)


def reference_anchor(sample: Sample) -> str:
    """The sample's reference solution: the synthetic gold trace and answer in completion form
    when `meta["trace"]` is there, else the gold answer."""
    trace = sample.meta.get("trace") if sample.meta else None
    if isinstance(trace, str):
        return f" {trace} </solution> <answer> {sample.answer} </answer>"
    return str(sample.answer or "")


class PairwiseJudge:
    """P(YES) pairwise judge with position-swap averaging (module docstring)."""

    def __init__(
        self,
        lm: Any,
        tokenizer: Any,
        *,
        yes: str = " YES",
        no: str = " NO",
        template: str = DEFAULT_TEMPLATE,
        anchor: Callable[[Sample], str] = reference_anchor,
        batch_size: int = 32,
    ) -> None:
        self.lm, self.tokenizer, self.template, self.anchor = lm, tokenizer, template, anchor
        self.yes_id, self.no_id = self._one_token(yes), self._one_token(no)
        self.batch_size = batch_size
        self.__name__ = "judge"

    def _one_token(self, text: str) -> int:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        unk = getattr(self.tokenizer, "unk_token_id", None)
        if len(ids) != 1 or ids[0] == unk:
            raise ValueError(f"judge answer {text!r} is not one token of the judge's vocabulary")
        return int(ids[0])

    def _ids(self, question: str, a: str, b: str) -> list[int]:
        text = self.template.format(question=question, a=a, b=b)
        ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        bos = getattr(self.tokenizer, "bos_token_id", None)
        return [bos, *ids] if bos is not None else ids

    @torch.no_grad()
    def first_better(self, items: Sequence[tuple[str, str, str]]) -> list[float]:
        """p(A > B) for each (question, A, B), from the logits at each prompt's last token."""
        out: list[float] = []
        device = next(self.lm.parameters()).device
        pad = self.tokenizer.pad_token_id
        for i in range(0, len(items), self.batch_size):
            seqs = [self._ids(*it) for it in items[i : i + self.batch_size]]
            ids, mask = pad_right(seqs, pad)
            logits = self.lm(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            last = logits[torch.arange(len(seqs)), mask.sum(1).to(device) - 1].float()
            pair = torch.stack([last[:, self.yes_id], last[:, self.no_id]], -1)
            out += torch.softmax(pair, -1)[:, 0].cpu().tolist()
        return out

    def compare(self, question: str, y: str, z: str) -> float:
        """Swap-averaged P(y beats z): 0.5 * [p(y > z) + 1 - p(z > y)]."""
        p_first, p_second = self.first_better([(question, y, z), (question, z, y)])
        return 0.5 * (p_first + 1.0 - p_second)

    def batch(
        self, samples: Sequence[Sample], completions: Sequence[Completion]
    ) -> list[RewardResult]:
        """The reward of each completion against its sample's anchor, one batched judging pass."""
        items: list[tuple[str, str, str]] = []
        for s, c in zip(samples, completions, strict=True):
            ref = self.anchor(s)
            items += [(s.prompt, c.text, ref), (s.prompt, ref, c.text)]
        p = self.first_better(items)
        return [
            RewardResult(0.5 * (p[2 * k] + 1.0 - p[2 * k + 1]),
                         {"judge_first": p[2 * k], "judge_swapped": p[2 * k + 1]})
            for k in range(len(samples))
        ]  # fmt: skip

    def __call__(self, sample: Sample, completion: Completion) -> RewardResult:
        return self.batch([sample], [completion])[0]


__all__ = ["DEFAULT_TEMPLATE", "PairwiseJudge", "reference_anchor"]
