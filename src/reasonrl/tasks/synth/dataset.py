"""Build de-duplicated JSONL-ready datasets of synthetic problems, with a hash-based held-out split.

A problem is held out iff sha256(problem + question) mod 100 < HELDOUT_PERCENT, a property of the
text alone, so train and held-out sets never share a problem whatever the seeds that drew them.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

from reasonrl.tasks.synth.generator import generate_problem
from reasonrl.tasks.synth.problem import SynthProblem
from reasonrl.tasks.synth.render import completion_text, prompt_text
from reasonrl.types import Sample

Split = Literal["train", "heldout", "all"]
HELDOUT_PERCENT = 10
ROW_FIELDS = ("id", "prompt", "completion", "trace", "answer", "op", "context", "mode")


def problem_digest(problem: SynthProblem) -> str:
    """sha256 hex digest of the problem statements and question (identity of a problem)."""
    return hashlib.sha256(f"{problem.problem}\n{problem.question}".encode()).hexdigest()


def is_heldout(problem: SynthProblem, *, percent: int = HELDOUT_PERCENT) -> bool:
    """True iff int(sha256(problem + question)) mod 100 < percent (default 10%)."""
    return int(problem_digest(problem), 16) % 100 < percent


def in_split(problem: SynthProblem, split: Split) -> bool:
    """Whether `problem` belongs to `split` ("all" accepts everything)."""
    if split == "all":
        return True
    if split not in ("train", "heldout"):
        raise ValueError(f"unknown split {split!r}; expected 'train', 'heldout' or 'all'")
    return is_heldout(problem) == (split == "heldout")


def problem_to_row(problem: SynthProblem) -> dict[str, Any]:
    """JSON row: id, prompt, completion, trace, answer, op, context, mode (+ problem, question)."""
    return {
        "id": f"synth-{problem_digest(problem)[:16]}",
        "prompt": prompt_text(problem),
        "completion": completion_text(problem),
        "trace": problem.trace,
        "answer": problem.answer,
        "op": problem.op,
        "context": problem.context,
        "mode": problem.mode,
        "problem": problem.problem,
        "question": problem.question,
    }


def row_to_sample(row: dict[str, Any]) -> Sample:
    """Sample(id, prompt, answer=str(answer), meta={op, context, mode, trace}) from a row."""
    missing = [k for k in ROW_FIELDS if k not in row]
    if missing:
        raise ValueError(f"synth row {row.get('id', '?')!r} lacks field(s) {missing}")
    meta = {
        "op": int(row["op"]),
        "context": row["context"],
        "mode": row["mode"],
        "trace": row["trace"],
    }
    return Sample(id=str(row["id"]), prompt=row["prompt"], answer=str(row["answer"]), meta=meta)


def iter_rows(
    ops: Sequence[int], per_op: int, *, contexts: Sequence[str] = ("zoo",),
    modes: Sequence[str] = ("forward",), seed: int, split: Split = "all",
    max_draws_factor: int = 50, on_row: Callable[[dict[str, Any]], None] | None = None,
    **gen_kwargs: Any,
) -> Iterator[dict[str, Any]]:  # fmt: skip
    """Yield `per_op` unique rows per op, cycling contexts x modes round-robin.

    Each op has its own generator seeded with the string f"{seed}:{op}" (Python hashes str seeds
    with sha512, so this is machine-independent). Raises ValueError if fewer than per_op unique
    problems of the split turn up within per_op * max_draws_factor draws.
    """
    if per_op < 0:
        raise ValueError(f"per_op must be >= 0, got {per_op}")
    combos = [(c, m) for m in modes for c in contexts]
    if not combos:
        raise ValueError("need at least one context and one mode")
    seen: set[str] = set()
    for op in ops:
        rng = random.Random(f"{seed}:{op}")
        made = draws = 0
        while made < per_op:
            if draws >= per_op * max_draws_factor:
                raise ValueError(
                    f"only {made}/{per_op} unique {split!r} problems for op={op} after {draws} "
                    f"draws (contexts={list(contexts)}, modes={list(modes)}): too few distinct"
                )
            context, mode = combos[draws % len(combos)]
            draws += 1
            problem = generate_problem(op, rng=rng, context=context, mode=mode, **gen_kwargs)
            key = hashlib.sha256(
                f"{problem.problem}\n{problem.question}\n{problem.trace}".encode()
            ).hexdigest()
            if key in seen or not in_split(problem, split):
                continue
            seen.add(key)
            made += 1
            row = problem_to_row(problem)
            if on_row is not None:
                on_row(row)
            yield row


def make_dataset(
    ops: Sequence[int], per_op: int, *, contexts: Sequence[str] = ("zoo",),
    modes: Sequence[str] = ("forward",), seed: int, split: Split = "all", **gen_kwargs: Any,
) -> list[dict[str, Any]]:  # fmt: skip
    """List of `per_op` unique rows for each op in `ops` (see iter_rows), deterministic in `seed`.

    Reference: arXiv 2512.07783 (exact N samples per op, de-duplicated by sha256).

    Args:
        ops: op counts to draw. per_op: rows per op. contexts/modes: cycled round-robin.
        seed: dataset seed. split: "train" | "heldout" | "all" (hash-based, see is_heldout).
        gen_kwargs: passed to generate_problem (number_range, max_value, max_tries, distractors).
    Returns: rows with fields id, prompt, completion, trace, answer, op, context, mode, problem,
        question.
    """
    return list(
        iter_rows(ops, per_op, contexts=contexts, modes=modes, seed=seed, split=split, **gen_kwargs)
    )
