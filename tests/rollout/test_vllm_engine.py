"""`VLLMEngine` glue against the fake `vllm` (fake_vllm.py follows vLLM 0.10.2 - 0.11.x's API):
completions and their conventions, n per prompt, per-request seeds, finish reasons, stop strings,
weight sync, and the sleep / wake-up order. `test_real_vllm` runs the real engine on a GPU."""

from __future__ import annotations

import importlib.util
import sys

import pytest
import torch

from reasonrl.rollout.base import SamplingParams
from tests.rollout import fake_vllm
from tests.rollout.conftest import tiny_model


def make(monkeypatch: pytest.MonkeyPatch, param_names=None, **kwargs):
    from reasonrl.rollout.vllm_engine import VLLMEngine

    vllm = fake_vllm.install(monkeypatch, param_names)
    engine = VLLMEngine("/models/m", **kwargs)
    return engine, vllm.llms[-1]


def words(ids) -> str:
    return fake_vllm.Tokenizer().decode(ids)


def shown(ids) -> str:
    """base.py's text rule: pad tokens dropped (the pad is not an EOS here), then decoded."""
    return words([t for t in ids if t != fake_vllm.PAD])


PROMPTS = [[5, 6, 7], [9], [12, 13]]


def test_without_vllm_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from reasonrl.rollout.vllm_engine import VLLMEngine

    monkeypatch.setitem(sys.modules, "vllm", None)  # `import vllm` raises ImportError
    with pytest.raises(ImportError, match=r"GPU.*pip install 'reasonrl\[vllm\]'"):
        VLLMEngine("some/model")


def test_llm_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    _, llm = make(monkeypatch, max_num_seqs=8)
    assert llm.model == "/models/m"
    assert llm.kwargs == {
        "dtype": "bfloat16", "gpu_memory_utilization": 0.5, "enable_sleep_mode": False,
        "logprobs_mode": "processed_logprobs", "enable_prefix_caching": True, "max_num_seqs": 8,
    }  # fmt: skip
    with pytest.raises(TypeError, match="unexpected keyword argument 'max_batch_size'"):
        make(monkeypatch, max_batch_size=8)  # not a vLLM engine argument: vLLM refuses it
    with pytest.raises(ValueError, match="sleep_level"):
        make(monkeypatch, sleep_level=3)


def test_completions_follow_the_conventions(monkeypatch: pytest.MonkeyPatch) -> None:
    engine, llm = make(monkeypatch)
    params = SamplingParams(n=4, max_new_tokens=12, temperature=0.8, top_p=0.9, top_k=5, seed=3)
    groups = engine.generate(PROMPTS, params)

    [(inputs, requests)] = llm.calls  # one generate call; vLLM's n, so each prompt prefilled once
    assert inputs == [{"prompt_token_ids": p} for p in PROMPTS]
    assert len(requests) == len(PROMPTS)  # one SamplingParams per prompt (its own seed)
    for request in requests:
        assert request.kwargs | {"seed": None} == {
            "n": 4, "max_tokens": 12, "temperature": 0.8, "top_p": 0.9, "top_k": 5, "stop": None,
            "include_stop_str_in_output": True, "seed": None, "logprobs": 0,
            "skip_special_tokens": False,
        }  # fmt: skip

    assert [len(g) for g in groups] == [4, 4, 4]
    reasons = set()
    for group in groups:
        for c in group:
            assert len(c.logprobs) == len(c.token_ids) >= 1
            assert all(lp <= 0.0 for lp in c.logprobs)
            assert c.text == shown(c.token_ids)  # decoded from the tokens, EOS included
            if c.finish_reason == "stop":
                assert c.token_ids[-1] == fake_vllm.EOS and c.text.endswith("w2")
            else:
                assert c.finish_reason == "length" and len(c.token_ids) == 12
            reasons.add(c.finish_reason)
    assert reasons == {"stop", "length"}  # the seed gives both kinds

    # log-probs are those vLLM reported for the sampled tokens, in order
    raw = [o for r in llm.generate(inputs, requests) for o in r.outputs]
    ours = [c for g in groups for c in g]
    for c, r in zip(ours, raw, strict=True):
        assert c.token_ids == tuple(r.token_ids)
        assert c.logprobs == tuple(s[t].logprob for s, t in zip(r.logprobs, r.token_ids))
        if c.finish_reason == "stop":  # vLLM's own text drops the EOS; ours keeps it
            assert r.text == words(r.token_ids[:-1]) != c.text


