"""Learning-curve PNGs from metrics.jsonl rows (matplotlib, imported lazily, Agg backend).

Per-group evaluation keys (`eval/op{g}/{metric}`, written by `trainer.eval_every`) are drawn
together, one panel per metric with a line per group and the overall `eval/{metric}` dashed
(`curves_eval_by_op.png`), instead of one panel each.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# Curves are grouped by metric prefix; this is the order of the figures on the page.
PREFIX_ORDER = ("reward", "eval", "rollout", "actor", "adv", "perf")
MAX_PANELS = 12  # per figure; larger groups are split
GROUP_KEY = re.compile(r"^eval/op(?P<group>[^/]+)/(?P<metric>.+)$")


def eval_by_group(keys: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
    """{metric: [(group, key)]} of the per-group eval keys `eval/op{group}/{metric}`."""
    out: dict[str, list[tuple[str, str]]] = {}
    for key in sorted(keys):
        m = GROUP_KEY.match(key)
        if m:
            out.setdefault(m["metric"], []).append((m["group"], key))
    for pairs in out.values():
        pairs.sort(key=lambda gk: (0, int(gk[0]), "") if gk[0].isdigit() else (1, 0, gk[0]))
    return out


def series(rows: Sequence[Mapping[str, Any]]) -> dict[str, tuple[list[int], list[float]]]:
    """{metric: (steps, values)} for every numeric metric, skipping nulls (NaN in the run)."""
    out: dict[str, tuple[list[int], list[float]]] = {}
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


def group_by_prefix(keys: Sequence[str]) -> list[tuple[str, list[str]]]:
    """[(prefix, keys)] in PREFIX_ORDER, then the remaining prefixes alphabetically."""
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


def plot_curves(
    rows: Sequence[Mapping[str, Any]], out_dir: Path, *, dpi: int = 90
) -> list[tuple[str, str]]:
    """Write one PNG per metric group into out_dir; returns [(title, file name)]."""
    import matplotlib

    matplotlib.use("Agg", force=True)  # no display: reports are built on servers and in CI
    import matplotlib.pyplot as plt

    data = series(rows)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[tuple[str, str]] = []
    by_group = eval_by_group(list(data))
    plain = [k for k in data if not GROUP_KEY.match(k)]
    for prefix, keys in group_by_prefix(plain):
        for part in range(0, len(keys), MAX_PANELS):
            chunk = keys[part : part + MAX_PANELS]
            ncols = min(3, len(chunk))
            nrows = math.ceil(len(chunk) / ncols)
            fig, axes = plt.subplots(
                nrows, ncols, figsize=(3.6 * ncols, 2.5 * nrows), squeeze=False
            )
            for ax, key in zip(axes.flat, chunk):
                _panel(ax, key, *data[key])
            for ax in list(axes.flat)[len(chunk) :]:
                ax.axis("off")
            fig.tight_layout()
            name = f"curves_{prefix}{'' if part == 0 else f'_{part // MAX_PANELS}'}.png"
            fig.savefig(out_dir / name, dpi=dpi)
            plt.close(fig)
            written.append((prefix, name))
    if by_group:
        metrics = list(by_group)
        ncols = min(3, len(metrics))
        nrows = math.ceil(len(metrics) / ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.7 * nrows), squeeze=False)
        for ax, metric in zip(axes.flat, metrics):
            for group, key in by_group[metric]:
                ax.plot(*data[key], marker="o", ms=3, lw=1.0, label=f"op {group}")
            if f"eval/{metric}" in data:
                ax.plot(*data[f"eval/{metric}"], "k--", lw=1.2, label="overall")
            ax.set_title(f"eval/{metric} by op", fontsize=9)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
            ax.set_xlabel("step", fontsize=7)
            ax.legend(fontsize=6)
        for ax in list(axes.flat)[len(metrics) :]:
            ax.axis("off")
        fig.tight_layout()
        fig.savefig(out_dir / "curves_eval_by_op.png", dpi=dpi)
        plt.close(fig)
        written.append(("eval by op", "curves_eval_by_op.png"))
    return written


def _panel(ax: Any, key: str, steps: list[int], values: list[float]) -> None:
    sparse = len(steps) <= 12
    ax.plot(steps, values, marker="o" if sparse else None, lw=0.8 if sparse else 0.6,
            alpha=1.0 if sparse else 0.35, color="#1f77b4", ms=3)  # fmt: skip
    if not sparse:
        # Noisy per-step RL metrics: the smoothed line is what the eye should follow.
        ax.plot(steps, ema(values, alpha=min(1.0, 10 / len(values))), lw=1.4, color="#1f77b4")
    ax.set_title(key, fontsize=9)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    ax.set_xlabel("step", fontsize=7)
