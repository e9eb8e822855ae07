"""What the RM and DPO runs share: their pairs, the pair order, the optimiser and the loop
(logging, held-out evaluation, resumable checkpoints through `runtime.checkpoint`)."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from reasonrl.config import save_resolved
from reasonrl.config.rm import DPOConfig, RMConfig
from reasonrl.rm.data import PreferencePair, encode_pair, load_pairs, write_pairs
from reasonrl.rm.negatives import demonstration_pairs, hard_negative_pairs
from reasonrl.rm.pairs import pairs_from_labelled, sample_labelled, synth_samples
from reasonrl.runtime.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from reasonrl.runtime.metrics import JsonlWriter
from reasonrl.runtime.schedule import lr_factor

PrefConfig = RMConfig | DPOConfig


@dataclass
class PairSets:
    """Encoded train, validation and held-out pairs: (prompt ids, chosen ids, rejected ids)."""

    train: list[tuple[list[int], list[int], list[int]]]
    eval: list[tuple[list[int], list[int], list[int]]]
    eval_pairs: list[PreferencePair]
    stats: dict[str, float]
    val: list[tuple[list[int], list[int], list[int]]] = field(default_factory=list)


Labelled = list[tuple[Any, list[int], list[Any], list[bool]]]


def _synth_sets(
    cfg: PrefConfig, tokenizer: Any, sampler: Any, cache: dict[tuple, Labelled] | None
) -> tuple[list[PreferencePair], list[PreferencePair], list[PreferencePair], dict[str, float]]:
    """(train, validation, held-out) pairs of synthetic problems (`data.synth_ops`)."""
    d = cfg.data
    kw = dict(n=d.samples, temperature=d.temperature, max_new_tokens=d.max_new_tokens)

    def labelled(split: str, per_op: int, seed: int) -> Labelled:
        key = (split, tuple(d.synth_ops or ()), per_op, d.samples, d.temperature,
               d.max_new_tokens, d.seed, seed)  # fmt: skip
        if cache is not None and key in cache:
            return cache[key]
        problems = synth_samples(d.synth_ops, per_op, split=split, seed=d.seed)  # type: ignore[arg-type]
        got = sample_labelled(sampler, tokenizer, problems, seed=seed, **kw)  # type: ignore[arg-type]
        if cache is not None:
            cache[key] = got
        return got

    pkw = dict(max_pairs=d.max_pairs_per_prompt, ratio=d.long2short_ratio)
    train_l = labelled("train", d.synth_problems_per_op, d.seed)
    n_val = round(d.val_fraction * len(train_l))
    rng = random.Random(d.seed + 2)
    order = list(range(len(train_l)))
    rng.shuffle(order)
    val_l = [train_l[i] for i in sorted(order[:n_val])]
    fit_l = [train_l[i] for i in sorted(order[n_val:])]
    train, st = (
        ([], {})
        if d.pair_builder == "none"
        else pairs_from_labelled(fit_l, builder=d.pair_builder, rng=random.Random(d.seed), **pkw)
    )  # type: ignore[arg-type]
    val, _ = pairs_from_labelled(val_l, builder="strict", rng=random.Random(d.seed + 3),
                                 **pkw)  # type: ignore[arg-type]  # fmt: skip
    held_builder = "strict" if d.pair_builder == "none" else d.pair_builder
    held, se = pairs_from_labelled(labelled("heldout", d.synth_eval_problems_per_op, d.seed + 1),
                                   builder=held_builder, rng=random.Random(d.seed + 1),
                                   **pkw)  # type: ignore[arg-type]  # fmt: skip
    stats = {**{f"train_{k}": v for k, v in st.items()}, **{f"eval_{k}": v for k, v in se.items()}}
    if d.demonstrations != "off":
        keep = [(s, i, c, ok if d.demonstrations == "wrong" else [False] * len(ok))
                for s, i, c, ok in fit_l]  # fmt: skip
        demos = demonstration_pairs(keep, tokenizer, max_pairs=d.max_pairs_per_prompt,
                                    rng=random.Random(d.seed + 4))  # fmt: skip
        stats["train_demonstration_pairs"] = float(len(demos))
        train += demos
    if d.hard_negatives:
        problems = [s for s, *_ in fit_l]
        if d.hard_negative_problems_per_op:
            seen = {s.id for s, *_ in train_l}
            extra = synth_samples(
                d.synth_ops,
                d.synth_problems_per_op  # type: ignore[arg-type]
                + d.hard_negative_problems_per_op,
                split="train",
                seed=d.seed,
            )
            problems += [s for s in extra if s.id not in seen]
        hard = hard_negative_pairs(problems, tokenizer, per_problem=d.hard_negatives,
                                   rng=random.Random(d.seed + 5))  # fmt: skip
        stats["train_hard_negative_pairs"] = float(len(hard))
        train += hard
    if d.demonstrations != "off" or d.hard_negatives:
        random.Random(d.seed + 6).shuffle(train)  # sources mixed (the order is reshuffled)
    return train, val, held, stats


def build_pairs(
    cfg: PrefConfig, tokenizer: Any, sampler: Any, *, cache: dict[tuple, Labelled] | None = None
) -> PairSets:
    """Pairs from data.train_file/eval_file, or sampled by `sampler` on synthetic problems
    (train split for training and validation, held-out split for evaluation) plus the optional
    demonstrations and hard negatives (`rm.negatives`), encoded and length-filtered.

    `cache` (in-process, caller-owned) keeps the labelled samples between calls with the SAME
    sampler weights (ablations); never pass one across a sampler that changes."""
    d = cfg.data
    stats: dict[str, float] = {}
    val: list[PreferencePair] = []
    if d.synth_ops:
        train, val, held, stats = _synth_sets(cfg, tokenizer, sampler, cache)
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
    val_enc, _ = fit(val)
    if not train_enc:
        raise ValueError(
            "no training pairs: the sampler never produced both a preferred and a "
            "rejected completion of one prompt (more samples or other ops?)"
        )
    out = Path(cfg.train.out_dir)
    write_pairs(train_kept, out / "pairs_train.jsonl")
    write_pairs(eval_kept, out / "pairs_eval.jsonl")
    stats |= {"train_pairs": float(len(train_enc)), "eval_pairs": float(len(eval_enc)),
              "val_pairs": float(len(val_enc))}  # fmt: skip
    return PairSets(train_enc, eval_enc, eval_kept, stats, val_enc)


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
