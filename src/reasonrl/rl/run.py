"""A whole RL run: build the pieces, loop `train_step`, log, evaluate, checkpoint, resume.

reasonrl train recipes/grpo.yaml algo.clip_high=0.28 [--resume [--allow-config-change]]

Held-out evaluation (`trainer.eval_every`, `rl/evaluation.py`) runs at step 0, every N steps and
at the last step, before that step's metrics row is written and its checkpoint saved.

Faults (the table in docs/reliability.md):
- Resume is strict (`rl/resume.py`: checked before anything loads or is written; a refusal
  changes nothing on disk). Logs (metrics, samples, TensorBoard, eval files) are cut back to
  the resumed step, and the debris of a crashed save is removed.
- A step whose update was skipped for a non-finite loss, gradient or learning rate
  (`rl.update.guarded_step`) is counted; `trainer.max_nonfinite_steps` of them in a row stop the
  run (`NonFiniteStop`, exit 1) with the likely cause; non-finite weights are never saved.
- SIGINT / SIGTERM (`runtime.signals`): the step in flight finishes, a checkpoint is saved and
  `RunInterrupted` carries exit 130 / 143; a second signal exits at once.
- A full disk during a save: `runtime.checkpoint.DiskFullError` (exit 1 from `train_main`).
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing, nullcontext
from pathlib import Path
from typing import Any

from reasonrl.config import RLConfig, save_resolved
from reasonrl.dist.fsdp import FullOptimizerState, full_optimizer_state, scatter_from
from reasonrl.dist.group import Silent, init_from_env, is_main, rank_session
from reasonrl.dist.support import check_supported
from reasonrl.models.io import save_model_metadata, save_tokenizer
from reasonrl.models.lora import ADAPTER_WEIGHTS, is_lora, load_adapter_state_dict, save_adapter
from reasonrl.rewards.api import RewardFn
from reasonrl.rl.build import attach_shard, build_state
from reasonrl.rl.callbacks import CallbackList
from reasonrl.rl.console import banner_body, banner_head, step_stats
from reasonrl.rl.evaluation import RunEvaluator, forget_evals_after
from reasonrl.rl.plugins import record_python_objects, resolve_config
from reasonrl.rl.resume import config_changes, describe_changes, resume_point
from reasonrl.rl.state import TrainState
from reasonrl.rl.step import sync_weights, train_step
from reasonrl.rl.update import NonFiniteUpdateError
from reasonrl.runtime.checkpoint import (
    DiskFullError,
    is_disk_full,
    list_checkpoints,
    load_checkpoint,
    remove_stale,
    save_checkpoint,
)
from reasonrl.runtime.metrics import MetricsLogger, SampleLogger, write_json_atomic
from reasonrl.runtime.progress import StepProgress
from reasonrl.runtime.signals import StopSignals, exit_code


class RunStopped(RuntimeError):
    """The run stopped before `trainer.steps`; `exit_code` is the process's exit status."""

    exit_code = 1


class NonFiniteStop(RunStopped):
    """`trainer.max_nonfinite_steps` updates in a row were skipped, or a step made the weights
    non-finite; the message names the likely cause."""


class RunInterrupted(RunStopped):
    """SIGINT or SIGTERM: the step in flight finished and was checkpointed (exit 128 + signum)."""

    def __init__(self, signum: int, step: int, checkpoint: Path | None) -> None:
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        self.exit_code = exit_code(signum)
        name = signal.Signals(signum).name
        if checkpoint is None:
            what = f"before step {step + 1} finished: nothing new to save"
        else:
            what = f"after step {step}: checkpoint {checkpoint}; continue with --resume"
        super().__init__(f"interrupted by {name} {what}")


# ----------------------------------------------------------------------------- checkpoints


def _restore(state: TrainState, ckpt: Path) -> None:
    read = None
    if is_lora(state.model):  # the adapter alone; the base comes from model.path

        def read(path: Path) -> None:
            from safetensors.torch import load_file

            load_adapter_state_dict(state.model, load_file(str(path / ADAPTER_WEIGHTS)))

    optimizer: Any = state.optimizer
    if state.shard is not None:  # FSDP2: the plain-format state, each rank taking its slices
        optimizer = FullOptimizerState(state.optimizer)
    extra = load_checkpoint(ckpt, model=state.model, optimizer=optimizer,
                            scheduler=state.scheduler, read_weights=read)  # fmt: skip
    if state.shard is not None:
        scatter_from(state.model, state.shard)
    state.step = int(extra["step"])
    state.source.load_state_dict(extra["sampler_state"])
    state.kl_ctl.load_state_dict(extra["extra"]["kl_ctl"])
    if state.critic is not None:
        state.critic.load_state_dict(extra["extra"]["critic"])
    nonfinite = extra["extra"].get("nonfinite", {})  # absent in checkpoints of older versions
    state.nonfinite_streak = int(nonfinite.get("streak", 0))
    state.nonfinite_steps = int(nonfinite.get("steps", 0))
    sync_weights(state)


