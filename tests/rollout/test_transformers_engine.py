"""TransformersEngine on tiny random models of many architectures, against the trainer and HF.

Each architecture is a 2-layer random-init model (hidden 32) built here; every check runs on each:
log-probs equal the trainer's `response_logprobs` on the `collate`d batch, greedy tokens equal
`model.generate`, a seed fixes tokens whatever the batch, stop strings, early exit, eval mode.
"""

from __future__ import annotations

import pytest
import torch
import transformers

from reasonrl.rl.batching import collate
from reasonrl.rl.logprobs import response_logprobs
from reasonrl.rollout.base import RolloutEngine, SamplingParams
from reasonrl.rollout.transformers_engine import TransformersEngine
from tests.rollout.conftest import EOS, PAD, PROMPTS, WordTokenizer, hf_greedy

V = 96
_DECODER = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=256,
)
# name -> (config class, model class, config kwargs, the config's dropout settings)
ARCHS = {
    "gpt2": (
        "GPT2Config",
        "GPT2LMHeadModel",
        dict(n_layer=2, n_embd=32, n_head=2, n_positions=256),
        ("resid_pdrop", "embd_pdrop", "attn_pdrop"),
    ),
    "qwen3": (
        "Qwen3Config",
        "Qwen3ForCausalLM",
        dict(_DECODER, head_dim=8),
        ("attention_dropout",),
    ),
    "gemma": (
        "GemmaConfig",
        "GemmaForCausalLM",
        dict(_DECODER, head_dim=8),
        ("attention_dropout",),
    ),
    # a sliding window shorter than the texts: the cache's sliding layers must agree with the mask
    "gemma2": (
        "Gemma2Config",
        "Gemma2ForCausalLM",
        dict(_DECODER, head_dim=8, sliding_window=6),
        ("attention_dropout",),
    ),
    "phi3": (
        "Phi3Config",
        "Phi3ForCausalLM",
        _DECODER,
        ("resid_pdrop", "embd_pdrop", "attention_dropout"),
    ),
    "olmo2": ("Olmo2Config", "Olmo2ForCausalLM", _DECODER, ("attention_dropout",)),
    "mistral": (
        "MistralConfig",
        "MistralForCausalLM",
        dict(_DECODER, sliding_window=6),
        ("attention_dropout",),
    ),
    "llama": ("LlamaConfig", "LlamaForCausalLM", _DECODER, ("attention_dropout",)),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", _DECODER, ("attention_dropout",)),
}


def tiny(arch: str, *, dropout: float = 0.0, seed: int = 0) -> torch.nn.Module:
    """A random 2-layer `arch` model in eval mode; weights perturbed so distributions are peaked."""
    config_name, model_name, kwargs, dropout_keys = ARCHS[arch]
    config = getattr(transformers, config_name)(
        vocab_size=V,
        eos_token_id=EOS,
        pad_token_id=PAD,
        bos_token_id=1,
        **kwargs,
        **{k: dropout for k in dropout_keys},
    )
    torch.manual_seed(seed)
    model = getattr(transformers, model_name)(config).eval()
    with torch.no_grad():  # HF init is near-uniform; this mixes EOS-ended and truncated texts
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return model


def _tokens(out: list) -> list[list[tuple[int, ...]]]:
    return [[c.token_ids for c in group] for group in out]


def _trainer_gap(model: torch.nn.Module, out: list, temperature: float) -> tuple[float, int]:
    """Max |engine - trainer| log-prob over all response tokens, and how many were checked."""
    prompts = [p for p, group in zip(PROMPTS, out) for _ in group]
    comps = [c for group in out for c in group]
    batch = collate(prompts, comps, torch.zeros(len(comps)), pad_id=PAD)
    with torch.no_grad():
        trainer, _ = response_logprobs(model, batch, temperature=temperature)
    mask = batch.response_mask.bool()
    return float((trainer[mask] - batch.rollout_logprobs[mask]).abs().max()), int(mask.sum())


