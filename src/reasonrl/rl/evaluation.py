"""Held-out evaluation of an RL run (`trainer.eval_every`): what is held out, when it is scored,
and what is written.

What is held out (`eval_samples`), at most `eval.problems_per_op` problems per group (the
`meta["op"]` of a problem, else one group "all"), in file order:

    data.eval_file set     that file, read like data.train_file (data.fields mapping)
    task=synth             the held-out split (never trained on) at each op of data.eval_ops,
                           generated with EVAL_SEED: the same problems whatever trainer.seed
    task=benchmark         the test split of a train split (HELDOUT_SPLITS: gsm8k_train ->
                           gsm8k_test); any other benchmark is itself a test set, so there is
                           nothing held out and evaluation is skipped with a log line
    task=jsonl, no eval_file   skipped with a log line

When: at step 0 (before the first step, outside the time budget), at every multiple of N and at
the run's last step (`trainer.steps` or the step the time budget stopped at), never twice for one
step. A resumed run continues at the next due step: the step it resumes from was evaluated, if it
was due, by the process that wrote its checkpoint (the evaluation comes before the save).

How: `reasonrl.eval.evaluate.evaluate` through the run's own rollout engine (so vLLM evaluates a
vLLM run), scored by the run's reward, `eval.samples` samples per problem at `eval.temperature`
(0 = greedy), `eval.max_new_tokens`, sampling seed EVAL_SEED at every evaluation (the same noise
each time, so the curve moves with the model, not with the draw). Sampling uses its own seeded
generator, so the run's RNG streams and its training are the same with or without evaluation.

Written to the run directory:
    metrics.jsonl      `eval/...` keys (`eval_metrics`) and `perf/eval_s` merged into the row of
                       the step they evaluate; step 0 gets a row of its own
    eval_step{N}.json  {"step", "source", "settings", "overall", "per_op"} of each evaluation
    eval.json          first vs latest evaluation, rewritten after each one (so it is the final
                       one when the run ends), in the quickstart's schema:
                       {"before": {group: metrics}, "after": {...}, "meta": {...}}
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reasonrl.config import RLConfig
from reasonrl.rewards.api import RewardFn
from reasonrl.runtime.metrics import write_json_atomic
from reasonrl.types import Sample

if TYPE_CHECKING:
    from reasonrl.rl.state import TrainState

EVAL_SEED = 2026  # fixed so that every run (any training seed) is judged on the same problems

# Benchmarks that are a train split -> the benchmark holding their test split.
HELDOUT_SPLITS = {"gsm8k_train": "gsm8k_test"}

# Per-group keys in metrics.jsonl (the full table of every group is in eval_step{N}.json).
GROUP_KEYS = ("pass@1", "strict_pass@1")

_STEP_FILE = re.compile(r"^eval_step(\d+)\.json$")


def heldout_samples(cfg: RLConfig) -> list[Sample]:
    """`eval.problems_per_op` held-out synthetic problems for each op of `data.eval_ops`."""
    from reasonrl.tasks.synth import make_dataset, row_to_sample

    rows = make_dataset(
        cfg.data.eval_ops or cfg.data.ops,
        cfg.eval.problems_per_op,
        contexts=cfg.data.contexts,
        modes=cfg.data.modes,
        magnitude=cfg.data.magnitude,
        seed=EVAL_SEED,
        split="heldout",
    )
    return [row_to_sample(r) for r in rows]


def limit_per_group(samples: Sequence[Sample], per_group: int) -> list[Sample]:
    """The first `per_group` samples of each `meta["op"]` group (no op: one group), in order."""
    counts: dict[Any, int] = {}
    kept = []
    for sample in samples:
        op = sample.meta.get("op") if sample.meta else None
        if counts.get(op, 0) < per_group:
            counts[op] = counts.get(op, 0) + 1
            kept.append(sample)
    return kept


def eval_samples(cfg: RLConfig) -> tuple[list[Sample], str] | tuple[None, str]:
    """(held-out samples, where they come from), or (None, why there are none); see the module
    docstring. A malformed row of data.eval_file raises `DataError` naming the file and line."""
    d, per_group = cfg.data, cfg.eval.problems_per_op
    if d.eval_file:
        from reasonrl.data.loaders import load_any

        mapping = {"fields": dict(d.fields)} if d.fields else {}
        samples = load_any(d.eval_file, **mapping)
        if not samples:
            raise ValueError(f"data.eval_file {d.eval_file} holds no rows")
        return limit_per_group(samples, per_group), f"data.eval_file {d.eval_file}"
    if d.task == "synth":
        ops = list(d.eval_ops or d.ops)
        return heldout_samples(cfg), f"synthetic held-out split, ops {ops}, seed {EVAL_SEED}"
    if d.task == "benchmark":
        test = HELDOUT_SPLITS.get(d.benchmark or "")
        if test is None:
            return None, (
                f"data.benchmark={d.benchmark} has no held-out split (only "
                f"{', '.join(f'{a} -> {b}' for a, b in HELDOUT_SPLITS.items())} do); "
                "set data.eval_file to evaluate"
            )
        from reasonrl.data.benchmarks import load_benchmark

        samples = limit_per_group(load_benchmark(test, d.data_dir), per_group)
        return samples, f"benchmark {test} (held-out split of {d.benchmark})"
    return None, "data.task=jsonl without data.eval_file"


def run_eval(
    model: Any,
    tokenizer: Any,
    samples: Sequence[Sample],
    cfg: RLConfig,
    *,
    engine: Any = None,
    reward_fn: RewardFn | None = None,
) -> dict[str, Any]:
    """`evaluate` with the `eval` section's settings and EVAL_SEED; returns
    `{"settings": {...}, "overall": {metric: value}, "per_op": {group: {metric: value}}}`.

    `engine` None builds a local engine on `model` (`rollout.registry.local_engine`);
    `reward_fn` None is the synthetic task's process-verified reward."""
    from reasonrl.data.templates import PromptFormat
    from reasonrl.eval.evaluate import evaluate

    e = cfg.eval
    if cfg.env.kind != "single_turn":  # tool episodes, scored on their transcripts
        return run_env_eval(model, tokenizer, samples, cfg, engine=engine, reward_fn=reward_fn)
    result = evaluate(
        model,
        tokenizer,
        samples,
        samples_per_problem=e.samples,
        temperature=e.temperature,  # 0 = greedy (evaluate's rule)
        max_new_tokens=e.max_new_tokens or cfg.rollout.max_new_tokens,
        engine=engine,
        seed=EVAL_SEED,
        reward_fn=reward_fn,
        reward_timeout_s=cfg.reward.timeout_s,
        prompt_format=PromptFormat.from_config(cfg),  # the prompts training sees
    )
    return result.to_dict()


