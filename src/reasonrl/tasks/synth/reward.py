"""Outcome, process-verified and strict rewards of the synthetic task.

Definitions (arXiv 2512.07783 §3.2; upstream `verl/reward_fn.py`, compute_score_with_step_process):
    outcome  = 1[normalised <answer> text == gold answer]
    penalty  = #wrong values + #wrong dependencies + #gold nodes missing
               + min(#extra nodes, |V_gold|) + 1[trace "Answer:" != gold answer]
    process  = max(0, 1 - penalty / |V_gold|)
    R        = clip(alpha * outcome + (1 - alpha) * process, 0, 1), and R = 0 when outcome < 1
    strict   : additionally R = 0 when penalty > 0
    ProcessAcc = (1/|V_gold|) sum_v 1[v defined, same parents, same value]
    VerifiedCorrect = 1[ProcessAcc == 1 and outcome == 1]
A node whose arithmetic does not check out (see parse.py) counts as a wrong value.

The typed fields of the `RewardResult`: `outcome`, `verified` (= VerifiedCorrect) and `answer`
(the <answer> text through `answer_key`, e.g. "6" -> "6.0"); every reward here carries
`gold_answer` = `answer_key(sample.answer)`, so maj@k compares like with like.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any

from reasonrl.tasks.synth.parse import (
    ParsedNode,
    ParsedTrace,
    extract_answer_tag,
    parse_gold,
    parse_trace,
    step_spans,
)
from reasonrl.types import Completion, RewardResult, Sample

_TOL = 1e-6
# (value right, parents right) -> the status of a gold node in `compare_graphs`' steps
_STATUS = {
    (True, True): "ok",
    (False, True): "wrong_value",
    (True, False): "wrong_deps",
    (False, False): "wrong_value_and_deps",
}


def normalise_answer(text: str | None) -> float | str | None:
    """Number if `text` is one (trailing "." and spaces ignored), else the stripped text."""
    if text is None:
        return None
    cleaned = str(text).strip().rstrip(".").strip()
    if not cleaned:
        return None
    try:
        return float(cleaned)
    except ValueError:
        return cleaned


def answer_key(text: str | None) -> str | None:
    """`normalise_answer` as a string (numbers as floats: "6" and "6.0" -> "6.0"); None stays."""
    value = normalise_answer(text)
    return None if value is None else str(value)


def gold_answer_key(sample: Sample) -> str | None:
    """The sample's gold answer in the form of `RewardResult.answer` (the `gold_answer` hook)."""
    return answer_key(sample.answer)


def answers_match(pred: str | None, gold: str | None) -> bool:
    """Equal as numbers (|a - b| <= 1e-6) or, if not numbers, as stripped strings."""
    a, b = normalise_answer(pred), normalise_answer(gold)
    if a is None or b is None:
        return False
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= _TOL
    return a == b


def _same_value(pred: ParsedNode, gold: ParsedNode) -> bool:
    if not pred.consistent:
        return False
    if gold.form is not None and pred.form is not None:  # numbers, or a * x + b in reverse mode
        return abs(pred.form[0] - gold.form[0]) <= _TOL and abs(pred.form[1] - gold.form[1]) <= _TOL
    if gold.value is None or pred.value is None:
        return (
            gold.value is None
            and pred.value is None
            and _canon(pred.value_text) == _canon(gold.value_text)
        )
    return abs(pred.value - gold.value) <= _TOL


def _canon(text: str) -> str:
    return "".join(text.split())


def compare_graphs(pred: ParsedTrace, gold: ParsedTrace, gold_answer: str) -> dict[str, Any]:
    """Counts of the process check of `pred` against `gold` (see module docstring).

    Returns: dict with n_gold, n_missing, n_extra, n_wrong_value, n_wrong_deps, n_correct,
        answer_wrong (0/1), penalty, process, process_acc, and steps: one
        {"name", "var", "status"} per gold node in gold order, status "ok", "missing",
        "wrong_value", "wrong_deps" or "wrong_value_and_deps", then one per extra node
        (status "extra"); `var` is the completion's letter (the gold one when missing).
    """
    n_gold = len(gold.nodes)
    missing = wrong_value = wrong_deps = correct = 0
    steps: list[dict[str, str]] = []
    for name, g in gold.nodes.items():
        p = pred.nodes.get(name)
        if p is None:
            missing += 1
            steps.append({"name": name, "var": g.var, "status": "missing"})
            continue
        ok_value = _same_value(p, g)
        ok_deps = p.parents == g.parents
        wrong_value += not ok_value
        wrong_deps += not ok_deps
        correct += ok_value and ok_deps
        status = _STATUS[ok_value, ok_deps]
        steps.append({"name": name, "var": p.var, "status": status})
    extras = [name for name in pred.nodes if name not in gold.nodes]
    extra = len(extras)
    steps += [{"name": n, "var": pred.nodes[n].var, "status": "extra"} for n in extras]
    answer_wrong = int(not answers_match(pred.answer, gold_answer))
    penalty = wrong_value + wrong_deps + missing + min(extra, n_gold) + answer_wrong
    denom = max(n_gold, 1)
    return {
        "n_gold": n_gold,
        "n_missing": missing,
        "n_extra": extra,
        "n_wrong_value": wrong_value,
        "n_wrong_deps": wrong_deps,
        "n_correct": correct,
        "answer_wrong": answer_wrong,
        "penalty": penalty,
        "process": max(0.0, 1.0 - penalty / denom),
        "process_acc": correct / denom,
        "steps": steps,
    }


