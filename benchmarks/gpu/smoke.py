"""GPU smoke check: real-shape random-init models train 3 RL steps on one CUDA GPU (<= 5 minutes).

Models (random weights, built on the GPU directly in bf16, no downloads; the tokenizer is the
byte-level BPE of benchmarks/arch_models.py, the model vocab is the real size and only ids below
the tokenizer's size are fed; sampled ids above it decode to nothing):

    qwen2.5-0.5b   qwen2: hidden 896, 24 layers, 14 heads / 2 kv heads, MLP 4864, vocab 151936,
                   tied embeddings, rope_theta 1e6
    llama-3.2-1b   llama: hidden 2048, 16 layers, 32 heads / 8 kv heads, MLP 8192, vocab 128256,
                   tied, llama3 RoPE (factor 32, low/high freq 1/4, original context 8192)

For each model:
  - agreement: the hf engine (TransformersEngine) samples a fixed batch, the trainer's forward
    (`batch_logprobs`) re-scores it; max |delta logp| with fp32 weights in fp32, and in bf16
    (autocast, as a bf16 training step runs);
  - generation tokens/s of the hf engine in bf16 (random weights never emit EOS: every row runs to
    --gen-tokens);
  - `--steps` RL steps through the Python API with model.device=cuda, model.dtype=bf16,
    rollout.engine=hf, then vllm when `import vllm` works: s/step (median perf/step_s), the
    largest is/mismatch_max_abs (the bf16 engine/trainer agreement of training), and
    torch.cuda.max_memory_allocated (vLLM's own KV-cache pool may not be counted).

Prompts are generated arithmetic word problems (written to WORK/prompts.jsonl, reward.kind=math),
so nothing but this repository is needed on the GPU machine. The tokenizer is trained on GSM8K
train when --data-dir has it, else on those prompts.

One table is printed and, if $OUT is set, written with the machine details to $OUT/smoke.json.
`--cpu-dry-run` runs the same code path on the CPU with tiny shapes (hidden 64, 2 layers,
vocab 4096 > the tokenizer's), to test the script where there is no GPU.

Run: bash benchmarks/gpu/smoke.sh            (GPU)
     python benchmarks/gpu/smoke.py --cpu-dry-run --work /tmp/smoke
"""

from __future__ import annotations

import argparse
import datetime
import gc
import importlib.util
import json
import os
import random
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: shared helpers

import arch_models
from architectures import engine_delta, run_metrics, short_error

from reasonrl.data.templates import encode_prompt
from reasonrl.models.io import load_policy, save_policy
from reasonrl.rollout.base import SamplingParams
from reasonrl.rollout.registry import EngineArgs, create_engine

QWEN25_05B = {
    "hidden_size": 896,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "intermediate_size": 4864,
    "vocab_size": 151936,
    "tie_word_embeddings": True,
    "max_position_embeddings": 32768,
    "rms_norm_eps": 1e-6,
    "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0},
}
LLAMA32_1B = {
    "hidden_size": 2048,
    "num_hidden_layers": 16,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "intermediate_size": 8192,
    "vocab_size": 128256,
    "tie_word_embeddings": True,
    "max_position_embeddings": 131072,
    "rms_norm_eps": 1e-5,
    "rope_parameters": {
        "rope_type": "llama3",
        "rope_theta": 500000.0,
        "factor": 32.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
    },
}
# name -> (arch_models.ARCHS key, real shape)
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "qwen2.5-0.5b": ("qwen2", QWEN25_05B),
    "llama-3.2-1b": ("llama", LLAMA32_1B),
}
# --cpu-dry-run: the same architectures and RoPE types at a size a CPU runs in seconds
DRY_SHAPE = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 128,
    "vocab_size": 4096,
    "max_position_embeddings": 1024,
}
RECIPE = {
    "model": {"dtype": "bf16"},
    "data": {"task": "jsonl"},
    "reward": {"kind": "math"},
    "rollout": {"temperature": 1.0},
    "algo": {"preset": "grpo"},  # group mean/std advantages, PPO clip 0.2, k3 KL 0.04 (ref model)
}


