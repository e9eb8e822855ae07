"""The fused decoder against the HF modelling code for every architecture and RoPE it accepts.

Each case is a tiny random model (hidden 64, 2 layers, 4 heads / 2 kv heads): the fused prefill
and decode steps must give the HF full forward's logits (fp32), the engine's sampled log-probs the
trainer's (`collate` -> `response_logprobs`), and greedy tokens `model.generate`'s. The RoPE
settings are chosen so the scaling really changes the frequencies at head_dim 16 (checked), and
yarn's attention_scaling is != 1.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from reasonrl.rl.batching import collate
from reasonrl.rl.logprobs import response_logprobs
from reasonrl.rollout import HFEngine, SamplingParams
from reasonrl.rollout.decoder import (
    decode_step,
    pack_weights,
    prefill,
    rope_table,
    unsupported_reason,
)
from tests.rollout.conftest import EOS, PAD, PROMPTS, WordTokenizer, hf_greedy

VOCAB = 100
SHAPE = dict(
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    intermediate_size=128,
    vocab_size=VOCAB,
    tie_word_embeddings=False,
    eos_token_id=EOS,
    pad_token_id=PAD,
    max_position_embeddings=512,
)
# head_dim 16: inv_freq = 10000^(-i/8), wavelengths 6.3 .. 18000 tokens, so llama3 with an
# original context of 64 scales the long wavelengths (> 64), smooths the middle and keeps the short
LLAMA3 = dict(
    rope_type="llama3",
    rope_theta=10000.0,
    factor=4.0,
    low_freq_factor=1.0,
    high_freq_factor=4.0,
    original_max_position_embeddings=64,
)
YARN = dict(rope_type="yarn", rope_theta=10000.0, factor=4.0, original_max_position_embeddings=128)
LONGROPE_STATIC = dict(
    rope_type="longrope",
    rope_theta=10000.0,
    long_factor=[1.0, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0],
    short_factor=[1.0, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0],
    original_max_position_embeddings=128,
)
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "qwen2": ("qwen2", {}),
    "llama": ("llama", {}),
    "llama-llama3": ("llama", {"rope_parameters": LLAMA3}),
    "llama-linear": ("llama", {"rope_parameters": dict(rope_type="linear", factor=2.0)}),
    "llama-yarn": ("llama", {"rope_parameters": YARN}),
    "llama-longrope-static": ("llama", {"rope_parameters": LONGROPE_STATIC}),
    # head_dim 24 != 64/4, biases on q/k/v/o: the explicit head_dim and attention_bias paths
    "qwen3": ("qwen3", {"head_dim": 24, "attention_bias": True}),
    "mistral": ("mistral", {"sliding_window": None}),
    "mistral-window-never-bites": ("mistral", {"sliding_window": 512}),
}


def _classes(kind: str) -> tuple[type, type]:
    import transformers as tf

    name = {"qwen2": "Qwen2", "qwen3": "Qwen3", "llama": "Llama", "mistral": "Mistral"}[kind]
    return getattr(tf, f"{name}Config"), getattr(tf, f"{name}ForCausalLM")


def build(kind: str, seed: int = 0, **overrides: Any) -> torch.nn.Module:
    config_cls, model_cls = _classes(kind)
    torch.manual_seed(seed)
    model = model_cls(config_cls(**{**SHAPE, **overrides})).eval()
    with torch.no_grad():  # HF init is near-uniform: make logits and norms non-trivial
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


@pytest.fixture(params=list(CASES), scope="module")
def case(request) -> tuple[str, torch.nn.Module]:
    kind, overrides = CASES[request.param]
    return request.param, build(kind, seed=len(request.param), **overrides)


def test_rope_settings_really_scale() -> None:
    default = build("llama").model.rotary_emb
    for name in ("llama-llama3", "llama-linear", "llama-yarn", "llama-longrope-static"):
        rotary = build("llama", **CASES[name][1]).model.rotary_emb
        assert not torch.allclose(rotary.inv_freq, default.inv_freq), name
        assert rotary.inv_freq.numel() == default.inv_freq.numel() == 8
    llama3 = build("llama", **CASES["llama-llama3"][1]).model.rotary_emb.inv_freq
    ratio = default.inv_freq / llama3
    assert ratio[0] == 1 and ratio[-1] == 4 and ((ratio > 1) & (ratio < 4)).any()  # all 3 bands
    assert build("llama", **CASES["llama-yarn"][1]).model.rotary_emb.attention_scaling > 1.05


def test_prefill_and_decode_match_hf_forward(case) -> None:
    name, model = case
    assert unsupported_reason(model) is None
    w = pack_weights(model, torch.float32)
    gen = torch.Generator().manual_seed(1)
    prompts = [[5, 6, 7, 8, 9, 10, 11], [12, 13], [14, 15, 16, 17, 18, 19, 20, 21, 22, 23]]
    follow = torch.randint(3, VOCAB, (len(prompts), 5), generator=gen)  # teacher-forced tokens
    lengths = torch.tensor([len(p) for p in prompts])
    tokens = torch.zeros((len(prompts), int(lengths.max())), dtype=torch.int64)
    for i, p in enumerate(prompts):
        tokens[i, : len(p)] = torch.tensor(p)
    capacity = int(lengths.max()) + follow.shape[1]
    with torch.no_grad():
        logits, pk, pv = prefill(w, tokens, lengths)
        got = [logits]
        shape = (len(pk), len(prompts), pk[0].shape[1], capacity, pk[0].shape[3])
        k, v = pk[0].new_zeros(shape), pv[0].new_zeros(shape)
        for i in range(len(pk)):
            k[i, :, :, : tokens.shape[1]], v[i, :, :, : tokens.shape[1]] = pk[i], pv[i]
        k = k.transpose(3, 4).contiguous()  # decode_step's key layout (nL, W, kvh, hd, C)
        rope, positions = rope_table(w, capacity), lengths.clone()
        for step in range(follow.shape[1] - 1):
            got.append(decode_step(w, follow[:, step], positions, k, v, rope))
            positions = positions + 1
        worst = 0.0
        for i, p in enumerate(prompts):
            full = torch.tensor([p + follow[i].tolist()])
            ref = model(full).logits[0, len(p) - 1 : len(p) - 1 + len(got)]
            mine = torch.stack([g[i] for g in got])
            worst = max(worst, float((mine - ref).abs().max()))
    print(f"{name}: max |fused - HF| logit diff {worst:.2e}")
    assert worst <= 1e-4


def test_engine_logprobs_equal_trainer_path(case) -> None:
    _, model = case
    engine = HFEngine(model, WordTokenizer(), dtype="fp32")
    groups = engine.generate(PROMPTS, SamplingParams(n=2, max_new_tokens=12, seed=0))
    flat_prompts = [p for p, g in zip(PROMPTS, groups) for _ in g]
    comps = [c for g in groups for c in g]
    batch = collate(flat_prompts, comps, torch.zeros(len(comps)), pad_id=PAD)
    with torch.no_grad():
        trainer, _ = response_logprobs(model, batch)
    mask = batch.response_mask.bool()
    assert mask.sum() > 40
    diff = (trainer[mask] - batch.rollout_logprobs[mask]).abs().max()
    assert diff <= 1e-4, float(diff)


def test_greedy_equals_hf_generate(case) -> None:
    _, model = case
    engine = HFEngine(model, WordTokenizer(), dtype="fp32")
    params = SamplingParams(n=1, max_new_tokens=10, greedy=True, seed=0)
    out = engine.generate(PROMPTS, params)
    for prompt, (c,) in zip(PROMPTS, out):
        assert list(c.token_ids) == hf_greedy(model, prompt, 10)


REFUSED = {
    "gemma": ("model_type 'gemma'", "(qwen2, qwen3, llama, mistral)"),
    "gpt2": ("model_type 'gpt2'", "not supported"),
    "llama-dynamic": ("rope_type 'dynamic'", "sequence length"),
    "mistral-window": ("sliding_window=16 < max_position_embeddings=512", "sliding-window"),
    "qwen2-window": ("sliding_window=16", "sliding-window"),
    "llama-longrope-switching": ("'longrope'", "long_factor != short_factor"),
    "llama-gelu": ("hidden_act 'gelu'", "only silu"),
}


def _refused_model(name: str) -> Any:
    import transformers as tf

    if name == "gemma":
        return tf.GemmaForCausalLM(tf.GemmaConfig(**{**SHAPE, "head_dim": 16}))
    if name == "gpt2":
        return tf.GPT2LMHeadModel(
            tf.GPT2Config(
                n_embd=64, n_layer=2, n_head=4, vocab_size=VOCAB, bos_token_id=1, eos_token_id=EOS
            )
        )
    if name == "llama-dynamic":
        return build("llama", rope_parameters=dict(rope_type="dynamic", factor=2.0))
    if name == "mistral-window":
        return build("mistral", sliding_window=16)
    if name == "qwen2-window":  # layers >= max_window_layers slide
        return build("qwen2", use_sliding_window=True, sliding_window=16, max_window_layers=1)
    if name == "llama-longrope-switching":
        rope = {**LONGROPE_STATIC, "long_factor": [2.0] * 8}
        return build("llama", rope_parameters=rope)
    return build("llama", hidden_act="gelu")


@pytest.mark.parametrize("name", list(REFUSED))
def test_unsupported_models_are_refused_with_a_reason(name: str) -> None:
    model = _refused_model(name)
    for target in (model, model.config):  # a config alone is judged the same way
        reason = unsupported_reason(target)
        assert reason is not None and all(part in reason for part in REFUSED[name]), reason
    with pytest.raises(ValueError, match="unsupported model"):
        HFEngine(model, WordTokenizer())


def test_qwen2_window_only_on_no_layer_is_accepted() -> None:
    # use_sliding_window with max_window_layers >= num_hidden_layers: no layer slides in HF
    model = build("qwen2", use_sliding_window=True, sliding_window=16, max_window_layers=2)
    assert model.config.layer_types == ["full_attention"] * 2
    assert unsupported_reason(model) is None


def test_supported_configs_accepted_without_a_model() -> None:
    for kind, overrides in CASES.values():
        assert unsupported_reason(_classes(kind)[0](**{**SHAPE, **overrides})) is None


def test_window_longer_than_any_position_is_checked_at_table_build() -> None:
    kind, overrides = CASES["mistral-window-never-bites"]
    w = pack_weights(build(kind, **overrides), torch.float32)
    rope_table(w, 512)
    with pytest.raises(ValueError, match="sliding_window 512"):
        rope_table(w, 513)


def test_qwen2_and_llama_pack_no_head_norm() -> None:
    for kind in ("qwen2", "llama", "mistral"):
        w = pack_weights(build(kind), torch.float32)
        assert all(layer.qk_norm is None for layer in w.layers) and w.attention_scaling == 1.0
    w = pack_weights(build("qwen3", head_dim=24), torch.float32)
    assert all(layer.qk_norm is not None for layer in w.layers) and w.head_dim == 24
