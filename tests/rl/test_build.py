"""Config -> prompt source and reward, for the synthetic task and real benchmark files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from reasonrl.config import ConfigError, RLConfig
from reasonrl.rl.build import custom_source, make_reward, make_source
from reasonrl.types import Completion, Sample


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


def _sample() -> Sample:
    return Sample(id="s", prompt="p", answer="4")


def test_reward_by_import_path_and_combined_rewards() -> None:
    path = "tests.rl.test_build:echo_length"
    cfg = _cfg({"task": "jsonl", "train_file": "x.jsonl"}, {"kind": path})
    comp = Completion(text="abcd", token_ids=(1, 2), logprobs=(0.0, 0.0))
    assert make_reward(cfg) is echo_length
    cfg = _cfg(
        {"task": "jsonl", "train_file": "x.jsonl"},
        {"kind": "combine", "components": [{"kind": path, "weight": 1.0},
                                           {"kind": "math", "weight": 3.0},
                                           {"kind": path, "weight": 1.0}]},
    )  # fmt: skip
    result = make_reward(cfg)(_sample(), comp)  # math: no \boxed answer, scores 0
    assert result.score == pytest.approx((2.0 + 0.0 + 2.0) / 5 * 5)
    assert set(result.info["components"]) == {path, "math", f"{path}#2"}


def test_default_reward_on_other_data_is_refused_when_built() -> None:
    cfg = RLConfig.model_validate({"data": {"task": "jsonl", "train_file": "x.jsonl"}})
    with pytest.raises(ConfigError, match=r"\(the default\) needs data.task=synth"):
        make_reward(cfg)


def test_data_source_names_a_factory_called_with_the_config() -> None:
    cfg = _cfg({"task": "jsonl", "source": "tests.rl.test_build:OneSource"}, {"kind": "math"})
    source = make_source(cfg)
    assert isinstance(source, OneSource) and source.cfg is cfg
    assert source.next(2) == [_sample(), _sample()]


def test_custom_source_takes_objects_and_factories_and_refuses_others() -> None:
    cfg = RLConfig()
    obj = OneSource(cfg)
    assert custom_source(cfg, obj, "k") is obj
    assert isinstance(custom_source(cfg, OneSource, "k"), OneSource)  # a class is a factory
    assert isinstance(custom_source(cfg, lambda c: OneSource(c), "k"), OneSource)
    with pytest.raises(ConfigError, match="k: 3 is neither"):
        custom_source(cfg, 3, "k")
    with pytest.raises(ConfigError, match="without next, state_dict, load_state_dict"):
        custom_source(cfg, lambda c: object(), "k")


def echo_length(sample: object, completion: Completion) -> float:
    return float(len(completion.token_ids))


class OneSource:
    def __init__(self, cfg: RLConfig) -> None:
        self.cfg = cfg

    def next(self, k: int) -> list:
        return [_sample() for _ in range(k)]

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


@pytest.mark.parametrize("kind", ["synth_strict", "synth_process", "synth_outcome"])
def test_synthetic_rewards_carry_the_gold_answer_for_maj_at_k(kind: str) -> None:
    # without the hook, held-out evaluation during training reported no maj@k at all
    from reasonrl.config import RLConfig
    from reasonrl.rewards.api import gold_answer
    from reasonrl.rl.build import make_reward
    from reasonrl.types import Sample

    cfg = RLConfig.model_validate({"data": {"task": "synth"}, "reward": {"kind": kind}})
    from reasonrl.tasks.synth.reward import answer_key

    sample = Sample(id="x", prompt="q", answer="18.0", meta={"trace": "t"})
    gold = gold_answer(make_reward(cfg), sample)
    assert gold is not None and gold == answer_key("18")  # "18" and "18.0" vote together
