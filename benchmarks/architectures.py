"""Which architectures train, the engine `rollout.engine=auto` picks, engine/trainer agreement.

For each architecture of benchmarks/arch_models.py (tiny random-init models, a GSM8K byte-level
BPE tokenizer):

1. agreement: a fixed batch of GSM8K train prompts (the first `--prompts`, `--samples` samples
   each, `--max-new-tokens`, T=1, seed 0) is sampled by EVERY engine usable on the model (fused
   where `fused_unsupported_reason` is None, hf always), in fp32; the batch is collated
   (`reasonrl.rl.batching.collate`) and re-scored by the trainer's forward
   (`reasonrl.rl.logprobs.batch_logprobs`, i.e. `response_logprobs` as a step runs it);
   reported: max |engine log-prob - trainer log-prob|
   over response tokens.
2. training: `trainer.steps` RL steps through the Python API (`reasonrl.train`) on GSM8K train
   (algo.preset=grpo: k3 KL 0.04 against a reference model; reward.kind=math),
   model.dtype=fp32, rollout.engine=auto; reported: the engine auto chose (TrainState.engine_name),
   the median `perf/step_s` and the largest `is/mismatch_max_abs` (|log pi_old - log pi_rollout|,
   docs/metrics.md) of the run's metrics.jsonl.

A failure of either part is caught, its traceback written to OUT/<arch>/error.txt, and the table
says which part failed with the exception's last line; nothing is retried or hidden.

Acceptance (issue 15): every architecture trains; |delta logp| <= 1e-4 in fp32 for every engine.

Run: python benchmarks/architectures.py --out /tmp/archs [--threads 2] [--arch qwen2 ...]
                                        [--readme benchmarks/README.md]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))  # arch_models beside this file

import arch_models

from reasonrl.data.benchmarks import load_benchmark
from reasonrl.data.templates import encode_prompt
from reasonrl.models.io import load_policy
from reasonrl.rl.batching import collate
from reasonrl.rl.logprobs import batch_logprobs
from reasonrl.rollout.base import SamplingParams
from reasonrl.rollout.registry import EngineArgs, create_engine, fused_unsupported_reason

# The run's recipe (written to OUT/recipe.yaml); the per-arch settings are dotted overrides.
RECIPE = {
    "model": {"dtype": "fp32", "device": "cpu"},
    "data": {"task": "benchmark", "benchmark": "gsm8k_train"},
    "reward": {"kind": "math"},
    "rollout": {"engine": "auto", "temperature": 1.0},
    "algo": {"preset": "grpo"},  # group mean/std advantages, PPO clip 0.2, k3 KL 0.04
}
README_HEADING = "Architectures (issue 15) (`benchmarks/architectures.py`)"
TOLERANCE = 1e-4  # fp32 acceptance bound on max |delta logp|
HEADER = (
    "| architecture | trains | engine auto chose | max\\|Δ logp\\| fused | max\\|Δ logp\\| hf "
    "| is/mismatch_max_abs in training | checkpoint reload max\\|Δ logits\\| "
    "| s/step (min / median) | parameters |\n"
    "|---|---|---|---|---|---|---|---|---|"
)


@dataclass
class ArchResult:
    """One table row; None = not measured (the cell says why)."""

    arch: str
    parameters: int = 0
    delta: dict[str, float | str] = field(default_factory=dict)  # engine -> max |dlogp| or reason
    trains: str = ""
    engine: str = ""
    mismatch_max: float | None = None
    step_s: float | None = None
    step_s_min: float | None = None
    reload: str = "-"  # max |logits - trainer's| of the last checkpoint opened by transformers

    def row(self) -> str:
        def cell(engine: str) -> str:
            value = self.delta.get(engine, "not run")
            return f"{value:.1e}" if isinstance(value, float) else str(value)

        mismatch = "-" if self.mismatch_max is None else f"{self.mismatch_max:.1e}"
        step = "-" if self.step_s is None else f"{self.step_s_min:.2f} / {self.step_s:.2f}"
        return (
            f"| {self.arch} | {self.trains} | {self.engine or '-'} | {cell('fused')} | "
            f"{cell('hf')} | {mismatch} | {self.reload} | {step} | {self.parameters / 1e3:.0f}k |"
        )


def short_error(exc: BaseException) -> str:
    """The exception's type and first line, '|' escaped for a markdown cell."""
    text = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return text.replace("|", "\\|")[:160]