@pytest.fixture(scope="module", params=sorted(ARCHS))
def arch(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def model(arch) -> torch.nn.Module:
    return tiny(arch)


@pytest.fixture
def tokenizer() -> WordTokenizer:
    return WordTokenizer()


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_logprobs_equal_trainer_logprobs_fp32(model, tokenizer, temperature: float) -> None:
    engine = TransformersEngine(model, tokenizer, dtype="fp32")
    params = SamplingParams(n=3, max_new_tokens=16, temperature=temperature, seed=0)
    out = engine.generate(PROMPTS, params)
    gap, checked = _trainer_gap(model, out, temperature)
    assert checked > 60 and gap <= 1e-4


def test_greedy_equals_hf_generate(model, tokenizer) -> None:
    engine = TransformersEngine(model, tokenizer, dtype="fp32")
    out = engine.generate(PROMPTS, SamplingParams(max_new_tokens=10, greedy=True))
    for prompt, (c,) in zip(PROMPTS, out):
        ref = hf_greedy(model, prompt, 10)
        assert list(c.token_ids) == ref
        assert c.finish_reason == ("stop" if ref[-1] == EOS else "length")


def test_seed_fixes_tokens_whatever_the_batch(model, tokenizer) -> None:
    params = SamplingParams(n=2, max_new_tokens=8, seed=4)
    whole = TransformersEngine(model, tokenizer, dtype="fp32").generate(PROMPTS, params)
    # waves of 2 prompts (4 rows): other padding, other companions, same tokens
    engine = TransformersEngine(model, tokenizer, dtype="fp32", max_batch_size=4)
    assert _tokens(engine.generate(PROMPTS, params)) == _tokens(whole)
    assert engine.stats["prefill_calls"] == 2
    for prompt, group in zip(PROMPTS, whole):
        alone = engine.generate([prompt], params)
        assert _tokens(alone)[0] == [c.token_ids for c in group]
    again = engine.generate(PROMPTS, SamplingParams(n=2, max_new_tokens=8, seed=5))
    assert _tokens(again) != _tokens(whole)
    for group in whole:
        assert group[0].token_ids != group[1].token_ids  # the G samples are different draws


def test_stop_string_ends_at_completing_token(model, tokenizer) -> None:
    engine = TransformersEngine(model, tokenizer, dtype="fp32", eos_token_id=[])
    free = engine.generate(PROMPTS, SamplingParams(n=2, max_new_tokens=12, seed=2))
    words = tokenizer.decode(free[0][0].token_ids[3:5])  # a two-word stop string, e.g. "w7 w9"
    out = engine.generate(PROMPTS, SamplingParams(n=2, max_new_tokens=12, seed=2, stop=(words,)))
    for g_free, g in zip(free, out):
        for c_free, c in zip(g_free, g):
            assert c_free.token_ids[: len(c.token_ids)] == c.token_ids
            assert c.logprobs == c_free.logprobs[: len(c.logprobs)]
            if c.finish_reason == "stop":
                assert c.text.endswith(words) and words not in tokenizer.decode(c.token_ids[:-1])
            else:
                assert words not in c_free.text and c.truncated
    # the first completion ends at the first token that completes the string (at most the 5th)
    ids = free[0][0].token_ids
    cut = next(k for k in range(1, 6) if words in tokenizer.decode(ids[:k]))
    assert out[0][0].finish_reason == "stop" and out[0][0].token_ids == ids[:cut]


def test_finished_rows_leave_the_batch(model, tokenizer) -> None:
    params = SamplingParams(n=4, max_new_tokens=24, seed=1)
    free = TransformersEngine(model, tokenizer, dtype="fp32", eos_token_id=[])
    # the most frequent mid-text token as EOS: random models rarely sample the config's EOS
    seen = [t for g in free.generate(PROMPTS, params) for c in g for t in c.token_ids[2:]]
    eos = max(set(seen), key=seen.count)
    engine = TransformersEngine(model, tokenizer, dtype="fp32", eos_token_id=eos)
    out = engine.generate(PROMPTS, params)
    lengths = [len(c.token_ids) for group in out for c in group]
    ended = [c for group in out for c in group if c.finish_reason == "stop"]
    assert ended and all(c.token_ids[-1] == eos for c in ended)  # the sampled EOS is kept
    assert all(eos not in c.token_ids[:-1] for c in ended)
    assert all(c.finish_reason == "length" for g in out for c in g if len(c.token_ids) == 24)
    steps = engine.stats["decode_steps"]
    assert steps == max(lengths) - 1  # the first token comes from the prefill
    # each decode step computes only the rows still running
    assert engine.stats["decode_rows"] == sum(n - 1 for n in lengths) < len(lengths) * steps
    assert engine.stats["prefill_tokens"] == sum(len(p) for p in PROMPTS)  # once, not n times


def test_train_mode_samples_like_eval_and_is_restored(arch, tokenizer) -> None:
    model = tiny(arch, dropout=0.5).train()
    ids = torch.tensor([PROMPTS[0]])
    with torch.no_grad():  # precondition: dropout really changes this model's forward
        assert not torch.equal(model(ids).logits, model(ids).logits)
    head = model.get_output_embeddings()
    head.eval()  # a submodule the trainer keeps in eval mode must stay so
    engine = TransformersEngine(model, tokenizer, dtype="fp32")
    params = SamplingParams(n=2, max_new_tokens=10, seed=3)
    in_train = engine.generate(PROMPTS, params)
    assert model.training and not head.training
    assert all(m.training for m in model.modules() if m is not head)
    model.eval()
    in_eval = engine.generate(PROMPTS, params)
    assert _tokens(in_train) == _tokens(in_eval)
    assert [[c.logprobs for c in g] for g in in_train] == [[c.logprobs for c in g] for g in in_eval]


# ------------------------------------------------------------- one architecture is enough below


def test_engine_satisfies_protocol(tokenizer) -> None:
    assert isinstance(TransformersEngine(tiny("gpt2"), tokenizer), RolloutEngine)


def test_private_copy_changes_only_through_load_weights(tokenizer) -> None:
    model = tiny("qwen3")
    engine = TransformersEngine(model, tokenizer, dtype="fp32", share_weights=False)
    shared = TransformersEngine(model, tokenizer, dtype="fp32")
    params = SamplingParams(n=2, max_new_tokens=10, seed=0)
    before = _tokens(engine.generate(PROMPTS, params))
    with torch.no_grad():  # a trainer update the private copy has not seen yet
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    assert _tokens(engine.generate(PROMPTS, params)) == before
    now = _tokens(shared.generate(PROMPTS, params))
    assert now != before  # the shared engine samples from the updated weights at once
    engine.load_weights(model.named_parameters())
    assert _tokens(engine.generate(PROMPTS, params)) == now
    shared.load_weights(model.named_parameters())  # a no-op on the same tensors
    with pytest.raises(KeyError, match="nope"):
        engine.load_weights([("nope", torch.zeros(1))])


def test_bf16_logprobs_close_to_fp32_trainer(tokenizer) -> None:
    model = tiny("llama")
    engine = TransformersEngine(model, tokenizer, dtype="bf16")
    out = engine.generate(PROMPTS, SamplingParams(n=2, max_new_tokens=8, seed=0))
    gap, _ = _trainer_gap(model, out, 1.0)
    assert gap < 0.15  # bf16 matmuls drift by a few 1e-2; the IS correction absorbs that


def test_unseeded_calls_draw_from_torch_generator(tokenizer) -> None:
    engine = TransformersEngine(tiny("llama"), tokenizer, dtype="fp32")
    params = SamplingParams(n=2, max_new_tokens=8)
    torch.manual_seed(7)
    a = _tokens(engine.generate(PROMPTS, params))
    b = _tokens(engine.generate(PROMPTS, params))
    torch.manual_seed(7)
    assert a != b and _tokens(engine.generate(PROMPTS, params)) == a


@pytest.mark.parametrize("bad", [[[]], [[1, V]], [[-1]]])
def test_rejects_bad_prompts(tokenizer, bad) -> None:
    with pytest.raises(ValueError, match=r"TransformersEngine\.generate: prompt 0"):
        TransformersEngine(tiny("gpt2"), tokenizer).generate(bad, SamplingParams())
