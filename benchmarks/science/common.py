"""The science suite's shared machinery (issue 22): arms, cached runs, held-out eval, plots.

An *arm* is the quickstart recipe (recipes/quickstart.yaml) with its `algo` section replaced by
one setting (a preset, or an ablation cell); everything else (model, data, reward, optimiser)
stays the quickstart's, so arms differ in the algorithm only. A run is

    reasonrl train <arm recipe> trainer.seed=S trainer.steps=N trainer.time_budget_s=null ...

in a subprocess (step budgets, not wall-clock: comparable on a shared machine), then the final
checkpoint is evaluated on the held-out synthetic split (`rl.evaluation.heldout_samples` +
`run_eval`, EVAL_SEED, the same problems for every arm and seed) by a second subprocess. A run's
directory is named by a hash of (arm recipe, budget overrides, seed) and holds `heldout.json`
when complete, so a rerun of a finding with the same settings reads the cache and trains
nothing. The base model's evaluation is cached the same way (`base/heldout.json`).

Results: `write_results` puts `docs/science/<finding>.json` beside `<finding>.png`.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "recipes" / "quickstart.yaml"
DOCS = REPO / "docs" / "science"
BASE = "builtin:synth-micro"

# Every arm's `algo` section: the quickstart's micro-batch plus the arm's keys (the recipe's own
# algo keys are dropped, or they would override a preset). lite_ppo is also the ablation's
# group-mean + batch-std + token-mean cell; the quickstart's algo is the group-std + token cell.
GSTD_TOK = {"advantage": "grpo", "std_scope": "group", "agg": "token_mean"}  # the quickstart's
ARMS: dict[str, dict[str, Any]] = {
    "grpo": {"preset": "grpo"},  # seq-mean-token-mean, group std, k3 KL 0.04 (needs a reference)
    "dr_grpo": {"preset": "dr_grpo"},  # no std, token sum / max_new_tokens
    # DAPO's soft overlong buffer is 4096 of 20480 tokens (20 %): 26 of the quickstart's 128.
    "dapo": {"preset": "dapo", "overlong_buffer": 26},
    "lite_ppo": {"preset": "lite_ppo"},  # group mean, batch std, token-mean
    # The Tricks-or-Traps ablation (arXiv 2508.08221): normalisation x aggregation.
    "mean_tok": {"advantage": "dr_grpo", "agg": "token_mean"},
    "mean_seq": {"advantage": "dr_grpo", "agg": "seq_mean_token_mean"},
    "gstd_tok": GSTD_TOK,
    "gstd_seq": {"advantage": "grpo", "std_scope": "group", "agg": "seq_mean_token_mean"},
    "bstd_seq": {"advantage": "lite_ppo", "agg": "seq_mean_token_mean"},
    # DAPO's dynamic sampling alone, on the quickstart's algorithm (gstd_tok).
    "gstd_tok_ds": {
        "advantage": "grpo",
        "std_scope": "group",
        "agg": "token_mean",
        "dynamic_sampling": True,
    },
}


# Arms that also change a section other than `algo` (the reward, the rollout): those keys are
# set on top of the quickstart's section. Findings 2 and 5 and the Clip/Delta benchmark vary
# what the algorithm sees, not how it turns rewards into a gradient.
DENSE_ALGO = {"advantage": "reinforce_pp", "agg": "token_mean"}  # a token-level estimator
SECTIONS: dict[str, dict[str, dict[str, Any]]] = {
    # finding 2: the answer alone is rewarded (guesses and shortcuts included)
    "outcome": {"reward": {"kind": "synth_outcome"}},
    # finding 5: the sampler's weights lag the trainer's by up to 4 versions (asynchronous
    # rollouts, rl/async_rollouts.py), without and with token-level truncated IS at 2
    "stale4": {"rollout": {"max_staleness": 4}},
    "stale4_tis": {"rollout": {"max_staleness": 4}},
    # finding 1 (Interplay): the same algorithm on the base's solved op or on its edge ops
    # (benchmarks/base_checkpoint.md: op 2 strict pass@1/@8 .31/.66; ops 3-4 .14/.47, .04/.14)
    "rl_id": {"data": {"ops": [2]}},
    "rl_edge": {"data": {"ops": [3, 4]}},
    # Clip/Delta (arXiv 2410.15115): outcome reward plus per-step rewards, REINFORCE++ advantages
    "rpp_outcome": {"reward": {"kind": "synth_outcome"}},
    **{
        f"rpp_{kind}": {"reward": {"kind": "synth_outcome", "dense": kind, "dense_coef": 0.1}}
        for kind in ("raw", "clip", "delta")
    },
}
# finding 1, contextual transfer (Interplay: RL transfers to a new context only if pre-training
# showed it, ~1 % of the data): the shipped base saw one context (zoo). Each arm first
# mid-trains it briefly (`midtrained_base`) on ops 2-6 with PERCENT % of the rows in a new
# context, then runs the quickstart's RL on the new context alone and is evaluated on it.
NEW_CONTEXT = "school"
TRANSFER: dict[str, int] = {
    "xfer0": 0,
    "xfer1": 1,
    "xfer10": 10,
    "xfer50": 50,
}  # arm: % new-context rows
SECTIONS |= {arm: {"data": {"contexts": [NEW_CONTEXT]}} for arm in TRANSFER}
ARMS |= {
    **dict.fromkeys(TRANSFER, GSTD_TOK),
    "outcome": GSTD_TOK,
    "rl_id": GSTD_TOK,
    "rl_edge": GSTD_TOK,
    "stale4": {**GSTD_TOK, "is_level": "none"},
    "stale4_tis": {**GSTD_TOK, "is_level": "token", "is_mode": "truncate", "is_high": 2.0},
    **{arm: DENSE_ALGO for arm in ("rpp_outcome", "rpp_raw", "rpp_clip", "rpp_delta")},
}


@dataclass(frozen=True)
class Budget:
    """What every arm of a finding shares: the step budget and the evaluation's size."""

    steps: int = 40
    prompts_per_step: int = 16  # the quickstart's B
    group_size: int = 8  # the quickstart's G (rollout.n)
    max_new_tokens: int = 128  # the quickstart's
    eval_problems: int = 40  # held-out problems per RL op (ops 1-4)
    eval_samples: int = 8  # strict pass@1 is the mean over these samples
    eval_ops: tuple[int, ...] = (1, 2, 3, 4)  # the RL ops; finding 1 adds harder ones
    budget_s: float | None = None  # optional wall-clock cap on top of the steps
    midtrain_steps: int = 600  # finding 1's transfer bases: SFT steps x 16 rows
    jobs: int = 1  # arms trained at once (each with one torch thread when > 1)
    out: Path = field(default=REPO / "runs" / "science")

    def overrides(self) -> list[str]:
        return [
            f"trainer.steps={self.steps}",
            f"trainer.time_budget_s={'null' if self.budget_s is None else self.budget_s}",
            f"rollout.prompts_per_step={self.prompts_per_step}",
            "trainer.eval_every=null",  # held-out eval is done once, after training, below
            "trainer.sample_every=5",
            "trainer.save_every=100000",  # the final step is always saved
            *self._shape(),
        ]

    def _shape(self) -> list[str]:
        """G, length and micro-batch, only where they differ from the quickstart's (so the
        cache key of a default-shaped run does not change)."""
        out = [f"rollout.n={self.group_size}"] if self.group_size != 8 else []
        if self.max_new_tokens != 128:
            out.append(f"rollout.max_new_tokens={self.max_new_tokens}")
        seqs = self.prompts_per_step * self.group_size
        if seqs < 32:  # the quickstart's 32 sequences per micro-batch, or the whole batch
            out.append(f"algo.micro_batch_size={seqs}")
        return out

    def eval_overrides(self) -> list[str]:
        return [
            f"data.eval_ops=[{','.join(map(str, self.eval_ops))}]",
            f"eval.problems_per_op={self.eval_problems}",
            f"eval.samples={self.eval_samples}",
        ]


