"""Rollout speed: reasonrl's HFEngine vs `transformers` `generate`, same model, prompts, settings.

The model is the project's 6M Qwen2 shape (hidden 256, 6 layers, 4 heads / 2 kv heads, MLP 1024,
vocab 300, tied embeddings). Random weights would never emit EOS, and generate would then run
every row to the cap, which flatters an engine with early exit. So first the model is trained
(80 AdamW steps, about a minute) on a countdown task: the prompt (random filler, 70-110 tokens,
like the synthetic task's op 3-5 prompts) ends with a number m in 30..80 and the answer is
m-1, m-2, ..., 1, EOS.
Sampling at T=1 then gives completions of about m tokens: the 30-80 spread of real solutions,
with occasional detours (a wrong number restarts the count) as a realistic long tail.

Both samplers run in one process, interleaved, `--repeats` times; the table reports medians and
the speed-up against HF within the same repeat (robust to load changes from other jobs).
tokens/s = generated tokens (up to and including EOS, never padding) / wall seconds, prefill
included. HF generate gets do_sample=True, T=1, top_k=0, top_p=1, max_new_tokens=128, a
left-padded batch with attention mask, the same EOS. Settings: 64 prompts x 1 sample, and
8 prompts x 8 samples (group sampling; generate via num_return_sequences).

Run: python benchmarks/rollout_bench.py [--threads 2] [--repeats 3] [--readme benchmarks/README.md]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from reasonrl.rollout import HFEngine, SamplingParams
from reasonrl.runtime.precision import fast_bf16_available

PAD, EOS, NUM0, FILLER0, VOCAB = 0, 2, 10, 110, 300  # numbers 0..99 are ids 10..109


class _Tok:
    """Just enough tokenizer for the engine: ids decode to their numbers."""

    pad_token_id, eos_token_id = PAD, EOS

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return " ".join(str(i) for i in ids)


def build_model() -> torch.nn.Module:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        hidden_size=256,
        num_hidden_layers=6,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=1024,
        vocab_size=VOCAB,
        tie_word_embeddings=True,
        max_position_embeddings=512,
        eos_token_id=EOS,
        pad_token_id=PAD,
        bos_token_id=1,
    )
    return Qwen2ForCausalLM(config)


def countdown_example(
    gen: torch.Generator, prompt_len: tuple[int, int] = (70, 110)
) -> tuple[list[int], list[int]]:
    """(prompt, answer): random filler ending in m, then m-1 .. 1, EOS."""
    plen = int(torch.randint(prompt_len[0], prompt_len[1] + 1, (1,), generator=gen))
    m = int(torch.randint(30, 81, (1,), generator=gen))
    filler = torch.randint(FILLER0, VOCAB, (plen - 1,), generator=gen).tolist()
    return [*filler, NUM0 + m], [NUM0 + k for k in range(m - 1, 0, -1)] + [EOS]


def train_countdown(model: torch.nn.Module, steps: int, seed: int) -> int:
    """AdamW on the answers (loss on answer tokens only); returns the steps done.

    Short filler (10-30 tokens) keeps steps cheap; the countdown is local, so it carries over to
    the 70-110-token prompts of the benchmark. Stops early once the loss is below 0.02.
    80 steps take about a minute on 2 quiet cores.
    """
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    model.train()
    done = 0
    while done < steps:
        pairs = [countdown_example(gen, (10, 30)) for _ in range(16)]
        width = max(len(p) + len(a) for p, a in pairs)
        ids = torch.full((len(pairs), width), PAD)
        labels = torch.full((len(pairs), width), -100)
        for i, (p, a) in enumerate(pairs):
            ids[i, : len(p) + len(a)] = torch.tensor(p + a)
            labels[i, len(p) : len(p) + len(a)] = torch.tensor(a)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=fast_bf16_available()):
            loss = model(ids, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        done += 1
        if loss.item() < 0.02:
            break
    model.eval()
    return done


def hf_generate(model, prompts: list[list[int]], n: int, bf16: str) -> list[int]:
    """HF generate; bf16 in {"off", "autocast", "weights"}. Returns generated lengths."""
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[PAD] * (width - len(p)) + p for p in prompts])
    mask = (
        torch.arange(width)[None, :] >= torch.tensor([width - len(p) for p in prompts])[:, None]
    ).long()
    kwargs = dict(
        do_sample=True,
        temperature=1.0,
        top_k=0,
        top_p=1.0,
        max_new_tokens=128,
        eos_token_id=EOS,
        pad_token_id=PAD,
        num_return_sequences=n,
    )
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bf16 == "autocast"):
        out = model.generate(input_ids=ids, attention_mask=mask, **kwargs)[:, width:]
    lengths = []
    for row in out.tolist():
        lengths.append(row.index(EOS) + 1 if EOS in row else len(row))
    return lengths


def timed(fn: Callable[[], list[int]]) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of this process, generated tokens) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    lengths = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, sum(lengths)


def samplers(
    model: torch.nn.Module, prompts: list[list[int]], n: int, seed: int, bf16: bool
) -> dict[str, Callable[[], list[int]]]:
    """label -> a call that samples the setting and returns the generated lengths."""
    out: dict[str, Callable[[], list[int]]] = {
        "transformers generate, fp32": lambda: hf_generate(model, prompts, n, "off"),
    }
    if bf16:
        bf16_model = build_model().to(torch.bfloat16)
        bf16_model.load_state_dict(model.state_dict())
        bf16_model.eval()
        out["transformers generate, bf16 autocast"] = lambda: hf_generate(
            model, prompts, n, "autocast"
        )
        out["transformers generate, bf16 weights"] = lambda: hf_generate(
            bf16_model, prompts, n, "off"
        )
    params = SamplingParams(n=n, max_new_tokens=128, seed=seed)
    for dtype in ("fp32", "bf16") if bf16 else ("fp32",):
        engine = HFEngine(model, _Tok(), dtype=dtype)
        out[f"reasonrl HFEngine, {dtype}"] = lambda e=engine: _engine_lengths(e, prompts, params)
    return out


def _engine_lengths(
    engine: HFEngine, prompts: list[list[int]], params: SamplingParams
) -> list[int]:
    lengths = [len(c.token_ids) for g in engine.generate(prompts, params) for c in g]
    print(
        f"  engine: {engine.stats['prefill_tokens']} prompt tokens prefilled, "
        f"{engine.stats['decode_rows']} decode row-steps for {sum(lengths)} tokens "
        f"(keeping finished rows would be {len(lengths) * max(lengths)})"
    )
    engine.reset_stats()
    return lengths


def trained_model(args: argparse.Namespace) -> torch.nn.Module:
    torch.manual_seed(args.seed)
    model = build_model()
    if args.model_cache and os.path.exists(args.model_cache):
        model.load_state_dict(torch.load(args.model_cache))
        print(f"loaded the countdown model from {args.model_cache}")
    else:
        start = time.perf_counter()
        steps = train_countdown(model, args.train_steps, args.seed)
        print(f"trained the countdown model: {steps} steps, {time.perf_counter() - start:.0f}s")
        if args.model_cache:
            torch.save(model.state_dict(), args.model_cache)
    return model.eval()


@dataclass
class Row:
    """One sampler on one setting: medians over repeats and per-repeat speed-ups vs HF."""

    setting: str
    label: str
    mean_len: float
    wall_s: float
    wall_rate: float
    wall_ups: list[float]
    cpu_s: float
    cpu_rate: float
    cpu_ups: list[float]


def _speedups(rates: dict[str, list[float]], label: str) -> list[float]:
    """Each repeat's rate over the fastest HF rate of the SAME repeat."""
    hf = [label for label in rates if label.startswith("transformers")]
    return [rate / max(rates[h][rep] for h in hf) for rep, rate in enumerate(rates[label])]


