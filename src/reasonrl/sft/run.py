"""The SFT run: build model and data from an `SFTConfig`, loop, evaluate, save (see `sft.py`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from reasonrl.config import SFTConfig, save_resolved
from reasonrl.data.loaders import read_jsonl_rows
from reasonrl.data.templates import PromptFormat
from reasonrl.models.factory import MODEL_SIZES, build_model, count_parameters
from reasonrl.models.io import load_policy, load_tokenizer, save_policy
from reasonrl.runtime.metrics import JsonlWriter
from reasonrl.runtime.precision import dtype_name
from reasonrl.runtime.progress import StepProgress
from reasonrl.runtime.schedule import lr_factor
from reasonrl.runtime.seeding import seed_everything
from reasonrl.sft.data import TokenizedRow, collate_sft, encode_rows, iterate_epochs
from reasonrl.sft.step import eval_loss, make_optimizer, sft_step


@dataclass
class SFTData:
    """Tokenized train/eval rows plus the raw eval rows (for strict evaluation of synth data)."""

    train: list[TokenizedRow]
    eval: list[TokenizedRow]
    eval_raw: list[dict[str, Any]] = field(default_factory=list)


def build_model_and_tokenizer(cfg: SFTConfig) -> tuple[Any, Any]:
    """Fresh model of a named size (with the synth tokenizer by default) or a loaded checkpoint."""
    init, tok_spec = cfg.model.init, cfg.model.tokenizer
    if init in MODEL_SIZES:
        if tok_spec in (None, "synth"):
            from reasonrl.tasks.synth import build_synth_tokenizer

            tokenizer = build_synth_tokenizer()
        else:
            tokenizer = load_tokenizer(tok_spec)
        model = build_model(init, tokenizer, seed=cfg.train.seed)
    else:
        model, tokenizer = load_policy(init, dtype="fp32")
        if tok_spec not in (None,):
            raise ValueError(f"model.tokenizer={tok_spec!r} is only valid with a fresh model size")
    if cfg.model.tool_tokens:  # the tool tags, same ids as build_synth_tokenizer(tools=True)
        from reasonrl.tasks.synth.tokenizer import add_tool_tokens

        add_tool_tokens(tokenizer, model)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(cfg.model.device)
    model.train()
    return model, tokenizer


def synth_rows(cfg: SFTConfig, split: str, per_op: int) -> list[dict[str, Any]]:
    """Generated synthetic rows (prompt/completion + metadata) of the configured ops."""
    from reasonrl.tasks.synth import make_dataset

    d = cfg.data
    return make_dataset(
        tuple(d.synth_ops or ()),
        per_op,
        contexts=tuple(d.synth_contexts),
        modes=tuple(d.synth_modes),
        seed=d.seed,
        split=split,
    )


def load_data(cfg: SFTConfig, tokenizer: Any) -> SFTData:
    """Read or generate the rows and tokenize them (rows over max_len are dropped and counted)."""
    d = cfg.data
    if d.synth_ops:
        train_raw = synth_rows(cfg, "train", d.synth_per_op)
        eval_raw = synth_rows(cfg, "heldout", d.synth_eval_per_op)
        source = "synthetic"
    elif d.train_file:
        train_raw = read_jsonl_rows(d.train_file)
        eval_raw = []
        source = d.train_file
    else:
        raise ValueError("SFT data: set data.train_file or data.synth_ops")
    if d.eval_file:
        eval_raw = read_jsonl_rows(d.eval_file)
    fmt = PromptFormat.from_config(cfg)  # the prompts as RL and eval render them
    train = encode_rows(tokenizer, train_raw, max_len=d.max_len, source=source, prompt_format=fmt)
    eval_rows = encode_rows(tokenizer, eval_raw, max_len=d.max_len, source="eval",
                            prompt_format=fmt)  # fmt: skip
    dropped = sum(int(r.get("repeat", 1)) for r in train_raw) - len(train)
    if dropped:
        print(f"[sft] dropped {dropped} train rows longer than max_len={d.max_len}", flush=True)
    return SFTData(train=train, eval=eval_rows, eval_raw=eval_raw)


def strict_eval(model: Any, tokenizer: Any, cfg: SFTConfig, eval_raw: list[dict]) -> dict:
    """Greedy strict pass@1 on a few held-out synthetic problems per op (empty when off)."""
    per_op = cfg.train.eval_strict_per_op
    if not per_op or not cfg.data.synth_ops or not eval_raw:
        return {}
    from reasonrl.eval.evaluate import evaluate
    from reasonrl.tasks.synth import row_to_sample

    picked: dict[int, list] = {}
    for row in eval_raw:
        bucket = picked.setdefault(int(row["op"]), [])
        if len(bucket) < per_op:
            bucket.append(row_to_sample(row))
    samples = [s for op in sorted(picked) for s in picked[op]]
    was_training = model.training
    model.eval()
    result = evaluate(
        model,
        tokenizer,
        samples,
        greedy=True,
        samples_per_problem=1,
        max_new_tokens=cfg.train.eval_max_new_tokens,
        seed=cfg.train.seed,
        prompt_format=PromptFormat.from_config(cfg),
    )
    model.train(was_training)
    return {f"strict_greedy_op{op}": m["strict_pass@1"] for op, m in result.per_op.items()}


@dataclass
class SFTRun:
    """Everything the loop touches: model, optimiser, data, output paths, clock and step."""

    model: Any
    tokenizer: Any
    optimizer: torch.optim.Optimizer
    data: SFTData
    dtype: str
    out: Path
    rep: StepProgress
    metrics: JsonlWriter
    start: float = 0.0
    step: int = 0

    @property
    def minutes(self) -> float:
        return (time.perf_counter() - self.start) / 60


def setup_run(cfg: SFTConfig) -> SFTRun:
    """Seed, threads, output dir (resolved config saved), model, data, optimiser."""
    t = cfg.train
    torch.set_num_threads(t.threads)
    seed_everything(t.seed)
    out = Path(t.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_resolved(cfg, out)
    metrics = JsonlWriter(out / "metrics.jsonl", resume_step=None)  # a fresh file per run
    model, tokenizer = build_model_and_tokenizer(cfg)
    t0 = time.perf_counter()
    data = load_data(cfg, tokenizer)
    dtype = dtype_name(t.dtype, cfg.model.device)
    run = SFTRun(model, tokenizer, make_optimizer(model, cfg.optim), data, dtype, out,
                 StepProgress(t.max_steps, label="SFT"), metrics)  # fmt: skip
    run.rep.log(
        f"[sft] model {cfg.model.init}: {count_parameters(model):,} params, {dtype}; "
        f"{len(data.train):,} train rows ({sum(map(len, data.train)):,} tokens), "
        f"{len(data.eval)} eval rows; data ready in {time.perf_counter() - t0:.1f}s"
    )
    return run


def run_sft(cfg: SFTConfig) -> Path:
    """Train per `cfg`; writes config.yaml, metrics.jsonl, checkpoints and `final/` (returned).

    Stops at `train.max_steps` or, if set, `train.time_budget_min` (whichever comes first; the
    cosine schedule follows whichever is further along, so a time-limited run still anneals).
    """
    run = setup_run(cfg)
    t = cfg.train
    batches = iterate_epochs(run.data.train, batch_size=t.batch_size, seed=t.seed)
    budget_s = t.time_budget_min * 60 if t.time_budget_min else None
    run.start = time.perf_counter()
    with run.rep:
        _loop(run, cfg, batches, budget_s)
    run.metrics.close()
    summary = {"step": run.step, "minutes": run.minutes, "params": count_parameters(run.model),
               "config": cfg.model_dump(mode="json")}  # fmt: skip
    final = save_policy(run.model, run.tokenizer, run.out / "final", extra=summary)
    print(f"[sft] saved {final}", flush=True)
    return final


def _loop(run: SFTRun, cfg: SFTConfig, batches: Any, budget_s: float | None) -> None:
    """Steps until max_steps or the time budget; logs, evaluates and saves on the way."""
    t, o = cfg.train, cfg.optim
    pad_id = run.tokenizer.pad_token_id
    window_t, window_tokens = run.start, 0
    while run.step < t.max_steps:
        elapsed = time.perf_counter() - run.start
        if budget_s is not None and elapsed >= budget_s:
            run.rep.log(f"[sft] time budget of {t.time_budget_min} min reached at step {run.step}")
            break
        progress = max(run.step / t.max_steps, elapsed / budget_s if budget_s else 0.0)
        lr = o.lr * lr_factor(run.step, progress, warmup_steps=o.warmup_steps,
                              min_lr_ratio=o.min_lr_ratio)  # fmt: skip
        micro = [collate_sft(next(batches), pad_id=pad_id) for _ in range(t.grad_accum)]
        stats = sft_step(run.model, run.optimizer, micro, lr=lr, grad_clip=o.grad_clip,
                           dtype=run.dtype)  # fmt: skip
        run.step += 1
        window_tokens += sum(int((mb.input_ids != pad_id).sum()) for mb in micro)
        if run.step % t.log_every == 0 or run.step == t.max_steps:
            log_step(run, stats, window_tokens / max(time.perf_counter() - window_t, 1e-9))
            window_tokens, window_t = 0, time.perf_counter()
        if run.step % t.eval_every == 0 or run.step == t.max_steps:
            evaluate_now(run, cfg)
        if t.save_every and run.step % t.save_every == 0:
            save_policy(run.model, run.tokenizer, run.out / "checkpoint", extra={"step": run.step})
    if run.step % t.eval_every != 0 and run.step != t.max_steps:
        evaluate_now(run, cfg)


def log_step(run: SFTRun, stats: dict[str, float], tok_s: float) -> None:
    """One metrics line (JSONL) and one log line; tokens/s counts non-padding tokens."""
    record = {"step": run.step, "minutes": run.minutes, "tok_per_s": tok_s, **stats}
    run.metrics.write(record)
    info = f"loss {stats['loss']:.4f} lr {stats['lr']:.2e} {tok_s:,.0f} tok/s"
    run.rep.update(run.step, info)
    run.rep.log(f"[sft] step {run.step} {info} gnorm {stats['grad_norm']:.2f} "
                f"t {record['minutes']:.1f}m")  # fmt: skip


def evaluate_now(run: SFTRun, cfg: SFTConfig) -> None:
    """Held-out loss (+ greedy strict pass@1 when configured), logged and appended to metrics."""
    record: dict[str, Any] = {"step": run.step, "minutes": run.minutes}
    if run.data.eval:
        record["eval_loss"] = eval_loss(
            run.model, run.data.eval, pad_id=run.tokenizer.pad_token_id, dtype=run.dtype
        )
    record.update(strict_eval(run.model, run.tokenizer, cfg, run.data.eval_raw))
    run.metrics.write(record)
    shown = " ".join(f"{k} {v:.3f}" for k, v in record.items() if k not in ("step", "minutes"))
    run.rep.log(f"[sft] eval step {run.step}: {shown}")


__all__ = ["SFTData", "SFTRun", "build_model_and_tokenizer", "load_data", "run_sft", "setup_run"]
