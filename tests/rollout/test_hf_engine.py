"""HFEngine against references: trainer log-probs, a naive sampler, weight sync, stops, padding."""

from __future__ import annotations

import pytest
import torch

from reasonrl.rollout import HFEngine, RolloutEngine, SamplingParams
from tests.rollout.conftest import (
    EOS,
    PAD,
    PROMPTS,
    VOCAB,
    WordTokenizer,
    naive_generate,
    tiny_model,
)


def _tokens(out: list) -> list[list[tuple[int, ...]]]:
    return [[c.token_ids for c in group] for group in out]


def trainer_logprobs(
    model: torch.nn.Module, prompt: list[int], response: tuple[int, ...], t: float
):
    """The trainer's view: one full forward, log_softmax(logits / T) of each response token."""
    ids = torch.tensor([list(prompt) + list(response)])
    with torch.no_grad():
        logits = model(ids).logits[0, len(prompt) - 1 : -1]
    return torch.log_softmax(logits / t, dim=-1).gather(-1, torch.tensor(response)[:, None])[:, 0]


def test_engine_satisfies_protocol(model, tokenizer) -> None:
    assert isinstance(HFEngine(model, tokenizer), RolloutEngine)


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_logprobs_equal_trainer_logprobs_fp32(model, tokenizer, temperature: float) -> None:
    engine = HFEngine(model, tokenizer, dtype="fp32")
    params = SamplingParams(n=3, max_new_tokens=24, temperature=temperature, seed=0)
    out = engine.generate(PROMPTS, params)
    checked = 0
    for prompt, group in zip(PROMPTS, out):
        for c in group:
            assert len(c.logprobs) == len(c.token_ids) > 0
            want = trainer_logprobs(model, prompt, c.token_ids, temperature)
            torch.testing.assert_close(torch.tensor(c.logprobs), want, atol=1e-4, rtol=0)
            checked += len(c.token_ids)
    assert checked > 100


def test_logprobs_match_trainer_for_a_large_prefill(model, tokenizer) -> None:
    # 700 prompt tokens: the prefill runs its MLP in row chunks (decoder._MLP_CHUNK = 512)
    gen = torch.Generator().manual_seed(0)
    prompts = [
        torch.randint(3, VOCAB, (int(n),), generator=gen).tolist() for n in range(90, 160, 10)
    ]
    assert sum(len(p) for p in prompts) > 512
    engine = HFEngine(model, tokenizer, dtype="fp32")
    out = engine.generate(prompts, SamplingParams(max_new_tokens=3, seed=0))
    for prompt, (c,) in zip(prompts, out):
        want = trainer_logprobs(model, prompt, c.token_ids, 1.0)
        torch.testing.assert_close(torch.tensor(c.logprobs), want, atol=1e-4, rtol=0)


def test_bf16_logprobs_close_to_fp32_trainer(model, tokenizer) -> None:
    engine = HFEngine(model, tokenizer, dtype="bf16")
    out = engine.generate(PROMPTS, SamplingParams(n=2, max_new_tokens=16, seed=0))
    for prompt, group in zip(PROMPTS, out):
        for c in group:
            want = trainer_logprobs(model, prompt, c.token_ids, 1.0)
            # bf16 matmuls: a few 1e-2 of drift, which the IS correction is there to absorb
            assert (torch.tensor(c.logprobs) - want).abs().max() < 0.1


@pytest.mark.parametrize(
    ("params", "max_batch_size"),
    [
        (SamplingParams(n=2, max_new_tokens=14, seed=3), 256),
        # 3 rows at a time for 8 sequences: finished rows are dropped and refilled mid-flight
        (SamplingParams(n=2, max_new_tokens=14, seed=3, temperature=0.8, top_k=10), 3),
        (SamplingParams(n=1, max_new_tokens=14, seed=6, top_p=0.9), 2),
        (SamplingParams(n=1, max_new_tokens=8, greedy=True, seed=0), 256),
    ],
)
def test_early_exit_engine_matches_naive_loop(model, tokenizer, params, max_batch_size) -> None:
    engine = HFEngine(model, tokenizer, dtype="fp32", max_batch_size=max_batch_size)
    out = engine.generate(PROMPTS, params)
    ref = naive_generate(model, PROMPTS, params)
    for group, ref_group in zip(out, ref):
        for c, (ref_tokens, ref_lps) in zip(group, ref_group):
            assert list(c.token_ids) == ref_tokens
            torch.testing.assert_close(
                torch.tensor(c.logprobs), torch.tensor(ref_lps), atol=1e-4, rtol=0
            )
    lengths = {len(c.token_ids) for group in out for c in group}
    assert len(lengths) > 1 or params.greedy  # rows did finish at different steps
    if max_batch_size < 4:
        assert engine.stats["prefill_calls"] > 1  # the refill path ran