def run(args: argparse.Namespace) -> list[Row]:
    """Time every sampler on both settings, interleaved within each repeat.

    Speed-ups pair each repeat with the HF run of the same repeat, so load changes from other
    jobs between repeats cancel. CPU seconds (process time, one thread) leave out the time this
    process waited for a core, which is most of the noise on a shared 2-core machine.
    """
    model = trained_model(args)
    gen = torch.Generator().manual_seed(args.seed + 1)
    prompts = [countdown_example(gen)[0] for _ in range(64)]
    rows: list[Row] = []
    for name, (batch, n) in {"64 x 1": (prompts, 1), "8 x 8": (prompts[:8], 8)}.items():
        runs: dict[str, list[tuple[float, float, int]]] = {}
        for rep in range(args.repeats):
            for label, fn in samplers(model, batch, n, rep, args.bf16).items():
                runs.setdefault(label, []).append(timed(fn))
        wall = {label: [t / w for w, _, t in res] for label, res in runs.items()}
        cpu = {label: [t / c for _, c, t in res] for label, res in runs.items()}
        for label, res in runs.items():
            med = statistics.median
            row = Row(
                setting=name,
                label=label,
                mean_len=med(t for _, _, t in res) / 64,
                wall_s=med(w for w, _, _ in res),
                wall_rate=med(wall[label]),
                wall_ups=_speedups(wall, label),
                cpu_s=med(c for _, c, _ in res),
                cpu_rate=med(cpu[label]),
                cpu_ups=_speedups(cpu, label),
            )
            rows.append(row)
            print(
                f"{name:7s} {label:38s} len {row.mean_len:5.1f} | wall {row.wall_s:6.2f}s "
                f"{row.wall_rate:6.0f} tok/s {_fmt(row.wall_ups)} | cpu {row.cpu_s:6.2f}s "
                f"{row.cpu_rate:6.0f} tok/s {_fmt(row.cpu_ups)}"
            )
    return rows


