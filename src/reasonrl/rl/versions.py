"""Groups that know which weights sampled each token (asynchronous and partial rollouts).

Weight versions count optimizer steps: the weights a step t trains are version t (the initial
policy, or the resumed checkpoint's step, is version `state.step` before its first update). A
token sampled by version v and trained at step t has staleness (lag) t - v; the synchronous loop
has lag 0 everywhere. With `rollout.max_staleness: K` the producer's admission control keeps
every completion's newest segment at lag <= K; partial rollouts (Kimi k1.5, arXiv 2501.12599
Sec. 2.6) also carry older segments, which `loss_mask` drops (`partial_old_segments: mask`) or
leaves to the rollout-vs-trainer IS weights (`is`, pi_old / mu_old per token, arXiv 2512.01374).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from itertools import pairwise

import torch

from reasonrl.rl.rollouts import Groups


@dataclass
class VersionedGroups(Groups):
    """`Groups` plus the weight version of every response token, (B, G, len) nested tuples."""

    token_versions: list[list[tuple[int, ...]]] = field(default_factory=list)
    trained_at: int | None = None  # the version the update trains (set when consumed)
    mask_old_segments: bool = False  # partial_old_segments=mask: only the last segment trains
    carried_groups: int = 0  # groups left unfinished for a later step (partial rollouts)

    def oldest(self) -> torch.Tensor:
        """(B*G,) version of each completion's first token (its oldest segment)."""
        return torch.tensor([v[0] if v else -1 for g in self.token_versions for v in g])

    def newest(self) -> torch.Tensor:
        """(B*G,) version of each completion's last token (its newest segment)."""
        return torch.tensor([v[-1] if v else -1 for g in self.token_versions for v in g])

    def metrics(self) -> dict[str, float]:
        """`Groups.metrics` plus `rollout/staleness_mean|max` (trained version - sampling
        version over all response tokens), `rollout/version_lag_max` (the same for each
        completion's newest segment: what admission control bounds by K), the oldest sampling
        version, and for partial rollouts the segments per completion and carried groups."""
        out = super().metrics()
        flat = [x for g in self.token_versions for v in g for x in v]
        if self.trained_at is None or not flat:
            return out
        lags = self.trained_at - torch.tensor(flat, dtype=torch.float32)
        newest = self.newest()
        segments = [1 + sum(a != b for a, b in pairwise(v)) for g in self.token_versions
                    for v in g]  # fmt: skip
        out |= {
            "rollout/staleness_mean": float(lags.mean()),
            "rollout/staleness_max": float(lags.max()),
            "rollout/version_lag_max": float(self.trained_at - newest[newest >= 0].min()),
            "rollout/weight_version_min": float(min(flat)),
            "rollout/segments_max": float(max(segments)),
            "rollout/partial_carried": float(self.carried_groups),
        }
        return out


def versioned(groups: Groups, version: int) -> VersionedGroups:
    """`groups` with every token marked as sampled by weights `version`."""
    base = {f.name: getattr(groups, f.name) for f in fields(Groups)}
    tv = [[(version,) * len(c.token_ids) for c in g] for g in groups.completions]
    return VersionedGroups(**base, token_versions=tv)


def loss_mask(groups: Groups, width: int) -> torch.Tensor:
    """(B*G, width) float: 0 on tokens sampled by older weights than their completion's last
    segment when partial rollouts mask old segments (Kimi k1.5: only the latest segment is
    on-policy); 1 everywhere else (and for plain `Groups`)."""
    n = sum(len(g) for g in groups.completions)
    mask = torch.ones(n, width)
    if not isinstance(groups, VersionedGroups) or not groups.mask_old_segments:
        return mask
    flat = [v for g in groups.token_versions for v in g]
    for i, v in enumerate(flat):
        if v:
            row = torch.tensor(v[:width])
            mask[i, : len(row)] = (row == v[-1]).float()
    return mask
