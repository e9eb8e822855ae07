"""Pair builders: preferences from a model's own samples, ranked by the strict reward.

Pure selectors on (correct, length) tables (`strict_pairs`, `long2short_pairs`), and
`synth_pairs`, which samples completions of synthetic problems with any model and pairs them
using the task's strict process-verified reward (arXiv 2512.07783) as the ground-truth label:
- strict: a strict-correct completion (every step and the answer right) vs a strict-wrong one;
- long2short (Kimi k1.5, arXiv 2501.12599 §2.4): chosen = the SHORTEST strict-correct
  completion; rejected = the wrong ones and the correct ones longer than `ratio` x the chosen
  (the paper's 1.5x rule).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from reasonrl.rm.data import PreferencePair
from reasonrl.types import Completion, Sample


def strict_pairs(
    correct: Sequence[bool], *, max_pairs: int, rng: random.Random
) -> list[tuple[int, int]]:
    """(chosen, rejected) index pairs: correct vs wrong, each completion used at most once per
    side while both sides last, then reused in turn; at most `max_pairs`; none if a side is
    empty. The order is shuffled by `rng`."""
    good = [i for i, c in enumerate(correct) if c]
    bad = [i for i, c in enumerate(correct) if not c]
    if not good or not bad:
        return []
    rng.shuffle(good)
    rng.shuffle(bad)
    n = min(max_pairs, max(len(good), len(bad)))
    return [(good[k % len(good)], bad[k % len(bad)]) for k in range(n)]


def long2short_pairs(
    correct: Sequence[bool],
    lengths: Sequence[int],
    *,
    ratio: float = 1.5,
    max_pairs: int,
    rng: random.Random,
) -> list[tuple[int, int]]:
    """(shortest correct, r) for r wrong or correct with length > ratio * shortest; at most
    `max_pairs` (chosen at random by `rng`); none without a correct completion."""
    good = [i for i, c in enumerate(correct) if c]
    if not good:
        return []
    best = min(good, key=lambda i: (lengths[i], i))
    rejected = [
        i for i in range(len(correct))
        if not correct[i] or lengths[i] > ratio * lengths[best]
    ]  # fmt: skip
    rng.shuffle(rejected)
    return [(best, r) for r in rejected[:max_pairs]]


def pairs_of_group(
    sample: Sample,
    prompt_ids: Sequence[int],
    completions: Sequence[Completion],
    correct: Sequence[bool],
    *,
    builder: str,
    max_pairs: int,
    rng: random.Random,
    ratio: float = 1.5,
) -> list[PreferencePair]:
    """The `builder`'s pairs of one prompt's completions as `PreferencePair`s (token ids kept)."""
    if builder == "strict":
        index = strict_pairs(correct, max_pairs=max_pairs, rng=rng)
    elif builder == "long2short":
        lengths = [len(c.token_ids) for c in completions]
        index = long2short_pairs(correct, lengths, ratio=ratio, max_pairs=max_pairs, rng=rng)
    else:
        raise ValueError(f"unknown pair builder {builder!r}; choose strict or long2short")
    op = sample.meta.get("op") if sample.meta else None
    return [
        PreferencePair(
            prompt=sample.prompt,
            chosen=completions[i].text,
            rejected=completions[j].text,
            prompt_ids=tuple(prompt_ids),
            chosen_ids=tuple(completions[i].token_ids),
            rejected_ids=tuple(completions[j].token_ids),
            meta={"id": sample.id, "op": op, "rejected_correct": bool(correct[j])},
        )
        for i, j in index
    ]


def synth_samples(ops: Sequence[int], per_op: int, *, split: str, seed: int) -> list[Sample]:
    """Synthetic problems (forward, zoo context) of the given ops from one split."""
    from reasonrl.tasks.synth import make_dataset, row_to_sample

    rows = make_dataset(tuple(ops), per_op, contexts=("zoo",), modes=("forward",), seed=seed,
                        split=split)  # fmt: skip
    return [row_to_sample(r) for r in rows]


def strict_correct(sample: Sample, completion: Completion) -> bool:
    """The ground-truth label: the strict process-verified reward's `verified`."""
    from reasonrl.tasks.synth.reward import synth_reward

    return bool(synth_reward(sample, completion.text, strict=True).verified)


