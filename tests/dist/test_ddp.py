"""Two gloo ranks take the single-process step: the gradient of the whole batch (<= 1e-6 in
fp32) for token-mean and sequence-mean aggregation, and through a whole train_step with
dynamic sampling on (the ranks agree on the kept groups: the single-process ones)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from reasonrl.dist.shard import shard_range, shard_sizes
from tests.dist import workers
from tests.rl.toy import make_toy_model, write_toy_recipe

ATOL = 1e-6


def test_shards_cover_the_draw_in_order() -> None:
    for n in range(0, 9):
        for m in (1, 2, 3):
            rows = [i for r in range(m) for i in shard_range(n, r, m)]
            assert rows == list(range(n))
            assert max(shard_sizes(n, m)) - min(shard_sizes(n, m)) <= (1 if n else 0)
    with pytest.raises(ValueError):
        shard_range(4, 2, 2)


def test_single_process_never_starts_a_group(monkeypatch: pytest.MonkeyPatch) -> None:
    from reasonrl.dist.group import init_from_env

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert init_from_env() is None
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert init_from_env() is None
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(RuntimeError, match="torchrun"):
        init_from_env()


def _recipe(tmp_path: Path) -> Path:
    model = make_toy_model(tmp_path / "model")
    recipe = write_toy_recipe(
        tmp_path / "r.yaml", model, tmp_path / "runs",
        rollout={"n": 4, "prompts_per_step": 4, "max_new_tokens": 8},
        algo={"preset": "grpo", "micro_batch_size": 2, "dynamic_sampling": True},
        optim={"lr": 1e-2, "grad_clip": None},
        trainer={"steps": 4, "save_every": 2, "sample_every": 1},
    )  # fmt: skip
    return recipe


def _close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys() and a
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def test_two_gloo_ranks_give_the_single_process_gradient(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path)
    workers.spawn(workers.gradient_checks, 2, tmp_path, recipe)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2)]

    for agg in ("token_mean", "seq_mean_token_mean"):
        single = workers.update_grads(workers.adjust(workers.update_batch(), agg), agg)
        assert max(float(g.abs().max()) for g in single.values()) > 1e-3  # a real gradient
        assert _close(ranks[0][agg], single) <= ATOL, agg
        assert _close(ranks[1][agg], ranks[0][agg]) == 0.0  # one all-reduced gradient

    single = workers.one_step(workers.step_state(recipe))
    steps = [r["step"] for r in ranks]
    # dynamic sampling dropped groups and refilled: the ranks kept the single-process groups
    assert single["metrics"]["rollout/groups_generated"] > 4
    assert steps[0]["prompts"] + steps[1]["prompts"] == single["prompts"]
    assert steps[0]["completions"] + steps[1]["completions"] == single["completions"]
    assert _close(steps[0]["grads"], single["grads"]) <= ATOL
    assert _close(steps[1]["grads"], steps[0]["grads"]) == 0.0
    m0, m1 = steps[0]["metrics"], steps[1]["metrics"]
    assert m0 == m1  # every rank logs the same reduced row
    for key in ("reward/mean", "rollout/groups_generated", "rollout/rounds"):
        assert m0[key] == pytest.approx(single["metrics"][key]), key
    assert m0["actor/loss"] == pytest.approx(single["metrics"]["actor/loss"], abs=1e-6)
    assert m0["actor/grad_norm"] == pytest.approx(single["metrics"]["actor/grad_norm"], rel=1e-5)


def test_two_rank_run_resumes_exactly(tmp_path: Path) -> None:
    """Rank 0 writes the checkpoints (the others wait at a barrier); a 2-rank run stopped after
    its step-2 checkpoint and resumed ends bit-identical to the straight 2-rank run."""
    from tests.rl.toy import assert_same_run

    recipe = _recipe(tmp_path)
    workers.spawn(workers.resume_run, 2, recipe)
    runs = tmp_path / "runs"
    assert_same_run(runs / "straight", runs / "killed")
    rows = (runs / "straight" / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 4  # rank 0 alone wrote the log
    assert yaml.safe_load((runs / "straight" / "config.yaml").read_text())["rollout"]["n"] == 4
