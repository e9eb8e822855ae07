"""Series helpers and the report's PNGs (matplotlib, imported lazily, Agg backend).

Three kinds of figure:
    curves_{prefix}.png   one figure per metric group of metrics.jsonl (reward/, rollout/,
                          actor/, ...), one panel per series that moves; constant series are not
                          drawn (the page lists them in one line) and `eval/` keys are left to
    eval_curves.png       the evaluation over steps: one panel per metric (pass@1, pass@k, maj@k,
                          strict), a line per group (op) and the overall line dashed black
    op_reward.png         mean training reward of the logged rollouts per op over steps
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# Curves are grouped by metric prefix; this is the order of the figures on the page.
PREFIX_ORDER = ("reward", "rollout", "actor", "adv", "perf")
NCOLS = 4  # panels per row of a group's figure
GROUP_KEY = re.compile(r"^eval/op(?P<group>[^/]+)/(?P<metric>.+)$")
# A metric at k samples: pass@k, strict_pass@k, maj@k.
AT_K = re.compile(r"^(?P<base>pass|strict_pass|maj)@(?P<k>\d+)$")

Series = dict[str, tuple[list[int], list[float]]]


def series(rows: Sequence[Mapping[str, Any]]) -> Series:
    """{metric: (steps, values)} for every numeric metric, skipping nulls (NaN in the run)."""
    out: Series = {}
    for row in rows:
        step = row.get("step")
        if not isinstance(step, int):
            continue
        for key, value in row.items():
            if key in ("step", "time_s") or isinstance(value, bool):
                continue
            if isinstance(value, int | float) and math.isfinite(value):
                steps, values = out.setdefault(key, ([], []))
                steps.append(step)
                values.append(float(value))
    return out


def split_constant(data: Series) -> tuple[Series, dict[str, float]]:
    """(series that move, {key: value} of those with one value at every step they were logged)."""
    moving: Series = {}
    constant: dict[str, float] = {}
    for key, (steps, values) in data.items():
        if values and all(v == values[0] for v in values):
            constant[key] = values[0]
        else:
            moving[key] = (steps, values)
    return moving, constant


def group_by_prefix(keys: Sequence[str]) -> list[tuple[str, list[str]]]:
    """[(prefix, keys)] in PREFIX_ORDER, then the remaining prefixes alphabetically; each prefix
    once, however many keys it has."""
    groups: dict[str, list[str]] = {}
    for key in sorted(keys):
        prefix = key.split("/", 1)[0] if "/" in key else "other"
        groups.setdefault(prefix, []).append(key)
    ordered = [p for p in PREFIX_ORDER if p in groups]
    ordered += sorted(p for p in groups if p not in PREFIX_ORDER)
    return [(p, groups[p]) for p in ordered]


def ema(values: Sequence[float], alpha: float) -> list[float]:
    """Exponential moving average s_t = alpha * x_t + (1 - alpha) * s_{t-1}, s_0 = x_0."""
    out: list[float] = []
    for value in values:
        out.append(value if not out else alpha * value + (1 - alpha) * out[-1])
    return out


def group_sort_key(group: str) -> tuple[int, int, str]:
    """Ops in numeric order, other names after them, "overall" last."""
    if group == "overall":
        return (2, 0, "")
    return (0, int(group), "") if group.isdigit() else (1, 0, group)


def eval_metric_order(metrics: Sequence[str]) -> list[str]:
    """The metrics of an evaluation worth a column or a panel, in reading order: problems,
    pass@1, pass@K, maj@K, strict_pass@1, strict_pass@K (K the largest k logged), then any other
    metric alphabetically; the pass@k/maj@k of the k in between are dropped (they are in the
    eval_step files)."""
    ks = [int(m["k"]) for m in map(AT_K.match, metrics) if m]
    top = max(ks, default=1)
    wanted = ["problems", "pass@1", f"pass@{top}", f"maj@{top}", "strict_pass@1",
              f"strict_pass@{top}"]  # fmt: skip
    head = [m for m in dict.fromkeys(wanted) if m in metrics]
    rest = sorted(m for m in metrics if m not in head and not AT_K.match(m))
    return head + rest


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)  # no display: reports are built on servers and in CI
    import matplotlib.pyplot as plt

    return plt


def _grid(plt: Any, n: int, *, ncols: int = NCOLS, height: float = 2.4) -> tuple[Any, list[Any]]:
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, height * nrows), squeeze=False)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.axis("off")
    return fig, flat[:n]


def _style(ax: Any, title: str) -> None:
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    ax.set_xlabel("step", fontsize=7)


def _save(plt: Any, fig: Any, path: Path, dpi: int) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def plot_curves(data: Series, out_dir: Path, *, dpi: int = 90) -> list[tuple[str, str]]:
    """One PNG per metric group of `data` (pass only the series to draw); [(prefix, file)]."""
    if not data:
        return []
    plt = _pyplot()
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[tuple[str, str]] = []
    for prefix, keys in group_by_prefix(list(data)):
        fig, axes = _grid(plt, len(keys))
        for ax, key in zip(axes, keys, strict=True):
            _panel(ax, key, *data[key])
        name = f"curves_{re.sub(r'[^A-Za-z0-9_.-]', '_', prefix)}.png"
        _save(plt, fig, out_dir / name, dpi)
        written.append((prefix, name))
    return written


def plot_eval(
    points: Sequence[tuple[int, Mapping[str, Mapping[str, float]]]], out_dir: Path, *, dpi: int = 90
) -> str | None:
    """eval_curves.png from [(step, {group: {metric: value}})]; None when there is nothing."""
    metrics = eval_metric_order(sorted({m for _, gs in points for v in gs.values() for m in v}))
    metrics = [m for m in metrics if m != "problems"]
    if not points or not metrics:
        return None
    plt = _pyplot()
    out_dir.mkdir(parents=True, exist_ok=True)
    groups = sorted({g for _, gs in points for g in gs}, key=group_sort_key)
    fig, axes = _grid(plt, len(metrics), ncols=3, height=2.7)
    for ax, metric in zip(axes, metrics, strict=True):
        for group in groups:
            xy = [(s, gs[group][metric]) for s, gs in points if metric in gs.get(group, {})]
            if not xy:
                continue
            steps, values = zip(*xy, strict=True)
            if group == "overall":
                ax.plot(steps, values, "k--", lw=1.6, marker="s", ms=3, label="overall")
            else:
                ax.plot(steps, values, marker="o", ms=3, lw=1.0, label=f"op {group}")
        _style(ax, metric)
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 8), fontsize=8,
                   frameon=False)  # fmt: skip
    fig.tight_layout(rect=(0, 0, 1, 0.93 if handles else 1))
    fig.savefig(out_dir / "eval_curves.png", dpi=dpi)
    plt.close(fig)
    return "eval_curves.png"


def plot_op_reward(
    by_op: Mapping[str, tuple[list[int], list[float]]], out_dir: Path, *, dpi: int = 90
) -> str | None:
    """op_reward.png: {op: (steps, mean reward)} as one line per op; None when empty."""
    if not by_op:
        return None
    plt = _pyplot()
    out_dir.mkdir(parents=True, exist_ok=True)
    fig, (ax,) = _grid(plt, 1, height=2.8)
    fig.set_size_inches(5.5, 2.8)
    for op in sorted(by_op, key=group_sort_key):
        ax.plot(*by_op[op], marker="o", ms=3, lw=1.0, label=f"op {op}")
    _style(ax, "training reward by op (logged rollouts)")
    ax.legend(fontsize=7)
    _save(plt, fig, out_dir / "op_reward.png", dpi)
    return "op_reward.png"


def _panel(ax: Any, key: str, steps: list[int], values: list[float]) -> None:
    sparse = len(steps) <= 12
    ax.plot(steps, values, marker="o" if sparse else None, lw=0.8 if sparse else 0.6,
            alpha=1.0 if sparse else 0.35, color="#1f77b4", ms=3)  # fmt: skip
    if not sparse:
        # Noisy per-step RL metrics: the smoothed line is what the eye should follow.
        ax.plot(steps, ema(values, alpha=min(1.0, 10 / len(values))), lw=1.4, color="#1f77b4")
    _style(ax, key)