def test_seeds_make_runs_reproducible(monkeypatch: pytest.MonkeyPatch) -> None:
    from reasonrl.rollout.vllm_engine import request_seeds

    engine, llm = make(monkeypatch)
    params = SamplingParams(n=3, max_new_tokens=6, seed=11)

    def tokens(groups):
        return [[c.token_ids for c in g] for g in groups]

    batch = tokens(engine.generate(PROMPTS, params))
    assert batch == tokens(engine.generate(PROMPTS, params))
    assert batch != tokens(engine.generate(PROMPTS, SamplingParams(n=3, max_new_tokens=6, seed=12)))
    # a prompt's samples do not depend on its place in the batch
    assert tokens(engine.generate([PROMPTS[2]], params)) == [batch[2]]
    assert tokens(engine.generate(PROMPTS[::-1], params)) == batch[::-1]
    # the n samples of a prompt differ (vLLM seeds child j with seed + j)
    assert all(len(set(g)) == 3 for g in batch)
    # repeated prompts in one batch get their own seeds, all below 2**62
    seeds = request_seeds(11, [[9], [9], [4]])
    assert len(set(seeds)) == 3 and all(0 <= s < 2**62 for s in seeds)
    twice = tokens(engine.generate([[9], [9]], params))
    assert twice[0] != twice[1]
    # seed=None draws from torch's global generator: seeded runs repeat
    free = SamplingParams(n=2, max_new_tokens=6)
    torch.manual_seed(0)
    a = tokens(engine.generate(PROMPTS, free))
    torch.manual_seed(0)
    assert tokens(engine.generate(PROMPTS, free)) == a
    assert llm.calls[-1][1][0].seed is not None


def test_greedy(monkeypatch: pytest.MonkeyPatch) -> None:
    engine, llm = make(monkeypatch)
    groups = engine.generate(PROMPTS, SamplingParams(n=2, max_new_tokens=5, temperature=0))
    assert all(request.temperature == 0.0 for request in llm.calls[-1][1])
    assert all(g[0].token_ids == g[1].token_ids for g in groups)


def test_stop_strings_stay_and_end_on_a_whole_token(monkeypatch: pytest.MonkeyPatch) -> None:
    engine, llm = make(monkeypatch)
    free = engine.generate([[9]], SamplingParams(n=1, max_new_tokens=30, seed=1))[0][0]
    # a stop string that is the start of a two-digit token's word ("w1" of "w13"): vLLM cuts its
    # text mid-token, the completion keeps the whole token that completed the stop string
    k, tok = next((k, t) for k, t in enumerate(free.token_ids) if t >= 10)
    stop = f"w{tok // 10}"
    end = next(i for i in range(len(free.token_ids)) if stop in words(free.token_ids[: i + 1]))
    assert end <= k
    params = SamplingParams(n=1, max_new_tokens=30, seed=1, stop=(stop,))
    c = engine.generate([[9]], params)[0][0]
    assert llm.calls[-1][1][0].stop == [stop]
    assert c.finish_reason == "stop" and c.token_ids == free.token_ids[: end + 1]
    assert c.logprobs == free.logprobs[: end + 1]
    assert c.text == shown(c.token_ids) and stop in c.text
    raw = llm.generate(*llm.calls[-1])[0].outputs[0]
    assert raw.stop_reason == stop and raw.text.endswith(stop)  # vLLM's own text, for contrast


def test_other_finish_reasons_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    engine, llm = make(monkeypatch)
    real = llm.generate

    def aborted(*args, **kwargs):
        outputs = real(*args, **kwargs)
        outputs[0].outputs[0].finish_reason = "abort"
        return outputs

    monkeypatch.setattr(llm, "generate", aborted)
    with pytest.raises(RuntimeError, match="'abort'"):
        engine.generate([[9]], SamplingParams(n=1, max_new_tokens=3, seed=0))


def test_load_weights_reaches_the_model_with_hf_names(monkeypatch: pytest.MonkeyPatch) -> None:
    model = tiny_model()
    names = [name for name, _ in model.named_parameters()]
    engine, llm = make(monkeypatch, param_names=names)
    engine.load_weights(model.named_parameters())
    runner = llm.llm_engine.model_executor.driver_worker.model_runner.model  # the same model
    assert [name for name, _ in runner.loaded] == names
    for (_, sent), (_, param) in zip(runner.loaded, model.named_parameters()):
        assert not sent.requires_grad and sent.data_ptr() == param.data_ptr()  # no copy made
    assert llm.prefix_resets == 1  # cached prompt KV came from the old weights
    with pytest.raises(KeyError, match=r"extra\.weight"):
        engine.load_weights([("extra.weight", torch.zeros(1))])


