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
from reasonrl.rollout.vllm_engine import request_seeds
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
    [(prompts, requests)] = llm.calls
    assert prompts == [{"prompt_token_ids": [4, 5]}, {"prompt_token_ids": [9]}]
    assert [r.seed for r in requests] == request_seeds(5, [[4, 5], [9]])  # one seed per prompt
    assert requests[0].kwargs | {"seed": None} == {
        "n": 2, "max_tokens": 3, "temperature": 0.7, "top_p": 1.0, "top_k": 0, "stop": None,
        "include_stop_str_in_output": True, "seed": None, "logprobs": 0,
        "skip_special_tokens": False,
    }  # fmt: skip
    assert [len(g) for g in groups] == [2, 2]
    first = groups[0][0]
    assert len(first.logprobs) == len(first.token_ids) >= 1

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
    known = r"unknown rollout engine 'sglang'; known: \['fused', 'hf', 'vllm'\]"
    with pytest.raises(ValueError, match=known):
        create_engine("sglang", EngineArgs(model_path="/m"), None, None)
    monkeypatch.setattr(registry, "ENGINES", dict(registry.ENGINES))
    seen = []
    register_engine("mine", lambda args, model, tok: seen.append((args, model, tok)) or "engine")
    args = EngineArgs(model_path="/m", max_batch_size=3)
    assert create_engine("mine", args, "model", "tok") == "engine"
    assert seen == [(args, "model", "tok")]


def test_auto_picks_fused_where_it_supports_the_model_else_hf() -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    from reasonrl.rollout.registry import choose_engine, fused_unsupported_reason

    qwen2 = tiny_model()
    assert choose_engine("auto", qwen2, "cpu") == "fused"
    assert choose_engine("auto", qwen2, "cuda:0") == "hf"  # the fused decoder is CPU-only
    assert "CPU only" in (fused_unsupported_reason(qwen2, "cuda") or "")
    gpt2 = GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=1, n_head=2, vocab_size=50))
    assert choose_engine("auto", gpt2, "cpu") == "hf"
    assert "gpt2" in (fused_unsupported_reason(gpt2) or "")
    assert choose_engine("vllm", gpt2, "cpu") == "vllm"  # an explicit choice is kept


def test_fused_on_an_unsupported_model_is_refused_at_config_load(tmp_path) -> None:
    from transformers import GPT2Config

    from reasonrl.cli.checks import check_fused_engine
    from reasonrl.config import ConfigError

    GPT2Config(n_embd=32, n_layer=1, n_head=2, vocab_size=50).save_pretrained(tmp_path)
    with pytest.raises(ConfigError, match=r"r\.yaml: rollout\.engine=fused: .*gpt2.*auto or hf"):
        check_fused_engine(str(tmp_path), "cpu", "r.yaml")
    check_fused_engine("builtin:synth-micro", "cpu", "r.yaml")  # qwen2: supported
