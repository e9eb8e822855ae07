"""Sample-and-score evaluation: pass@k, strict (process-verified) pass@k and maj@k, per op.

    result = evaluate(model, tokenizer, samples, samples_per_problem=8, temperature=1.0)
    print(markdown_table(result))         # reasonrl.eval.tables

    reasonrl eval MODEL --data heldout.jsonl --samples 8 --temperature 1.0 [--greedy] [--out DIR]

Every prompt goes through one `engine.generate` call (the rollout engine batches and refills), then
each completion is scored by a reward function whose `RewardResult` carries `outcome` (final answer
right) and, for process-verified tasks, `verified` (every step right too, arXiv 2512.07783).
Outcome metrics are inflated by guessing on small-number answers, so strict metrics are always
reported beside them when the reward provides them (the guessing floor is measured in
benchmarks/base_checkpoint.md).

Metrics per group (`op` from `Sample.meta`, else "all") and overall (mean over problems):
pass@k and strict_pass@k by the unbiased estimator for k = 1, 2, 4, ..., n (arXiv 2107.03374);
maj@k = majority vote of the first k parsed answers (`RewardResult.answer`, normalised by the
task) against the reward's `gold_answer` in the same form (arXiv 2203.11171), absent when the
reward defines no gold answer (code tests, countdown); mean completion tokens and truncation rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reasonrl.data.templates import PromptFormat, prompt_token_ids
from reasonrl.eval.result import EvalResult, ProblemRecord, group_metrics
from reasonrl.rewards.api import RewardFn, call_reward, gold_answer, is_correct
from reasonrl.types import Completion, RewardResult, Sample


def default_reward(sample: Sample, completion: Completion) -> RewardResult:
    """The synthetic task's process-verified reward (outcome, verified and answer typed)."""
    from reasonrl.tasks.synth import SYNTH_REWARDS

    return SYNTH_REWARDS["process"](sample, completion)


def reward_by_name(name: str) -> RewardFn:
    """`synth` (process-verified synthetic task) or a name of `reasonrl.rewards.REWARDS`."""
    if name == "synth":
        return default_reward
    from reasonrl.rewards import REWARDS

    if name not in REWARDS:
        raise ValueError(f"unknown reward {name!r}; choose synth or one of {sorted(REWARDS)}")
    return REWARDS[name]


# The reward that scores each benchmark of `reasonrl.data.benchmarks.BENCHMARKS` (a name of
# `reasonrl.rewards.REWARDS`): the math grader for answers, unit tests for HumanEval, the
# countdown checker for equations.
BENCHMARK_REWARDS = {
    "gsm8k_train": "math", "gsm8k_test": "math", "math500": "math", "math_test": "math",
    "aime24": "math", "humaneval": "code_tests", "countdown": "countdown",
}  # fmt: skip


def _synth_gold(sample: Sample) -> str | None:
    from reasonrl.tasks.synth.reward import gold_answer_key

    return gold_answer_key(sample)


default_reward.gold_answer = _synth_gold  # type: ignore[attr-defined]  # maj@k's gold


def score_problem(
    sample: Sample,
    completions: Sequence[Completion],
    reward_fn: RewardFn,
    *,
    keep_text: bool,
    timeout_s: float | None = None,
) -> ProblemRecord:
    """Score each completion; a reward that raises, or runs past `timeout_s`, scores that sample
    as wrong (never the run).

    Correct (outcome) = `is_correct`; strict = `verified` (None for every completion: no strict
    metrics); maj@k needs the reward's `gold_answer` for this sample (else `gold` is None).
    """
    outcome, verified, answers = [], [], []
    for comp in completions:
        result = call_reward(reward_fn, sample, comp, timeout_s=timeout_s)
        outcome.append(is_correct(result))
        verified.append(result.verified)
        answers.append(result.answer)
    # a process-verified task reports `verified`; a completion whose reward failed (None) is
    # then unverified, not a reason to drop the problem's strict metrics
    has_strict = any(v is not None for v in verified)
    strict = [bool(v) for v in verified]
    meta_op = sample.meta.get("op") if sample.meta else None
    return ProblemRecord(
        id=sample.id,
        group=str(meta_op) if meta_op is not None else "all",
        gold=gold_answer(reward_fn, sample),
        outcome=outcome,
        strict=strict if has_strict else None,
        answers=answers,
        lengths=[len(c.token_ids) for c in completions],
        truncated=[c.finish_reason == "length" for c in completions],
        texts=[c.text for c in completions] if keep_text else [],
    )


def _group_key(name: str) -> tuple[int, str]:
    return (int(name), "") if name.isdigit() else (10**9, name)