def test_level2_sleep_needs_a_sync_after_wake_up(monkeypatch: pytest.MonkeyPatch) -> None:
    engine, llm = make(monkeypatch, enable_sleep_mode=True, sleep_level=2)
    assert llm.kwargs["enable_sleep_mode"] is True
    params = SamplingParams(n=2, max_new_tokens=4, seed=0)
    before = engine.generate(PROMPTS, params)
    weights = [("lm_head.weight", torch.ones(2, 2))]

    engine.sleep()
    engine.sleep()  # already asleep: nothing more
    engine.wake_up()
    with pytest.raises(RuntimeError, match=r"wake_up\(\) then load_weights"):
        engine.generate(PROMPTS, params)  # level 2 discarded the weights
    engine.load_weights(weights)
    assert engine.generate(PROMPTS, params) == before
    assert llm.events == [
        "generate", "sleep2", "wake_up(weights)", "load_weights", "wake_up(kv_cache)", "generate"
    ]  # fmt: skip

    # the trainer's order: sleep before the update, then sync (waking the weights itself)
    engine.sleep()
    engine.load_weights(weights)
    engine.generate(PROMPTS, params)
    assert llm.events[-5:-1] == ["sleep2", "wake_up(weights)", "load_weights", "wake_up(kv_cache)"]


def test_level1_sleep_restores_the_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    engine, llm = make(monkeypatch, enable_sleep_mode=True)  # sleep_level=1
    params = SamplingParams(n=2, max_new_tokens=4, seed=0)
    before = engine.generate(PROMPTS, params)
    engine.sleep()
    assert engine.generate(PROMPTS, params) == before  # the CPU copy is woken, no sync needed
    assert llm.events == ["generate", "sleep1", "wake_up(weights)", "wake_up(kv_cache)", "generate"]


def test_sleep_is_a_no_op_without_sleep_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    engine, llm = make(monkeypatch)
    engine.sleep()  # the fake LLM raises if sleep/wake_up reach it without sleep mode
    engine.wake_up()
    engine.load_weights([("w", torch.zeros(1))])
    engine.generate([[9]], SamplingParams(n=1, max_new_tokens=2, seed=0))
    assert llm.events == ["load_weights", "generate"]


def _real_vllm_ready() -> bool:
    return importlib.util.find_spec("vllm") is not None and torch.cuda.is_available()


@pytest.mark.gpu
@pytest.mark.skipif(not _real_vllm_ready(), reason="needs vllm and a CUDA device")
def test_real_vllm(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real engine on the builtin checkpoint: conventions, log-probs close to the trainer's,
    and a level-2 sleep / wake / sync cycle that leaves greedy outputs unchanged."""
    from transformers import AutoModelForCausalLM

    from reasonrl.models.io import resolve_policy_path
    from reasonrl.rollout.vllm_engine import VLLMEngine

    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    path = str(resolve_policy_path("builtin:synth-micro"))
    engine = VLLMEngine(
        path, dtype="float32", gpu_memory_utilization=0.3, enable_sleep_mode=True,
        sleep_level=2, max_model_len=512, enforce_eager=True,
    )  # fmt: skip
    prompts = [[5, 6, 7, 8], [9, 10]]
    params = SamplingParams(n=3, max_new_tokens=16, temperature=0.7, seed=0)
    groups = engine.generate(prompts, params)
    assert [len(g) for g in groups] == [3, 3]
    assert [[c.token_ids for c in g] for g in groups] == [
        [c.token_ids for c in g] for g in engine.generate(prompts, params)
    ]
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).cuda().eval()
    for prompt, group in zip(prompts, groups):
        for c in group:
            assert len(c.logprobs) == len(c.token_ids)
            assert c.text == engine.tokenizer.decode(list(c.token_ids), skip_special_tokens=False)
            ids = torch.tensor([prompt + list(c.token_ids)], device="cuda")
            with torch.no_grad():
                logits = model(ids).logits[0, len(prompt) - 1 : -1].float()
            ours = torch.log_softmax(logits / 0.7, -1).gather(-1, ids[0, len(prompt) :, None])
            assert torch.allclose(ours[:, 0].cpu(), torch.tensor(c.logprobs), atol=2e-3)
    greedy = SamplingParams(n=1, max_new_tokens=16, greedy=True)
    before = engine.generate(prompts, greedy)
    engine.sleep()
    engine.wake_up()
    engine.load_weights(model.named_parameters())
    assert engine.generate(prompts, greedy) == before