def sample_labelled(
    model: Any,
    tokenizer: Any,
    samples: Sequence[Sample],
    *,
    n: int,
    temperature: float,
    max_new_tokens: int,
    seed: int,
) -> list[tuple[Sample, list[int], list[Completion], list[bool]]]:
    """Sample `n` completions per problem with `model` (the local engine) and label each by the
    strict reward: (sample, prompt ids, completions, strict-correct flags) per problem."""
    from reasonrl.data.templates import prompt_token_ids
    from reasonrl.rollout.base import SamplingParams
    from reasonrl.rollout.registry import local_engine

    engine = local_engine(model, tokenizer)
    prompts = [prompt_token_ids(tokenizer, s) for s in samples]
    params = SamplingParams(n=n, max_new_tokens=max_new_tokens, temperature=temperature,
                            seed=seed)  # fmt: skip
    groups = engine.generate(prompts, params)
    return [
        (sample, ids, list(comps), [strict_correct(sample, c) for c in comps])
        for sample, ids, comps in zip(samples, prompts, groups, strict=True)
    ]


def synth_pairs(
    model: Any,
    tokenizer: Any,
    samples: Sequence[Sample],
    *,
    n: int,
    temperature: float,
    max_new_tokens: int,
    builder: str,
    max_pairs: int,
    seed: int,
    ratio: float = 1.5,
) -> tuple[list[PreferencePair], dict[str, float]]:
    """Sample `n` completions per problem with `model`, label them by the strict reward, pair.

    Returns (pairs, stats) with stats `sampled_strict` (fraction of strict-correct samples),
    `problems_with_pairs` and `pairs`.
    """
    labelled = sample_labelled(model, tokenizer, samples, n=n, temperature=temperature,
                               max_new_tokens=max_new_tokens, seed=seed)  # fmt: skip
    return pairs_from_labelled(labelled, builder=builder, max_pairs=max_pairs,
                               rng=random.Random(seed), ratio=ratio)  # fmt: skip


def pairs_from_labelled(
    labelled: Sequence[tuple[Sample, Sequence[int], Sequence[Completion], Sequence[bool]]],
    *,
    builder: str,
    max_pairs: int,
    rng: random.Random,
    ratio: float = 1.5,
) -> tuple[list[PreferencePair], dict[str, float]]:
    """`pairs_of_group` over `sample_labelled`'s output; (pairs, stats) as `synth_pairs`."""
    pairs: list[PreferencePair] = []
    right = with_pairs = total = 0
    for sample, ids, comps, correct in labelled:
        right, total = right + sum(correct), total + len(comps)
        got = pairs_of_group(sample, ids, comps, correct, builder=builder, max_pairs=max_pairs,
                             rng=rng, ratio=ratio)  # fmt: skip
        with_pairs += bool(got)
        pairs += got
    stats = {"sampled_strict": right / max(1, total), "problems_with_pairs": float(with_pairs),
             "pairs": float(len(pairs))}  # fmt: skip
    return pairs, stats


def shortest_correct(completions: Sequence[Completion], correct: Sequence[bool]) -> int | None:
    """Index of the shortest strict-correct completion (ties: the first), None without one:
    Kimi k1.5's shortest rejection sampling (arXiv 2501.12599 §2.4)."""
    good = [i for i, ok in enumerate(correct) if ok]
    return min(good, key=lambda i: (len(completions[i].token_ids), i)) if good else None


def shortest_rejection_rows(
    labelled: Sequence[tuple[Sample, Sequence[int], Sequence[Completion], Sequence[bool]]],
    *,
    eos_text: str | None = None,
) -> list[dict[str, Any]]:
    """SFT rows (prompt, completion, id, op, tokens) of the shortest correct completion of each
    problem; problems without a correct one are skipped. A trailing `eos_text` is cut from the
    completion (SFT appends the EOS token itself)."""
    rows = []
    for sample, _ids, comps, correct in labelled:
        best = shortest_correct(comps, correct)
        if best is not None:
            text = comps[best].text
            text = text.removesuffix(eos_text) if eos_text else text
            rows.append({"prompt": sample.prompt, "completion": text, "id": sample.id,
                         "op": sample.meta.get("op"),
                         "tokens": len(comps[best].token_ids)})  # fmt: skip
    return rows


__all__ = [
    "long2short_pairs",
    "pairs_from_labelled",
    "pairs_of_group",
    "sample_labelled",
    "shortest_correct",
    "shortest_rejection_rows",
    "strict_correct",
    "strict_pairs",
    "synth_pairs",
    "synth_samples",
]
