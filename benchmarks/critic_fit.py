"""How much of the strict reward's variance can PPO's critic explain? (issue 13)

    python benchmarks/critic_fit.py --policy builtin:synth-micro --train-batches 60
    python benchmarks/critic_fit.py --policy CKPT --run-critic CKPT   # CKPT: RUN/checkpoints/step_N

Samples rollouts of `--policy` with `recipes/ppo.yaml`'s settings (ops, 16 prompts x 4
completions, T = 1, strict reward), then, for each critic setting in `--settings`, trains a fresh
critic (`rl.critic.Critic`: the base trunk and a new head, as the recipe builds it) ONLINE on the
training batches in order, one `Critic.update` per batch as in `train_step`, and reports:

- online EV: `critic/explained_variance` of each batch before its update (what the run logs),
  mean over the last 10 batches;
- op oracle: the EV of valuing every token at its op's mean return on the pool (what a critic
  that reads only the op count could reach);
- pool EV: the explained variance on a fixed held-out pool of `--pool-batches` batches of the
  same policy (one number over all their tokens: far less noisy than one 64-row batch), at the
  end, against the Monte-Carlo return (gamma = lam = 1: the reward at every token) and split by
  position (first / last third of each completion's tokens).

`--target has-token` replaces the strict reward by a label the trace decides (1 when the completion
contains the token present in ~40% of them, chosen on the training batches): a check that the
critic can learn to read the trace at all (its last-third EV should then be high).

`--run-critic CKPT` also scores the critic saved in a run's checkpoint on the same pool. The
policy is fixed here (no policy update), so this measures the critic's fit, not the tracking of
a moving policy.
"""

from __future__ import annotations

import argparse
import collections
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from reasonrl.algos.value import explained_variance
from reasonrl.config import load_config
from reasonrl.rl.batching import collate
from reasonrl.rl.build import build_state
from reasonrl.rl.critic import Critic
from reasonrl.rl.rollouts import sample_groups
from reasonrl.rl.state import sampling_params
from reasonrl.runtime.precision import dtype_name
from reasonrl.runtime.timing import Timer
from reasonrl.types import Batch

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "ppo.yaml"


Rollouts = list[tuple[Batch, torch.Tensor, torch.Tensor]]


def collect(state, n_batches: int, seed0: int) -> Rollouts:
    """`n_batches` rollout batches of the state's policy: (batch, (N, T) MC returns, (N,) op)."""
    out = []
    for i in range(n_batches):
        params = sampling_params(state.cfg, seed0 + i)
        groups = sample_groups(state, params, Timer())
        scores = torch.nan_to_num(groups.scores.float(), nan=0.0).reshape(-1)
        zeros = torch.zeros(scores.numel())
        batch = collate(groups.flat_prompt_ids(), groups.flat_completions(), zeros,
                        pad_id=state.tokenizer.pad_token_id)  # fmt: skip
        returns = scores[:, None] * batch.response_mask
        ops = torch.tensor([float(smp.meta.get("op", 0)) for smp in groups.samples])
        out.append((batch, returns, ops.repeat_interleave(state.cfg.rollout.n)))
    return out


def _pad(t: torch.Tensor, width: int) -> torch.Tensor:
    return torch.nn.functional.pad(t, (0, width - t.shape[1]))


def op_oracle_ev(pool: Rollouts) -> float:
    """EV of the best prompt-blind predictor that knows the op: each token valued at its op's mean
    return over the pool (fitted on the pool itself, so an optimistic bound)."""
    width = max(b.response_mask.shape[1] for b, _, _ in pool)
    r = torch.cat([_pad(x, width) for _, x, _ in pool])
    m = torch.cat([_pad(b.response_mask, width) for b, _, _ in pool])
    ops = torch.cat([o for _, _, o in pool])
    v = torch.zeros_like(r)
    for op in ops.unique():
        rows = ops == op
        v[rows] = (r[rows] * m[rows]).sum() / m[rows].sum()
    return float(explained_variance(v * m, r, m))


def pool_ev(critic: Critic, pool: Rollouts) -> dict[str, float]:
    """EV of the critic over every token of the pool, and over each completion's first and last
    third of tokens."""
    width = max(b.response_mask.shape[1] for b, _, _ in pool)
    cols: dict[str, list[torch.Tensor]] = {"v": [], "r": [], "m": [], "first": [], "last": []}
    for batch, returns, _ in pool:
        mask = batch.response_mask
        n = mask.sum(dim=1, keepdim=True).clamp(min=1)
        pos = torch.cumsum(mask, dim=1) - 1
        first, last = (pos < n / 3).float() * mask, (pos >= 2 * n / 3).float() * mask
        parts = {"v": critic.values(batch), "r": returns, "m": mask, "first": first, "last": last}
        for key, t in parts.items():
            cols[key].append(_pad(t, width))
    v, r, m, first, last = (torch.cat(cols[k]) for k in ("v", "r", "m", "first", "last"))
    return {
        "ev": float(explained_variance(v, r, m)),
        "ev_first_third": float(explained_variance(v, r, first)),
        "ev_last_third": float(explained_variance(v, r, last)),
        "reward_mean": float((r * m).sum() / m.sum()),
    }