def _save(state: TrainState, run_dir: Path) -> Path | None:
    model, tokenizer = state.model, state.tokenizer
    write = None
    # config, generation config and tokenizer beside the weights: each checkpoint is a
    # Hugging Face model directory (from_pretrained, `reasonrl eval`, `reasonrl export`); a LoRA
    # checkpoint holds the adapter in peft's format (from_pretrained loads base + adapter)
    if is_lora(model):

        def write(out: Path) -> None:
            save_adapter(model, out)

        def side(out: Path) -> None:
            save_tokenizer(tokenizer, out)
    else:

        def side(out: Path) -> None:
            save_model_metadata(model, tokenizer, out)

    summary = getattr(state.source, "summary", None)  # per-prompt statistics (data.sampler)
    if callable(summary):
        write_json_atomic(run_dir / "prompt_stats.json", {"step": state.step, **summary()})
    dp = state.dp
    optimizer: Any = state.optimizer
    if state.shard is not None:  # FSDP2: every rank joins the gather, rank 0 writes it
        optimizer = FullOptimizerState(state.optimizer, full_optimizer_state(state.optimizer))
    if dp is not None and not dp.is_main:  # rank 0 writes; the others wait until it is done
        dp.barrier()
        return None
    saved = save_checkpoint(
        run_dir,
        state.step,
        model=state.model,
        optimizer=optimizer,
        scheduler=state.scheduler,
        sampler_state=state.source.state_dict(),
        engine_state=None,  # the HF engine shares the model's weights: nothing else to keep
        extra={
            "kl_ctl": state.kl_ctl.state_dict(),  # the adaptive KL coefficient is trainer state
            "critic": None if state.critic is None else state.critic.state_dict(),
            "nonfinite": {"streak": state.nonfinite_streak, "steps": state.nonfinite_steps},
        },
        keep_last=state.cfg.trainer.keep_last,
        side_files=side,
        write_weights=write,
    )
    if dp is not None:
        dp.barrier()
    return saved


# ----------------------------------------------------------------------------- non-finite steps


def _nonfinite_causes(metrics: dict[str, float]) -> list[str]:
    """ "loss", "grad", "lr" of the actor and "critic loss", ... of the critic skipped this step."""
    causes = []
    for who, label in (("actor", ""), ("critic", "critic ")):
        for cause in ("loss", "grad", "lr"):
            if f"{who}/nonfinite_{cause}" in metrics:
                causes.append(label + cause)
    return causes


def _likely_cause(state: TrainState, causes: list[str]) -> str:
    cfg = state.cfg
    if "lr" in causes or "critic lr" in causes:
        return "a learning rate is not finite (optim.lr, critic.lr, optim.warmup_steps)"
    if causes and all(c.startswith("critic") for c in causes):
        return f"the critic's learning rate critic.lr={cfg.critic.lr:g} is too high"
    largest = max(float(p.detach().abs().max()) for p in state.model.parameters())
    hint = f"the learning rate optim.lr={cfg.optim.lr:g} is too high"
    if cfg.optim.grad_clip is None:
        hint += " with no gradient clipping (optim.grad_clip=null)"
    if cfg.algo.kl_coef > 1:
        hint += f", or algo.kl_coef={cfg.algo.kl_coef:g} is"
    return f"{hint} (the largest |weight| is now {largest:.3g})"


def _count_nonfinite(state: TrainState, metrics: dict[str, float], log: Any) -> None:
    """Update the streak of skipped steps; stop the run after `trainer.max_nonfinite_steps`."""
    causes = _nonfinite_causes(metrics)
    if not causes:
        state.nonfinite_streak = 0
        return
    state.nonfinite_streak += 1
    state.nonfinite_steps += 1
    limit = state.cfg.trainer.max_nonfinite_steps
    log(f"step {state.step}: update skipped: non-finite {', '.join(causes)} "
        f"({state.nonfinite_streak} in a row; the run stops at {limit})")  # fmt: skip
    if state.nonfinite_streak >= limit:
        first = state.step - state.nonfinite_streak + 1
        last = list_checkpoints(state.cfg.run_dir)
        raise NonFiniteStop(
            f"stopped at step {state.step}: {state.nonfinite_streak} updates in a row (steps "
            f"{first}-{state.step}) were skipped for a non-finite {', '.join(causes)}; the "
            f"weights are unchanged since step {first - 1} and nothing non-finite was saved "
            f"(last checkpoint: {last[-1] if last else 'none'}); likely cause: "
            f"{_likely_cause(state, causes)}"
        )


