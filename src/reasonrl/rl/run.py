"""A whole RL run: build the pieces, loop `train_step`, log, evaluate, checkpoint, resume.

reasonrl train recipes/grpo.yaml algo.clip_high=0.28 [--resume]

Held-out evaluation (`trainer.eval_every`, `rl/evaluation.py`) runs at step 0, every N steps and
at the last step, before that step's metrics row is written and its checkpoint saved.
"""

from __future__ import annotations

import time
from contextlib import closing
from pathlib import Path

from reasonrl.config import RLConfig, save_resolved
from reasonrl.rewards.api import RewardFn
from reasonrl.rl.build import build_state
from reasonrl.rl.evaluation import RunEvaluator, forget_evals_after
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
    state.kl_ctl.load_state_dict(extra["extra"]["kl_ctl"])
    if state.critic is not None:
        state.critic.load_state_dict(extra["extra"]["critic"])
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
        extra={
            "kl_ctl": state.kl_ctl.state_dict(),  # the adaptive KL coefficient is trainer state
            "critic": None if state.critic is None else state.critic.state_dict(),
        },
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
    forget_evals_after(run_dir, resumed_at)  # as the metric logs drop rows after the checkpoint
    save_resolved(cfg, run_dir)
    t = cfg.trainer
    bar = StepProgress(t.steps, label="RL", initial=state.step, enabled=progress)
    evaluator = RunEvaluator.for_run(cfg, log=bar.log)  # reads the held-out data: fails early
    with (
        bar,
        # metric lines go to the console whenever no live bar shows progress (e.g. redirected)
        MetricsLogger(
            run_dir, console=not bar.live, log_every=t.log_every, resume_step=resumed_at
        ) as metrics_log,
        closing(SampleLogger(run_dir, resume_step=resumed_at)) as sample_log,
    ):
        if evaluator is not None and state.step == 0:  # the starting policy, in a row of its own
            metrics_log.log(0, evaluator.evaluate(state))
        # The time budget counts training only: evaluation time (eval_s) stays outside it, so
        # trainer.eval_every does not change how many steps a budget buys.
        start, eval_s = time.monotonic(), 0.0
        while state.step < t.steps:
            metrics, groups = train_step(state)
            elapsed = time.monotonic() - start - eval_s
            out_of_time = t.time_budget_s is not None and elapsed > t.time_budget_s
            last = state.step == t.steps or out_of_time
            if evaluator is not None and evaluator.due(state.step, last=last):
                metrics |= evaluator.evaluate(state)  # before the save: resume never redoes it
                eval_s += metrics["perf/eval_s"]
            metrics_log.log(state.step, metrics)
            bar.update(state.step, progress_stats(metrics))
            if state.step % t.sample_every == 0:
                sample_log.log(state.step, groups.rollouts())
            if state.step % t.save_every == 0 or last:
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
