"""benchmarks/arch_models.py, architectures.py and gpu/smoke.py: the models are the architectures
they claim, save/reload keeps the tokenizer's ids, the agreement measurement catches a mismatch,
and the GPU smoke check refuses a machine without CUDA (its CPU dry run is marked slow)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path[:0] = [str(BENCH), str(BENCH / "gpu")]  # the benchmark scripts import each other so

import arch_models  # noqa: E402
import architectures  # noqa: E402
import smoke  # noqa: E402

from reasonrl.models.io import load_policy, save_policy  # noqa: E402
from reasonrl.rollout.base import SamplingParams  # noqa: E402
from reasonrl.rollout.registry import choose_engine  # noqa: E402

CORPUS = [
    f"Tom has {a} apples and buys {b} more, so {a} + {b} = {a + b}."
    for a in range(40)
    for b in range(9)
]
FUSED = {"qwen2", "qwen3", "llama", "llama3", "mistral"}


@pytest.fixture(scope="module")
def tokenizer():
    return arch_models.train_tokenizer(CORPUS, vocab_size=300)


def test_tokenizer_special_ids_and_byte_fallback(tokenizer) -> None:
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.bos_token_id) == (0, 1, 1)
    text = "Zoë paid $3.50 — 7×8?"  # bytes never seen in the corpus still round-trip
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text


@pytest.mark.parametrize("arch", sorted(arch_models.ARCHS))
def test_each_arch_builds_saves_and_reloads(arch: str, tokenizer, tmp_path: Path) -> None:
    model = arch_models.build_model(arch, tokenizer)
    cfg = model.config
    assert cfg.model_type == ("llama" if arch == "llama3" else arch)
    assert cfg.vocab_size == len(tokenizer) and cfg.eos_token_id == tokenizer.eos_token_id
    assert getattr(cfg, "max_position_embeddings", getattr(cfg, "n_positions", 0)) >= 1024
    if arch != "gpt2":  # GPT-2 has no grouped-query attention
        assert cfg.num_key_value_heads < cfg.num_attention_heads
    assert choose_engine("auto", model) == ("fused" if arch in FUSED else "hf")
    out = save_policy(model, tokenizer, tmp_path / arch)
    reloaded, tok2 = load_policy(out)
    probe = CORPUS[5] + " Zoë"
    assert tok2(probe)["input_ids"] == tokenizer(probe)["input_ids"]
    ids = torch.tensor([tokenizer(probe)["input_ids"]])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, reloaded(ids).logits)


def test_llama3_rope_scaling_changes_frequencies(tokenizer) -> None:
    default = {"rope_type": "default", "rope_theta": arch_models.LLAMA3_ROPE["rope_theta"]}
    plain = arch_models.build_model("llama", tokenizer, rope_parameters=default)
    plain = plain.model.rotary_emb.inv_freq
    scaled = arch_models.build_model("llama3", tokenizer).model.rotary_emb.inv_freq
    # original context 256: wavelengths above 256 are divided by factor 8, those below 64 kept
    assert not torch.allclose(plain, scaled)
    assert torch.equal(plain[:2], scaled[:2])


@pytest.mark.parametrize(("arch", "engine"), [("qwen2", "fused"), ("gpt2", "hf")])
def test_engine_delta_is_small_and_detects_a_mismatch(
    arch, engine, tokenizer, tmp_path, monkeypatch
) -> None:
    model = arch_models.build_model(arch, tokenizer)
    path = save_policy(model, tokenizer, tmp_path / arch)
    prompts = [tokenizer(text)["input_ids"] for text in CORPUS[:2]]
    params = SamplingParams(n=2, max_new_tokens=8, seed=0)
    delta = architectures.engine_delta(engine, model, tokenizer, prompts, params, model_path=path)
    assert delta <= architectures.TOLERANCE
    # the trainer scoring at another temperature than the engine sampled: a real mismatch
    hot = SamplingParams(n=2, max_new_tokens=8, seed=0, temperature=2.0)
    right = architectures.batch_logprobs
    monkeypatch.setattr(
        architectures,
        "batch_logprobs",
        lambda m, b, **kw: right(m, b, **{**kw, "temperature": 1.0}),
    )
    delta = architectures.engine_delta(engine, model, tokenizer, prompts, hot, model_path=path)
    assert delta > 10 * architectures.TOLERANCE


def test_report_flags_failures() -> None:
    ok = architectures.ArchResult(
        "a", 1000, {"fused": 1e-6, "hf": 1e-6}, "yes", "fused", 1e-6, 0.2, 0.1
    )
    far = architectures.ArchResult("b", 1000, {"fused": "n/a (unsupported)", "hf": 3e-3}, "yes")
    args = type("A", (), dict(threads=2, vocab_size=2000, prompts=4, samples=4, max_new_tokens=32,
                              prompts_per_step=2, steps=3))()  # fmt: skip
    assert "): met." in architectures.report(args, [ok], "cmd")
    text = architectures.report(args, [ok, far], "cmd")
    assert "NOT met" in text and "b/hf" in text


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU refusal")
def test_smoke_refuses_without_cuda(capsys) -> None:
    assert smoke.main([]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err


@pytest.mark.slow
def test_smoke_cpu_dry_run(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OUT", str(tmp_path / "out"))
    assert (
        smoke.main(["--cpu-dry-run", "--work", str(tmp_path / "w"), "--model", "llama-3.2-1b"]) == 0
    )
    assert (tmp_path / "out" / "smoke.json").is_file()
