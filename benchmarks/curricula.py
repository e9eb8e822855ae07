"""Prompt samplers against uniform at the quickstart's budget (issue 17).

    python benchmarks/curricula.py --samplers uniform kimi edge --seeds 0 --out runs/curricula
    python benchmarks/curricula.py --summarize runs/curricula        # re-read finished runs

Each run is `reasonrl quickstart` (benchmarks/quickstart_seeds.run_seed) with `data.sampler.kind`
set, and, for samplers that need repeats to estimate per-prompt success, a fixed problem pool
(`data.sampler.pool_size`). Printed per sampler (mean over seeds): strict pass@1 and pass@8 at the
RL ops and at the op above, outcome pass@8, the zero-spread fraction and the entropy over the
run's last 10 steps, RL steps done.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))  # quickstart_seeds beside this file
from quickstart_seeds import run_seed

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "recipes" / "quickstart.yaml"
# What each sampler adds to the quickstart recipe (data.sampler.*): the documented defaults,
# and a pool of generated problems where the sampler reads per-prompt success rates.
SAMPLERS: dict[str, dict] = {
    "uniform": {},
    "kimi": {"kind": "kimi", "pool_size": 512},
    "edge": {"kind": "edge", "pool_size": 512},
    "curriculum": {"kind": "curriculum"},
    "pools": {"kind": "pools", "pool_size": 512},
    "drive": {"kind": "drive", "pool_size": 512},
}


def recipe_for(sampler: str, out: Path) -> Path:
    recipe = yaml.safe_load(QUICKSTART.read_text())
    if SAMPLERS[sampler]:
        recipe["data"]["sampler"] = dict(SAMPLERS[sampler])
    path = out / f"quickstart_{sampler}.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def late_mean(run_dir: Path, key: str, last: int = 10) -> float | None:
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x]
    values = [r[key] for r in rows if isinstance(r.get(key), int | float)]
    return statistics.mean(values[-last:]) if values else None


def summarize_runs(runs: dict[str, list[Path]]) -> str:
    lines = [
        "| sampler | seeds | RL steps | strict pass@1 RL ops (before → after) | strict pass@8 RL "
        "ops | strict pass@1 op above | strict pass@8 op above | outcome pass@8 RL ops | "
        "zero-spread frac (last 10) | entropy (last 10) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for sampler, dirs in runs.items():
        evals = [json.loads((d / "eval.json").read_text()) for d in dirs]
        cfg = yaml.safe_load((dirs[0] / "config.yaml").read_text())
        rl_ops = [str(op) for op in cfg["data"]["ops"]]
        above = str(max(int(op) for op in rl_ops) + 1)

        def pair(metric: str, ops: list[str], evals: list[dict] = evals) -> str:
            def mean_of(when: str) -> float:
                return statistics.mean(
                    statistics.mean(e[when][op][metric] for op in ops) for e in evals
                )

            return f"{mean_of('before'):.3f} → {mean_of('after'):.3f}"

        zero = [late_mean(d, "rollout/zero_std_frac") for d in dirs]
        ent = [late_mean(d, "actor/entropy") for d in dirs]
        steps = [e["meta"]["steps"] for e in evals]
        lines.append(
            f"| {sampler} | {len(dirs)} | {steps} | {pair('strict_pass@1', rl_ops)} | "
            f"{pair('strict_pass@8', rl_ops)} | {pair('strict_pass@1', [above])} | "
            f"{pair('strict_pass@8', [above])} | {pair('pass@8', rl_ops)} | "
            f"{statistics.mean(z for z in zero if z is not None):.3f} | "
            f"{statistics.mean(x for x in ent if x is not None):.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samplers", nargs="*", default=["uniform", "kimi", "edge"],
                        choices=sorted(SAMPLERS))  # fmt: skip
    parser.add_argument("--seeds", type=int, nargs="*", default=[0])
    parser.add_argument("--out", type=Path, default=Path("runs/curricula"))
    parser.add_argument("--summarize", action="store_true", help="only re-read --out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    runs: dict[str, list[Path]] = {}
    for sampler in args.samplers:
        where = args.out / sampler
        if args.summarize:
            runs[sampler] = sorted(where.glob("quickstart-*"))
            continue
        recipe = recipe_for(sampler, args.out)
        runs[sampler] = [run_seed(seed, recipe, where) for seed in args.seeds]
    print(summarize_runs({k: v for k, v in runs.items() if v}))


if __name__ == "__main__":
    main()