def arm_recipe(arm: str) -> dict[str, Any]:
    recipe = yaml.safe_load(QUICKSTART.read_text())
    recipe["algo"] = {"micro_batch_size": recipe["algo"]["micro_batch_size"], **ARMS[arm]}
    for section, keys in SECTIONS.get(arm, {}).items():
        recipe[section] = {**recipe.get(section, {}), **keys}
    return recipe


def midtrain_recipe(percent: int, steps: int) -> dict[str, Any]:
    """`reasonrl sft` from the shipped base: ops 2-6 (its pre-training ops), `percent` % of the
    rows in NEW_CONTEXT (the context list is cycled round-robin, so 100 entries give exact
    percentages), a short low-LR cosine so the zoo skills stay."""
    contexts = ["zoo"] * (100 - percent) + [NEW_CONTEXT] * percent
    return {
        "model": {"init": BASE},
        "data": {
            "synth_ops": [2, 3, 4, 5, 6],
            "synth_per_op": max(100, steps * 16 // 5),  # one pass over the rows
            "synth_eval_per_op": 16,
            "synth_contexts": contexts,
            "seed": 0,
        },
        "optim": {"lr": 5e-4, "min_lr_ratio": 0.1, "warmup_steps": min(50, steps)},
        "train": {
            "batch_size": 16,
            "max_steps": steps,
            "dtype": "fp32",
            "threads": 1,
            "seed": 0,
            "log_every": 100,
            "eval_every": 100000,
        },
    }


_BASE_LOCKS: dict[str, threading.Lock] = defaultdict(threading.Lock)


def midtrained_base(percent: int, budget: Budget) -> Path:
    """The base a transfer arm starts from (cached; one build even with several seeds at once)."""
    recipe = midtrain_recipe(percent, budget.midtrain_steps)
    out = budget.out / "bases" / f"{NEW_CONTEXT}{percent}-{_key(recipe)}"
    with _BASE_LOCKS[str(out)]:
        if not (out / "DONE").exists():
            out.mkdir(parents=True, exist_ok=True)
            recipe["train"]["out_dir"] = str(out)
            (out / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
            t0 = time.monotonic()
            with (out / "sft.log").open("w") as fh:
                cmd = [sys.executable, "-m", "reasonrl.cli", "sft", str(out / "recipe.yaml")]
                subprocess.run(cmd, check=True, stdout=fh, stderr=subprocess.STDOUT)
            took = f"{time.monotonic() - t0:.0f} s"
            (out / "DONE").write_text(took + "\n")
            print(f"base {NEW_CONTEXT} {percent}%: {took} -> {out}", flush=True)
    return out / "final"


def _key(*parts: object) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:10]


def _env(budget: Budget) -> dict[str, str]:
    env = dict(os.environ)
    if budget.jobs > 1:  # several runs on few cores: one thread each, no oversubscription
        env.setdefault("OMP_NUM_THREADS", "1")
    return env


def run_arm(arm: str, seed: int, budget: Budget) -> Path:
    """Train one arm for one seed and evaluate its final policy (cached); the run dir."""
    recipe = arm_recipe(arm)
    if arm in TRANSFER:  # its own base, built first (the path names the base's recipe)
        recipe["model"]["path"] = str(midtrained_base(TRANSFER[arm], budget))
    overrides = [*budget.overrides(), *budget.eval_overrides()]
    run_dir = budget.out / arm / f"s{seed}-{_key(recipe, overrides, seed)}"
    if (run_dir / "heldout.json").exists():
        return run_dir  # cached: same recipe, budget and seed
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    recipe_path = run_dir.parent / f"{run_dir.name}.yaml"
    recipe_path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    if arm in TRANSFER:  # the arm's own "before": its base on the arm's held-out problems
        before = _cached_eval(Path(recipe["model"]["path"]), recipe_path, budget)
        (run_dir.parent / f"{run_dir.name}.base.json").write_text(json.dumps(before) + "\n")
    overrides += [
        f"trainer.seed={seed}",
        f"trainer.out_dir={run_dir.parent}",
        f"trainer.run_name={run_dir.name}",
    ]
    t0 = time.monotonic()
    final = run_dir / "checkpoints" / f"step_{budget.steps:08d}"
    if (final / "COMPLETE").exists():  # trained, not yet evaluated (an interrupted run)
        result = {
            **_run_worker("--eval", recipe_path, [*overrides, f"model.path={final}"], budget),
            "meta": {"steps": budget.steps},
        }
    else:
        log = run_dir.parent / f"{run_dir.name}.log"
        with log.open("w") as fh:  # one process: `reasonrl train`'s loop, then the eval
            cmd = [sys.executable, __file__, "--train", str(recipe_path), *overrides]
            subprocess.run(cmd, check=True, stdout=fh, stderr=subprocess.STDOUT, env=_env(budget))
        result = json.loads((run_dir / "heldout.json").read_text())
    result["meta"].update(arm=arm, seed=seed, overrides=overrides)
    (run_dir / "heldout.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"{arm} seed {seed}: {time.monotonic() - t0:.0f} s -> {run_dir}", flush=True)
    return run_dir


def base_eval(budget: Budget) -> dict[str, Any]:
    """The base model on the same held-out problems (cached): every arm's starting point."""
    path = budget.out / "base" / f"{_key(BASE, budget.eval_overrides())}.json"
    return _eval_once(path, QUICKSTART, budget.eval_overrides(), budget)


def _cached_eval(model: Path, recipe: Path, budget: Budget) -> dict[str, Any]:
    """`model` evaluated as `recipe`'s held-out split (cached beside the model)."""
    overrides = [*budget.eval_overrides(), f"model.path={model}"]
    contexts = yaml.safe_load(recipe.read_text())["data"].get("contexts", ["zoo"])
    path = model.parent / f"heldout-{_key(contexts, overrides)}.json"
    return _eval_once(path, recipe, overrides, budget)


def _eval_once(path: Path, recipe: Path, overrides: Sequence[str], budget: Budget) -> dict:
    """The `--eval` worker's result for (recipe, overrides), computed once and kept at `path`
    (a lock per path: arms running side by side share one evaluation)."""
    with _BASE_LOCKS[str(path)]:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            result = _run_worker("--eval", recipe, overrides, budget)
            path.write_text(json.dumps(result, indent=1) + "\n")
    return json.loads(path.read_text())


def before(run_dir: Path) -> dict[str, Any]:
    """A transfer arm's base on the arm's held-out problems (written by `run_arm`)."""
    return json.loads((run_dir.parent / f"{run_dir.name}.base.json").read_text())


def _run_worker(mode: str, recipe: Path, overrides: Sequence[str], budget: Budget) -> dict:
    cmd = [sys.executable, __file__, mode, str(recipe), *overrides]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=_env(budget))
    return json.loads(out.stdout.strip().splitlines()[-1])


def _heldout(model: Any, tokenizer: Any, cfg: Any) -> dict[str, Any]:
    from reasonrl.rl.evaluation import heldout_samples, run_eval

    result = run_eval(model, tokenizer, heldout_samples(cfg), cfg)
    return {"overall": result["overall"], "per_op": result["per_op"]}


def _worker(mode: str, recipe: str, overrides: Sequence[str]) -> None:
    """--train: `rl.run.train` (what `reasonrl train` runs) then the held-out eval of the final
    policy into <run dir>/heldout.json; --eval: the base model's eval, printed as JSON."""
    from reasonrl.cli.checks import check_rl
    from reasonrl.config import load_config

    cfg = load_config(recipe, list(overrides))
    if mode == "--eval":  # model.path: the base, or a run's final checkpoint
        from reasonrl.models.io import load_policy

        model, tokenizer = load_policy(cfg.model.path, device=cfg.model.device)
        print(json.dumps(_heldout(model, tokenizer, cfg)))
        return
    from reasonrl.rl.run import train

    check_rl(cfg, Path(recipe))  # exit 2 before the model loads, as `reasonrl train`
    t0 = time.monotonic()
    state = train(cfg)
    train_s = time.monotonic() - t0
    result = _heldout(state.model, state.tokenizer, cfg)
    result["meta"] = {
        "steps": state.step,
        "train_s": round(train_s, 1),
        "eval_s": round(time.monotonic() - t0 - train_s, 1),
    }
    (cfg.run_dir / "heldout.json").write_text(json.dumps(result, indent=1) + "\n")


def run_arms(arms: Sequence[str], seeds: Sequence[int], budget: Budget) -> dict[str, list[Path]]:
    """Every (arm, seed), `budget.jobs` at a time; {arm: [run dir per seed]}."""
    jobs = [(a, s) for a in arms for s in seeds]
    with ThreadPoolExecutor(max_workers=budget.jobs) as pool:
        # transfer bases first, side by side (each is needed by all of its arm's seeds)
        list(pool.map(lambda a: midtrained_base(TRANSFER[a], budget), set(arms) & set(TRANSFER)))
        base = pool.submit(base_eval, budget)
        dirs = list(pool.map(lambda job: run_arm(job[0], job[1], budget), jobs))
        base.result()
    out: dict[str, list[Path]] = {a: [] for a in arms}
    for (arm, _), d in zip(jobs, dirs, strict=True):
        out[arm].append(d)
    return out


# ---- reading runs ----------------------------------------------------------------------------


def metrics(run_dir: Path) -> list[dict[str, Any]]:
    from reasonrl.report.report import read_jsonl

    return read_jsonl(run_dir / "metrics.jsonl")


def curve(run_dir: Path, key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of one metric, nulls (NaN in the run) skipped."""
    from reasonrl.report.plots import series

    return series(metrics(run_dir)).get(key, ([], []))


def window_mean(run_dir: Path, key: str, first: bool = False, frac: float = 0.25) -> float:
    """Mean of `key` over the first or the last `frac` of the run's steps (NaN if never set)."""
    _, values = curve(run_dir, key)
    if not values:
        return float("nan")
    n = max(1, round(len(values) * frac))
    return statistics.mean(values[:n] if first else values[-n:])


def heldout(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "heldout.json").read_text())


def mean_sd(values: Sequence[float]) -> str:
    """'m' for one value, 'm ± sd' (sample sd over seeds) for several; '—' if the metric was
    never logged (NaN, e.g. staleness of a synchronous run); the count if only some seeds have
    it."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return "—"
    if len(finite) == 1:
        out = f"{finite[0]:.3f}"
    else:
        out = f"{statistics.mean(finite):.3f} ± {statistics.stdev(finite):.3f}"
    return out if len(finite) == len(values) else f"{out} ({len(finite)} of {len(values)} seeds)"


def strict1(result: Mapping[str, Any]) -> float:
    return float(result["overall"]["strict_pass@1"])


# ---- writing results -------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    import platform

    import torch

    return {
        "date": time.strftime("%Y-%m-%d"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 1),
    }


def write_results(finding: str, payload: Mapping[str, Any], out_dir: Path = DOCS) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{finding}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=1, default=str) + "\n")
    return path


def figure(ncols: int, title: str) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(4.6 * ncols, 3.6), squeeze=False)
    fig.suptitle(title, fontsize=10)
    return fig, axes[0]


def plot_key(
    ax: Any, runs: Mapping[str, Sequence[Path]], key: str, label: str = "", style: str = "-"
) -> None:
    """One line per arm: the mean over seeds of `key` per step (steps every seed logged)."""
    for i, (arm, dirs) in enumerate(runs.items()):
        per_seed = [dict(zip(*curve(d, key), strict=True)) for d in dirs]
        steps = sorted(set.intersection(*(set(c) for c in per_seed))) if per_seed else []
        ys = [statistics.mean(c[s] for c in per_seed) for s in steps]
        ax.plot(steps, ys, style, color=f"C{i}", label=f"{arm}{label}", lw=1.4)
    ax.set_xlabel("RL step")
    ax.grid(alpha=0.3)


def save(fig: Any, finding: str, out_dir: Path = DOCS) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{finding}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def parse_args(doc: str, argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, Budget]:
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="*", default=[0])
    p.add_argument("--steps", type=int, default=Budget.steps)
    p.add_argument("--prompts-per-step", type=int, default=Budget.prompts_per_step)
    p.add_argument("--group-size", type=int, default=Budget.group_size, help="rollout.n")
    p.add_argument("--max-new-tokens", type=int, default=Budget.max_new_tokens)
    p.add_argument("--arms", nargs="*", default=None, help="only these of the finding's arms")
    p.add_argument("--eval-problems", type=int, default=Budget.eval_problems)
    p.add_argument("--eval-samples", type=int, default=Budget.eval_samples)
    p.add_argument("--budget-s", type=float, default=None, help="wall cap on top of --steps")
    p.add_argument("--jobs", type=int, default=1, help="arms trained at once")
    p.add_argument(
        "--midtrain-steps", type=int, default=Budget.midtrain_steps, help="transfer bases' SFT"
    )
    p.add_argument("--out", type=Path, default=Budget().out, help="run cache")
    p.add_argument("--docs", type=Path, default=DOCS, help="where the .png/.json go")
    args = p.parse_args(argv)
    budget = Budget(
        steps=args.steps,
        prompts_per_step=args.prompts_per_step,
        group_size=args.group_size,
        max_new_tokens=args.max_new_tokens,
        eval_problems=args.eval_problems,
        eval_samples=args.eval_samples,
        budget_s=args.budget_s,
        jobs=args.jobs,
        midtrain_steps=args.midtrain_steps,
        out=args.out,
    )
    return args, budget


def budget_dict(budget: Budget, seeds: Sequence[int]) -> dict[str, Any]:
    d = {k: v for k, v in budget.__dict__.items() if k not in ("out", "jobs")}
    return {**d, "seeds": list(seeds), "recipe": "recipes/quickstart.yaml"}


def copy_runs(runs: Mapping[str, Sequence[Path]]) -> dict[str, list[str]]:
    return {a: [str(d) for d in ds] for a, ds in copy.deepcopy(dict(runs)).items()}


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] in ("--train", "--eval"):
        _worker(sys.argv[1], sys.argv[2], sys.argv[3:])
