"""Scaling curves: tokens/s and model FLOPs utilisation (MFU) of generate and of the RL update.

    nice .venv/bin/python benchmarks/scaling.py [--threads 1] [--repeats 3] [--new-tokens 64]

Two sweeps (issue 24):
- batch size: the shipped base (`builtin:synth-micro`, the nano shape) at B x G = 1x8, 4x8, 16x8;
- model size: random-init Qwen2 shapes of `models.factory.MODEL_SIZES` (nano, tiny, micro) with the
  synth tokenizer (vocab 1321) at 16 x 8.
Prompts are synthetic ops 1-4 problems (as the quickstart's). Generate = `HFEngine.generate`
(dtype auto) with T=1 and `--new-tokens` new tokens; the random-init models never sample EOS and
the shipped one mostly does, so tokens/s counts the tokens generated. Update =
`rl.update.policy_update` (GRPO-style ppo_clip, token-mean, micro-batch 32, AdamW, dtype auto) on
the same prompts with random `--new-tokens`-token completions and non-zero advantages, so every
row trains (the worst case of benchmarks/vs_trl); tokens/s counts prompt + completion tokens.

FLOPs (the usual dense-transformer count, Kaplan et al. arXiv 2001.08361 / PaLM arXiv 2204.02311
appendix B): a forward costs 2 N per token plus 4 nL d_attn ctx for attention scores and values
(N = matmul parameters incl. the LM head, not the embedding lookup; d_attn = heads x head_dim;
ctx = the mean number of keys a token attends to); training costs 3x the forward. Generate counts
the prompt tokens (prefill, each prompt once) and the generated tokens. MFU = achieved FLOP/s /
the peak matmul FLOP/s of the SAME process and dtype on a 2048^3 product (best of 5, measured
at the start, before each case and at the end; every MFU uses the highest): on a shared machine
both the peak and the achieved rate vary with the load (an 8x spread of the peak was seen
beside a compile job), so on a busy machine read MFU as a rough figure.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from dataclasses import dataclass
from typing import Any


@dataclass
class Shape:
    """What the FLOP count needs from a Qwen2 config."""

    n_matmul: int  # parameters of all matmuls (q/k/v/o, MLP, LM head)
    n_layers: int
    d_attn: int


def shape_of(model: Any) -> Shape:
    cfg = model.config
    hd = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    h, kvh, d, inner = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.hidden_size, None
    inner = cfg.intermediate_size
    per_layer = d * (h * hd) * 2 + d * (kvh * hd) * 2 + 3 * d * inner
    n = cfg.num_hidden_layers * per_layer + cfg.vocab_size * d
    return Shape(n_matmul=n, n_layers=cfg.num_hidden_layers, d_attn=h * hd)


def forward_flops(shape: Shape, tokens: float, ctx: float) -> float:
    """2 N per token + 4 nL d_attn ctx (QK^T and PV) per token."""
    return tokens * (2 * shape.n_matmul + 4 * shape.n_layers * shape.d_attn * ctx)


def peak_flops(dtype: Any, n: int = 2048) -> float:
    """Best-of-5 FLOP/s of an n x n x n matmul in `dtype` (this process's thread setting)."""
    import torch

    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def prompts_for(tok: Any, count: int) -> list[list[int]]:
    from reasonrl.data.templates import prompt_token_ids
    from reasonrl.tasks.synth.dataset import make_dataset, row_to_sample

    rows = make_dataset([1, 2, 3, 4], -(-count // 4), seed=0)
    return [prompt_token_ids(tok, row_to_sample(r)) for r in rows[:count]]


def time_generate(model: Any, tok: Any, prompts: list[list[int]], g: int, new: int, reps: int):
    """Median (wall s, generated tokens, prompt tokens, mean ctx per generated token)."""
    from reasonrl.rollout import HFEngine, SamplingParams

    engine = HFEngine(model, tok, dtype="auto")
    runs = []
    for rep in range(reps + 1):  # the first call packs the weights: a warm-up
        params = SamplingParams(n=g, max_new_tokens=new, seed=rep, temperature=1.0)
        start = time.perf_counter()
        out = engine.generate(prompts, params)
        wall = time.perf_counter() - start
        lens = [(len(p), len(c.token_ids)) for p, grp in zip(prompts, out) for c in grp]
        gen = sum(n for _, n in lens)
        ctx = sum(n * (p + n / 2) for p, n in lens) / max(gen, 1)
        if rep:
            runs.append((wall, gen, sum(len(p) for p in prompts), ctx))
    runs.sort()
    return runs[len(runs) // 2]


def time_update(model: Any, tok: Any, prompts: list[list[int]], g: int, new: int, reps: int):
    """Median (wall s, tokens = prompt + completion tokens of all rows, mean ctx per token)."""
    import torch

    from reasonrl.config import RLConfig
    from reasonrl.rl.batching import collate
    from reasonrl.rl.update import policy_update
    from reasonrl.types import Completion

    rng = random.Random(0)
    rows_p, comps = [], []
    for p in prompts:
        for _ in range(g):
            ids = tuple(rng.randrange(5, len(tok)) for _ in range(new))
            comps.append(Completion(text="", token_ids=ids, logprobs=(-1.0,) * new))
            rows_p.append(p)
    adv = torch.tensor([rng.choice([-1.0, 1.0]) * rng.uniform(0.1, 2) for _ in comps])
    batch = collate(rows_p, comps, adv, pad_id=tok.pad_token_id)
    cfg = RLConfig.model_validate(
        {
            "rollout": {"n": g, "prompts_per_step": len(prompts), "max_new_tokens": new},
            "algo": {"micro_batch_size": min(32, len(comps)), "kl_coef": 0.0},
            "optim": {"lr": 1e-5, "grad_clip": 1.0},
            "model": {"dtype": "auto"},
        }
    )
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.0)
    tokens = sum(len(p) + new for p in rows_p)
    ctx = sum((len(p) + new) / 2 * (len(p) + new) for p in rows_p) / tokens
    times = []
    for rep in range(reps + 1):
        start = time.perf_counter()
        policy_update(model, opt, batch, cfg)
        if rep:
            times.append(time.perf_counter() - start)
    model.eval()
    return statistics.median(times), tokens, ctx


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--sizes", nargs="*", default=["nano", "tiny", "micro"])
    parser.add_argument("--batches", nargs="*", type=int, default=[1, 4, 16], help="prompts B")
    parser.add_argument("--group", type=int, default=8, help="samples per prompt G")
    args = parser.parse_args()

    import torch

    from reasonrl.models.factory import build_model
    from reasonrl.models.io import load_policy
    from reasonrl.runtime.precision import resolve_dtype

    torch.set_num_threads(args.threads)
    dtype = resolve_dtype("auto")
    load = os.getloadavg()[0]
    peak = peak_flops(dtype)
    print(json.dumps({"peak_gflops": round(peak / 1e9, 1), "dtype": str(dtype),
                      "threads": args.threads, "load_before": load}))  # fmt: skip
    base, tok = load_policy("builtin:synth-micro")
    cases: list[tuple[str, Any, int]] = [("synth-micro (nano)", base, b) for b in args.batches]
    for size in args.sizes:
        cases.append((f"{size} (random init)", None, max(args.batches)))
    rows = []
    for label, model, b in cases:
        if model is None:
            model = build_model(label.split()[0], tok, seed=0).eval()
        shape = shape_of(model)
        peak = max(peak, peak_flops(dtype))  # re-measured beside each case: see the docstring
        prompts = prompts_for(tok, b)
        wall, gen, ptok, ctx = time_generate(model, tok, prompts, args.group, args.new_tokens,
                                             args.repeats)  # fmt: skip
        plen = ptok / len(prompts)
        gflop = forward_flops(shape, gen, ctx) + forward_flops(shape, ptok, plen / 2)
        uwall, utok, uctx = time_update(model, tok, prompts, args.group, args.new_tokens,
                                        args.repeats)  # fmt: skip
        uflop = 3 * forward_flops(shape, utok, uctx)
        row = {
            "model": label, "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
            "rows": b * args.group,
            "gen_tok_s": round(gen / wall), "upd_tok_s": round(utok / uwall),
            "gen_gflops": gflop / wall / 1e9, "upd_gflops": uflop / uwall / 1e9,
            "gen_s": round(wall, 3), "upd_s": round(uwall, 3), "peak_gflops_now": peak / 1e9,
        }  # fmt: skip
        rows.append(row)
        print(json.dumps(row), flush=True)
    peak_end = peak_flops(dtype)
    print(json.dumps({"load_after": os.getloadavg()[0], "peak_gflops_end": peak_end / 1e9}))
    peak = max(peak, peak_end)  # MFU against the best peak this process saw
    for r in rows:
        r["gen_mfu"], r["upd_mfu"] = r["gen_gflops"] * 1e9 / peak, r["upd_gflops"] * 1e9 / peak
    print(f"peak {peak / 1e9:.1f} GFLOP/s ({dtype}, {args.threads} thread(s))")
    print(
        "\n| model | params (M) | rows B x G | generate tok/s | generate MFU | update tok/s "
        "| update MFU |\n|---|---|---|---|---|---|---|"
    )
    for r in rows:
        print(
            f"| {r['model']} | {r['params_M']} | {r['rows']} | {r['gen_tok_s']:,} | "
            f"{r['gen_mfu']:.1%} | {r['upd_tok_s']:,} | {r['upd_mfu']:.1%} |"
        )


if __name__ == "__main__":
    main()