def run_env_eval(
    model: Any,
    tokenizer: Any,
    samples: Sequence[Sample],
    cfg: RLConfig,
    *,
    engine: Any = None,
    reward_fn: RewardFn | None = None,
    factory: Any = None,
) -> dict[str, Any]:
    """`run_eval` through the run's environment (env.kind=tool): `envs.rollout.run_episodes`
    plays each held-out problem's episodes with the `eval` section's sampling settings and
    EVAL_SEED, and each transcript is scored by `reward_fn` (None = the synthetic task's
    process-verified reward, which reads tool traces: its `verified` gives strict pass@k).
    The result has run_eval's keys plus "env": the episodes' `episode_metrics` without the
    `env/` prefix (tool_calls per episode, tool_error_rate, turns_mean, finish/<reason>, ...).
    `factory` None = `rl.envs.make_env_factory(cfg, tokenizer)`."""
    from reasonrl.data.templates import PromptFormat
    from reasonrl.envs.rollout import episode_metrics, run_episodes
    from reasonrl.eval.evaluate import score_groups
    from reasonrl.rl.envs import decoder, make_env_factory
    from reasonrl.rollout.base import SamplingParams

    e = cfg.eval
    if engine is None:
        from reasonrl.rollout.registry import local_engine

        engine = local_engine(model, tokenizer)
    greedy = e.temperature == 0
    n = 1 if greedy else e.samples
    max_new = e.max_new_tokens or cfg.rollout.max_new_tokens
    params = SamplingParams(n=n, max_new_tokens=max_new, temperature=e.temperature,
                            greedy=greedy, seed=EVAL_SEED)  # fmt: skip
    factory = factory or make_env_factory(cfg, tokenizer)
    episodes = run_episodes(engine, factory, samples, params, decode=decoder(tokenizer),
                            workers=cfg.env.workers)  # fmt: skip
    groups = [[ep.completion() for ep in row] for row in episodes]
    settings = {"samples_per_problem": n, "temperature": None if greedy else e.temperature,
                "greedy": greedy, "max_new_tokens": max_new, "seed": EVAL_SEED,
                "problems": len(samples), "env": cfg.env.kind, "tool": cfg.env.tool}  # fmt: skip
    fmt = PromptFormat.from_config(cfg)
    if fmt != PromptFormat():
        settings |= {"template": fmt.template, "system_prompt": fmt.system,
                     "instruction": fmt.instruction}  # fmt: skip
    result = score_groups(samples, groups, settings, reward_fn=reward_fn,
                          reward_timeout_s=cfg.reward.timeout_s).to_dict()  # fmt: skip
    env = episode_metrics([c for row in groups for c in row])
    result["env"] = {k.removeprefix("env/"): v for k, v in env.items()}
    result["env"].setdefault("tool_error_rate", 0.0)  # no call made: no error either
    result["env"].setdefault("tool_calls", 0.0)
    return result