def record_error(out: Path, part: str, exc: BaseException) -> str:
    """Append the traceback to out/error.txt and return the one-line cell text."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "error.txt", "a", encoding="utf-8") as f:
        f.write(f"--- {part}\n{traceback.format_exc()}\n")
    return f"no ({part}: {short_error(exc)})"


def fixed_prompts(tokenizer: Any, data_dir: Path, n: int) -> list[list[int]]:
    """The first `n` GSM8K train questions, encoded exactly as training encodes them."""
    samples = load_benchmark("gsm8k_train", data_dir)[:n]
    return [encode_prompt(tokenizer, s.prompt) for s in samples]


@torch.no_grad()
def engine_delta(
    engine_name: str,
    model: Any,
    tokenizer: Any,
    prompts: list[list[int]],
    params: SamplingParams,
    *,
    model_path: str | Path,
    dtype: str = "fp32",
    device: str = "cpu",
) -> float:
    """max |engine log-prob - trainer log-prob| over the response tokens of one sampled batch.

    The engine samples in `dtype` on `device`; the trainer's side is `batch_logprobs` (its one
    forward, `response_logprobs`, micro-batched under the same autocast as a training step) on the
    collated batch.
    """
    args = EngineArgs(model_path=str(model_path), dtype=dtype, device=device)
    engine = create_engine(engine_name, args, model, tokenizer)
    groups = engine.generate(prompts, params)
    flat_prompts = [p for p, group in zip(prompts, groups, strict=True) for _ in group]
    completions = [c for group in groups for c in group]
    batch = collate(
        flat_prompts, completions, torch.zeros(len(completions)), pad_id=tokenizer.pad_token_id
    )
    trainer_lp = batch_logprobs(
        model, batch, micro_batch_size=len(completions), temperature=params.temperature, dtype=dtype
    )
    mask = batch.response_mask.bool()
    if not mask.any():
        raise RuntimeError("the engine returned no response tokens")
    return float((trainer_lp - batch.rollout_logprobs).abs()[mask].max())


def run_metrics(metrics_path: Path) -> dict[str, float]:
    """Of a run's metrics.jsonl: median and least perf/step_s (the least is the one other jobs on
    a shared machine disturb least), median perf/gen_tokens_per_s, the largest
    is/mismatch_max_abs, the number of steps logged."""
    rows = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "perf/step_s" in r]
    return {
        "step_s": statistics.median(r["perf/step_s"] for r in rows),
        "step_s_min": min(r["perf/step_s"] for r in rows),
        "gen_tokens_per_s": statistics.median(r["perf/gen_tokens_per_s"] for r in rows),
        "mismatch_max_abs": max(r["is/mismatch_max_abs"] for r in rows),
        "steps": len(rows),
    }


def train_overrides(args: argparse.Namespace, model_dir: Path, arch: str) -> list[str]:
    """Dotted overrides of RECIPE for a small GSM8K run of `arch`."""
    return [
        f"model.path={model_dir}",
        f"model.threads={args.threads}",
        f"data.data_dir={Path(args.data_dir).resolve()}",
        f"rollout.n={args.samples}",
        f"rollout.prompts_per_step={args.prompts_per_step}",
        f"rollout.max_new_tokens={args.max_new_tokens}",
        f"algo.micro_batch_size={args.samples * args.prompts_per_step}",
        f"trainer.steps={args.steps}",
        f"trainer.out_dir={Path(args.out).resolve() / 'runs'}",
        f"trainer.run_name={arch}",
    ]


def run_training(args: argparse.Namespace, model_dir: Path, arch: str, result: ArchResult) -> None:
    """`reasonrl.train` on the run config; fills engine, step_s, mismatch_max and trains."""
    from reasonrl import load_config, train

    recipe = Path(args.out) / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(RECIPE, sort_keys=False))
    cfg = load_config(recipe, train_overrides(args, model_dir, arch))
    state = train(cfg, progress=False)
    result.engine = state.engine_name
    metrics = run_metrics(Path(cfg.trainer.out_dir) / arch / "metrics.jsonl")
    result.step_s, result.step_s_min = metrics["step_s"], metrics["step_s_min"]
    result.mismatch_max = metrics["mismatch_max_abs"]
    done = state.step
    result.trains = "yes" if done == args.steps else f"no (stopped at step {done})"
    result.reload = checkpoint_reload(state, Path(cfg.trainer.out_dir) / arch)


def checkpoint_reload(state: Any, run_dir: Path) -> str:
    """Open the run's newest checkpoint with plain transformers (AutoModelForCausalLM +
    AutoTokenizer) and compare its logits with the trained model's on one encoded prompt."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from reasonrl.runtime.checkpoint import latest_checkpoint

    ckpt = latest_checkpoint(run_dir)
    if ckpt is None:
        return "no checkpoint"
    model = AutoModelForCausalLM.from_pretrained(str(ckpt), local_files_only=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(ckpt), local_files_only=True)
    ids = tokenizer("Natalia sold clips to 48 of her friends.", return_tensors="pt")["input_ids"]
    if ids.tolist() != [state.tokenizer("Natalia sold clips to 48 of her friends.")["input_ids"]]:
        return "tokenizer differs"
    state.model.eval()
    with torch.no_grad():
        delta = (model(ids).logits - state.model(ids).logits).abs().max().item()
    return f"{delta:.1e}"