@pytest.mark.parametrize(("eos", "max_batch_size"), [(None, 256), (EOS, 2)])
def test_cache_width_growth_matches_naive_loop(model, tokenizer, eos, max_batch_size) -> None:
    """70 new tokens cross the 32-column width steps of the cache twice (`ActiveRows.reserve`);
    with EOS and 2 rows at a time, refilled rows also join a batch whose cache is wider."""
    params = SamplingParams(n=1, max_new_tokens=70, seed=5)
    engine = HFEngine(
        model,
        tokenizer,
        dtype="fp32",
        max_batch_size=max_batch_size,
        eos_token_id=[] if eos is None else eos,
    )
    out = engine.generate(PROMPTS, params)
    ref = naive_generate(model, PROMPTS, params, eos=eos)
    assert _tokens(out) == [[tuple(t) for t, _ in group] for group in ref]
    assert max(len(c.token_ids) for group in out for c in group) > 40  # the width did grow


def test_llama_architecture_matches_naive_loop(tokenizer) -> None:
    model = tiny_model(1, llama=True)
    params = SamplingParams(n=2, max_new_tokens=8, seed=1)
    out = HFEngine(model, tokenizer, dtype="fp32").generate(PROMPTS[:2], params)
    ref = naive_generate(model, PROMPTS[:2], params)
    assert _tokens(out) == [[tuple(t) for t, _ in group] for group in ref]


def test_same_seed_same_output_and_new_seed_differs(model, tokenizer) -> None:
    engine = HFEngine(model, tokenizer, dtype="fp32")
    a = engine.generate(PROMPTS, SamplingParams(n=2, max_new_tokens=10, seed=11))
    b = engine.generate(PROMPTS, SamplingParams(n=2, max_new_tokens=10, seed=11))
    c = engine.generate(PROMPTS, SamplingParams(n=2, max_new_tokens=10, seed=12))
    assert _tokens(a) == _tokens(b) and _tokens(a) != _tokens(c)


def test_batch_of_different_lengths_equals_one_by_one(model, tokenizer) -> None:
    engine = HFEngine(model, tokenizer, dtype="fp32")
    params = SamplingParams(n=2, max_new_tokens=16, seed=4)
    batched = engine.generate(PROMPTS, params)
    for prompt, group in zip(PROMPTS, batched):
        assert _tokens(engine.generate([prompt], params))[0] == [c.token_ids for c in group]


def test_group_sampling_prefills_each_prompt_once(model, tokenizer) -> None:
    engine = HFEngine(model, tokenizer, dtype="fp32")
    out = engine.generate(PROMPTS, SamplingParams(n=4, max_new_tokens=8, seed=0))
    assert [len(g) for g in out] == [4] * len(PROMPTS)
    assert engine.stats["prefill_calls"] == 1
    assert engine.stats["prefill_tokens"] == sum(len(p) for p in PROMPTS)  # not 4x
    for group in out:
        assert len({c.token_ids for c in group}) > 1  # the G samples are different draws


def test_weight_sync_changes_outputs(model, tokenizer) -> None:
    engine = HFEngine(model, tokenizer, dtype="fp32", share_weights=False)
    params = SamplingParams(n=2, max_new_tokens=12, seed=0)
    before = _tokens(engine.generate(PROMPTS, params))
    with torch.no_grad():  # a trainer update that the engine has not seen yet
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    assert _tokens(engine.generate(PROMPTS, params)) == before  # private copy: unchanged
    engine.load_weights(model.named_parameters())
    after = _tokens(engine.generate(PROMPTS, params))
    assert after != before
    assert after == _tokens(HFEngine(model, tokenizer, dtype="fp32").generate(PROMPTS, params))


