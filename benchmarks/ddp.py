"""Steps per second of the RL loop on 1 vs 2 gloo ranks (docs/scaling.md).

    python benchmarks/ddp.py [--steps 4] [--prompts 8]

Each configuration runs `reasonrl train recipes/quickstart.yaml` through torchrun with the same
global batch (rollout.prompts_per_step prompts, split between the ranks) and reads perf/step_s
from metrics.jsonl (the first step, warm-up, is left out). One torch thread per rank, so 2 ranks
use both cores of a 2-core machine. Numbers are only meaningful on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def run(nproc: int, steps: int, prompts: int, out: Path, port: int) -> float:
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun), "--nproc-per-node", str(nproc), "--master-addr", "127.0.0.1",
           "--master-port", str(port), "-m", "reasonrl.cli", "train", "recipes/quickstart.yaml",
           f"trainer.steps={steps}", f"trainer.out_dir={out}", f"trainer.run_name=n{nproc}",
           f"rollout.prompts_per_step={prompts}", "model.threads=1", "model.dtype=fp32",
           "trainer.time_budget_s=null"]  # fmt: skip
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    rows = [json.loads(x) for x in (out / f"n{nproc}" / "metrics.jsonl").read_text().splitlines()]
    times = [r["perf/step_s"] for r in rows[1:]] or [rows[0]["perf/step_s"]]
    return len(times) / sum(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--prompts", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rates = {n: run(n, args.steps, args.prompts, Path(tmp), 29600 + n) for n in (1, 2)}
    print("| ranks | steps/s | speed-up |\n|---|---|---|")
    for n, r in rates.items():
        print(f"| {n} | {r:.3f} | {r / rates[1]:.2f}x |")


if __name__ == "__main__":
    main()