# ----------------------------------------------------------------------------- the run


def train(
    cfg: RLConfig | str | Path,
    *,
    resume: bool = False,
    allow_config_change: bool = False,
    progress: bool = True,
    reward_fn: RewardFn | None = None,
    source: object = None,
    callbacks: Iterable[object] = (),
    overrides: Sequence[str] = (),
    step_fn: Callable[[TrainState], tuple[dict[str, float], Any]] | None = None,
    setup: Callable[[TrainState], None] | None = None,
) -> TrainState:
    """Run `trainer.steps` steps (or until `trainer.time_budget_s`), checkpointing on the way.

    `resume=True` continues the run from its newest valid checkpoint and fails (ResumeError)
    without one (module docstring). Raises RunStopped (NonFiniteStop, RunInterrupted) or
    DiskFullError when the run cannot go on; the last checkpoint then stays valid.

    The Python API (`reasonrl.train`, docs/python-api.md): `cfg` may be a recipe path (with dotted
    `overrides`); `reward_fn` replaces the configured reward and `source` the training prompt
    source (a source object, or a factory `(cfg) -> source`), both recorded in config.yaml
    (`rl.plugins.record_python_objects`); `callbacks` get `on_step` / `on_eval` (`rl.callbacks`).
    `step_fn` replaces `train_step` (the ES trainer's generation, `reasonrl.es.run`); `setup`
    is called on the built state before any restore (the Ray backend installs its rollout
    workers there, `reasonrl.distributed_ray.run`).
    """
    cfg = resolve_config(cfg, tuple(overrides))
    if step_fn is None and cfg.algo.kind == "es":  # rl cannot import es (layering)
        raise ValueError("algo.kind=es runs through reasonrl.es.run.train (reasonrl train does)")
    if setup is None and cfg.trainer.backend == "ray":  # rl cannot import distributed_ray
        raise ValueError("trainer.backend=ray runs through reasonrl.distributed_ray.run.train "
                         "(reasonrl train does)")  # fmt: skip
    step = step_fn or train_step
    cfg = record_python_objects(cfg, reward_fn=reward_fn, source=source)
    hooks = CallbackList(callbacks)
    run_dir = cfg.run_dir
    dp = init_from_env(cfg.model.device)  # under torchrun: data parallel (reasonrl.dist)
    if dp is not None:
        check_supported(cfg.model_dump(), dp.world_size)
    main = dp is None or dp.is_main  # only rank 0 prints, logs and writes
    ckpt = resume_point(cfg, resume=resume, allow_config_change=allow_config_change)
    if dp is not None:  # every rank has checked the run directory before rank 0 writes to it
        dp.barrier()
    t = cfg.trainer
    bar = StepProgress(t.steps, label="RL", enabled=progress and main, every=t.log_every,
                       time_budget_s=t.time_budget_s)  # fmt: skip
    bar.plain = bar.plain and main  # its stdout was bound before rank_session quiets it
    if main:
        bar.log(banner_head(cfg))  # the first line of output, before the slow model load
    with StopSignals() as stop, rank_session(dp):
        state = build_state(cfg, reward_fn=reward_fn, source=source)
        if setup is not None:
            setup(state)
        if dp is not None:  # the same starting weights on every rank
            state.dp = dp
            dp.broadcast_module(state.model)
            sync_weights(state)
            if cfg.trainer.parallel == "fsdp2":  # the update trains a sharded copy
                attach_shard(state)
        if ckpt is not None:
            _restore(state, ckpt)
        resumed_at = state.step if ckpt is not None else None
        for line in banner_body(state, ckpt, custom_reward=reward_fn is not None):
            bar.log(line)
        # reads the held-out data: fails early (data parallel: rank 0 evaluates alone)
        evaluator = RunEvaluator.for_run(cfg, log=bar.log) if main else None
        # Only now, with every input read, does anything on disk change.
        changes = config_changes(cfg, run_dir / "config.yaml") if ckpt is not None else []
        if main:
            remove_stale(run_dir)  # temp dirs of a save that crashed
            forget_evals_after(run_dir, resumed_at)  # as the metric logs drop rows after the ckpt
            save_resolved(cfg, run_dir)
        with (
            bar,
            # the console gets the bar's step lines (every trainer.log_every steps when redirected)
            (
                MetricsLogger(run_dir, resume_step=resumed_at, report_to=t.report_to)
                if main
                else Silent()
            ) as metrics_log,
            closing(
                SampleLogger(run_dir, resume_step=resumed_at, trackers=metrics_log.trackers)
                if main
                else Silent()
            ) as sample_log,
            # the rollout producer thread (max_staleness >= 1) stops on every way out
            closing(state.rollouts) if state.rollouts is not None else nullcontext(),
        ):
            if changes:
                bar.log(f"with changed settings: {describe_changes(changes)}")
            if evaluator is not None and state.step == 0:  # the starting policy, in its own row
                evaluated = evaluator.evaluate(state)
                metrics_log.log(0, evaluated)
                hooks.on_eval(state, evaluated)
            # The time budget counts training only: evaluation time (eval_s) stays outside it,
            # so trainer.eval_every does not change how many steps a budget buys.
            start, eval_s = time.monotonic(), 0.0
            bar.start_at(state.step)  # elapsed and ETA count from here
            while state.step < t.steps:
                if stop.signum is not None:  # arrived while setting up: no step to save
                    raise RunInterrupted(stop.signum, state.step, None)
                try:
                    metrics, groups = step(state)
                except NonFiniteUpdateError as exc:
                    raise NonFiniteStop(
                        f"step {state.step + 1}: {exc}; nothing was saved from these weights; "
                        f"likely cause: {_likely_cause(state, [])}"
                    ) from exc
                elapsed = time.monotonic() - start - eval_s
                out_of_time = t.time_budget_s is not None and elapsed > t.time_budget_s
                if dp is not None:  # every rank stops, and saves, at the same step
                    out_of_time = dp.agree(out_of_time)
                    stop.signum = dp.max_int(stop.signum or 0) or None
                last = state.step == t.steps or out_of_time
                if evaluator is not None and evaluator.due(state.step, last=last):
                    evaluated = evaluator.evaluate(state)  # before the save: never redone
                    hooks.on_eval(state, evaluated)
                    metrics |= evaluated
                    eval_s += metrics["perf/eval_s"]
                metrics_log.log(state.step, metrics)
                hooks.on_step(state, metrics)
                bar.update(state.step, step_stats(metrics))
                if state.step % t.sample_every == 0:
                    sample_log.log(state.step, groups.rollouts())
                _count_nonfinite(state, metrics, bar.log)
                if state.step % t.save_every == 0 or last or stop.signum is not None:
                    saved = _save(state, run_dir)
                    if stop.signum is not None and not last:  # (a finished run just ends)
                        raise RunInterrupted(stop.signum, state.step, saved)
                if out_of_time:
                    break
    return state


