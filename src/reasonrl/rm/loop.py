"""What the RM and DPO runs share: their pairs, the pair order, the optimiser and the loop
(logging, held-out evaluation, resumable checkpoints through `runtime.checkpoint`)."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from reasonrl.config import save_resolved
from reasonrl.config.rm import DPOConfig, RMConfig
from reasonrl.rm.data import PreferencePair, encode_pair, load_pairs, write_pairs
from reasonrl.rm.pairs import synth_pairs, synth_samples
from reasonrl.runtime.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from reasonrl.runtime.metrics import JsonlWriter
from reasonrl.runtime.schedule import lr_factor

PrefConfig = RMConfig | DPOConfig


@dataclass
class PairSets:
    """Encoded train and held-out pairs: (prompt ids, chosen ids, rejected ids) each."""

    train: list[tuple[list[int], list[int], list[int]]]
    eval: list[tuple[list[int], list[int], list[int]]]
    eval_pairs: list[PreferencePair]
    stats: dict[str, float]


def build_pairs(cfg: PrefConfig, tokenizer: Any, sampler: Any) -> PairSets:
    """Pairs from data.train_file/eval_file, or sampled by `sampler` on synthetic problems
    (train split for training, held-out split for evaluation), encoded and length-filtered."""
    d = cfg.data
    stats: dict[str, float] = {}
    if d.synth_ops:
        kw = dict(n=d.samples, temperature=d.temperature, max_new_tokens=d.max_new_tokens,
                  builder=d.pair_builder, max_pairs=d.max_pairs_per_prompt,
                  ratio=d.long2short_ratio)  # fmt: skip
        train_s = synth_samples(d.synth_ops, d.synth_problems_per_op, split="train", seed=d.seed)
        eval_s = synth_samples(d.synth_ops, d.synth_eval_problems_per_op, split="heldout",
                               seed=d.seed)  # fmt: skip
        train, st = synth_pairs(sampler, tokenizer, train_s, seed=d.seed, **kw)  # type: ignore[arg-type]
        held, se = synth_pairs(sampler, tokenizer, eval_s, seed=d.seed + 1, **kw)  # type: ignore[arg-type]
        stats = {
            **{f"train_{k}": v for k, v in st.items()},
            **{f"eval_{k}": v for k, v in se.items()},
        }
    else:
        keys = dict(prompt_key=d.prompt_key, chosen_key=d.chosen_key, rejected_key=d.rejected_key)
        train = load_pairs(d.train_file, **keys)  # type: ignore[arg-type]
        held = load_pairs(d.eval_file, **keys) if d.eval_file else []

    def fit(pairs: list[PreferencePair]) -> tuple[list, list[PreferencePair]]:
        enc, kept = [], []
        for p in pairs:
            e = encode_pair(tokenizer, p)
            if len(e[0]) + max(len(e[1]), len(e[2])) <= d.max_len:
                enc.append(e)
                kept.append(p)
        return enc, kept

    train_enc, train_kept = fit(train)
    eval_enc, eval_kept = fit(held)
    if not train_enc:
        raise ValueError(
            "no training pairs: the sampler never produced both a preferred and a "
            "rejected completion of one prompt (more samples or other ops?)"
        )
    out = Path(cfg.train.out_dir)
    write_pairs(train_kept, out / "pairs_train.jsonl")
    write_pairs(eval_kept, out / "pairs_eval.jsonl")
    stats |= {"train_pairs": float(len(train_enc)), "eval_pairs": float(len(eval_enc))}
    return PairSets(train_enc, eval_enc, eval_kept, stats)


def batch_indices(n: int, batch_size: int, seed: int, step: int) -> list[int]:
    """Pair indices of optimiser step `step` (0-based): epoch e is a permutation seeded by
    seed + e, cut into ceil(n / batch_size) batches, so a resumed run needs only the step."""
    per_epoch = math.ceil(n / batch_size)
    epoch, k = divmod(step, per_epoch)
    order = list(range(n))
    random.Random(seed + epoch).shuffle(order)
    return order[k * batch_size : (k + 1) * batch_size]


def total_steps(cfg: PrefConfig, n: int) -> int:
    return cfg.train.epochs * math.ceil(n / cfg.train.batch_size)


def make_optimizer(params: list[torch.nn.Parameter], cfg: PrefConfig) -> torch.optim.AdamW:
    return torch.optim.AdamW(params, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)


StepFn = Callable[[list[int]], tuple[torch.Tensor, dict[str, float]]]
EvalFn = Callable[[], dict[str, float]]


def train_loop(
    cfg: PrefConfig,
    module: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    n_pairs: int,
    step_fn: StepFn,
    eval_fn: EvalFn,
    *,
    tag: str,
    side_files: Callable[[Path], None] | None = None,
) -> tuple[int, dict[str, float]]:
    """Optimise `step_fn`'s mean loss over the pair order; evaluate, log, checkpoint, resume.

    Returns (steps done, the last evaluation's metrics)."""
    t, o = cfg.train, cfg.optim
    out = Path(t.out_dir)
    steps = total_steps(cfg, n_pairs)
    start = 0
    resume_from = latest_checkpoint(out) if t.resume else None
    if resume_from is not None:
        state = load_checkpoint(resume_from, model=module, optimizer=optimizer)
        start = int(state["step"])
        print(f"[{tag}] resumed from {resume_from} at step {start}", flush=True)
    metrics = JsonlWriter(out / "metrics.jsonl", resume_step=start if resume_from else None)
    clock = time.perf_counter()
    last_eval: dict[str, float] = {}
    module.train()
    for step in range(start, steps):
        lr = o.lr * lr_factor(step, step / steps, warmup_steps=o.warmup_steps,
                              min_lr_ratio=o.min_lr_ratio)  # fmt: skip
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss, stats = step_fn(batch_indices(n_pairs, t.batch_size, t.seed, step))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for g in optimizer.param_groups for p in g["params"]]
        gnorm = float(torch.nn.utils.clip_grad_norm_(params, o.grad_clip))
        if math.isfinite(gnorm):  # a non-finite gradient skips the update, never the run
            optimizer.step()
        done = step + 1
        row = {"step": done, "loss": float(loss.detach()), "lr": lr, "grad_norm": gnorm, **stats,
               "minutes": (time.perf_counter() - clock) / 60}  # fmt: skip
        if done % t.log_every == 0 or done == steps:
            print(
                f"[{tag}] step {done}/{steps} loss {row['loss']:.4f} "
                + " ".join(f"{k} {v:.3f}" for k, v in stats.items()),
                flush=True,
            )
        if (t.eval_every and done % t.eval_every == 0) or done == steps:
            last_eval = eval_fn()
            module.train()
            row |= {f"eval/{k}": v for k, v in last_eval.items()}
            print(
                f"[{tag}] eval step {done}: "
                + " ".join(f"{k} {v:.4f}" for k, v in last_eval.items()),
                flush=True,
            )
        metrics.write(row)
        if t.save_every and done % t.save_every == 0 and done != steps:
            save_checkpoint(out, done, model=module, optimizer=optimizer, scheduler=None,
                            sampler_state={}, keep_last=t.keep_last,
                            side_files=side_files)  # fmt: skip
    metrics.close()
    if not last_eval:  # resumed at the end: evaluate once so the summary has numbers
        last_eval = eval_fn()
    return steps, last_eval


def start_run(cfg: PrefConfig) -> Path:
    """Threads, seeds, the run directory and its resolved config.yaml."""
    from reasonrl.runtime.seeding import seed_everything

    torch.set_num_threads(cfg.train.threads)
    seed_everything(cfg.train.seed)
    out = Path(cfg.train.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_resolved(cfg, out)
    return out


__all__ = ["PairSets", "batch_indices", "build_pairs", "start_run", "total_steps", "train_loop"]