def evaluate(
    model: Any,
    tokenizer: Any,
    samples: Sequence[Sample],
    *,
    samples_per_problem: int = 8,
    temperature: float = 1.0,
    greedy: bool = False,
    max_new_tokens: int = 256,
    engine: Any = None,
    seed: int = 0,
    reward_fn: RewardFn | None = None,
    keep_text: bool = False,
    reward_timeout_s: float | None = None,
    prompt_format: PromptFormat | None = None,
) -> EvalResult:
    """Sample completions for every problem and compute pass@k / strict pass@k / maj@k per op.

    Args:
        model: the policy (used to build a local engine when `engine` is None).
        tokenizer: its tokenizer (prompts are encoded with `data.templates.prompt_token_ids`,
            as in RL and SFT).
        samples: P problems; `meta["op"]` groups them (others go to group "all").
        samples_per_problem: n completions per problem (forced to 1 when greedy).
        temperature: sampling temperature (ignored when greedy); 0 means greedy.
        greedy: argmax decoding, one completion per problem.
        max_new_tokens: cap per completion (hitting it counts as truncated).
        engine: any `RolloutEngine`; default `rollout.registry.local_engine(model, tokenizer)`
            (rollout.engine=auto on the model's device).
        seed: sampling seed (same seed => same completions).
        reward_fn: (sample, completion) -> RewardResult (the project's reward contract); its
            `outcome` / `verified` / `answer` (with the reward's `gold_answer`) give outcome,
            strict and maj@k (without `outcome`, a full score counts as correct). Default: the
            synthetic task's process-verified reward.
        keep_text: keep completion texts in the records (for inspection).
        reward_timeout_s: seconds one reward call may take (then a failed sample); None = no
            limit.
        prompt_format: template, system prompt and instruction of the prompts
            (`data.templates.PromptFormat`); None = the prompt as is.

    Returns:
        EvalResult with `overall` (mean over all problems), `per_op` and per-problem records.
    """
    from reasonrl.rollout.base import SamplingParams

    if not samples:
        raise ValueError("evaluate: no samples")
    greedy = greedy or temperature == 0  # T -> 0 is the argmax: the one meaning of T = 0
    n = 1 if greedy else samples_per_problem
    if engine is None:  # the fused CPU decoder where it supports the model, else transformers
        from reasonrl.rollout.registry import local_engine

        engine = local_engine(model, tokenizer)
    params = SamplingParams(n=n, max_new_tokens=max_new_tokens, temperature=temperature,
                            greedy=greedy, seed=seed)  # fmt: skip
    prompts = [prompt_token_ids(tokenizer, s, prompt_format) for s in samples]
    groups = engine.generate(prompts, params)
    settings = {"samples_per_problem": n, "temperature": None if greedy else temperature,
                "greedy": greedy, "max_new_tokens": max_new_tokens, "seed": seed,
                "problems": len(samples)}  # fmt: skip
    if prompt_format is not None and prompt_format != PromptFormat():  # recorded when not as is
        settings |= {"template": prompt_format.template, "system_prompt": prompt_format.system,
                     "instruction": prompt_format.instruction}  # fmt: skip
    return score_groups(samples, groups, settings, reward_fn=reward_fn, keep_text=keep_text,
                        reward_timeout_s=reward_timeout_s)  # fmt: skip


def score_groups(
    samples: Sequence[Sample],
    groups: Sequence[Sequence[Completion]],
    settings: dict[str, Any],
    *,
    reward_fn: RewardFn | None = None,
    keep_text: bool = False,
    reward_timeout_s: float | None = None,
) -> EvalResult:
    """Score already sampled completions (`groups[i]` for `samples[i]`, n =
    `settings["samples_per_problem"]` each) into an EvalResult: what `evaluate` does after
    sampling, and what a multi-turn evaluation calls on its episodes' transcripts."""
    n = int(settings["samples_per_problem"])
    reward = reward_fn or default_reward
    records = [
        score_problem(s, comps, reward, keep_text=keep_text, timeout_s=reward_timeout_s)
        for s, comps in zip(samples, groups, strict=True)
    ]
    by_group: dict[str, list[ProblemRecord]] = {}
    for rec in records:
        by_group.setdefault(rec.group, []).append(rec)
    per_op = {g: group_metrics(by_group[g], n) for g in sorted(by_group, key=_group_key)}
    return EvalResult(group_metrics(records, n), per_op, settings, records)


def load_samples(path: str | Path, *, limit_per_op: int | None = None) -> list[Sample]:
    """Samples from a JSONL of synthetic rows (`row_to_sample`) or generic prompt/answer rows."""
    from reasonrl.data.loaders import read_jsonl_rows
    from reasonrl.tasks.synth import row_to_sample

    samples: list[Sample] = []
    counts: dict[Any, int] = {}
    for index, row in enumerate(read_jsonl_rows(path)):
        if "trace" in row and "op" in row:
            sample = row_to_sample(row)
        elif isinstance(row.get("prompt"), str):
            meta = {k: v for k, v in row.items() if k not in ("id", "prompt", "answer")}
            sample = Sample(id=str(row.get("id", index)), prompt=row["prompt"],
                            answer=None if row.get("answer") is None else str(row["answer"]),
                            meta=meta)  # fmt: skip
        else:
            raise ValueError(
                f"{path} row {index}: needs a 'prompt' (and 'answer' or synth fields); map other "
                "columns with `reasonrl eval --field prompt=COLUMN`, or read a shared benchmark "
                "with --benchmark NAME"
            )
        op = sample.meta.get("op")
        if limit_per_op is not None and counts.get(op, 0) >= limit_per_op:
            continue
        counts[op] = counts.get(op, 0) + 1
        samples.append(sample)
    return samples