def has_token_target(train: Rollouts, pool: Rollouts) -> tuple[Rollouts, Rollouts, int]:
    """Relabel every rollout: return 1 on every token of a completion containing token `tok`,
    `tok` the response token whose share of completions is closest to 0.4 on `train`."""
    seen: collections.Counter[int] = collections.Counter()
    rows = 0
    for batch, _, _ in train:
        ids = batch.input_ids[:, batch.prompt_len :]
        for i in range(ids.shape[0]):
            seen.update(set(ids[i][batch.response_mask[i] > 0].tolist()))
        rows += ids.shape[0]
    tok = min(seen, key=lambda t: abs(seen[t] / rows - 0.4))

    def relabel(data: Rollouts) -> Rollouts:
        out = []
        for batch, _, ops in data:
            ids = batch.input_ids[:, batch.prompt_len :]
            has = ((ids == tok) & (batch.response_mask > 0)).any(dim=1).float()
            out.append((batch, has[:, None] * batch.response_mask, ops))
        return out

    return relabel(train), relabel(pool), tok


def parse_setting(text: str) -> dict[str, float]:
    """`lr=5e-4,mb=1,clip=0.5,epochs=1` -> dict (clip=none: no value clipping)."""
    out: dict[str, float] = {"lr": 5e-4, "mb": 1, "clip": 0.5, "epochs": 1}
    for part in text.split(","):
        key, value = part.split("=")
        out[key] = float("nan") if value == "none" else float(value)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", default="builtin:synth-micro")
    ap.add_argument("--run-critic", type=Path, default=None)
    ap.add_argument("--train-batches", type=int, default=60)
    ap.add_argument("--pool-batches", type=int, default=8)
    ap.add_argument("--settings", nargs="*", default=["lr=5e-4,mb=1,clip=0.5"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--target", choices=["strict", "has-token"], default="strict")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(RECIPE, [f"model.path={args.policy}", f"trainer.seed={args.seed}"])
    state = build_state(cfg)
    cpu = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    print(f"machine: {cpu}; policy {args.policy}; dtype {dtype_name(cfg.model.dtype)}")
    t0 = time.perf_counter()
    pool = collect(state, args.pool_batches, 10_000 + 1000 * args.seed)
    train = collect(state, args.train_batches, 1000 * args.seed)
    print(f"sampled {len(pool) + len(train)} batches in {time.perf_counter() - t0:.0f} s")
    if args.target == "has-token":
        train, pool, tok = has_token_target(train, pool)
        print(f"target: completion contains token {tok} ({state.tokenizer.decode([tok])!r})")
    results: dict[str, object] = {"op_oracle_ev": op_oracle_ev(pool)}
    print(f"op-mean predictor EV on the pool: {results['op_oracle_ev']:.3f}")
    if args.run_critic is not None:
        critic = Critic.from_config(cfg)
        extra = torch.load(args.run_critic / "state.pt", weights_only=True)["extra"]
        critic.load_state_dict(extra["critic"])
        results["run critic"] = pool_ev(critic, pool)
        print("run critic:", json.dumps(results["run critic"]))
    for text in args.settings:
        s = parse_setting(text)
        clip = "null" if s["clip"] != s["clip"] else s["clip"]
        c = load_config(RECIPE, [f"trainer.seed={args.seed}", f"critic.lr={s['lr']}",
                                 f"critic.value_clip={clip}"])  # fmt: skip
        critic = Critic.from_config(c)
        online = []
        t0 = time.perf_counter()
        for batch, returns, _ in train:
            values = critic.values(batch)
            m = critic.update(batch, returns, values, epochs=int(s["epochs"]),
                              mini_batches=int(s["mb"]))  # fmt: skip
            online.append(m["critic/explained_variance"])
        finite = [x for x in online if x == x]
        row = {"online_ev_last10": statistics.mean(finite[-10:]), **pool_ev(critic, pool),
               "fit_s": time.perf_counter() - t0}  # fmt: skip
        results[text] = row
        print(text, json.dumps({k: round(v, 3) for k, v in row.items()}), flush=True)
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
