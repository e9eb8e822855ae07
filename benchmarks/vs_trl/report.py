"""Figures of the comparison from results.json, printed and written between README.md's markers.

.venv/bin/python benchmarks/vs_trl/report.py [results.json]
"""

from __future__ import annotations

import itertools
import json
import statistics
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
README = HERE / "README.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def measured(run: dict[str, Any], warmup: int) -> list[dict[str, Any]]:
    return [row for row in run["steps_log"] if row["step"] > warmup]


def speed_figures(run: dict[str, Any], warmup: int, per_step: int) -> dict[str, float]:
    rows = measured(run, warmup)
    wall = sum(r["wall_s"] for r in rows)
    gen = sum(r["gen_tokens"] for r in rows)
    gen_time = sum(r.get("perf/time_generate", 0.0) for r in rows)
    return {
        "step_s": statistics.median(r["wall_s"] for r in rows),
        "tok_s": gen / wall,  # generated tokens per second of whole steps
        "gen_tok_s": gen / gen_time if gen_time else float("nan"),  # during generation only
        "rss_mb": run["peak_rss_mb"],
        "steps": len(rows),
        "len_mean": gen / len(rows) / per_step,
    }


def phases(run: dict[str, Any], warmup: int) -> dict[str, float]:
    """Mean seconds per step of each phase; `other` is the step's wall time not in any phase."""
    rows = measured(run, warmup)

    def mean(key: str) -> float:
        return sum(r.get(f"perf/time_{key}", 0.0) for r in rows) / len(rows)

    wall = sum(r["wall_s"] for r in rows) / len(rows)
    gen, reward, rollout = mean("generate"), mean("reward"), mean("rollout")
    out = {"generate": gen, "reward": reward, "rollout other": rollout - gen - reward}
    if run["framework"] == "trl":
        out |= {"train fwd+loss": mean("loss_forward"), "backward": mean("backward"),
                "optimizer": mean("optim")}  # fmt: skip
    else:
        out |= {"update (fwd+bwd+opt)": mean("update"), "weight sync": mean("sync")}
    out["other"] = wall - sum(out.values())
    return out


def speed_section(results: dict[str, Any]) -> list[str]:
    sp, st = results["settings"]["speed"], results["settings"]
    per_step = st["prompts_per_step"] * st["group_size"]
    lines = [
        "| loss | figure | TRL | reasonrl | reasonrl / TRL |",
        "|---|---|---|---|---|",
    ]
    fmt = {"step_s": ("wall s/step (median)", "{:.2f}"),
           "tok_s": ("generated tok/s (whole step)", "{:.0f}"),
           "gen_tok_s": ("generated tok/s (generation phase)", "{:.0f}"),
           "rss_mb": ("peak RSS (MB)", "{:.0f}"),
           "len_mean": ("mean completion tokens", "{:.1f}")}  # fmt: skip
    for loss in sp["losses"]:
        trl = speed_figures(results["speed"][f"trl/{loss}"], sp["warmup_steps"], per_step)
        ours = speed_figures(results["speed"][f"reasonrl/{loss}"], sp["warmup_steps"], per_step)
        for key, (label, f) in fmt.items():
            ratio = ours[key] / trl[key] if trl[key] else float("nan")
            lines.append(f"| {loss} | {label} | {f.format(trl[key])} | {f.format(ours[key])} | "
                         f"{ratio:.2f} |")  # fmt: skip
    lines += ["", f"Median of {sp['measured_steps']} steps after {sp['warmup_steps']} warm-up "
              "steps; peak RSS of each side's whole process.", ""]  # fmt: skip
    for loss in sp["losses"]:
        lines += [f"Where a step's time goes ({loss}, mean seconds per step):", ""]
        for fw in ("trl", "reasonrl"):
            run = results["speed"][f"{fw}/{loss}"]
            ph = phases(run, sp["warmup_steps"])
            total = sum(ph.values())
            parts = ", ".join(f"{k} {v:.2f} ({100 * v / total:.0f}%)" for k, v in ph.items())
            lines.append(f"- {fw}: {parts}")
        lines.append("")
    return lines


def learning_curves(results: dict[str, Any]) -> dict[str, dict[int, list[dict[str, Any]]]]:
    """framework -> seed -> points (elapsed_s, step, strict, outcome), base model first."""
    ev = results["eval"]
    base = {"elapsed_s": 0.0, "step": 0, "name": "base", **ev["base"]}
    curves: dict[str, dict[int, list[dict[str, Any]]]] = {}
    for key, points in ev["runs"].items():
        fw, seed = key.split("/")
        curves.setdefault(fw, {})[int(seed.removeprefix("seed"))] = [base, *points]
    return curves