def write_prompts(path: Path, n: int = 256, seed: int = 0) -> list[str]:
    """`n` arithmetic word problems as JSONL (question, answer); returns their texts."""
    rng = random.Random(seed)
    rows, texts = [], []
    for _ in range(n):
        a, b = rng.randint(2, 99), rng.randint(2, 99)
        question = (
            f"Tom has {a} apples and buys {b} more. How many apples does he have now? "
            "Put the final answer in \\boxed{}."
        )
        rows.append({"question": question, "answer": str(a + b)})
        texts += [question, f"He has {a} + {b} = {a + b} apples. \\boxed{{{a + b}}}"]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return texts


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def free(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def generation_rate(
    model: Any, tokenizer: Any, model_dir: Path, prompts: list[list[int]], args: argparse.Namespace
) -> float:
    """Generated tokens/s of the hf engine in bf16: one warm-up call, then one timed call."""
    engine = create_engine(
        "hf",
        EngineArgs(model_path=str(model_dir), dtype="bf16", device=args.device),
        model,
        tokenizer,
    )
    engine.generate(prompts[:1], SamplingParams(n=1, max_new_tokens=4, seed=0))
    params = SamplingParams(n=args.gen_samples, max_new_tokens=args.gen_tokens, seed=1)
    sync(args.device)
    t0 = time.perf_counter()
    groups = engine.generate(prompts, params)
    sync(args.device)
    tokens = sum(len(c.token_ids) for group in groups for c in group)
    return tokens / (time.perf_counter() - t0)


def train_run(args: argparse.Namespace, model_dir: Path, name: str, engine: str) -> dict[str, Any]:
    """`args.steps` RL steps with rollout.engine=`engine`; the run's metrics and peak memory."""
    from reasonrl import load_config, train

    work = Path(args.work)
    recipe = work / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(RECIPE, sort_keys=False))
    run_name = f"{name}-{engine}"
    overrides = [
        f"model.path={model_dir}",
        f"model.device={args.device}",
        f"data.train_file={work / 'prompts.jsonl'}",
        f"rollout.engine={engine}",
        f"rollout.n={args.samples}",
        f"rollout.prompts_per_step={args.prompts_per_step}",
        f"rollout.max_new_tokens={args.max_new_tokens}",
        f"algo.micro_batch_size={args.samples * args.prompts_per_step}",
        f"trainer.steps={args.steps}",
        f"trainer.out_dir={work / 'runs'}",
        f"trainer.run_name={run_name}",
        "trainer.save_every=1000",  # the final checkpoint only
    ]
    if args.device == "cpu":
        overrides.append(f"model.threads={args.threads}")
    cfg = load_config(recipe, overrides)
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    state = train(cfg, progress=False)
    steps = state.step
    del state
    peak = torch.cuda.max_memory_allocated() if args.device.startswith("cuda") else None
    free(args.device)
    metrics = run_metrics(work / "runs" / run_name / "metrics.jsonl")
    return {
        "trains": "yes" if steps == args.steps else f"no (stopped at step {steps})",
        **metrics,
        "peak_mem_gib": None if peak is None else peak / 2**30,
    }


def check_model(args: argparse.Namespace, name: str, tokenizer: Any) -> list[dict[str, Any]]:
    """Build, save, measure agreement and generation, train with every engine: table rows."""
    arch, shape = MODELS[name]
    if args.cpu_dry_run:
        shape = {**shape, **DRY_SHAPE}
        rope = shape["rope_parameters"]
        if "original_max_position_embeddings" in rope:  # keep the scaling below the tiny context
            shape["rope_parameters"] = {**rope, "original_max_position_embeddings": 256}
    model_dir = Path(args.work) / "models" / name
    t0 = time.perf_counter()
    model = arch_models.build_model(arch, tokenizer, device=args.device, dtype="bf16", **shape)
    params_n = arch_models.num_parameters(model)
    save_policy(model, tokenizer, model_dir)
    del model
    free(args.device)
    build_s = time.perf_counter() - t0
    prompts = [encode_prompt(tokenizer, q) for q in args.questions[: args.agree_prompts]]
    base = {"model": name, "parameters": params_n, "build_s": build_s}
    hf: dict[str, Any] = {**base, "engine": "hf"}
    try:
        model, _ = load_policy(model_dir, dtype="fp32", device=args.device)
        sample = SamplingParams(n=args.agree_samples, max_new_tokens=args.max_new_tokens, seed=0)
        for dtype in ("fp32", "bf16"):
            hf[f"delta_{dtype}"] = engine_delta(
                "hf",
                model,
                tokenizer,
                prompts,
                sample,
                model_path=model_dir,
                dtype=dtype,
                device=args.device,
            )
        hf["gen_bench_tokens_per_s"] = generation_rate(model, tokenizer, model_dir, prompts, args)
        del model
        free(args.device)
    except Exception as exc:  # reported, never hidden
        traceback.print_exc()
        hf["error"] = f"agreement: {short_error(exc)}"
    rows = [hf]
    engines = ["hf"] + (["vllm"] if args.vllm else [])
    for engine in engines:
        row = hf if engine == "hf" else {**base, "engine": "vllm"}
        if row is not hf:
            rows.append(row)
        try:
            row.update(train_run(args, model_dir, name, engine))
        except Exception as exc:
            traceback.print_exc()
            row["trains"] = f"no ({short_error(exc)})"
            free(args.device)
    return rows


