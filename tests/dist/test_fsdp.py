"""FSDP2 (`trainer.parallel: fsdp2`) on two gloo ranks: the sharded update gives the
single-process gradient (<= 1e-6 in fp32; a rank with no active row pads with a zero-weight
micro-batch), a whole train_step ends at the single-process weights with each rank holding half
of the trained parameters, and a 2-rank FSDP2 run stopped after a checkpoint resumes
bit-identical. The checkpoint's optimizer state is in the plain torch format."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.dist import workers
from tests.dist.test_ddp import ATOL, _close, _recipe


def test_fsdp2_ranks_give_the_single_process_update(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path)
    workers.spawn(workers.fsdp_checks, 2, tmp_path, recipe)
    ranks = [torch.load(tmp_path / f"fsdp{r}.pt", weights_only=False) for r in range(2)]
    for agg in ("token_mean", "seq_mean_token_mean"):
        single = workers.update_grads(workers.adjust(workers.update_batch(), agg), agg)
        assert _close(ranks[0][agg]["grads"], single) <= ATOL, agg
        assert _close(ranks[1][agg]["grads"], ranks[0][agg]["grads"]) == 0.0
        assert ranks[0][agg]["metrics"]["actor/loss"] == ranks[1][agg]["metrics"]["actor/loss"]

    state = workers.step_state(recipe)
    single = workers.one_step(state)
    steps = [r["step"] for r in ranks]
    assert _close(steps[0]["grads"], single["grads"]) <= ATOL
    weights = {n: p.detach() for n, p in state.model.named_parameters()}
    assert _close(steps[0]["weights"], weights) <= 1e-5  # Adam's step from the same gradient
    assert _close(steps[1]["weights"], steps[0]["weights"]) == 0.0  # one gathered policy
    total = sum(p.numel() for p in state.model.parameters())
    assert steps[0]["local_numel"] + steps[1]["local_numel"] == total  # each rank half
    assert max(steps[0]["local_numel"], steps[1]["local_numel"]) < 0.6 * total
    m0, m1 = steps[0]["metrics"], steps[1]["metrics"]
    assert m0 == m1
    assert m0["actor/grad_norm"] == pytest.approx(single["metrics"]["actor/grad_norm"], rel=1e-5)


def test_fsdp2_run_resumes_exactly(tmp_path: Path) -> None:
    from tests.rl.toy import assert_same_run

    recipe = _recipe(tmp_path)
    workers.spawn(workers.fsdp_resume_run, 2, recipe)
    runs = tmp_path / "runs"
    assert_same_run(runs / "straight", runs / "killed")
    ckpt = sorted((runs / "straight" / "checkpoints").glob("step_*"))[-1]
    optim = torch.load(ckpt / "optimizer.pt", weights_only=True)
    moments = [s["exp_avg"] for s in optim["state"].values()]
    assert moments and all(type(m) is torch.Tensor for m in moments)  # gathered, not DTensor
    weights = dict(_named(runs / "straight"))
    assert {tuple(m.shape) for m in moments} <= {tuple(w.shape) for w in weights.values()}


def _named(run: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    ckpt = sorted((run / "checkpoints").glob("step_*"))[-1]
    return load_file(str(ckpt / "model.safetensors"))


def test_fsdp2_with_lora_is_refused() -> None:
    from reasonrl.dist.support import refusals

    settings = {"algo": {"advantage": "grpo"}, "rollout": {"prompts_per_step": 4},
                "trainer": {"parallel": "fsdp2"}, "model": {"lora": {"r": 8}}}  # fmt: skip
    assert any("fsdp2" in r for r in refusals(settings, 2))
