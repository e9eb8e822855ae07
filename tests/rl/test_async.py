"""Asynchronous rollouts (rollout.max_staleness): the producer thread, its admission control, the
weight versions it logs, and clean shutdown; K=0 stays today's loop."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from contextlib import closing
from pathlib import Path

import pytest
import torch

from reasonrl.config import load_config
from reasonrl.rl.async_rollouts import AsyncRollouts, with_rollouts
from reasonrl.rl.run import train
from reasonrl.rl.step import train_step
from reasonrl.rollout.base import SamplingParams
from reasonrl.types import Completion
from tests.rl.stubs import StubEngine, stub_config, stub_state
from tests.rl.toy import make_toy_model, toy_reward, write_toy_recipe


def fingerprint(tensors: Iterable[tuple[str, torch.Tensor]]) -> float:
    return float(sum(t.detach().double().sum() for _, t in tensors))


class CopyEngine(StubEngine):
    """The producer's engine: remembers which weights (fingerprint) sampled each step's seed."""

    def __init__(self, *, slow_s: float = 0.0, fail_at: int | None = None) -> None:
        super().__init__()
        self.fp = float("nan")
        self.by_seed: dict[int, float] = {}
        self.slow_s, self.fail_at = slow_s, fail_at

    def load_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        self.fp = fingerprint(named_tensors)

    def generate(
        self, prompt_ids: Sequence[Sequence[int]], params: SamplingParams
    ) -> list[list[Completion]]:
        if self.fail_at is not None and len(self.by_seed) == self.fail_at:
            raise ValueError("engine broke")
        time.sleep(self.slow_s)
        assert params.seed is not None
        self.by_seed[params.seed] = self.fp
        return super().generate(prompt_ids, params)


def async_state(k: int, engine: CopyEngine, **rollout: object):
    cfg = stub_config(rollout={"max_staleness": k, **rollout})
    return with_rollouts(stub_state(cfg), engine)


def seed_of(state, step: int) -> int:
    return state.cfg.trainer.seed * 1_000_003 + step


def test_k0_is_the_synchronous_loop() -> None:
    cfg = stub_config()
    assert cfg.rollout.max_staleness == 0 and cfg.algo.is_level == "none"
    state = stub_state(cfg)
    assert with_rollouts(state, None).rollouts is None  # train_step calls sample_groups itself
    metrics, _ = train_step(state)
    assert not any(k.startswith("rollout/staleness") for k in metrics)


def test_async_defaults_to_token_is_and_refuses_what_it_cannot_do() -> None:
    assert stub_config(rollout={"max_staleness": 1}).algo.is_level == "token"
    assert (
        stub_config(rollout={"max_staleness": 1}, algo={"is_level": "none"}).algo.is_level == "none"
    )
    with pytest.raises(ValueError, match="remax"):
        stub_config(rollout={"max_staleness": 1}, algo={"advantage": "remax"})


def test_k1_lag_is_bounded_and_every_sample_has_its_weights_version() -> None:
    engine = CopyEngine()
    state = async_state(1, engine)
    fps: dict[int, float] = {}  # version -> fingerprint of the weights at that version
    rows = []
    with closing(state.rollouts):
        for _ in range(5):
            fps[state.step] = fingerprint(state.model.named_parameters())
            metrics, groups = train_step(state)
            rows.append(metrics)
            version = int(groups.newest().min())
            assert groups.trained_at - version <= 1  # admission control
            # the completions were sampled by exactly the weights of their version
            assert engine.by_seed[seed_of(state, groups.trained_at)] == pytest.approx(
                fps[version], rel=0, abs=1e-9
            )
    assert [r["rollout/staleness_max"] for r in rows] == [0.0, 1.0, 1.0, 1.0, 1.0]
    assert all(r["rollout/version_lag_max"] <= 1 for r in rows)
    assert state.rollouts.published == [0, 1, 2, 3, 4]
    assert rows[-1]["perf/time_generate"] > 0 and "is/mismatch_k1" in rows[-1]
    from tests.test_metrics_doc import documented

    patterns = documented()
    missing = [k for k in rows[-1] if not any(p.match(k) for p in patterns)]
    assert not missing, f"not in docs/metrics.md: {missing}"


def test_producer_pauses_when_ahead() -> None:
    engine = CopyEngine()
    state = async_state(1, engine)
    with closing(state.rollouts):
        train_step(state)  # step 0; the producer now samples step 1 and must stop there
        time.sleep(0.5)
        rollouts = state.rollouts
        assert isinstance(rollouts, AsyncRollouts)
        assert sorted(rollouts._ready) == [1]  # step 2 needs version 1, not yet published
        assert seed_of(state, 2) not in engine.by_seed
        metrics, _ = train_step(state)
        assert metrics["perf/time_producer_pause"] > 0.3


def test_k2_runs_two_steps_ahead_and_never_beyond() -> None:
    engine = CopyEngine()
    state = async_state(2, engine)
    with closing(state.rollouts):
        train_step(state)
        time.sleep(0.5)
        assert sorted(state.rollouts._ready) == [1, 2]
        lags = [train_step(state)[0]["rollout/staleness_max"] for _ in range(3)]
    assert max(lags) == 2.0


def test_same_prompts_and_seeds_as_the_synchronous_loop() -> None:
    """Weights aside, the producer draws what the synchronous loop draws, step for step."""
    sync = stub_state(stub_config())
    asyn = async_state(1, CopyEngine())
    with closing(asyn.rollouts):
        for _ in range(3):
            _, g0 = train_step(sync)
            _, g1 = train_step(asyn)
            assert [s.id for s in g0.samples] == [s.id for s in g1.samples]
            assert torch.equal(g0.scores, g1.scores)  # the stub's tokens ignore the weights


def test_producer_error_reaches_the_trainer_and_the_thread_ends() -> None:
    state = async_state(1, CopyEngine(fail_at=2))
    with closing(state.rollouts):
        train_step(state)
        with pytest.raises(RuntimeError, match="producer failed") as info:
            train_step(state)
            train_step(state)
        assert "engine broke" in str(info.value.__cause__)
    assert not state.rollouts._thread.is_alive()


def test_step_raising_shuts_the_producer_down(monkeypatch: pytest.MonkeyPatch) -> None:
    state = async_state(1, CopyEngine(slow_s=0.05))
    import reasonrl.rl.step as step_mod

    def boom(*args: object, **kwargs: object) -> dict:
        raise KeyError("update failed")

    monkeypatch.setattr(step_mod, "policy_update", boom)
    with pytest.raises(KeyError), closing(state.rollouts):
        train_step(state)
    assert not state.rollouts._thread.is_alive()
    assert not [t for t in threading.enumerate() if t.name == "reasonrl-rollouts"]


@pytest.fixture(scope="module")
def toy_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_toy_model(tmp_path_factory.mktemp("toy") / "model")


def test_a_run_with_k1_logs_versions_saves_and_resumes(toy_model: Path, tmp_path: Path) -> None:
    recipe = write_toy_recipe(tmp_path / "r.yaml", toy_model, tmp_path / "runs",
                              trainer={"steps": 3, "save_every": 2},
                              rollout={"max_staleness": 1})  # fmt: skip
    cfg = load_config(recipe)
    state = train(cfg, progress=False, reward_fn=toy_reward)
    assert state.step == 3 and not state.rollouts._thread.is_alive()
    import json

    rows = [json.loads(x) for x in (cfg.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["rollout/staleness_max"] for r in rows] == [0.0, 1.0, 1.0]
    # resume from step 2: the in-flight groups are regenerated from the saved sampler state
    cfg4 = load_config(recipe, ["trainer.steps=4"])
    import shutil

    shutil.rmtree(cfg.run_dir / "checkpoints" / "step_00000003")
    resumed = train(cfg4, resume=True, allow_config_change=True, progress=False,
                    reward_fn=toy_reward)  # fmt: skip
    assert resumed.step == 4
    rows = [json.loads(x) for x in (cfg.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert rows[2]["rollout/staleness_max"] == 0.0  # the first step after a resume is fresh