def count(n: int) -> str:
    return f"{n / 1e6:.0f}M" if n >= 1e6 else f"{n / 1e3:.0f}k"


def table(rows: list[dict[str, Any]]) -> str:
    def num(row: dict[str, Any], key: str, fmt: str) -> str:
        value = row.get(key)
        return "-" if value is None else format(value, fmt)

    lines = [
        "| model | parameters | engine | trains | max\\|Δ logp\\| fp32 | max\\|Δ logp\\| bf16 "
        "| gen tokens/s (bf16) | s/step | is/mismatch_max_abs | peak GiB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        gen = r.get("gen_bench_tokens_per_s", r.get("gen_tokens_per_s"))
        lines.append(
            f"| {r['model']} | {count(r['parameters'])} | {r['engine']} | "
            f"{r.get('trains', '-')}{' / ' + r['error'] if 'error' in r else ''} | "
            f"{num(r, 'delta_fp32', '.1e')} | {num(r, 'delta_bf16', '.1e')} | "
            f"{'-' if gen is None else f'{gen:,.0f}'} | {num(r, 'step_s', '.2f')} | "
            f"{num(r, 'mismatch_max_abs', '.1e')} | {num(r, 'peak_mem_gib', '.1f')} |"
        )
    return "\n".join(lines)


def machine(args: argparse.Namespace) -> dict[str, Any]:
    import transformers

    info: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "device": args.device,
        "cpu_dry_run": args.cpu_dry_run,
        "command": " ".join(sys.argv),
    }
    if args.device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    if args.vllm:
        import vllm

        info["vllm"] = vllm.__version__
    return info


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cpu-dry-run", action="store_true", help="tiny shapes on the CPU")
    ap.add_argument("--work", default=None, help="models and runs (default: a temp folder)")
    ap.add_argument("--model", action="append", choices=sorted(MODELS), help="default: both")
    ap.add_argument("--data-dir", default=str(arch_models.DEFAULT_DATA_DIR))
    ap.add_argument(
        "--engine",
        choices=["auto-vllm", "hf"],
        default="auto-vllm",
        help="auto-vllm: hf, and vllm when importable",
    )
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--prompts-per-step", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--agree-prompts", type=int, default=4)
    ap.add_argument("--agree-samples", type=int, default=2)
    ap.add_argument("--gen-samples", type=int, default=8, help="generation bench: per prompt")
    ap.add_argument("--gen-tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2, help="CPU dry run only")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.cpu_dry_run:
        args.device = "cpu"
        torch.set_num_threads(args.threads)
    else:
        if not torch.cuda.is_available():
            print(
                "smoke.py: no CUDA GPU here (torch.cuda.is_available() is False, torch "
                f"{torch.__version__}); run it on a GPU machine, or pass --cpu-dry-run to test "
                "the script on the CPU with tiny shapes.",
                file=sys.stderr,
            )
            return 2
        args.device = "cuda"
    args.vllm = args.engine == "auto-vllm" and importlib.util.find_spec("vllm") is not None
    if args.work is None:
        import tempfile

        args.work = tempfile.mkdtemp(prefix="reasonrl-smoke-")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    texts = write_prompts(work / "prompts.jsonl")
    args.questions = [
        json.loads(line)["question"] for line in (work / "prompts.jsonl").read_text().splitlines()
    ]
    gsm8k = Path(args.data_dir) / arch_models.GSM8K_TRAIN
    corpus = arch_models.gsm8k_texts(args.data_dir) if gsm8k.is_file() else texts
    tokenizer = arch_models.train_tokenizer(corpus)
    rows: list[dict[str, Any]] = []
    for name in args.model or list(MODELS):
        rows.extend(check_model(args, name, tokenizer))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    info = {
        **machine(args),
        "tokenizer_corpus": "gsm8k" if gsm8k.is_file() else "generated",
        "tokenizer_size": len(tokenizer),
        "total_s": time.perf_counter() - t0,
    }
    text = table(rows)
    print(f"\n{json.dumps(info)}\n\n{text}")
    out = os.environ.get("OUT")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "smoke.json").write_text(
            json.dumps({"machine": info, "rows": rows, "table": text}, indent=2) + "\n"
        )
    ok = all(r.get("trains") == "yes" and "error" not in r for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
