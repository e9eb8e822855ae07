"""`reasonrl report RUN_DIR`: a static HTML page about one run, readable without a server.

Reads from the run directory (every file optional, so a running or crashed run still reports):

    config.yaml      resolved configuration              -> "Config" section
    metrics.jsonl    one row per step                    -> learning curves (PNG) and a summary
    samples.jsonl    logged rollouts                     -> browsable rollouts with reward info
    eval*.json       {"before": {op: {metric: value}}, "after": {...}, "meta": {...}}
                     (any number of stages; groups are usually op counts) -> eval tables;
                     a `reasonrl eval` result ({"settings", "overall", "per_op"}) is one stage.
                     eval_step{N}.json (one per evaluation of `trainer.eval_every`) are not
                     tabled one by one: eval.json holds the first and latest of them and the
                     eval/ keys of metrics.jsonl give their curves.

Writes RUN_DIR/report/index.html and RUN_DIR/report/img/*.png.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from reasonrl.report import html as H

# Shown in the summary's first-vs-last table when the run logged them.
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


def read_evals(run_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    """[(file name, content as stages)] of RUN_DIR/eval*.json but eval_step*.json, skipping
    unreadable files."""
    out = []
    for path in sorted(run_dir.glob("eval*.json")):
        if path.name.startswith("eval_step"):
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(data, dict):
            out.append((path.name, as_stages(data)))
    return out


def _group_of(row: Mapping[str, Any]) -> int:
    group = row.get("group")
    return group if isinstance(group, int) else 0


def select_samples(
    rows: Sequence[Mapping[str, Any]], max_samples: int, max_steps: int = 8
) -> list[Mapping[str, Any]]:
    """An even spread of logged steps (first and last included), whole groups first.

    Keeps at most `max_steps` steps and `max_samples` rows, in (step, group) order.
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
        chosen += sorted(by_step[step], key=_group_of)[:per_step]
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
    # First and last value of each metric: rows differ in keys (step 0 holds only eval/ keys).
    first: dict[str, Any] = {}
    latest: dict[str, Any] = {}
    for row in metrics:
        for key, value in row.items():
            first.setdefault(key, value)
            latest[key] = value
    keys = [k for k in SUMMARY_KEYS if k in latest] or [k for k in latest if "/" in k][:8]
    keys += [k for k in latest if k.startswith("eval/") and k.count("/") == 1][:4]
    if metrics and keys:
        html += "<h3>first vs last step</h3>" + H.first_last_table(first, latest, keys)
    return html


def write_report(
    run_dir: str | Path, *, out_dir: str | Path | None = None, max_samples: int = 200
) -> Path:
    """Build the report of `run_dir`; returns the path of index.html."""
    run_dir = Path(run_dir)
    out = Path(out_dir) if out_dir else run_dir / "report"
    metrics = read_jsonl(run_dir / "metrics.jsonl")
    samples = read_jsonl(run_dir / "samples.jsonl")
    config_path = run_dir / "config.yaml"
    config_text = config_path.read_text(encoding="utf-8") if config_path.exists() else ""
    images = []
    if metrics:
        from reasonrl.report.plots import plot_curves  # matplotlib only when there is a plot

        images = plot_curves(metrics, out / "img")
    evals = read_evals(run_dir)
    eval_html = "".join(H.eval_tables(name, data) for name, data in evals)
    shown = select_samples(samples, max_samples)
    sections = [
        ("summary", "Summary", _summary(run_dir, metrics, config_text)),
        ("curves", "Learning curves", H.curves(images)),
        ("eval", "Evaluation", eval_html or '<p class="muted">No eval*.json files.</p>'),
        ("rollouts", "Rollouts", H.rollout_browser(shown, len(samples))),
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
