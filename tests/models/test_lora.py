"""LoRA via peft: only the adapter trains, the merged weights equal peft's merge, an engine synced
with them samples what the trainer scores, exports reload without peft, adapter state round-trips.
"""

from __future__ import annotations

import copy
import json
import sys

import pytest
import torch

pytest.importorskip("peft")

from reasonrl.models.io import quiet_progress_bars
from reasonrl.models.lora import (
    adapter_state_dict,
    apply_lora,
    base_model_of,
    export_merged,
    is_lora,
    load_adapter_state_dict,
    merged_named_parameters,
    plain_copy,
    save_adapter,
)
from reasonrl.rl.batching import collate
from reasonrl.rl.logprobs import response_logprobs
from reasonrl.rollout.base import SamplingParams
from reasonrl.rollout.hf_engine import HFEngine
from tests.rollout.conftest import EOS, PAD, PROMPTS, VOCAB, WordTokenizer, tiny_model

ARCHS = pytest.mark.parametrize("llama", [False, True], ids=["qwen2", "llama"])


@pytest.fixture(autouse=True)
def _one_thread():
    # tiny ops on a shared 2-core machine: extra threads only add barrier waits
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def lora_pair(llama: bool = False, *, seed: int = 0, r: int = 4, alpha: float = 8.0):
    """(LoRA model with a random non-zero adapter, plain copy of its base before wrapping)."""
    model = tiny_model(seed, llama=llama)
    plain = copy.deepcopy(model)
    lora = apply_lora(model, r=r, alpha=alpha)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():  # peft initialises B = 0 (a no-op adapter): make the delta non-zero
        for name, p in lora.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    return lora.eval(), plain


def logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids).logits


IDS = torch.tensor([[5, 6, 7, 8, 9, 10, 11, 12], [13, 14, 15, 16, 17, 18, 19, 3]])


@ARCHS
def test_optimizer_step_changes_only_the_adapter(llama: bool) -> None:
    model = apply_lora(tiny_model(llama=llama), r=4, alpha=8)
    assert is_lora(model) and not is_lora(base_model_of(model))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    # 7 projections x 2 layers x (A, B); nothing of the base model trains
    assert len(trainable) == 28
    assert all(".lora_A." in n or ".lora_B." in n for n in trainable)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    out = model(input_ids=IDS).logits
    (out * torch.randn_like(out)).sum().backward()
    opt.step()
    after = dict(model.named_parameters())
    for name, value in before.items():
        if name not in trainable:
            assert torch.equal(after[name], value), f"base tensor {name} changed"
    changed = [n for n in trainable if not torch.equal(after[n], before[n])]
    assert any(".lora_B." in n for n in changed)  # B gets a gradient even at B = 0


@ARCHS
def test_merged_named_parameters_equal_peft_merge(llama: bool) -> None:
    model, plain = lora_pair(llama)
    snapshot = {n: p.detach().clone() for n, p in model.named_parameters()}
    merged = merged_named_parameters(model)
    assert [n for n, _ in merged] == [n for n, _ in plain.named_parameters()]
    reference = dict(copy.deepcopy(model).merge_and_unload().named_parameters())
    worst = max((t - reference[n]).abs().max().item() for n, t in merged)
    assert worst <= 1e-6
    assert not any(t.requires_grad for _, t in merged)
    # the deltas are not zero: at least the adapted projections differ from the plain base
    base = dict(plain.named_parameters())
    assert sum(not torch.equal(t, base[n]) for n, t in merged) == 14
    # nothing was merged in place
    for name, p in model.named_parameters():
        assert torch.equal(p, snapshot[name])


@ARCHS
def test_engine_synced_with_merged_weights_samples_the_lora_model(llama: bool) -> None:
    model, plain = lora_pair(llama)
    tok = WordTokenizer()
    params = SamplingParams(n=2, max_new_tokens=12, seed=0)

    def max_gap(engine: HFEngine) -> float:
        out = engine.generate(PROMPTS, params)
        prompts = [p for p, group in zip(PROMPTS, out) for _ in group]
        comps = [c for group in out for c in group]
        batch = collate(prompts, comps, torch.zeros(len(comps)), pad_id=PAD)
        with torch.no_grad():
            trainer, _ = response_logprobs(model, batch)
        assert batch.response_mask.sum() > 30
        return ((trainer - batch.rollout_logprobs).abs() * batch.response_mask).max().item()

    stale = HFEngine(copy.deepcopy(plain), tok, dtype="fp32", share_weights=False)
    synced = HFEngine(plain, tok, dtype="fp32", share_weights=False)
    synced.load_weights(merged_named_parameters(model))
    gap = max_gap(synced)
    print(f"LoRA engine vs trainer max |dlogp| ({'llama' if llama else 'qwen2'}): {gap:.2e}")
    assert gap <= 1e-4
    assert max_gap(stale) > 1e-2  # without the sync the engine samples the base model


@ARCHS
def test_plain_copy_is_the_merged_plain_model(llama: bool) -> None:
    model, plain = lora_pair(llama)
    copied = plain_copy(model)
    assert type(copied) is type(plain) and not is_lora(copied)
    assert [n for n, _ in copied.named_parameters()] == [n for n, _ in plain.named_parameters()]
    assert copied.lm_head.weight is copied.model.embed_tokens.weight  # ties kept
    assert (logits(copied, IDS) - logits(model, IDS)).abs().max() <= 1e-5