def _fmt(ups: list[float]) -> str:
    return f"{statistics.median(ups):.2f}x ({min(ups):.2f}-{max(ups):.2f})"


def matmul_ms(dtype: torch.dtype, rows: int = 64) -> float:
    """Best-of-5 milliseconds of one (rows x 256) @ (256 x 1024) product in `dtype`."""
    x, w = torch.randn(rows, 256, dtype=dtype), torch.randn(1024, 256, dtype=dtype)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(20):
            torch.nn.functional.linear(x, w)
        best = min(best, (time.perf_counter() - start) / 20)
    return best * 1e3


def write_readme(
    path: str,
    rows: list[Row],
    args: argparse.Namespace,
    load: tuple[float, float],
    notes: list[str],
) -> None:
    """Append the measured table, with the command and machine, to a markdown file."""
    lines = [
        "",
        "## Rollout engine vs `transformers` `generate` (`benchmarks/rollout_bench.py`)",
        "",
        f"Command: `python benchmarks/rollout_bench.py --threads {args.threads} --repeats "
        f"{args.repeats}` ({datetime.date.today()}; {_cpu_name()}, {os.cpu_count()} cores, "
        f"torch.set_num_threads({args.threads}), torch {torch.__version__}, transformers "
        f"{__import__('transformers').__version__}; bf16 fast here: {fast_bf16_available()}; "
        f"load average {load[0]:.1f} before / {load[1]:.1f} after).",
        "",
        "| prompts x samples | sampler | mean gen. tokens | wall s | tokens/s | speed-up (wall) "
        "| CPU s | tokens per CPU-s | speed-up (CPU) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.setting} | {r.label} | {r.mean_len:.1f} | {r.wall_s:.2f} | {r.wall_rate:,.0f} "
            f"| {_fmt(r.wall_ups)} | {r.cpu_s:.2f} | {r.cpu_rate:,.0f} | {_fmt(r.cpu_ups)} |"
        )
    lines += ["", *notes]
    with open(path, "a", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-steps", type=int, default=80)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--readme", default=None, help="append the table to this markdown file")
    parser.add_argument(
        "--bf16",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also time bf16 (default: only where bf16 is fast, see fast_bf16_available)",
    )
    parser.add_argument(
        "--model-cache",
        default=None,
        help="load the trained countdown model from this file if it exists, else save it there",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.bf16 is None:
        args.bf16 = fast_bf16_available()
    load_before = os.getloadavg()[0]
    fp32_ms, bf16_ms = matmul_ms(torch.float32), matmul_ms(torch.bfloat16)
    notes = [
        f"A 64x256 @ 256x1024 matmul takes {fp32_ms:.2f} ms in fp32 and {bf16_ms:.2f} ms in bf16 "
        f"here (bf16 fast: {fast_bf16_available()}); bf16 rows are timed only where it is fast."
    ]
    print(notes[0])
    rows = run(args)
    if args.readme:
        write_readme(args.readme, rows, args, (load_before, os.getloadavg()[0]), notes)


if __name__ == "__main__":
    main()
