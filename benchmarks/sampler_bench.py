"""Per-decode-step cost of `sample_next` against the LM-head matmul at real vocabulary sizes.

Requirement (the sampler's issue): sampling one token per row costs no more than the LM-head
matmul that produced the logits, at W = 32 rows. Matmuls: (W, 896) @ (896, 151936) for
Qwen2.5-0.5B and (W, 2048) @ (2048, 128256) for Llama-3.2-1B, in the dtype this machine's rollout
engine uses (bf16 where `fast_bf16_available`, else fp32). Logits are Gaussian with std
`--logit-scale` (5 gives entropy ~3.7 nats and a 0.95-nucleus of ~300 tokens at V = 151,936,
LM-like); the top-p case is also run on flat logits (std 1: entropy ~11 nats, nucleus ~110k
tokens, the worst case, where top-p needs a full sort). Cases: T=1 no filter, T=0.7 top_k=50,
top_p=0.95, greedy; "old" is the former Gumbel-max sampler (a (W, V) hash-noise tensor per
step), copied below for the before/after figure.

Run: python benchmarks/sampler_bench.py [--threads 2] [--rows 32] [--repeats 10]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from reasonrl.rollout.sampling import (
    _GOLDEN,
    _M32,
    _MUL_A,
    _MUL_B,
    _MUL_C,
    _mix32,
    filter_logprobs,
    sample_next,
    sequence_keys,
)
from reasonrl.runtime.precision import fast_bf16_available

MODELS = (("Qwen2.5-0.5B", 896, 151_936), ("Llama-3.2-1B", 2048, 128_256))


def _old_uniform_noise(keys: torch.Tensor, steps: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """The former per-(row, token) hash noise, verbatim."""
    row = _mix32((keys[:, 0] + _mix32(steps & _M32, _MUL_C, _MUL_B)) & _M32)
    row = _mix32((row ^ keys[:, 1]) & _M32, _MUL_C, _MUL_A)
    vocab = torch.arange(vocab_size, dtype=torch.int64, device=keys.device) * _GOLDEN
    bits = _mix32((row[:, None] + vocab[None, :]) & _M32)
    return ((bits >> 8).to(torch.float32) + 0.5) * (1.0 / (1 << 24))


def old_sample_next(logits, keys, steps, *, temperature=1.0, top_k=0, top_p=1.0, greedy=False):
    """The former Gumbel-max `sample_next`, verbatim (its filter was the non-tie-inclusive top-p,
    which costs the same)."""
    z = logits.float()
    if greedy or temperature == 0:
        logprobs = torch.log_softmax(z, dim=-1)
        tokens = torch.argmax(z, dim=-1)
    else:
        logprobs = torch.log_softmax(z / temperature if temperature != 1.0 else z, dim=-1)
        allowed = filter_logprobs(logprobs, top_k=top_k, top_p=top_p)
        gumbel = -torch.log(-torch.log(_old_uniform_noise(keys, steps, z.shape[-1])))
        tokens = torch.argmax(allowed + gumbel, dim=-1)
    return tokens, logprobs.gather(-1, tokens[:, None]).squeeze(-1)


def paired_ms(
    fn: Callable[[], object], ref: Callable[[], object], repeats: int
) -> tuple[float, float, float]:
    """Median ms of fn and of ref, and the median of their per-repeat ratio fn/ref.

    fn and ref alternate within each repeat, so a load change on a shared machine moves both
    and the ratio stays meaningful even when the absolute times drift.
    """
    fn(), ref()  # warm-up: allocator, thread pool
    t_fn, t_ref, ratios = [], [], []
    for _ in range(repeats):
        start = time.perf_counter()
        ref()
        mid = time.perf_counter()
        fn()
        end = time.perf_counter()
        t_ref.append(mid - start)
        t_fn.append(end - mid)
        ratios.append((end - mid) / (mid - start))
    med = statistics.median
    return med(t_fn) * 1e3, med(t_ref) * 1e3, med(ratios)


def _cpu() -> tuple[str, bool]:
    name, bf16 = "unknown", False
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name") and name == "unknown":
                    name = line.split(":", 1)[1].strip()
                if line.startswith("flags") and "avx512_bf16" in line.split():
                    bf16 = True
    except OSError:
        pass
    return name, bf16


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--logit-scale", type=float, default=5.0)
    parser.add_argument(
        "--old-repeats", type=int, default=3, help="repeats for the slow old sampler"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cpu, avx512_bf16 = _cpu()
    dtype = torch.bfloat16 if fast_bf16_available() else torch.float32
    print(f"CPU: {cpu}; avx512_bf16: {'yes' if avx512_bf16 else 'no'}")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, matmul dtype {dtype}")
    print(
        f"rows W={args.rows}, repeats {args.repeats} (old: {args.old_repeats}); medians, ratio = "
        "median of per-repeat ratios (sampler and matmul alternate)"
    )
    cases = (
        ("T=1", {"temperature": 1.0}),
        ("T=0.7 top_k=50", {"temperature": 0.7, "top_k": 50}),
        ("top_p=0.95", {"top_p": 0.95}),
        ("greedy", {"greedy": True}),
    )
    print("| model | case | logits | sample ms | matmul ms | sample/matmul | old ms | old/matmul |")
    print("|---|---|---|---|---|---|---|---|")
    gen = torch.Generator().manual_seed(0)
    w = args.rows
    keys = sequence_keys(0, [[i] for i in range(w)], 1)
    steps = torch.full((w,), 7, dtype=torch.int64)
    for name, hidden, vocab in MODELS:
        h = torch.randn(w, hidden, generator=gen).to(dtype)
        head = (torch.randn(hidden, vocab, generator=gen) * hidden**-0.5).to(dtype)

        def matmul(h: torch.Tensor = h, head: torch.Tensor = head) -> torch.Tensor:
            return h @ head

        # logits arrive in the matmul dtype, as from the engine's LM head
        peaked = (torch.randn(w, vocab, generator=gen) * args.logit_scale).to(dtype)
        flat = torch.randn(w, vocab, generator=gen).to(dtype)
        runs = [(label, kw, peaked, f"std {args.logit_scale:g}") for label, kw in cases]
        runs.insert(3, ("top_p=0.95", {"top_p": 0.95}, flat, "std 1 (flat)"))
        for label, kw, z, desc in runs:
            new_ms, mm_ms, ratio = paired_ms(
                lambda z=z, kw=kw: sample_next(z, keys, steps, **kw), matmul, args.repeats
            )
            old_ms, _, old_ratio = paired_ms(
                lambda z=z, kw=kw: old_sample_next(z, keys, steps, **kw), matmul, args.old_repeats
            )
            print(
                f"| {name} | {label} | {desc} | {new_ms:.1f} | {mm_ms:.1f} | {ratio:.2f} "
                f"| {old_ms:.0f} | {old_ratio:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
