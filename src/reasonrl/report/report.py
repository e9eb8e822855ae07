"""`reasonrl report RUN_DIR`: a static HTML page about one run, readable without a server.

Reads from the run directory (every file optional, so a running or crashed run still reports):

    config.yaml      resolved configuration              -> "Config" section
    metrics.jsonl    one row per step                    -> learning curves (PNG) and a summary
    samples.jsonl    logged rollouts                     -> rollouts grouped by prompt, per-op
                                                            training reward (when rows carry op)
    eval_step{N}.json  one per evaluation of `trainer.eval_every` (rl/evaluation.py)
                                                         -> eval curves over steps and one
                                                            op x metric table (latest vs first);
                     without them, the eval/ keys of metrics.jsonl give the same
    eval*.json       other eval files: {"before": {op: {metric: value}}, "after": ..., "meta"}
                     (any number of stages) or a `reasonrl eval` result ({"settings",
                     "overall", "per_op"}): one op x metric table each (last stage vs first).
                     The eval.json that the eval_step files summarise is not shown twice.

What the page does with them: series that never change are listed in one line, not drawn; the
summary compares the mean of the first 10% of steps with the mean of the last 10% (two single
steps are mostly noise).

Writes RUN_DIR/report/index.html and RUN_DIR/report/img/*.png.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from reasonrl.report import html as H
from reasonrl.report.plots import GROUP_KEY, series, split_constant

WINDOW_FRAC = 0.1  # the summary's windows: first and last 10% of the training steps
_STEP_FILE = re.compile(r"^eval_step(\d+)\.json$")
EvalPoint = tuple[int, dict[str, dict[str, float]]]  # (step, {group: {metric: value}})

# Shown in the summary's first-vs-last window table when the run logged them.
SUMMARY_KEYS = (
    "reward/mean",
    "reward/verified_correct",
    "reward/outcome",
    "rollout/zero_std_frac",
    "rollout/len_mean",
    "rollout/truncated_frac",
    "actor/entropy",
    "actor/grad_norm",
    "perf/step_s",
)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file; a torn or non-object line (killed writer) is skipped."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def as_stages(data: dict[str, Any]) -> dict[str, Any]:
    """An eval file as {stage: {group: {metric: value}}, "meta": {...}}: a single evaluation
    (`EvalResult.to_dict`: settings, overall, per_op) becomes one stage with an "overall" row."""
    if isinstance(data.get("per_op"), dict) and isinstance(data.get("overall"), dict):
        meta = {k: v for k, v in data.items() if k not in ("per_op", "overall", "records")}
        return {"result": {**data["per_op"], "overall": data["overall"]}, "meta": meta}
    meta = data.get("meta")
    if isinstance(meta, dict) and all(isinstance(data.get(s), dict) for s in ("before", "after")):
        # the quickstart / trainer.eval_every schema keeps the overall metrics in meta
        data = dict(data)
        for stage in ("before", "after"):
            overall = meta.get(f"overall_{stage}")
            if isinstance(overall, dict) and "overall" not in data[stage]:
                data[stage] = {**data[stage], "overall": overall}
    return data


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _numbers(values: Any) -> dict[str, float]:
    if not isinstance(values, Mapping):
        return {}
    return {
        str(k): float(v)
        for k, v in values.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }


def _groups_of(result: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """{group: metrics} of one evaluation (`run_eval`'s result): the per-op groups and
    "overall" (a lone "all" group is the overall row itself)."""
    groups: dict[str, dict[str, float]] = {}
    per_op = result.get("per_op")
    if isinstance(per_op, Mapping) and set(per_op) != {"all"}:
        groups = {str(g): _numbers(v) for g, v in per_op.items() if isinstance(v, Mapping)}
    overall = _numbers(result.get("overall"))
    if overall:
        groups["overall"] = overall
    return groups


def read_eval_steps(run_dir: Path) -> list[tuple[int, dict[str, Any]]]:
    """[(step, content)] of RUN_DIR/eval_step{N}.json in step order, skipping unreadable files."""
    found = []
    for path in run_dir.glob("eval_step*.json"):
        m = _STEP_FILE.match(path.name)
        data = _read_json(path) if m else None
        if m and data is not None:
            found.append((int(m.group(1)), data))
    return sorted(found, key=lambda sd: sd[0])


def eval_points(
    step_files: Sequence[tuple[int, Mapping[str, Any]]], metrics: Sequence[Mapping[str, Any]]
) -> list[EvalPoint]:
    """The evaluations of a run as [(step, {group: {metric: value}})]: from the eval_step files,
    else from the eval/ keys of metrics.jsonl (`eval/{metric}` -> overall, `eval/op{g}/{metric}`
    -> group g)."""
    if step_files:
        return [(step, g) for step, data in step_files if (g := _groups_of(data))]
    points: list[EvalPoint] = []
    for row in metrics:
        step, groups = row.get("step"), {}
        for key, value in _numbers(row).items():
            if not key.startswith("eval/"):
                continue
            m = GROUP_KEY.match(key)
            group, metric = (m["group"], m["metric"]) if m else ("overall", key[len("eval/") :])
            groups.setdefault(group, {})[metric] = value
        if isinstance(step, int) and groups:
            points.append((step, groups))
    return points


def read_evals(run_dir: Path, *, skip_summary: bool = False) -> list[tuple[str, dict[str, Any]]]:
    """[(file name, content as stages)] of RUN_DIR/eval*.json but eval_step*.json (and eval.json
    when `skip_summary`: the eval_step files it summarises are shown instead), skipping
    unreadable files."""
    out = []
    for path in sorted(run_dir.glob("eval*.json")):
        if path.name.startswith("eval_step") or (skip_summary and path.name == "eval.json"):
            continue
        data = _read_json(path)
        if data is not None:
            out.append((path.name, as_stages(data)))
    return out


def stage_groups(data: Mapping[str, Any]) -> list[tuple[str, dict[str, dict[str, float]]]]:
    """[(stage, {group: metrics})] of an eval file as stages (`as_stages`), "meta" left out."""
    out = []
    for stage, groups in data.items():
        if stage == "meta" or not isinstance(groups, Mapping):
            continue
        table = {str(g): _numbers(v) for g, v in groups.items() if isinstance(v, Mapping)}
        if table:
            out.append((stage, table))
    return out


def window_summary(
    rows: Sequence[Mapping[str, Any]], keys: Sequence[str], frac: float = WINDOW_FRAC
) -> tuple[tuple[int, int], tuple[int, int], dict[str, float], dict[str, float]] | None:
    """Mean of each key over the first and over the last `frac` of the training steps (steps
    >= 1, at least one step each); ((first lo, hi), (last lo, hi), first means, last means), or
    None without training steps. A key not logged in a window has no mean there."""
    steps = sorted({r["step"] for r in rows if isinstance(r.get("step"), int) and r["step"] >= 1})
    if not steps:
        return None
    n = max(1, math.ceil(frac * len(steps)))
    first, last = set(steps[:n]), set(steps[-n:])
    data = series(rows)

    def mean(key: str, window: set[int]) -> float | None:
        steps_values = data.get(key, ([], []))
        vals = [v for s, v in zip(*steps_values, strict=True) if s in window]
        return sum(vals) / len(vals) if vals else None

    means = [{k: m for k in keys if (m := mean(k, window)) is not None} for window in (first, last)]
    return (steps[0], steps[n - 1]), (steps[-n], steps[-1]), means[0], means[1]


def op_of(row: Mapping[str, Any]) -> str | None:
    """The op (difficulty group) of a samples.jsonl row: `op`, or `meta.op`, when logged."""
    meta = row.get("meta")
    op = row.get("op", meta.get("op") if isinstance(meta, Mapping) else None)
    return None if op is None or isinstance(op, bool) else str(op)


def op_rewards(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[int, list[float]]]:
    """{op: {step: [reward, ...]}} of the rows that carry an op and a numeric reward."""
    out: dict[str, dict[int, list[float]]] = {}
    for row in rows:
        op, step, reward = op_of(row), row.get("step"), row.get("reward")
        if op is None or not isinstance(step, int) or isinstance(reward, bool):
            continue
        if isinstance(reward, int | float) and math.isfinite(reward):
            out.setdefault(op, {}).setdefault(step, []).append(float(reward))
    return out


def group_rollouts(
    rows: Sequence[Mapping[str, Any]],
) -> list[tuple[int, list[Mapping[str, Any]]]]:
    """[(step, completions of one prompt)] in the order first seen: a prompt is one (step,
    group, id) of samples.jsonl (`group` indexes the prompt within its step)."""
    groups: dict[tuple[Any, Any, Any], list[Mapping[str, Any]]] = {}
    for row in rows:
        key = (row.get("step"), row.get("group"), row.get("id", row.get("prompt")))
        groups.setdefault(key, []).append(row)
    return [(key[0], members) for key, members in groups.items()]


def _group_of(row: Mapping[str, Any]) -> int:
    group = row.get("group")
    return group if isinstance(group, int) else 0


def select_samples(
    rows: Sequence[Mapping[str, Any]], max_samples: int, max_steps: int = 8
) -> list[Mapping[str, Any]]:
    """An even spread of logged steps (first and last included), whole groups first.

    Keeps at most `max_steps` steps and `max_samples` rows, in (step, group) order; a step's
    share holds whole prompts (all their completions) unless not even one prompt fits in it.
    """
    by_step: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        if isinstance(row.get("step"), int):
            by_step[row["step"]].append(row)
    steps = sorted(by_step)
    if len(steps) > max_steps:
        picks = {round(i * (len(steps) - 1) / (max_steps - 1)) for i in range(max_steps)}
        steps = [steps[i] for i in sorted(picks)]
    per_step = max(1, max_samples // max(len(steps), 1))
    chosen: list[Mapping[str, Any]] = []
    for step in steps:
        groups: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
        for row in by_step[step]:
            groups[_group_of(row)].append(row)
        kept: list[Mapping[str, Any]] = []
        for group in sorted(groups):
            if kept and len(kept) + len(groups[group]) > per_step:
                break  # no prompt is cut short unless not even one fits
            kept += groups[group]
        chosen += kept[:per_step]
    return chosen[:max_samples]


def _summary(run_dir: Path, metrics: list[dict[str, Any]], config_text: str) -> str:
    last = metrics[-1] if metrics else {}
    steps_planned = None
    try:
        import yaml

        steps_planned = (yaml.safe_load(config_text) or {}).get("trainer", {}).get("steps")
    except Exception:  # a report must render even with a broken config file
        steps_planned = None
    pairs = [
        ("run directory", str(run_dir.resolve())),
        ("steps logged", f"{last.get('step', 0)} / {steps_planned or '?'}"),
        ("wall time (s)", last.get("time_s")),
        ("report written", time.strftime("%Y-%m-%d %H:%M:%S")),
    ]
    html = H.summary_table(pairs)
    moving, _ = split_constant(series(metrics))
    train_keys = [k for k in moving if not k.startswith("eval/")]
    keys = [k for k in SUMMARY_KEYS if k in train_keys] or sorted(train_keys)[:8]
    windows = window_summary(metrics, keys)
    if windows and keys:
        html += "<h3>start vs end of training</h3>" + H.window_table(keys, *windows)
    return html


def _curves(metrics: list[dict[str, Any]], img: Path) -> str:
    moving, constant = split_constant(series(metrics))
    train = {k: v for k, v in moving.items() if not k.startswith("eval/")}
    constant = {k: v for k, v in constant.items() if not k.startswith("eval/")}
    images = []
    if train:
        from reasonrl.report.plots import plot_curves  # matplotlib only when there is a plot

        images = plot_curves(train, img)
    return H.curves(images, constant, logged=bool(metrics))


def _evaluation(run_dir: Path, metrics: list[dict[str, Any]], img: Path) -> str:
    step_files = read_eval_steps(run_dir)
    points = eval_points(step_files, metrics)
    parts = []
    if points:
        from reasonrl.report.plots import plot_eval

        image = plot_eval(points, img)
        (s0, first), (s1, latest) = points[0], points[-1]
        latest_file = step_files[-1][1] if step_files else {}
        settings = latest_file.get("settings")
        meta = {"source": latest_file.get("source")} if latest_file.get("source") else {}
        meta |= dict(settings) if isinstance(settings, Mapping) else {}
        parts.append(H.eval_section(image, points, meta, from_files=bool(step_files)))
        parts.append(H.eval_table(first, latest, f"step {s0}", f"step {s1}"))
    for name, data in read_evals(run_dir, skip_summary=bool(step_files)):
        stages = stage_groups(data)
        if not stages:
            continue
        (a, first), (b, latest) = stages[0], stages[-1]
        parts.append(f"<h3>{H.esc(name)}</h3>")
        if isinstance(data.get("meta"), Mapping):
            parts.append(H.settings_line(data["meta"]))
        parts.append(H.eval_table(first, latest, a, b))
    return "".join(parts) or (
        '<p class="muted">No evaluation: no eval_step*.json / eval*.json files and no eval/ '
        "keys in metrics.jsonl (set trainer.eval_every to evaluate during training).</p>"
    )


def _op_reward(samples: list[dict[str, Any]], img: Path) -> str:
    by_op = op_rewards(samples)
    if not by_op:
        if not samples:
            return ""
        return (
            '<p class="muted">Per-op training reward: the samples.jsonl rows carry no op '
            "(neither <code>op</code> nor <code>meta.op</code>), so it cannot be shown.</p>"
        )
    from reasonrl.report.plots import plot_op_reward

    curves = {
        op: (sorted(d), [sum(d[s]) / len(d[s]) for s in sorted(d)]) for op, d in by_op.items()
    }
    return H.op_reward(plot_op_reward(curves, img), by_op)


def _prompt_stats(run_dir: Path) -> str:
    data = _read_json(run_dir / "prompt_stats.json")  # written with each checkpoint
    return H.prompt_stats(data) if data else ""


def write_report(
    run_dir: str | Path, *, out_dir: str | Path | None = None, max_samples: int = 200
) -> Path:
    """Build the report of `run_dir`; returns the path of index.html."""
    run_dir = Path(run_dir)
    out = Path(out_dir) if out_dir else run_dir / "report"
    img = out / "img"
    metrics = read_jsonl(run_dir / "metrics.jsonl")
    samples = read_jsonl(run_dir / "samples.jsonl")
    config_path = run_dir / "config.yaml"
    config_text = config_path.read_text(encoding="utf-8") if config_path.exists() else ""
    shown, total = select_samples(samples, max_samples), len(samples)
    sections = [
        ("summary", "Summary", _summary(run_dir, metrics, config_text)),
        ("eval", "Evaluation", _evaluation(run_dir, metrics, img)),
        ("rollouts", "Rollouts", H.rollout_browser(group_rollouts(shown), len(shown), total)),
        (
            "curves",
            "Training curves",
            _curves(metrics, img) + _op_reward(samples, img) + _prompt_stats(run_dir),
        ),
        ("config", "Config", f"<pre>{H.esc(config_text or 'no config.yaml')}</pre>"),
    ]
    out.mkdir(parents=True, exist_ok=True)
    index = out / "index.html"
    index.write_text(H.page(f"reasonrl run: {run_dir.name}", str(run_dir), sections), "utf-8")
    return index


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m reasonrl.report.report RUN_DIR` (the CLI's `reasonrl report` does the same)."""
    parser = argparse.ArgumentParser(
        allow_abbrev=False, prog="reasonrl report", description=__doc__.splitlines()[0]
    )
    parser.add_argument("run_dir")
    parser.add_argument("--out", default=None)
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args(argv)
    print(write_report(args.run_dir, out_dir=args.out, max_samples=args.samples))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
