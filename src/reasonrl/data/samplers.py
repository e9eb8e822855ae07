"""Samplers: which prompts a step trains on, from per-prompt raw-reward statistics.

`SampledSource` wraps a prompt source: each `next(k)` draws `candidates * k` prompts from it and
keeps k, chosen without replacement with probability proportional to a weight (sequential
draws, seeded). The weights (`weights`), with s the prompt's running success rate
(`PromptStats.estimate`: its own, else its difficulty bucket's; None = unknown):

- uniform: 1 (and the wrapper passes the source's prompts straight through);
- kimi: max(1 - s, floor), unknown s -> 1 (Kimi k1.5, arXiv 2501.12599, Sec. 2.3.4);
- curriculum: 1 if d <= d_min + t (d_max - d_min) else 0, t = step / curriculum_steps
  (easy -> hard; d = meta[difficulty_key], range = that seen so far);
- edge: 1 if edge_low < s < edge_high or s unknown, else 0 (Interplay, arXiv 2512.07783);
- pools: mix[pool] / (candidates in that pool), pool = easy (s >= easy_threshold), hard
  (s <= hard_threshold) or normal (prime-rl's difficulty pools);
- hack_filter (with any kind): 0 where the hack rate exceeds hack_threshold.

All weights 0 -> uniform. DRIVE (arXiv 2511.06307) is not a weight: after `drive_stage1_steps`
the K lowest-success prompts with 0 < s < 1 are carried forward and fill `drive_share` of each
batch. DEVIATION: DRIVE gives hard prompts more rollouts each; with a fixed G per step we give
them more visits instead (each visit G rollouts), up to `drive_max_carries`.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from typing import Any

from reasonrl.data.stats import PromptStats, bucket_name, difficulty_of
from reasonrl.types import Sample

KINDS = ("uniform", "kimi", "curriculum", "edge", "drive", "pools")


def weights(
    kind: str, candidates: Sequence[Sample], stats: PromptStats, *, progress: float = 1.0,
    floor: float = 0.05, edge: tuple[float, float] = (0.0, 1.0),
    mix: tuple[float, float, float] = (0.1, 0.8, 0.1), thresholds: tuple[float, float] = (1.0, 0.0),
    d_range: tuple[float, float] | None = None, hack_threshold: float | None = None,
) -> list[float]:  # fmt: skip
    """Unnormalised sampling weight of each candidate (module doc); `thresholds` =
    (easy, hard), `progress` in [0, 1] the curriculum's position."""
    est = [stats.estimate(s) for s in candidates]
    if kind in ("uniform", "drive"):
        w = [1.0] * len(candidates)
    elif kind == "kimi":
        w = [1.0 if s is None else max(1.0 - s, floor) for s in est]
    elif kind == "edge":
        w = [1.0 if s is None or edge[0] < s < edge[1] else 0.0 for s in est]
    elif kind == "curriculum":
        ds = [difficulty_of(c, stats.difficulty_key) for c in candidates]
        lo, hi = d_range or (
            min(d for d in ds if d is not None),
            max(d for d in ds if d is not None),
        )
        gate = lo + min(max(progress, 0.0), 1.0) * (hi - lo)
        w = [1.0 if d is None or d <= gate + 1e-9 else 0.0 for d in ds]
    elif kind == "pools":
        easy, hard = thresholds
        pools = [1 if s is None else 0 if s >= easy else 2 if s <= hard else 1 for s in est]
        counts = [pools.count(i) for i in range(3)]
        w = [mix[p] / counts[p] for p in pools]
    else:
        raise ValueError(f"unknown sampler {kind!r}: expected one of {', '.join(KINDS)}")
    if hack_threshold is not None:
        rates = [stats.hack_rate(c) for c in candidates]
        w = [0.0 if r is not None and r > hack_threshold else x for x, r in zip(w, rates)]
    return w if any(x > 0 for x in w) else [1.0] * len(candidates)


def choose(rng: random.Random, w: Sequence[float], k: int) -> list[int]:
    """k indices without replacement, each draw proportional to the remaining weights (a draw
    among zero weights falls back to uniform over what is left)."""
    left = list(range(len(w)))
    out = []
    for _ in range(min(k, len(left))):
        ws = [w[i] for i in left]
        i = rng.choices(range(len(left)), weights=ws if sum(ws) > 0 else None)[0]
        out.append(left.pop(i))
    return out


def _plain(sample: Sample) -> dict[str, Any]:
    return dataclasses.asdict(sample)


