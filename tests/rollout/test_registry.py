"""`rollout.engine` through the engine registry: hf and vllm built from the config by
`rl.build.make_engine`. vLLM cannot be installed here: a fake `vllm` module (fake_vllm.py) that
follows the API `vllm_engine.py` calls checks the glue (arguments, sampling, weight sync), not
vLLM itself."""

from __future__ import annotations

import os

import pytest
import torch

from reasonrl.config import RLConfig
from reasonrl.models.io import resolve_policy_path
from reasonrl.rl.build import make_engine
from reasonrl.rollout import registry
from reasonrl.rollout.base import SamplingParams
from reasonrl.rollout.registry import EngineArgs, create_engine, register_engine
from tests.rollout import fake_vllm
from tests.rollout.conftest import WordTokenizer, tiny_model


def test_hf_engine_from_config_shares_the_policy() -> None:
    from reasonrl.rollout.hf_engine import HFEngine

    model = tiny_model()
    cfg = RLConfig.model_validate({"model": {"dtype": "fp32"}, "rollout": {"max_batch_size": 7}})
    engine = make_engine(cfg, model, WordTokenizer())
    assert isinstance(engine, HFEngine)
    assert engine.model is model and engine.max_batch_size == 7


def test_vllm_engine_from_config(monkeypatch: pytest.MonkeyPatch) -> None:
    vllm = fake_vllm.install(monkeypatch)
    monkeypatch.delenv("VLLM_ENABLE_V1_MULTIPROCESSING", raising=False)
    # config validation demands a GPU device for vllm; the engine glue runs anywhere
    cfg = RLConfig.model_validate(
        {"model": {"device": "cuda", "dtype": "auto"},
         "rollout": {"engine": "vllm", "max_batch_size": 64}}
    )  # fmt: skip
    engine = make_engine(cfg, None, None)  # vLLM loads its own copy: no model object needed
    [llm] = vllm.llms
    assert llm.model == str(resolve_policy_path("builtin:synth-micro"))
    assert llm.kwargs["dtype"] == "bfloat16" and llm.kwargs["max_num_seqs"] == 64
    assert llm.kwargs["logprobs_mode"] == "processed_logprobs"
    assert os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"  # load_weights needs in-process

    params = SamplingParams(n=2, max_new_tokens=3, temperature=0.7, top_k=0, seed=5)
    groups = engine.generate([[4, 5], [9]], params)
    [(prompts, sampling)] = llm.calls
    assert prompts == [{"prompt_token_ids": [4, 5]}, {"prompt_token_ids": [9]}]
    assert sampling.kwargs | {"stop": None} == {
        "n": 2, "max_tokens": 3, "temperature": 0.7, "top_p": 1.0, "top_k": -1, "stop": None,
        "include_stop_str_in_output": True, "seed": 5, "logprobs": 0,
        "skip_special_tokens": False,
    }  # fmt: skip
    assert [[c.token_ids for c in g] for g in groups] == [
        [(6, 7, 8), (7, 8, 9)], [(10, 11, 12), (11, 12, 13)]
    ]  # fmt: skip
    first = groups[0][0]
    assert first.logprobs == pytest.approx((-0.5, -0.6, -0.7)) and first.finish_reason == "length"
    assert first.text == "w6 w7 w8"

    weights = {"lm_head.weight": torch.ones(2, 2), "model.norm.weight": torch.zeros(2)}
    engine.load_weights(weights.items())  # what the trainer calls after every step and on resume
    runner = llm.llm_engine.model_executor.driver_worker.model_runner.model
    assert [name for name, _ in runner.loaded] == list(weights)
    assert llm.prefix_resets == 1


@pytest.mark.parametrize(("dtype", "expected"), [("bf16", "bfloat16"), ("fp32", "float32")])
def test_vllm_dtype_names(monkeypatch: pytest.MonkeyPatch, dtype: str, expected: str) -> None:
    vllm = fake_vllm.install(monkeypatch)
    create_engine("vllm", EngineArgs(model_path="/m", dtype=dtype), None, None)
    assert vllm.llms[-1].kwargs["dtype"] == expected


def test_unknown_and_registered_engines(monkeypatch: pytest.MonkeyPatch) -> None:
    known = r"unknown rollout engine 'sglang'; known: \['hf', 'vllm'\]"
    with pytest.raises(ValueError, match=known):
        create_engine("sglang", EngineArgs(model_path="/m"), None, None)
    monkeypatch.setattr(registry, "ENGINES", dict(registry.ENGINES))
    seen = []
    register_engine("mine", lambda args, model, tok: seen.append((args, model, tok)) or "engine")
    args = EngineArgs(model_path="/m", max_batch_size=3)
    assert create_engine("mine", args, "model", "tok") == "engine"
    assert seen == [(args, "model", "tok")]