def _at(points: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(p for p in points if p["name"] == name)


def mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def time_to_reach(points: list[tuple[float, float]], target: float) -> float | None:
    """First time the (linearly interpolated) curve reaches `target`; None if it never does."""
    if points and points[0][1] >= target:
        return points[0][0]
    for (t0, v0), (t1, v1) in itertools.pairwise(points):
        if v1 >= target:
            return t1 if v1 == v0 or v0 >= target else t0 + (target - v0) * (t1 - t0) / (v1 - v0)
    return None


def mean_curve(curve: dict[int, list[dict[str, Any]]], metric: str) -> list[tuple[float, float]]:
    """Mean over seeds at each time mark (the marks are the same names on every seed)."""
    names = [p["name"] for p in next(iter(curve.values())) if p["name"] in ("base",)
             or p["name"].startswith("t")]  # fmt: skip
    out = []
    for name in names:
        # the actual training-clock time of the checkpoint (the end of the step that passed the
        # mark), not the nominal mark: a slower framework overshoots its marks by more
        pts = [_at(points, name) for points in curve.values()]
        t = statistics.mean(p["elapsed_s"] for p in pts)
        out.append((t, statistics.mean(p[metric] for p in pts)))
    return out


def learning_section(results: dict[str, Any]) -> list[str]:
    le, ev = results["settings"]["learning"], results["eval"]
    curves = learning_curves(results)
    match, budget = f"s{ev['step_match']}", le["budget_s"]
    lines = [f"Held-out pass@1 (mean ± sd over seeds {le['seeds']}; {le['loss']} loss; "
             f"base model strict {ev['base']['strict']:.3f}, outcome {ev['base']['outcome']:.3f}):",
             "", "| point | TRL strict | reasonrl strict | TRL outcome | reasonrl outcome |",
             "|---|---|---|---|---|"]  # fmt: skip
    points = [(f"same wall clock ({budget} s)", "final")]
    if ev["step_match"] is not None:
        points.append((f"same step count ({ev['step_match']})", match))
    for label, name in points:
        cells = []
        for metric in ("strict", "outcome"):
            for fw in ("trl", "reasonrl"):
                cells.append(mean_sd([_at(p, name)[metric] for p in curves[fw].values()]))
        lines.append(f"| {label} | {cells[0]} | {cells[1]} | {cells[2]} | {cells[3]} |")
    steps = {fw: statistics.mean(_at(p, "final")["step"] for p in c.values())
             for fw, c in curves.items()}  # fmt: skip
    lines += ["", f"Steps done in {budget} s: TRL {steps['trl']:.1f}, reasonrl "
              f"{steps['reasonrl']:.1f} (mean over seeds).", ""]  # fmt: skip
    for metric in ("strict", "outcome"):
        target = mean_curve(curves["trl"], metric)[-1][1]
        reach = time_to_reach(mean_curve(curves["reasonrl"], metric), target)
        trl_end = mean_curve(curves["trl"], metric)[-1][0]
        share = "not reached" if reach is None else f"{reach:.0f} s = {reach / trl_end:.2f} of it"
        lines.append(f"- time for reasonrl to reach TRL's final {metric} pass@1 ({target:.3f}, "
                     f"reached by TRL at {trl_end:.0f} s): {share}")  # fmt: skip
    return [*lines, ""]


def render_report(results: dict[str, Any], work: Path, *, write_readme: bool = True) -> str:
    lines = [f"Measured by `bash benchmarks/vs_trl/run.sh` (model `{results['model']}`).", ""]
    if "speed" in results:
        lines += ["### Speed", "", *speed_section(results)]
    if "eval" in results:
        from plot import plot_learning

        png = plot_learning(learning_curves(results), results, HERE / "learning.png"
                            if write_readme else work / "learning.png")  # fmt: skip
        lines += ["### Learning", "", *learning_section(results), f"![learning]({png.name})", ""]
    text = "\n".join(lines)
    print(text)
    if write_readme and README.exists():
        readme = README.read_text()
        if BEGIN in readme and END in readme:
            head, rest = readme.split(BEGIN, 1)
            README.write_text(f"{head}{BEGIN}\n{text}\n{END}{rest.split(END, 1)[1]}")
    return text


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "_work" / "full" / "results.json"
    render_report(json.loads(path.read_text()), path.parent)