class SampledSource:
    """A prompt source whose prompts are picked by a sampler (module doc) from `base`. `observe`
    takes each scored group's raw rewards (called by `rl.rollouts.sample_groups`); the stats
    store is saved with the source's state, so resume is exact."""

    def __init__(self, base: Any, cfg: Any, *, total_steps: int, seed: int = 0) -> None:
        self.base, self.cfg = base, cfg
        self.stats = PromptStats(decay=cfg.decay, difficulty_key=cfg.difficulty_key)
        self.total = cfg.curriculum_steps or total_steps
        self._rng = random.Random(seed * 7919 + 17)
        self.step = 0
        self.carry: list[list[Any]] = []  # [sample dict, visits]: DRIVE's hard set
        self.d_range: list[float] | None = None
        self._served: dict[str, int] = {}
        self._rewards: dict[str, list[float]] = {}

    @property
    def skipped(self) -> int:
        return int(getattr(self.base, "skipped", 0))

    def next(self, k: int) -> list[Sample]:
        c = self.cfg
        out: list[Sample] = []
        if c.kind == "drive" and self.step >= c.drive_stage1_steps:
            for entry in self.carry[: int(c.drive_share * k)]:
                entry[1] += 1
                out.append(Sample(**entry[0]))
            self.carry = [e for e in self.carry if e[1] < c.drive_max_carries]
        need = k - len(out)
        plain = c.kind in ("uniform", "drive") and not c.hack_filter
        cands = self.base.next(need if plain else need * c.candidates)
        if not plain:
            ds = [d for d in (difficulty_of(s, c.difficulty_key) for s in cands) if d is not None]
            if ds:
                lo, hi = min(ds), max(ds)
                if self.d_range is not None:
                    lo, hi = min(lo, self.d_range[0]), max(hi, self.d_range[1])
                self.d_range = [lo, hi]
            w = weights(
                c.kind, cands, self.stats, progress=self.step / max(1, self.total),
                floor=c.floor, edge=(c.edge_low, c.edge_high), mix=c.pool_mix,
                thresholds=(c.easy_threshold, c.hard_threshold),
                d_range=None if self.d_range is None else tuple(self.d_range),
                hack_threshold=c.hack_threshold if c.hack_filter else None,
            )  # fmt: skip
            cands = [cands[i] for i in choose(self._rng, w, need)]
        out += cands
        for s in out:
            name = bucket_name(difficulty_of(s, c.difficulty_key))
            self._served[name] = self._served.get(name, 0) + 1
        return out

    def observe(self, samples: Sequence[Sample], scores: Any, correct: Any, *, step: int) -> None:
        """Record each scored group's RAW rewards (B, G) and answer correctness (B, G)."""
        self.step = step
        for s, row, ok in zip(samples, scores.tolist(), correct.tolist(), strict=True):
            self.stats.observe(s, row, ok, step=step)
            name = bucket_name(difficulty_of(s, self.cfg.difficulty_key))
            self._rewards.setdefault(name, []).extend(x for x in row if x == x)
            sr = self.stats.success(s)
            hard = self.cfg.kind == "drive" and sr is not None and 0 < sr < 1
            if hard and all(e[0]["id"] != s.id for e in self.carry):
                self.carry.append([_plain(s), 0])
        if self.cfg.kind == "drive":  # keep the K hardest, lowest success first
            self.carry.sort(key=lambda e: (self.stats.success(Sample(**e[0])) or 0.0, e[0]["id"]))
            self.carry = self.carry[: self.cfg.drive_k]

    def metrics(self) -> dict[str, float]:
        """`data/op{k}_frac` of the prompts served and `reward/op{k}` (mean raw reward of the
        groups scored) since the last call."""
        total = sum(self._served.values()) or 1
        out = {f"data/op{k}_frac": v / total for k, v in sorted(self._served.items())}
        out |= {f"reward/op{k}": sum(v) / len(v) for k, v in sorted(self._rewards.items()) if v}
        self._served, self._rewards = {}, {}
        return out

    def summary(self) -> dict[str, Any]:
        """What the report shows (written as `prompt_stats.json` beside each checkpoint): the
        per-bucket table and how many tracked prompts are unsolved, on the edge, or solved."""
        bands = {"unsolved": 0, "edge": 0, "solved": 0}
        for row in self.stats.prompts.values():
            s = row[2] / row[1]
            bands["unsolved" if s <= 0 else "solved" if s >= 1 else "edge"] += 1
        return {"sampler": self.cfg.kind, "prompts": len(self.stats.prompts),
                "bands": bands, "buckets": self.stats.bucket_table(),
                "carried": len(self.carry)}  # fmt: skip

    def state_dict(self) -> dict[str, Any]:
        version, internal, gauss = self._rng.getstate()
        return {"base": self.base.state_dict(), "stats": self.stats.state_dict(),
                "rng": [version, list(internal), gauss], "step": self.step,
                "carry": [list(e) for e in self.carry], "d_range": self.d_range}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "base" not in state:  # a checkpoint from before samplers: the source's own state
            self.base.load_state_dict(state)
            return
        self.base.load_state_dict(state["base"])
        self.stats.load_state_dict(state["stats"])
        version, internal, gauss = state["rng"]
        self._rng.setstate((version, tuple(internal), gauss))
        self.step = int(state["step"])
        self.carry = [list(e) for e in state["carry"]]
        self.d_range = state["d_range"]
