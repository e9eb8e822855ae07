"""Learning curves of the comparison: held-out pass@1 against training wall time and step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

COLOURS = {"trl": "tab:orange", "reasonrl": "tab:blue"}
LABELS = {"trl": "TRL 1.16 GRPOTrainer", "reasonrl": "reasonrl"}


def plot_learning(
    curves: dict[str, dict[int, list[dict[str, Any]]]], results: dict[str, Any], out: Path
) -> Path:
    """Strict and outcome pass@1 vs wall seconds (time marks) and vs step, one line per seed.

    Args:
        curves: framework -> seed -> checkpoints (elapsed_s, step, strict, outcome, name).
        results: the benchmark results (for the titles).
        out: PNG path.
    Returns: out.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    panels = (("strict", "elapsed_s", "training wall time (s)"),
              ("outcome", "elapsed_s", "training wall time (s)"),
              ("strict", "step", "optimizer step"))  # fmt: skip
    for ax, (metric, x_key, x_label) in zip(axes, panels):
        for fw, by_seed in curves.items():
            for i, (_seed, points) in enumerate(sorted(by_seed.items())):
                pts = [p for p in points if p["name"] == "base" or p["name"].startswith("t")
                       or (x_key == "step" and p["name"].startswith("s"))]  # fmt: skip
                pts = sorted({(p[x_key], p[metric]) for p in pts})
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3,
                        color=COLOURS[fw], alpha=0.8,
                        label=f"{LABELS[fw]}" if i == 0 else None)  # fmt: skip
        ax.set_xlabel(x_label)
        ax.set_ylabel(f"held-out {metric} pass@1")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    le = results["settings"]["learning"]
    fig.suptitle(f"{le['loss']} loss, {len(le['seeds'])} seeds, same prompts and reward; "
                 f"budget {le['budget_s']} s on 2 CPU threads")  # fmt: skip
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