def step_scores(completion_text: str, gold_trace: str) -> list[tuple[int, float]]:
    """Per-step correctness of a completion: (end character offset, score in {0, 1}) per step.

    A step is one Define sentence (`parse.step_spans`); it scores 1 when the quantity it
    defines is a gold node and, parsed from the text up to the step's end, has the gold value
    (arithmetic consistent) and the gold parents; else 0 (wrong, or a quantity not in the gold
    graph). A correct definition repeated later scores 1 again: this is a rule-based stand-in
    for a PRM's step score, and exactly the reward a policy can farm by repeating correct steps
    (arXiv 2410.15115 Sec. 3), which `algos.dense` Clip/Delta refine away.
    """
    gold = parse_gold(gold_trace).nodes
    out: list[tuple[int, float]] = []
    for name, end in step_spans(completion_text):
        g = gold.get(name)
        p = parse_trace(completion_text[:end]).nodes.get(name) if g is not None else None
        ok = p is not None and g is not None and _same_value(p, g) and p.parents == g.parents
        out.append((end, float(ok)))
    return out


def _gold_of(sample: Sample) -> tuple[str, str]:
    trace = sample.meta.get("trace") if isinstance(sample.meta, dict) else None
    if not isinstance(trace, str) or sample.answer is None:
        raise ValueError(
            f"synth reward needs sample.answer and sample.meta['trace'] (sample id {sample.id!r})"
        )
    return trace, str(sample.answer)


def synth_reward(
    sample: Sample, completion_text: str, *, alpha: float = 0.2, strict: bool = False
) -> RewardResult:
    """Process-verified reward of one completion of a synthetic problem.

    R = clip(alpha * outcome + (1 - alpha) * process, 0, 1) if outcome == 1 else 0; strict mode
    also gives 0 when any penalty is left. Never raises on the completion text (malformed text
    scores 0); raises ValueError if the sample lacks its gold trace/answer.

    Reference: arXiv 2512.07783 §3.2 (process verification; alpha = 0.2 by default).

    Args:
        sample: Sample with answer = gold answer and meta["trace"] = gold trace.
        completion_text: generated text after the prompt (" {trace} </solution> <answer> ...").
        alpha: outcome weight (paper configs 0.2, 0.5). strict: zero reward unless penalty == 0.
    Returns: RewardResult with `outcome`, `verified` (VerifiedCorrect) and `answer`
        (`answer_key` of the <answer> text) set, and info keys process, process_acc,
        n_missing, n_extra, n_wrong_value, n_wrong_deps, penalty (numbers) and steps (the
        per-node statuses of `compare_graphs`).
    """
    gold_trace, gold_answer = _gold_of(sample)
    try:
        answer = extract_answer_tag(completion_text)
        outcome = int(answers_match(answer, gold_answer))
        stats = compare_graphs(parse_trace(completion_text), parse_gold(gold_trace), gold_answer)
    except Exception as err:  # defensive: the parser itself never raises
        info = {"process": 0.0, "process_acc": 0.0, "error": repr(err)}
        return RewardResult(0.0, info, answer=None, outcome=False, verified=False)
    score = min(1.0, max(0.0, alpha * outcome + (1.0 - alpha) * stats["process"]))
    if outcome < 1 or (strict and stats["penalty"] > 0):
        score = 0.0
    info = {
        "process": stats["process"],
        "process_acc": stats["process_acc"],
        **{
            k: stats[k]
            for k in ("n_missing", "n_extra", "n_wrong_value", "n_wrong_deps", "penalty")
        },
        "steps": stats["steps"],  # per-node correctness, for the report's step view
    }
    return RewardResult(
        score,
        info,
        answer=answer_key(answer),
        outcome=outcome == 1,
        verified=outcome == 1 and stats["process_acc"] == 1.0,
    )


def _adapter(sample: Sample, completion: Completion, *, alpha: float, strict: bool) -> RewardResult:
    return synth_reward(sample, completion.text, alpha=alpha, strict=strict)


def _outcome_only(sample: Sample, completion: Completion) -> RewardResult:
    """Outcome reward (1 if the <answer> is right), with the process metrics still in info."""
    full = synth_reward(sample, completion.text, alpha=1.0)
    return replace(full, score=float(bool(full.outcome)))


SYNTH_REWARDS: dict[str, Callable[[Sample, Completion], RewardResult]] = {
    "process": partial(_adapter, alpha=0.2, strict=False),
    "strict": partial(_adapter, alpha=0.2, strict=True),
    "outcome": _outcome_only,
}
# the `gold_answer` hook of the reward contract (reasonrl.rewards.api; tasks does not import it)
for _reward in SYNTH_REWARDS.values():
    _reward.gold_answer = gold_answer_key  # type: ignore[attr-defined]
