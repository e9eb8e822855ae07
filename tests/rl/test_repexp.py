"""RepExp in the RL step: off is bit-identical, on adds the bonus to the shaped scores only, and
the representations are the response's pooled last hidden states whatever the padding."""

from __future__ import annotations

import pytest
import torch

from reasonrl.rl.batching import collate
from reasonrl.rl.repexp import response_representations
from reasonrl.rl.step import train_step
from reasonrl.types import Completion, RewardResult, Sample
from tests.rl.helpers import fake_rollouts, tiny_model
from tests.rl.stubs import even_fraction, stub_config, stub_state


def _never_correct(sample: Sample, completion: Completion) -> RewardResult:
    return RewardResult(even_fraction(sample, completion), outcome=False)


def _run(steps: int = 2, reward_fn=even_fraction, **reward) -> tuple[list[dict], list]:
    state = stub_state(stub_config(reward={"kind": "math", **reward}), reward_fn)
    metrics = [train_step(state)[0] for _ in range(steps)]
    return metrics, [p.detach().clone() for p in state.model.parameters()]


def _no_time(m: dict) -> dict:
    """The metrics but timings, NaN as a string (NaN != NaN)."""
    return {k: "nan" if v != v else v for k, v in m.items() if not k.startswith("perf/")}


def test_coef_zero_is_bit_identical() -> None:
    base_m, base_p = _run()
    off_m, off_p = _run(repexp_coef=0.0, repexp_dim=4, repexp_sqrt=True, repexp_gate=False)
    assert all(torch.equal(a, b) for a, b in zip(base_p, off_p, strict=True))
    assert [_no_time(m) for m in base_m] == [_no_time(m) for m in off_m]
    assert "reward/repexp_mean" not in off_m[0] and "perf/time_repexp" not in off_m[0]


def test_bonus_goes_into_the_shaped_scores_not_the_raw_metrics() -> None:
    base_m, base_p = _run(steps=1)
    on_m, on_p = _run(steps=1, repexp_coef=1.0, repexp_gate=False, repexp_dim=8)
    assert on_m[0]["reward/mean"] == base_m[0]["reward/mean"]  # raw: what the verifier said
    assert 0 < on_m[0]["reward/repexp_mean"] < 1  # leverage scores
    assert on_m[0]["reward/shaped"] == pytest.approx(
        base_m[0]["reward/shaped"] + on_m[0]["reward/repexp_mean"], abs=1e-5
    )
    assert on_m[0]["perf/time_repexp"] > 0
    assert not all(torch.equal(a, b) for a, b in zip(base_p, on_p, strict=True))


def test_gate_without_a_correct_rollout_gives_no_bonus() -> None:
    on_m, _ = _run(steps=1, reward_fn=_never_correct, repexp_coef=1.0, repexp_gate=True)
    assert on_m[0]["reward/repexp_mean"] == 0.0


@pytest.mark.parametrize("pool", ["mean", "last"])
def test_representations_ignore_padding(pool: str) -> None:
    model = tiny_model(0)
    prompts, comps = fake_rollouts(5, seed=3)
    batch = collate(prompts, comps, torch.zeros(5), pad_id=0)
    got = response_representations(model, batch, pool=pool, micro_batch_size=2, dtype="fp32")
    for i, (p, c) in enumerate(zip(prompts, comps, strict=True)):
        ids = torch.tensor([[*p, *c.token_ids]])
        with torch.no_grad():
            h = model(input_ids=ids, output_hidden_states=True).hidden_states[-1][0, len(p) :]
        want = h.mean(0) if pool == "mean" else h[-1]
        assert torch.allclose(got[i], want, atol=1e-5), i
