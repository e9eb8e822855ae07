"""Render an `EvalResult`: markdown table, JSON, and a pass@k-by-op plot (matplotlib, lazy)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reasonrl.eval.result import EvalResult


def default_columns(result: EvalResult) -> list[str]:
    """pass@1, pass@n, strict_pass@1, strict_pass@n (when present), maj@n, mean tokens."""
    n = int(result.settings.get("samples_per_problem", 1))
    cols = ["pass@1"] + ([f"pass@{n}"] if n > 1 else [])
    if "strict_pass@1" in result.overall:
        cols += ["strict_pass@1"] + ([f"strict_pass@{n}"] if n > 1 else [])
    if n > 1:
        cols.append(f"maj@{n}")
    return [*cols, "mean_tokens", "truncated"]


def markdown_table(result: EvalResult, columns: Sequence[str] | None = None) -> str:
    """One row per op (then `all`), one column per metric; problems count in the second column."""
    cols = list(columns) if columns else default_columns(result)
    lines = [
        "| op | problems | " + " | ".join(cols) + " |",
        "|---|---|" + "---|" * len(cols),
    ]
    rows = [*result.per_op.items(), ("all", result.overall)]
    for name, metrics in rows:
        cells = [_fmt(metrics.get(c)) for c in cols]
        lines.append(f"| {name} | {int(metrics['problems'])} | " + " | ".join(cells) + " |")
    s = result.settings
    mode = "greedy" if s.get("greedy") else f"T={s.get('temperature')}"
    lines.append("")
    lines.append(f"n = {s.get('samples_per_problem')} samples per problem, {mode}, "
                 f"max_new_tokens = {s.get('max_new_tokens')}, seed = {s.get('seed')}; strict = "
                 "process-verified (every step and the answer right).")  # fmt: skip
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3f}"


def plot_passk(result: EvalResult, path: str | Path) -> Path:
    """Line plot of pass@k and strict pass@k (k = 1 and n) against op."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = int(result.settings.get("samples_per_problem", 1))
    ops = [g for g in result.per_op if g.isdigit()]
    x = [int(g) for g in ops]
    fig, ax = plt.subplots(figsize=(6, 4))
    styles = {"pass@1": "C0--", "strict_pass@1": "C3--"}
    if n > 1:
        styles.update({f"pass@{n}": "C0-", f"strict_pass@{n}": "C3-"})
    for metric, style in styles.items():
        if metric in result.overall:
            ys = [result.per_op[g][metric] for g in ops]
            ax.plot(x, ys, style, marker="o", label=metric)
    ax.set_xlabel("op (number of operations)")
    ax.set_ylabel("rate")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    title = "greedy" if result.settings.get("greedy") else f"T={result.settings.get('temperature')}"
    ax.set_title(f"pass@k by op ({title}, n={n})")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def write_outputs(result: EvalResult, out_dir: str | Path) -> list[Path]:
    """Write eval.json (metrics + per-problem records), eval.md and passk_by_op.png."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "eval.json"
    json_path.write_text(json.dumps(result.to_dict(with_records=True), indent=1) + "\n")
    md_path = out / "eval.md"
    md_path.write_text(markdown_table(result) + "\n")
    paths = [json_path, md_path]
    if any(g.isdigit() for g in result.per_op):
        paths.append(plot_passk(result, out / "passk_by_op.png"))
    return paths
