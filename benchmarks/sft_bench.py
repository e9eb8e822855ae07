"""SFT throughput and MFU of the tiny Qwen2 sizes on this machine (issue 8).

Usage:
    python benchmarks/sft_bench.py --sizes micro mini --threads 2 [--out bench.md]

Measures, in one process:
1. the machine's matmul peak: GFLOP/s of square fp32 and bf16 matmuls (n = 256, 512, 1024; the
   fastest single call of many, 2*n^3 flops each; `torch.mm` and autocast `F.linear`) at
   `--threads`;
2. SFT training tokens/s of each size (the real `reasonrl.sft.step.sft_step`: forward,
   completion-only loss, backward, clip, AdamW) on synthetic op 2-6 rows, batch 32, fp32 and
   bf16 autocast, after warmup steps; tokens = non-padding tokens (prompt + completion);
3. MFU = 6 * params * tokens/s / peak (params counted once with tied embeddings; the 6N rule
   ignores attention-score flops, ~10% here at ~150-token sequences), against the peak of the
   same dtype.
On a CPU without native bf16 (AVX2 only) bf16 is emulated and very slow: bf16 SFT is then timed
on fewer rows (`--bf16-batch`) and the table says so.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch
import torch.nn.functional as F

from reasonrl.config.sft import SFTOptimConfig
from reasonrl.models.factory import build_model, count_parameters
from reasonrl.sft.data import collate_sft, encode_rows
from reasonrl.sft.step import make_optimizer, sft_step
from reasonrl.tasks.synth import build_synth_tokenizer, make_dataset


def matmul_peak(dtype: str, *, seconds: float = 1.5) -> tuple[float, int]:
    """Best GFLOP/s of one n x n matmul call, n in (256, 512, 1024); returns (gflops, best n).

    Each size is called repeatedly for `seconds` and the fastest call counts: on a shared machine
    short calls that run undisturbed estimate the uncontended peak. Two kernels are tried per
    dtype, a plain `torch.mm` and the path the model takes (`F.linear`, under bf16 autocast for
    bf16), and the faster one is the peak.
    """
    best, best_n = 0.0, 0
    for n in (256, 512, 1024):
        a, b = torch.randn(n, n), torch.randn(n, n)
        calls = [lambda a=a, b=b: F.linear(a, b)]
        if dtype == "bf16":
            a16, b16 = a.bfloat16(), b.bfloat16()
            calls = [lambda a16=a16, b16=b16: torch.mm(a16, b16), calls[0]]
        else:
            calls.append(lambda a=a, b=b: torch.mm(a, b))
        for call in calls:
            with torch.autocast("cpu", torch.bfloat16, enabled=dtype == "bf16"):
                call()  # warm up the kernel choice
                deadline = time.perf_counter() + seconds / len(calls)
                while time.perf_counter() < deadline:
                    t = time.perf_counter()
                    call()
                    rate = 2 * n**3 / (time.perf_counter() - t) / 1e9
                    if rate > best:
                        best, best_n = rate, n
    return best, best_n


def sft_tokens_per_s(size: str, rows: list, *, dtype: str, batch: int, steps: int,
                     warmup: int, pad_id: int, tokenizer) -> tuple[float, int]:  # fmt: skip
    """Median tokens/s of `steps` timed SFT steps (after `warmup`); returns (tok/s, params)."""
    model = build_model(size, tokenizer, seed=0)
    model.train()
    opt = make_optimizer(model, SFTOptimConfig())
    rates = []
    for step in range(warmup + steps):
        chunk = rows[(step * batch) % (len(rows) - batch) :][:batch]
        mb = collate_sft(chunk, pad_id=pad_id)
        t = time.perf_counter()
        sft_step(model, opt, [mb], lr=1e-4, grad_clip=1.0, dtype=dtype)
        if step >= warmup:
            rates.append(int((mb.input_ids != pad_id).sum()) / (time.perf_counter() - t))
    rates.sort()
    return rates[len(rates) // 2], count_parameters(model)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", nargs="+", default=["micro", "mini"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--bf16-batch", type=int, default=2, help="rows per bf16 step if emulated")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tokenizer = build_synth_tokenizer()
    rows = encode_rows(tokenizer, make_dataset(range(2, 7), 64, seed=0, split="train"))
    rows.sort(key=lambda r: r.completion_ids)  # deterministic mixed-op order
    peaks = {name: matmul_peak(name) for name in ("fp32", "bf16")}
    native_bf16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    lines = [
        f"Machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, {args.threads} threads, native bf16: {native_bf16}, "
        f"load average {os.getloadavg()[0]:.1f} at start.",
        "",
        f"Matmul peak: fp32 {peaks['fp32'][0]:.1f} GFLOP/s (n={peaks['fp32'][1]}), "
        f"bf16 {peaks['bf16'][0]:.1f} GFLOP/s (n={peaks['bf16'][1]}).",
        "",
        "| size | params | dtype | batch | tokens/s | 6·N·tok/s (GFLOP/s) | MFU |",
        "|---|---|---|---|---|---|---|",
    ]
    for size in args.sizes:
        for dtype in ("fp32", "bf16"):
            slow = dtype == "bf16" and not native_bf16
            batch = args.bf16_batch if slow else args.batch
            steps = 1 if slow else args.steps
            rate, params = sft_tokens_per_s(
                size, rows, dtype=dtype, batch=batch, steps=steps, warmup=1 if slow else 2,
                pad_id=tokenizer.pad_token_id, tokenizer=tokenizer,
            )  # fmt: skip
            flops = 6 * params * rate / 1e9
            lines.append(f"| {size} | {params / 1e6:.2f}M | {dtype}{' (emulated)' if slow else ''}"
                         f" | {batch} | {rate:,.0f} | {flops:.1f} | "
                         f"{flops / peaks[dtype][0]:.1%} |")  # fmt: skip
            print(lines[-1], flush=True)
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