# The env keys of a tool evaluation logged as eval/<key> (the rest are in eval_step{N}.json).
ENV_KEYS = ("tool_calls", "tool_error_rate", "turns_mean")


def eval_metrics(result: dict[str, Any]) -> dict[str, float]:
    """The `eval/` keys of metrics.jsonl from a `run_eval` result.

    Overall: `eval/pass@1`, `eval/pass@n`, `eval/strict_pass@1`, `eval/strict_pass@n`,
    `eval/maj@n` (n = samples per problem; strict_* only for process-verified rewards),
    `eval/mean_tokens`, `eval/truncated`; with env.kind=tool also `eval/tool_calls` (per
    episode), `eval/tool_error_rate` (failed / all calls), `eval/turns_mean`. Per group, when
    there are groups (ops):
    `eval/op{g}/pass@1`, `eval/op{g}/strict_pass@1`.
    """
    n = int(result["settings"]["samples_per_problem"])
    overall = result["overall"]
    wanted = ["pass@1", f"pass@{n}", "strict_pass@1", f"strict_pass@{n}", f"maj@{n}",
              "mean_tokens", "truncated"]  # fmt: skip
    out = {f"eval/{k}": float(overall[k]) for k in dict.fromkeys(wanted) if k in overall}
    env = result.get("env") or {}
    out |= {f"eval/{k}": float(env[k]) for k in ENV_KEYS if k in env}
    per_op = result["per_op"]
    if set(per_op) != {"all"}:
        for group, values in per_op.items():
            out |= {f"eval/op{group}/{k}": float(values[k]) for k in GROUP_KEYS if k in values}
    return out


def eval_step_path(run_dir: Path, step: int) -> Path:
    return run_dir / f"eval_step{step}.json"


def evaluated_steps(run_dir: Path) -> list[int]:
    """Steps that have an eval_step{N}.json in the run directory, ascending."""
    found = (_STEP_FILE.match(p.name) for p in run_dir.glob("eval_step*.json"))
    return sorted(int(m.group(1)) for m in found if m)


