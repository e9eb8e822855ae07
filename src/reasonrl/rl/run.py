"""A whole RL run: build the pieces, loop `train_step`, log, checkpoint, resume.

reasonrl train recipes/grpo.yaml algo.clip_high=0.28 [--resume]
"""

from __future__ import annotations

import time
from contextlib import closing
from pathlib import Path

from reasonrl.config import RLConfig, save_resolved
from reasonrl.rewards.api import RewardFn
from reasonrl.rl.build import build_state
from reasonrl.rl.state import TrainState
from reasonrl.rl.step import train_step
from reasonrl.runtime.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from reasonrl.runtime.metrics import MetricsLogger, SampleLogger
from reasonrl.runtime.progress import StepProgress


class RunDirExistsError(RuntimeError):
    """A fresh run would overwrite an earlier run's checkpoints."""


def progress_stats(metrics: dict[str, float]) -> str:
    """The short text beside the progress bar: reward, strict and outcome pass rate, tokens/s."""
    parts = [f"reward {metrics.get('reward/mean', float('nan')):.3f}"]
    if "reward/verified_correct" in metrics:
        parts.append(f"strict {metrics['reward/verified_correct']:.3f}")
    if "reward/outcome" in metrics:
        parts.append(f"pass {metrics['reward/outcome']:.3f}")
    parts.append(f"{metrics.get('perf/gen_tokens_per_s', 0.0):,.0f} tok/s")
    return " | ".join(parts)


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
    reward_fn: RewardFn | None = None,
) -> TrainState:
    """Run `trainer.steps` steps (or until `trainer.time_budget_s`), checkpointing on the way."""
    run_dir = cfg.run_dir
    state = build_state(cfg, reward_fn=reward_fn)
    _resume_or_start(state, run_dir, resume)
    resumed_at = state.step if state.step > 0 else None
    save_resolved(cfg, run_dir)
    t = cfg.trainer
    start = time.monotonic()
    bar = StepProgress(t.steps, label="RL", initial=state.step, enabled=progress)
    with (
        bar,
        # metric lines go to the console whenever no live bar shows progress (e.g. redirected)
        MetricsLogger(
            run_dir, console=not bar.live, log_every=t.log_every, resume_step=resumed_at
        ) as metrics_log,
        closing(SampleLogger(run_dir, resume_step=resumed_at)) as sample_log,
    ):
        while state.step < t.steps:
            metrics = train_step(state)
            metrics_log.log(state.step, metrics)
            bar.update(state.step, progress_stats(metrics))
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