def word_tokenizer():
    """A real fast tokenizer with words w0..w{VOCAB-1} (save_policy needs save_pretrained)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {f"w{i}": i for i in range(VOCAB)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="w1"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token=f"w{PAD}", eos_token=f"w{EOS}", unk_token="w1"
    )


def test_export_merged_reloads_without_peft(tmp_path) -> None:
    from transformers import AutoModelForCausalLM

    model, _ = lora_pair()
    out = export_merged(model, word_tokenizer(), tmp_path / "merged", extra={"lora_r": 4})
    assert not (out / "adapter_config.json").exists()
    assert json.loads((out / "reasonrl.json").read_text()) == {"lora_r": 4}
    with quiet_progress_bars():
        reloaded = AutoModelForCausalLM.from_pretrained(str(out), local_files_only=True).eval()
    assert not is_lora(reloaded) and type(reloaded).__name__ == "Qwen2ForCausalLM"
    assert (logits(reloaded, IDS) - logits(model, IDS)).abs().max() <= 1e-5


def test_save_adapter_reloads_with_peft(tmp_path) -> None:
    from peft import PeftModel

    model, plain = lora_pair()
    out = save_adapter(model, tmp_path / "adapter")
    assert {p.name for p in out.iterdir()} >= {"adapter_config.json", "adapter_model.safetensors"}
    config = json.loads((out / "adapter_config.json").read_text())
    assert (config["r"], config["lora_alpha"], config["use_rslora"]) == (4, 8.0, False)
    reloaded = PeftModel.from_pretrained(plain, str(out)).eval()
    assert (logits(reloaded, IDS) - logits(model, IDS)).abs().max() <= 1e-6


def test_adapter_state_dict_round_trip_and_strictness() -> None:
    model, _ = lora_pair()
    want = logits(model, IDS)
    sd = adapter_state_dict(model)
    assert len(sd) == 28 and all(".lora_A." in k or ".lora_B." in k for k in sd)
    other, _ = lora_pair(seed=5)  # same shapes, different base and adapter
    other_sd = adapter_state_dict(other)
    load_adapter_state_dict(model, other_sd)
    assert all(torch.equal(v, other_sd[k]) for k, v in adapter_state_dict(model).items())
    assert not torch.allclose(logits(model, IDS), want)
    load_adapter_state_dict(model, sd)
    assert torch.equal(logits(model, IDS), want)

    key = next(iter(sd))
    with pytest.raises(KeyError, match=r"missing=.*lora_A"):
        load_adapter_state_dict(model, {k: v for k, v in sd.items() if k != key})
    with pytest.raises(KeyError, match=r"unexpected=.*extra\.weight"):
        load_adapter_state_dict(model, {**sd, "extra.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="shape"):
        load_adapter_state_dict(model, {**sd, key: torch.zeros(3, 3)})


def test_bad_target_module_lists_the_linear_modules() -> None:
    with pytest.raises(ValueError, match=r"\['qproj'\].*'down_proj', 'gate_proj'.*'v_proj'"):
        apply_lora(tiny_model(), r=4, alpha=8, target_modules=["q_proj", "qproj"])
    with pytest.raises(ValueError, match="tied"):  # lm_head shares the embedding's weight
        apply_lora(tiny_model(), r=4, alpha=8, target_modules=["lm_head"])
    with pytest.raises(ValueError, match="r > 0"):
        apply_lora(tiny_model(), r=0, alpha=8)


def test_all_linear_adapts_every_projection_but_the_head() -> None:
    model = apply_lora(tiny_model(), r=2, alpha=2, target_modules="all-linear")
    adapted = {n.split(".lora_A.")[0] for n, _ in model.named_parameters() if ".lora_A." in n}
    assert len(adapted) == 14 and not any("lm_head" in n for n in adapted)


def test_conv1d_fan_in_fan_out_merge() -> None:
    # GPT-2 stores its linear layers transposed (transformers' Conv1D): the delta must be too
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    gpt2 = GPT2LMHeadModel(
        GPT2Config(
            n_embd=32, n_layer=2, n_head=2, vocab_size=VOCAB, bos_token_id=EOS, eos_token_id=EOS
        )
    ).eval()
    plain = copy.deepcopy(gpt2)
    model = apply_lora(gpt2, r=4, alpha=4, target_modules=["c_attn", "c_fc"])
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)
    merged = dict(merged_named_parameters(model))
    assert list(merged) == [n for n, _ in plain.named_parameters()]
    reference = dict(copy.deepcopy(model).merge_and_unload().named_parameters())
    assert max((merged[n] - reference[n]).abs().max().item() for n in merged) <= 1e-6
    assert (logits(plain_copy(model), IDS) - logits(model, IDS)).abs().max() <= 1e-5


def test_missing_peft_is_a_clear_import_error(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "peft", None)  # `import peft` now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'reasonrl\[peft\]'"):
        apply_lora(tiny_model(), r=4, alpha=8)
    assert not is_lora(tiny_model())
