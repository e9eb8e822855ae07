"""A whole RL run: build the pieces from a config, loop `train_step`, log, checkpoint, resume.

reasonrl train recipes/grpo.yaml algo.clip_high=0.28 [--resume]
"""

from __future__ import annotations

import copy
import math
import random
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reasonrl.config import RLConfig, save_resolved
from reasonrl.models.io import load_policy
from reasonrl.rollout.hf_engine import HFEngine
from reasonrl.trainer.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from reasonrl.trainer.components import RewardCallable, make_reward, make_source
from reasonrl.trainer.loop import TrainState, train_step
from reasonrl.trainer.metrics import MetricsLogger, SampleLogger
from reasonrl.trainer.progress import StepProgress


class RunDirExistsError(RuntimeError):
    """A fresh run would overwrite an earlier run's checkpoints."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def lr_lambda(cfg: RLConfig):
    """Linear warm-up, then constant or cosine decay to 0 over `trainer.steps`."""
    warm, total, cosine = cfg.optim.warmup_steps, cfg.trainer.steps, cfg.optim.schedule == "cosine"

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        if not cosine:
            return 1.0
        progress = (step - warm) / max(1, total - warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def build_state(cfg: RLConfig, *, reward_fn: RewardCallable | None = None) -> TrainState:
    """Model, optimizer, schedule, engine, prompt source and reward from the config.

    `reward_fn` replaces the configured reward: any `(sample, completion) -> float | RewardResult`.
    """
    if cfg.model.threads:
        torch.set_num_threads(cfg.model.threads)
    seed_everything(cfg.trainer.seed)
    # Master weights stay fp32; bf16 is used through autocast in the engine and the update.
    model, tokenizer = load_policy(cfg.model.path, dtype="fp32", device=cfg.model.device)
    model.train()
    o = cfg.optim
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=o.lr, betas=o.betas, weight_decay=o.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg))
    engine = HFEngine(
        model, tokenizer, dtype=cfg.model.dtype, max_batch_size=cfg.rollout.max_batch_size
    )
    ref_model = None
    if cfg.algo.kl_coef > 0:  # the reference model exists only when KL is on
        ref_model = copy.deepcopy(model).eval().requires_grad_(False)
    return TrainState(
        cfg=cfg,
        model=model,
        tokenizer=tokenizer,
        optimizer=optimizer,
        scheduler=scheduler,
        engine=engine,
        source=make_source(cfg),
        reward_fn=reward_fn or make_reward(cfg),
        ref_model=ref_model,
    )


def _resume_or_start(state: TrainState, run_dir: Path, resume: bool) -> None:
    ckpt = latest_checkpoint(run_dir)
    if ckpt is None:
        return
    if not resume:
        raise RunDirExistsError(
            f"{run_dir} already holds checkpoints: pass --resume to continue it, "
            "or choose another trainer.run_name"
        )
    extra = load_checkpoint(ckpt, model=state.model, optimizer=state.optimizer,
                            scheduler=state.scheduler)  # fmt: skip
    state.step = int(extra["step"])
    state.source.load_state_dict(extra["sampler_state"])
    state.engine.load_weights(state.model.named_parameters())


def _save(state: TrainState, run_dir: Path) -> Path:
    return save_checkpoint(
        run_dir,
        state.step,
        model=state.model,
        optimizer=state.optimizer,
        scheduler=state.scheduler,
        sampler_state=state.source.state_dict(),
        engine_state=None,  # the HF engine shares the model's weights: nothing else to keep
        extra={},
        keep_last=state.cfg.trainer.keep_last,
    )


def train(
    cfg: RLConfig,
    *,
    resume: bool = False,
    progress: bool = True,
    reward_fn: RewardCallable | None = None,
) -> TrainState:
    """Run `trainer.steps` steps (or until `trainer.time_budget_s`), checkpointing on the way."""
    run_dir = cfg.run_dir
    state = build_state(cfg, reward_fn=reward_fn)
    _resume_or_start(state, run_dir, resume)
    resumed_at = state.step if state.step > 0 else None
    save_resolved(cfg, run_dir)
    t = cfg.trainer
    start = time.monotonic()
    with (
        MetricsLogger(
            run_dir, console=not progress, log_every=t.log_every, resume_step=resumed_at
        ) as metrics_log,
        closing(SampleLogger(run_dir, resume_step=resumed_at)) as sample_log,
        StepProgress(t.steps, initial=state.step, enabled=progress) as bar,
    ):
        while state.step < t.steps:
            metrics = train_step(state)
            metrics_log.log(state.step, metrics)
            bar.update(state.step, metrics)
            if state.step % t.sample_every == 0:
                sample_log.log(state.step, state.history["last_groups"].rollouts())
            out_of_time = t.time_budget_s is not None and time.monotonic() - start > t.time_budget_s
            if state.step % t.save_every == 0 or state.step == t.steps or out_of_time:
                _save(state, run_dir)
            if out_of_time:
                break
    return state


def train_main(cfg: RLConfig, *, resume: bool = False) -> int:
    """Entry point of `reasonrl train`."""
    state = train(cfg, resume=resume)
    print(
        f"run directory: {cfg.run_dir} (step {state.step}); report: reasonrl report {cfg.run_dir}"
    )
    return 0


def last_metrics(run_dir: Path) -> dict[str, Any]:
    """The last row of metrics.jsonl (for summaries)."""
    import json

    lines = (run_dir / "metrics.jsonl").read_text().strip().splitlines()
    return json.loads(lines[-1]) if lines else {}
