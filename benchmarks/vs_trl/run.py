"""reasonrl vs TRL 1.16 GRPOTrainer on the same CPU work: the one command (via run.sh).

    bash benchmarks/vs_trl/run.sh            # full benchmark (~40 min on 2 cores)
    bash benchmarks/vs_trl/run.sh --smoke    # tiny sizes, checks the plumbing (~5 min)

Steps: write the prompt lists once (fixed seeds, JSONL both sides read in the same order) and the
held-out evaluation set; speed runs (each loss, both frameworks, alternating); learning runs (3
seeds x both frameworks, same wall-clock budget, checkpoints at the same time marks and step
marks); evaluate every checkpoint with the same reasonrl code; print and write the report.
Each side runs as a child process so its peak RSS is its own (`os.wait4`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

from common import load_settings, read_jsonl  # noqa: E402

PROJECT_PY = ROOT / ".venv" / "bin" / "python"
TRL_PY = HERE / ".venv-trl" / "bin" / "python"
QUIET: dict[str, float | None] = {"max_load": None, "max_wait_s": 0.0}
SIDES = {"trl": (TRL_PY, HERE / "trl_side.py"), "reasonrl": (PROJECT_PY, HERE / "reasonrl_side.py")}


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")


def prepare_data(work: Path, settings: dict[str, Any], seeds: list[int]) -> dict[str, Path]:
    """prompts_seed{S}.jsonl (train split, shuffled by S, a multiple of prompts_per_step long)
    and eval.jsonl (held-out split). Generated once; both frameworks read the same files."""
    from reasonrl.tasks.synth.dataset import make_dataset

    d, out = settings["data"], {}
    kw = {"contexts": d["contexts"]}
    for seed in sorted(set(seeds)):
        path = work / f"prompts_seed{seed}.jsonl"
        if not path.exists():
            rows = make_dataset(d["ops"], d["train_per_op"], seed=1000 + seed, split="train", **kw)
            random.Random(seed).shuffle(rows)
            rows = rows[: len(rows) - len(rows) % settings["prompts_per_step"]]
            write_jsonl(path, rows)
        out[f"prompts{seed}"] = path
    path = work / "eval.jsonl"
    if not path.exists():
        write_jsonl(path, make_dataset(d["ops"], d["eval_per_op"], seed=99, split="heldout", **kw))
    out["eval"] = path
    return out


def wait_for_quiet(max_load: float | None, max_wait_s: float) -> None:
    """On a shared machine, wait (up to max_wait_s) until the 1-minute load average is below
    max_load, so that timings measure the frameworks and not the neighbours."""
    if not max_load:
        return
    t0 = time.monotonic()
    while os.getloadavg()[0] >= max_load and time.monotonic() - t0 < max_wait_s:
        time.sleep(15)
    if os.getloadavg()[0] >= max_load:
        load = os.getloadavg()[0]
        print(f"  warning: load average {load:.1f} >= {max_load} after {max_wait_s:.0f} s; "
              "running anyway (timings are contended)", flush=True)  # fmt: skip


def run_side(framework: str, job: dict[str, Any], work: Path) -> dict[str, Any]:
    """Run one side as a child process; returns its summary plus wall time and peak RSS."""
    wait_for_quiet(QUIET["max_load"], QUIET["max_wait_s"])
    out = Path(job["out_dir"])
    out.mkdir(parents=True, exist_ok=True)
    job_path = out / "job.json"
    job_path.write_text(json.dumps(job, indent=2))
    py, script = SIDES[framework]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), TOKENIZERS_PARALLELISM="false",
               OMP_NUM_THREADS=str(job["threads"]), TRANSFORMERS_VERBOSITY="error")  # fmt: skip
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    with open(out / "stdout.log", "w") as log:
        proc = subprocess.Popen([str(py), str(script), str(job_path)], stdout=log,
                                stderr=subprocess.STDOUT, env=env, cwd=ROOT)  # fmt: skip
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = (out / "stdout.log").read_text()[-3000:]
        raise RuntimeError(f"{framework} run {out.name} failed (rc {proc.returncode}):\n{tail}")
    summary = json.loads((out / "summary.json").read_text())
    summary["steps_log"] = list(read_jsonl(out / "steps.jsonl"))
    summary["process_wall_s"] = wall
    summary["peak_rss_mb"] = usage.ru_maxrss / 1024  # Linux reports KiB
    # The machine is shared: a load average well above the 2 threads used means contention.
    summary["loadavg_1m"] = [load_before, os.getloadavg()[0]]
    rss, load = summary["peak_rss_mb"], summary["loadavg_1m"]
    print(f"  {framework:8s} {out.name}: {summary['steps']} steps, {wall:.0f}s, "
          f"peak RSS {rss:.0f} MB, load {load[0]:.1f}->{load[1]:.1f}", flush=True)  # fmt: skip
    return summary


def base_job(settings: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    return {"model": args.model, "threads": settings["threads"], "smoke": args.smoke}


def order(i: int) -> tuple[str, str]:
    """Alternate which side goes first, so slow drifts in machine load hit both alike."""
    return ("trl", "reasonrl") if i % 2 == 0 else ("reasonrl", "trl")


def speed_runs(settings, args, data, work: Path) -> dict[str, Any]:
    sp = settings["speed"]
    results: dict[str, Any] = {}
    for i, loss in enumerate(sp["losses"]):
        for framework in order(i):
            job = base_job(settings, args) | {
                "loss": loss, "seed": sp["seed"], "prompts": str(data[f"prompts{sp['seed']}"]),
                "out_dir": str(work / "speed" / f"{framework}_{loss}"),
                "max_steps": sp["warmup_steps"] + sp["measured_steps"],
            }  # fmt: skip
            results[f"{framework}/{loss}"] = run_side(framework, job, work)
    return results


def learning_runs(settings, args, data, work: Path) -> dict[str, Any]:
    le = settings["learning"]
    results: dict[str, Any] = {}
    for i, seed in enumerate(le["seeds"]):
        for framework in order(i):
            job = base_job(settings, args) | {
                "loss": le["loss"], "seed": seed, "prompts": str(data[f"prompts{seed}"]),
                "out_dir": str(work / "learn" / f"{framework}_seed{seed}"),
                "max_steps": 100_000, "budget_s": le["budget_s"],
                "time_marks": le["time_marks_s"], "step_every": le["step_mark_every"],
            }  # fmt: skip
            results[f"{framework}/seed{seed}"] = run_side(framework, job, work)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: check the plumbing")
    parser.add_argument("--model", default=None, help="base model dir (default: settings.json)")
    parser.add_argument("--work", default=str(HERE / "_work"), help="scratch directory")
    parser.add_argument("--only", choices=["speed", "learning", "report"], default=None)
    parser.add_argument(
        "--quiet-load",
        type=float,
        default=None,
        help="before each run, wait until the 1-min load average is below this",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=1800.0,
        help="longest wait for --quiet-load (s), then run anyway",
    )
    args = parser.parse_args(argv)
    QUIET.update(max_load=args.quiet_load, max_wait_s=args.quiet_wait)
    settings = load_settings(smoke=args.smoke)
    args.model = args.model or settings["model"]
    work = Path(args.work) / ("smoke" if args.smoke else "full")
    work.mkdir(parents=True, exist_ok=True)
    seeds = [settings["speed"]["seed"], *settings["learning"]["seeds"]]
    data = prepare_data(work, settings, seeds)
    results_path = work / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    results["settings"], results["model"] = settings, args.model
    if args.only in (None, "speed"):
        print("speed runs", flush=True)
        results["speed"] = speed_runs(settings, args, data, work)
        results_path.write_text(json.dumps(results, indent=1))
    if args.only in (None, "learning"):
        print("learning runs", flush=True)
        results["learning"] = learning_runs(settings, args, data, work)
        results_path.write_text(json.dumps(results, indent=1))
    from evaluate_ckpts import evaluate_learning

    from report import render_report

    if "learning" in results and args.only in (None, "learning", "report"):
        print("evaluating checkpoints", flush=True)
        results["eval"] = evaluate_learning(results, data["eval"], settings, work)
        results_path.write_text(json.dumps(results, indent=1))
    render_report(results, work, write_readme=not args.smoke)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
