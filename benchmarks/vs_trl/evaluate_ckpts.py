"""Held-out pass@1 of every learning-run checkpoint, with one piece of reasonrl code for both sides.

TRL's checkpoints are saved as plain HF directories (reasonrl's `save_policy`), so the same loader,
sampler and verifier score both frameworks: the metric cannot differ by construction.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def evaluate_dir(path: str, samples: list, settings: dict[str, Any]) -> dict[str, float]:
    """Strict (process-verified) and outcome pass@1 of the model in `path` (reasonrl's evaluate)."""
    from reasonrl.eval.evaluate import evaluate
    from reasonrl.models.io import load_policy

    ev = settings["eval"]
    model, tokenizer = load_policy(path, dtype="fp32")
    result = evaluate(
        model,
        tokenizer,
        samples,
        samples_per_problem=ev["samples"],
        temperature=ev["temperature"],
        max_new_tokens=settings["max_new_tokens"],
        seed=ev["seed"],
    )
    o = result.overall
    return {"strict": o["strict_pass@1"], "outcome": o["pass@1"], "mean_tokens": o["mean_tokens"]}


def step_match(results: dict[str, Any]) -> int | None:
    """Largest step mark (`s{N}` checkpoint) that every learning run reached (None if none)."""
    marks = [
        {int(c["name"][1:]) for c in run["checkpoints"] if c["name"].startswith("s")}
        for run in results["learning"].values()
    ]
    common = set.intersection(*marks) if marks else set()
    return max(common) if common else None


def wanted_checkpoints(results: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Per run: the time-mark checkpoints, the final one and the matched-step one."""
    match = f"s{step_match(results)}"
    out = {}
    for key, run in results["learning"].items():
        keep = [c for c in run["checkpoints"]
                if c["name"].startswith("t") or c["name"] in ("final", match)]  # fmt: skip
        out[key] = keep
    return out


def evaluate_learning(
    results: dict[str, Any], eval_file: Path, settings: dict[str, Any], work: Path
) -> dict[str, Any]:
    """Evaluate the base model and the wanted checkpoints (cached by path in eval_cache.json)."""
    import torch

    torch.set_num_threads(settings["threads"])
    from reasonrl.eval.evaluate import load_samples

    samples = load_samples(eval_file)
    cache_path = work / "eval_cache.json"
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}

    def score(path: str) -> dict[str, float]:
        if path not in cache:
            cache[path] = evaluate_dir(path, samples, settings)
            cache_path.write_text(json.dumps(cache, indent=1))
            print(f"  {path}: {cache[path]}", flush=True)
        return cache[path]

    from reasonrl.models.io import resolve_policy_path

    base = score(str(resolve_policy_path(results["model"])))
    runs = {}
    for key, ckpts in wanted_checkpoints(results).items():
        runs[key] = [c | score(c["path"]) for c in ckpts]
    return {"base": base, "step_match": step_match(results), "runs": runs}