def _read_step(run_dir: Path, step: int) -> dict[str, Any] | None:
    try:
        return json.loads(eval_step_path(run_dir, step).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def write_summary(run_dir: Path) -> Path | None:
    """eval.json from the first and the latest eval_step{N}.json; None when there are none.

    Schema (that of `reasonrl quickstart`): before/after = {group: metrics} of the first/latest
    evaluation; meta: steps (latest step), first_step, evaluated_steps, overall_before,
    overall_after, problems, source, settings.
    """
    read = {s: _read_step(run_dir, s) for s in evaluated_steps(run_dir)}
    loaded = {s: data for s, data in read.items() if data is not None}  # each file read once
    if not loaded:
        return None
    steps = list(loaded)
    first, last = loaded[steps[0]], loaded[steps[-1]]
    payload = {
        "before": first["per_op"],
        "after": last["per_op"],
        "meta": {
            "steps": steps[-1],
            "first_step": steps[0],
            "evaluated_steps": steps,
            "overall_before": first["overall"],
            "overall_after": last["overall"],
            "problems": int(last["overall"].get("problems", 0)),
            "source": last.get("source"),
            "settings": last.get("settings"),
        },
    }
    path = run_dir / "eval.json"
    write_json_atomic(path, payload)
    return path


def forget_evals_after(run_dir: Path, step: int | None) -> None:
    """Drop eval_step{N}.json with N > step (all of them when step is None: a fresh run), as the
    metric logs drop rows written after the checkpoint a run resumes from; eval.json is then
    rebuilt from what is left (removed if nothing is). Without eval_step files, eval.json is left
    alone (e.g. the quickstart's own before/after file)."""
    steps = evaluated_steps(run_dir)
    if not steps:
        return
    for s in steps:
        if step is None or s > step:
            eval_step_path(run_dir, s).unlink(missing_ok=True)
    if write_summary(run_dir) is None:
        (run_dir / "eval.json").unlink(missing_ok=True)


class RunEvaluator:
    """Evaluates a run's policy on fixed held-out samples at the due steps; see the module
    docstring. `log` receives one line per evaluation."""

    def __init__(
        self,
        cfg: RLConfig,
        samples: Sequence[Sample],
        source: str,
        *,
        log: Callable[[str], None] = print,
    ) -> None:
        if cfg.trainer.eval_every is None:
            raise ValueError("RunEvaluator needs trainer.eval_every")
        self.cfg = cfg
        self.every = cfg.trainer.eval_every
        self.samples = list(samples)
        self.source = source
        self.log = log
        self._done: set[int] = set()

    @classmethod
    def for_run(cls, cfg: RLConfig, *, log: Callable[[str], None] = print) -> RunEvaluator | None:
        """The run's evaluator, or None (eval_every unset, or nothing held out: logged)."""
        if cfg.trainer.eval_every is None:
            if cfg.data.eval_file:
                log(f"data.eval_file {cfg.data.eval_file} is not read: trainer.eval_every is unset")
            return None
        samples, source = eval_samples(cfg)
        if samples is None:
            log(f"no evaluation during training: {source}")
            return None
        every = cfg.trainer.eval_every
        log(f"evaluating every {every} steps on {len(samples)} problems ({source})")
        return cls(cfg, samples, source, log=log)

    def due(self, step: int, *, last: bool = False) -> bool:
        """Step 0, multiples of eval_every and the last step; never a step already evaluated."""
        return step not in self._done and (step % self.every == 0 or last)

    def evaluate(self, state: TrainState) -> dict[str, float]:
        """Score the current policy; writes eval_step{N}.json and eval.json; returns the eval/
        keys (and `perf/eval_s`) for the metrics row of this step."""
        t0 = time.monotonic()
        result = run_eval(state.model, state.tokenizer, self.samples, state.cfg,
                          engine=state.engine, reward_fn=state.reward_fn)  # fmt: skip
        step, run_dir = state.step, state.cfg.run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        payload = {"step": step, "source": self.source, **result}
        write_json_atomic(eval_step_path(run_dir, step), payload)
        write_summary(run_dir)
        self._done.add(step)
        seconds = time.monotonic() - t0
        metrics = eval_metrics(result)
        shown = "  ".join(f"{k} {v:.3f}" for k, v in metrics.items() if k.count("/") == 1)
        self.log(f"eval step {step}: {shown}  ({seconds:.1f} s)")
        return metrics | {"perf/eval_s": seconds}