def train_main(
    cfg: RLConfig,
    *,
    resume: bool = False,
    allow_config_change: bool = False,
    progress: bool = True,
    reward_fn: RewardFn | None = None,
    step_fn: Callable[[TrainState], tuple[dict[str, float], Any]] | None = None,
    setup: Callable[[TrainState], None] | None = None,
) -> int:
    """Entry point of `reasonrl train`: the run's exit status, with one line on stderr when it
    stops early (1: non-finite updates or a full disk; 130/143: SIGINT/SIGTERM). ResumeError
    and RunDirExistsError propagate (the command reports them as usage errors, exit 2)."""
    try:
        state = train(cfg, resume=resume, allow_config_change=allow_config_change,
                      progress=progress, reward_fn=reward_fn, step_fn=step_fn,
                      setup=setup)  # fmt: skip
    except RunStopped as exc:
        print(f"reasonrl: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    except DiskFullError as exc:
        kept = list_checkpoints(cfg.run_dir)
        print(f"reasonrl: {exc}; nothing partial was left and the previous checkpoint "
              f"({kept[-1] if kept else 'none'}) is kept; free space, then continue with "
              "--resume", file=sys.stderr, flush=True)  # fmt: skip
        return 1
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        print(f"reasonrl: no space left on the device of {cfg.run_dir}: {exc}; free space, "
              "then continue with --resume", file=sys.stderr, flush=True)  # fmt: skip
        return 1
    n = state.nonfinite_steps
    skipped = f", {n} updates skipped as non-finite" if n else ""
    if not is_main():  # data parallel: rank 0 reports
        return 0
    print(
        f"run directory: {cfg.run_dir} (step {state.step}{skipped}); "
        f"report: reasonrl report {cfg.run_dir}"
    )
    return 0
