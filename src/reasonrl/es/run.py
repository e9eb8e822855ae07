"""`reasonrl train` with `algo.kind: es`: the RL run (`reasonrl.rl.run`) with the ES generation
(`reasonrl.es.step.es_step`) as its step, so checkpoints, resume, metrics, evaluation, signals and
`reasonrl report` are the RL run's own. The ES state is the weights alone: the noise of
generation t is regenerated from (trainer.seed, t), so a resumed run continues exactly."""

from __future__ import annotations

from typing import Any

from reasonrl.es.step import es_step
from reasonrl.rl import run as rl_run
from reasonrl.rl.state import TrainState


def train(cfg: Any, **kwargs: Any) -> TrainState:
    """`reasonrl.rl.run.train` with the ES step (same arguments)."""
    return rl_run.train(cfg, step_fn=es_step, **kwargs)


def train_main(cfg: Any, **kwargs: Any) -> int:
    """`reasonrl.rl.run.train_main` with the ES step (same arguments and exit codes)."""
    return rl_run.train_main(cfg, step_fn=es_step, **kwargs)
