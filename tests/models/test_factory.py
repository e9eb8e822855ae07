"""Model factory: parameter counts by size, config wiring, save -> from_pretrained round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from reasonrl.models.factory import MODEL_SIZES, build_model, count_parameters
from reasonrl.models.io import load_policy, resolve_policy_path, save_policy
from reasonrl.tasks.synth import build_synth_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return build_synth_tokenizer()


def expected_params(size: str, vocab: int) -> int:
    # Qwen2 layer with hidden h, a heads of dim d = h/a, g kv heads, MLP width m:
    #   q: h*h + h (bias)   k, v: h*(g*d) + g*d each (bias)   o: h*h (no bias)
    #   gate/up/down: 3*h*m   two RMSNorm gains: 2*h
    # plus the final norm h and ONE embedding matrix vocab*h (tied with the LM head).
    s = MODEL_SIZES[size]
    h, m, kv = s.hidden_size, s.intermediate_size, (s.hidden_size // s.num_attention_heads)
    kv *= s.num_key_value_heads
    layer = (h * h + h) + 2 * (h * kv + kv) + h * h + 3 * h * m + 2 * h
    return s.num_hidden_layers * layer + h + vocab * h


@pytest.mark.parametrize(
    ("size", "low", "high"),
    [("nano", 0.9e6, 1.5e6), ("tiny", 2e6, 3e6), ("micro", 3.5e6, 5e6), ("mini", 15e6, 25e6)],
)
def test_parameter_counts(tokenizer, size: str, low: float, high: float) -> None:
    model = build_model(size, tokenizer, seed=0)
    n = count_parameters(model)
    assert n == expected_params(size, len(tokenizer))
    assert low <= n <= high
    # nano by hand with the 1321-token synth vocab: layer = 16512 + 2*8256 + 16384 + 196608
    # + 256 = 246272; 4 layers + final norm 128 + 1321*128 embeddings = 1,154,304
    if size == "nano" and len(tokenizer) == 1321:
        assert n == 1_154_304


def test_qwen2_100m_matches_paper_shape(tokenizer) -> None:
    # Interplay's model_configs/qwen2_100M: 12 layers, 768 hidden, 12 heads, 2 kv heads,
    # MLP 3072, rope theta 1e6, rms eps 1e-6; ~103M parameters with its 2.2k vocabulary.
    assert expected_params("qwen2-100m", 2200) == pytest.approx(103e6, rel=0.02)
    s = MODEL_SIZES["qwen2-100m"]
    assert (s.num_hidden_layers, s.hidden_size, s.num_attention_heads) == (12, 768, 12)
    assert (s.num_key_value_heads, s.intermediate_size) == (2, 3072)
    assert (s.rope_theta, s.rms_norm_eps) == (1e6, 1e-6)


def test_config_takes_special_ids_and_ties_embeddings(tokenizer) -> None:
    model = build_model("nano", tokenizer, seed=0)
    cfg = model.config
    assert cfg.vocab_size == len(tokenizer)
    assert (cfg.pad_token_id, cfg.bos_token_id, cfg.eos_token_id) == (
        tokenizer.pad_token_id,
        tokenizer.bos_token_id,
        tokenizer.eos_token_id,
    )
    assert cfg.num_key_value_heads < cfg.num_attention_heads  # GQA
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight


def test_same_seed_same_weights(tokenizer) -> None:
    a = build_model("nano", tokenizer, seed=3).state_dict()
    b = build_model("nano", tokenizer, seed=3).state_dict()
    c = build_model("nano", tokenizer, seed=4).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_unknown_size_names_choices(tokenizer) -> None:
    with pytest.raises(ValueError, match=r"unknown model size 'huge'.*micro"):
        build_model("huge", tokenizer)


def test_round_trip_with_plain_transformers(tokenizer, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = build_model("nano", tokenizer, seed=0).eval()
    save_policy(model, tokenizer, tmp_path / "m")
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {
        p.name for p in (tmp_path / "m").iterdir()
    }
    text = "<question> The number of adult owl in Maple Zoo equals 3. </question> <solution>"
    reloaded_tok = AutoTokenizer.from_pretrained(str(tmp_path / "m"))
    ids = tokenizer(text)["input_ids"]
    assert reloaded_tok(text)["input_ids"] == ids  # the Qwen2 config.json pitfall is avoided
    assert reloaded_tok.decode(ids) == tokenizer.decode(ids)
    reloaded = AutoModelForCausalLM.from_pretrained(str(tmp_path / "m")).eval()
    x = torch.tensor([ids])
    with torch.no_grad():
        assert torch.equal(model(x).logits, reloaded(x).logits)
    via_loader, tok2 = load_policy(tmp_path / "m")
    with torch.no_grad():
        assert torch.equal(model(x).logits, via_loader(x).logits)
    assert tok2(text)["input_ids"] == ids


def test_load_policy_bf16(tokenizer, tmp_path: Path) -> None:
    save_policy(build_model("nano", tokenizer, seed=0), tokenizer, tmp_path / "m")
    model, _ = load_policy(tmp_path / "m", dtype="bf16")
    assert next(model.parameters()).dtype == torch.bfloat16
    assert not model.training


def test_missing_paths_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"model directory not found: .*nope"):
        load_policy(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no config\.json"):
        load_policy(tmp_path / "empty")
    with pytest.raises(ValueError, match=r"unknown builtin model 'builtin:zzz'.*synth-micro"):
        resolve_policy_path("builtin:zzz")
