"""Extra reward-model pairs on synthetic problems that need no sampling: demonstrations and hard
negatives (issue 20).

- Demonstration pairs: the gold completion (a strict-correct response by construction) vs the
  sampler's strict-wrong completions of the same prompt (the IRL survey's demonstrations,
  arXiv 2507.13158).
- Hard negatives: the gold completion vs itself with ONE step corrupted, the kinds of error the
  base model actually makes (its strict-wrong samples mostly name a quantity wrongly or point a
  step at the wrong letter, rarely miscalculate):
  `name`  one word of a defined quantity's name swapped for the word at the same position of
          another gold quantity or a question phrase differing in that word only ("adult
          parrot in Bundle Farm" -> "adult eagle in Bundle Farm");
  `ref`   one letter on a step's right-hand side replaced by another defined letter;
  `value` one step's final number changed by +-1..3.
  Every corruption is checked with the strict reward (arXiv 2512.07783) and kept only when it
  is strict-wrong, so the label is right by construction AND by the verifier.

Gold completions are tokenised exactly like sampled ones: the text's ids plus the EOS id (the
sampler's completions end with EOS), so the RM cannot tell gold from sampled by the ending.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from typing import Any

from reasonrl.rm.data import PreferencePair
from reasonrl.types import Completion, Sample

_DEFINE = re.compile(r"Define (.+?) as ([A-Za-z]);")
_STEP_VALUE = re.compile(r"= (-?\d+)(?=\.(?!\d)|;)")  # a step's final "= N" before "." or ";"
_RHS_LETTER = re.compile(r"(?<== )([A-Za-z])(?=[ .;])|(?<=[*+\-] )([A-Za-z])(?=[ .;])")
KINDS = ("name", "ref", "value")
# words of the question's grammar, never a quantity's identity ("How many adult eagle DOES ...")
_GLUE = frozenset({"in", "of", "does", "do", "has", "have", "the", "how", "many", "equals", "as"})


def gold_completion(sample: Sample) -> str:
    """ " {trace} </solution> <answer> {answer} </answer>" (tasks/synth/render.completion_text)."""
    return f" {sample.meta['trace']} </solution> <answer> {sample.answer} </answer>"


def completion_ids(tokenizer: Any, text: str) -> list[int]:
    """Ids of a completion text as the sampler would have produced it: text ids, then EOS."""
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    return [*ids, tokenizer.eos_token_id]


def corrupt(trace: str, kind: str, rng: random.Random, *, prompt: str = "") -> str | None:
    """`trace` with one step corrupted by `kind` (module doc); None when it has no such step.
    `name` also draws from `prompt`: any run of its words that differs from a gold name in one
    word (the question's distractor quantities, which the base model often defines instead)."""
    if kind == "name":
        names = [m.group(1) for m in _DEFINE.finditer(trace)]
        words = [n.split() for n in names]
        text = prompt.split()
        windows = [text[j : j + len(w)] for w in words for j in range(len(text) - len(w) + 1)]
        options = [
            (i, k, alt[k])
            for i, w in enumerate(words)
            for alt in words + windows
            if len(w) == len(alt) and sum(x != y for x, y in zip(w, alt, strict=True)) == 1
            for k in range(len(w))
            if alt[k] != w[k] and not {alt[k].lower(), w[k].lower()} & _GLUE
        ]
        if not options:
            return None
        i, k, new = rng.choice(options)
        swapped = list(words[i])
        swapped[k] = new
        old = f"Define {names[i]} as"
        return trace.replace(old, f"Define {' '.join(swapped)} as", 1)
    if kind == "ref":
        letters = [m.group(2) for m in _DEFINE.finditer(trace)]
        spots = [m for m in _RHS_LETTER.finditer(trace)]
        options = [(m, x) for m in spots for x in letters if x != (m.group(1) or m.group(2))]
        if not options:
            return None
        m, x = rng.choice(options)
        return trace[: m.start()] + x + trace[m.end() :]
    if kind == "value":
        spots = list(_STEP_VALUE.finditer(trace))
        if not spots:
            return None
        m = rng.choice(spots)
        new = int(m.group(1)) + rng.choice([-3, -2, -1, 1, 2, 3])
        return trace[: m.start(1)] + str(new) + trace[m.end(1) :]
    raise ValueError(f"unknown corruption kind {kind!r}; choose from {KINDS}")


def _strict_ok(sample: Sample, text: str) -> bool:
    from reasonrl.tasks.synth.reward import synth_reward

    return bool(synth_reward(sample, text, strict=True).verified)


def _pair(sample: Sample, prompt_ids: Sequence[int], chosen: tuple[str, list[int]],
          rejected: tuple[str, list[int]], source: str) -> PreferencePair:  # fmt: skip
    return PreferencePair(
        prompt=sample.prompt, chosen=chosen[0], rejected=rejected[0],
        prompt_ids=tuple(prompt_ids), chosen_ids=tuple(chosen[1]),
        rejected_ids=tuple(rejected[1]),
        meta={"id": sample.id, "op": sample.meta.get("op"), "source": source},
    )  # fmt: skip


def hard_negative_pairs(
    samples: Sequence[Sample], tokenizer: Any, *, per_problem: int, rng: random.Random
) -> list[PreferencePair]:
    """Up to `per_problem` (gold, corrupted gold) pairs per problem, kinds drawn in turn from
    KINDS, each corruption verified strict-wrong; duplicates within a problem skipped."""
    from reasonrl.data.templates import prompt_token_ids

    out: list[PreferencePair] = []
    for s in samples:
        gold = gold_completion(s)
        if not _strict_ok(s, gold):
            continue  # never happens for generated problems; a guard, not a label
        gold_ids = completion_ids(tokenizer, gold)
        prompt = prompt_token_ids(tokenizer, s)
        seen: set[str] = set()
        for attempt in range(4 * per_problem):
            if len(seen) >= per_problem:
                break
            bad_trace = corrupt(s.meta["trace"], KINDS[attempt % len(KINDS)], rng, prompt=s.prompt)
            if bad_trace is None:
                continue
            bad = gold.replace(s.meta["trace"], bad_trace, 1)
            if bad in seen or _strict_ok(s, bad):
                continue
            seen.add(bad)
            out.append(_pair(s, prompt, (gold, gold_ids), (bad, completion_ids(tokenizer, bad)),
                             "hard_negative"))  # fmt: skip
    return out


def demonstration_pairs(
    labelled: Sequence[tuple[Sample, Sequence[int], Sequence[Completion], Sequence[bool]]],
    tokenizer: Any,
    *,
    max_pairs: int,
    rng: random.Random,
) -> list[PreferencePair]:
    """(gold completion, strict-wrong sample) pairs: up to `max_pairs` per problem."""
    out: list[PreferencePair] = []
    for s, prompt, comps, correct in labelled:
        wrong = [c for c, ok in zip(comps, correct, strict=True) if not ok]
        rng.shuffle(wrong)
        gold = gold_completion(s)
        gold_ids = completion_ids(tokenizer, gold)
        for c in wrong[:max_pairs]:
            out.append(_pair(s, prompt, (gold, gold_ids), (c.text, list(c.token_ids)),
                             "demonstration"))  # fmt: skip
    return out


__all__ = ["KINDS", "completion_ids", "corrupt", "demonstration_pairs", "gold_completion",
           "hard_negative_pairs"]  # fmt: skip
