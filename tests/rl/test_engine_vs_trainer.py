"""The trainer's own log-prob path (collate -> response_logprobs) agrees with the rollout engine.

This is the check that matters for IS correction: with the same weights the PPO ratio and the
rollout/trainer importance weights must be 1 (fp32), whatever the padding of the batch.
"""

from __future__ import annotations

import pytest
import torch

from reasonrl.rl.batching import collate
from reasonrl.rl.logprobs import response_logprobs
from reasonrl.rollout.base import SamplingParams
from reasonrl.rollout.hf_engine import HFEngine
from tests.rl.helpers import PAD, tiny_model


class _Tok:
    """The engine only needs ids -> text for stop strings and `Completion.text`."""

    pad_token_id = PAD
    eos_token_id = 3
    bos_token_id = None

    def decode(self, ids, skip_special_tokens: bool = False) -> str:
        return " ".join(map(str, ids))


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_engine_logprobs_match_trainer_path(temperature: float) -> None:
    model = tiny_model(seed=4)
    engine = HFEngine(model, _Tok(), dtype="fp32")
    prompts = [[5, 6, 7], [8, 9], [10, 11, 12, 13, 14]]
    params = SamplingParams(n=3, max_new_tokens=10, temperature=temperature, seed=1)
    groups = engine.generate(prompts, params)
    flat_prompts = [p for p, g in zip(prompts, groups) for _ in g]
    comps = [c for g in groups for c in g]
    batch = collate(flat_prompts, comps, torch.zeros(len(comps)), pad_id=PAD)
    with torch.no_grad():
        trainer, _ = response_logprobs(model, batch, temperature=temperature)
    mask = batch.response_mask.bool()
    assert mask.sum() > 10
    assert torch.allclose(trainer[mask], batch.rollout_logprobs[mask], atol=1e-4)
