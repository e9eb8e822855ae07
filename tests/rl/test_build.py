"""Config -> prompt source and reward, for the synthetic task and real benchmark files."""

from __future__ import annotations

from pathlib import Path

import torch

from reasonrl.config import RLConfig
from reasonrl.rl.build import make_reward, make_source
from reasonrl.types import Completion


def _cfg(data: dict, reward: dict) -> RLConfig:
    return RLConfig.model_validate({"data": data, "reward": reward})


def test_gsm8k_benchmark_source_and_math_reward(shared_data: Path) -> None:
    cfg = _cfg({"task": "benchmark", "benchmark": "gsm8k_test", "data_dir": str(shared_data)},
               {"kind": "math"})  # fmt: skip
    source, reward = make_source(cfg), make_reward(cfg)
    [sample] = source.next(1)
    right = Completion(
        text=f"so the answer is \\boxed{{{sample.answer}}}", token_ids=(), logprobs=()
    )
    wrong = Completion(text="\\boxed{-123456789}", token_ids=(), logprobs=())
    assert reward(sample, right).score == 1.0
    assert reward(sample, wrong).score == 0.0


def test_jsonl_source_with_field_mapping(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"q": "1+1?", "a": "2"}\n{"q": "2+2?", "a": "4"}\n')
    cfg = _cfg({"task": "jsonl", "train_file": str(path), "fields": {"prompt": "q", "answer": "a"}},
               {"kind": "math"})  # fmt: skip
    got = make_source(cfg).next(4)  # cycles through the two rows, reshuffled per epoch
    assert sorted(s.prompt for s in got) == ["1+1?", "1+1?", "2+2?", "2+2?"]


def test_synth_source_resumes_exactly() -> None:
    cfg = _cfg({"ops": [2, 3]}, {"kind": "synth_strict"})
    a = make_source(cfg)
    a.next(3)
    state = a.state_dict()
    first = a.next(4)
    b = make_source(cfg)
    b.load_state_dict(state)
    assert b.next(4) == first


def test_reference_model_is_a_frozen_copy_only_when_kl_is_on(tmp_path: Path) -> None:
    from reasonrl.config import load_config
    from reasonrl.rl.build import build_state
    from tests.rl.toy import make_toy_model, write_toy_recipe

    model_dir = make_toy_model(tmp_path / "model")
    recipe = write_toy_recipe(tmp_path / "r.yaml", model_dir, tmp_path / "runs")
    state = build_state(load_config(recipe, ["algo.kl_coef=0.1"]))
    ref, policy = state.ref_model, state.model
    assert ref is not None and ref is not policy and not ref.training
    ptrs = {p.data_ptr() for p in policy.parameters()}
    for (name, r), p in zip(ref.named_parameters(), policy.parameters(), strict=True):
        assert not r.requires_grad and r.data_ptr() not in ptrs, name
        assert torch.equal(r, p), name  # the starting policy
    assert build_state(load_config(recipe, ["algo.kl_coef=0"])).ref_model is None