def test_shared_weights_follow_in_place_optimizer_steps(model, tokenizer) -> None:
    engine = HFEngine(model, tokenizer, dtype="fp32", share_weights=True)
    params = SamplingParams(n=2, max_new_tokens=12, seed=0)
    before = _tokens(engine.generate(PROMPTS, params))
    opt = torch.optim.SGD(model.parameters(), lr=5.0)
    loss = model(torch.tensor([PROMPTS[0]]), labels=torch.tensor([PROMPTS[0]])).loss
    loss.backward()
    opt.step()
    engine.load_weights(model.named_parameters())  # a no-op for shared tensors
    assert _tokens(engine.generate(PROMPTS, params)) != before


def test_load_weights_rejects_unknown_names(model, tokenizer) -> None:
    engine = HFEngine(model, tokenizer, share_weights=False)
    with pytest.raises(KeyError, match="nope"):
        engine.load_weights([("nope", torch.zeros(1))])


def test_eos_ends_sequence_and_is_kept(model, tokenizer) -> None:
    params = SamplingParams(n=2, max_new_tokens=30, seed=2)
    free = HFEngine(model, tokenizer, dtype="fp32", eos_token_id=[]).generate(PROMPTS, params)
    # pick a token that occurs mid-way in some unconstrained completion and make it the EOS
    tokens = [t for g in free for c in g for t in c.token_ids[2:]]
    eos = max(set(tokens), key=tokens.count)
    out = HFEngine(model, tokenizer, dtype="fp32", eos_token_id=eos).generate(PROMPTS, params)
    ended = 0
    for g_free, g in zip(free, out):
        for c_free, c in zip(g_free, g):
            if eos in c_free.token_ids:
                cut = c_free.token_ids.index(eos) + 1
                assert c.token_ids == c_free.token_ids[:cut] and c.finish_reason == "stop"
                assert c.text == tokenizer.decode([t for t in c.token_ids if t != PAD])
                ended += 1
            else:
                assert c.token_ids == c_free.token_ids and c.finish_reason == "length"
    assert ended > 0


def test_stop_string_ends_at_completing_token(model, tokenizer) -> None:
    params = SamplingParams(n=2, max_new_tokens=30, seed=2)
    engine = HFEngine(model, tokenizer, dtype="fp32", eos_token_id=[])
    free = engine.generate(PROMPTS, params)
    words = tokenizer.decode(free[0][0].token_ids[3:5])  # a two-word stop string, e.g. "w7 w9"
    out = engine.generate(PROMPTS, SamplingParams(n=2, max_new_tokens=30, seed=2, stop=(words,)))
    for g_free, g in zip(free, out):
        for c_free, c in zip(g_free, g):
            assert c_free.token_ids[: len(c.token_ids)] == c.token_ids
            if c.finish_reason == "stop":
                assert c.text.endswith(words) and words not in tokenizer.decode(c.token_ids[:-1])
            else:
                assert words not in c_free.text and c.truncated
    assert out[0][0].finish_reason == "stop" and len(out[0][0].token_ids) == 5


def test_truncation_flag(model, tokenizer) -> None:
    engine = HFEngine(model, tokenizer, dtype="fp32", eos_token_id=[])
    out = engine.generate(PROMPTS, SamplingParams(n=2, max_new_tokens=5, seed=0))
    for group in out:
        for c in group:
            assert len(c.token_ids) == 5 and c.finish_reason == "length" and c.truncated


def test_eos_defaults_from_model_and_tokenizer(model, tokenizer) -> None:
    assert HFEngine(model, tokenizer).eos_ids == frozenset({EOS})


def test_text_drops_pad_tokens_but_not_eos(model) -> None:
    class PadTokenizer(WordTokenizer):
        pad_token_id = 7

    engine = HFEngine(model, PadTokenizer(), dtype="fp32")
    c = engine._completion_from(tokens=[5, 7, 6, EOS], logprobs=[0.0] * 4, reason="stop")
    assert c.text == f"w5 w6 w{EOS}" and c.token_ids == (5, 7, 6, EOS)


@pytest.mark.parametrize("bad", [[[]], [[1, VOCAB]], [[-1]]])
def test_rejects_bad_prompts(model, tokenizer, bad) -> None:
    with pytest.raises(ValueError, match="prompt 0"):
        HFEngine(model, tokenizer).generate(bad, SamplingParams())


def test_rejects_unsupported_architecture(tokenizer) -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=VOCAB))
    with pytest.raises(ValueError, match="gpt2"):
        HFEngine(gpt2, tokenizer)