def run_arch(
    args: argparse.Namespace, arch: str, model_dir: Path, prompts: list[list[int]]
) -> ArchResult:
    """Agreement for every usable engine, then the training run; errors recorded, not raised."""
    out = Path(args.out) / "errors" / arch
    (out / "error.txt").unlink(missing_ok=True)  # a rerun's tracebacks only
    result = ArchResult(arch)
    model, tokenizer = load_policy(model_dir, dtype="fp32")
    result.parameters = arch_models.num_parameters(model)
    reason = fused_unsupported_reason(model, "cpu")
    params = SamplingParams(n=args.samples, max_new_tokens=args.max_new_tokens, seed=0)
    for engine in ("fused", "hf"):
        if engine == "fused" and reason is not None:
            result.delta[engine] = "n/a (unsupported)"
            continue
        try:
            result.delta[engine] = engine_delta(
                engine, model, tokenizer, prompts, params, model_path=model_dir
            )
        except Exception as exc:  # reported in the table and error.txt, never hidden
            result.delta[engine] = record_error(out, f"{engine} agreement", exc)
    del model
    try:
        run_training(args, model_dir, arch, result)
    except Exception as exc:
        result.trains = record_error(out, "training", exc)
    return result


def cpu_description() -> tuple[str, bool]:
    """(CPU model name, whether it has avx512_bf16) from /proc/cpuinfo."""
    name, bf16 = platform.processor() or platform.machine(), False
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    bf16 = "avx512_bf16" in line.split()
    except OSError:
        pass
    return name, bf16


def report(args: argparse.Namespace, results: list[ArchResult], command: str) -> str:
    """The markdown block: machine, settings, command, table and acceptance verdict."""
    import transformers

    cpu, bf16 = cpu_description()
    failures = [r.arch for r in results if r.trains != "yes"]
    over = [
        f"{r.arch}/{engine}"
        for r in results
        for engine, value in r.delta.items()
        if (value > TOLERANCE if isinstance(value, float) else not value.startswith("n/a"))
    ]
    lines = [
        f"Machine: {cpu}, avx512_bf16 {'yes' if bf16 else 'no'}, {os.cpu_count()} cores "
        f"shared with other jobs; torch {torch.__version__} with {args.threads} threads, "
        f"transformers {transformers.__version__}; dtype fp32; {datetime.date.today()}.",
        f"Settings: random-init models (benchmarks/arch_models.py), GSM8K byte-level BPE vocab "
        f"{args.vocab_size}; agreement on the first {args.prompts} GSM8K train prompts x "
        f"{args.samples} samples, {args.max_new_tokens} new tokens, T=1; training "
        f"algo.preset=grpo (k3 KL 0.04), {args.prompts_per_step} prompts x {args.samples} samples, "
        f"{args.max_new_tokens} new tokens, {args.steps} steps, reward.kind=math, "
        "rollout.engine=auto. s/step = the least and the median perf/step_s of the run's steps "
        "(step 1 includes warm-up); is/mismatch_max_abs = the largest of "
        "the run's steps.",
        f"Command: `{command}`",
        "",
        HEADER,
        *(r.row() for r in results),
        "",
        f"Acceptance (every architecture trains {args.steps} steps; max|Δ logp| <= {TOLERANCE:g} "
        f"for every engine): {'met' if not failures and not over else 'NOT met'}"
        + (f"; not training: {', '.join(failures)}" if failures else "")
        + (f"; over tolerance or failed: {', '.join(over)}" if over else "")
        + ".",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="models, runs and error tracebacks go here")
    ap.add_argument("--arch", action="append", choices=sorted(arch_models.ARCHS))
    ap.add_argument("--data-dir", default=str(arch_models.DEFAULT_DATA_DIR))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--vocab-size", type=int, default=2000)
    ap.add_argument("--prompts", type=int, default=4, help="agreement batch: prompts")
    ap.add_argument("--samples", type=int, default=4, help="samples per prompt (both parts)")
    ap.add_argument("--prompts-per-step", type=int, default=2)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--readme", help="append the block to this markdown file")
    args = ap.parse_args(argv)
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])
    torch.set_num_threads(args.threads)
    archs = args.arch or list(arch_models.ARCHS)
    t0 = time.perf_counter()
    paths = arch_models.save_models(
        Path(args.out) / "models", archs, data_dir=args.data_dir, vocab_size=args.vocab_size
    )
    _, tokenizer = load_policy(paths[archs[0]], dtype="fp32")
    prompts = fixed_prompts(tokenizer, Path(args.data_dir), args.prompts)
    results = []
    for arch in archs:
        results.append(run_arch(args, arch, paths[arch], prompts))
        print(results[-1].row(), flush=True)
    block = report(args, results, command)
    print(f"\n{block}\n\n(total {time.perf_counter() - t0:.0f} s)")
    if args.readme:
        with open(args.readme, "a", encoding="utf-8") as f:
            f.write(f"\n## {README_HEADING}\n\n{block}\n")
    return 0 if "NOT met" not in block else 1


if __name__ == "__main__":
    raise SystemExit(main())
