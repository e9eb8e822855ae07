"""A LoRA run end to end: only the adapter trains, the engine samples from base + adapter,
checkpoints hold the adapter and resume exactly, export gives the trained model's logits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("peft")

from reasonrl.config import load_config
from reasonrl.models.io import load_policy
from reasonrl.rl.run import train
from tests.rl.toy import make_toy_model, toy_reward, write_toy_recipe

LORA = {"r": 4, "alpha": 8.0, "target_modules": ["q_proj", "v_proj", "up_proj"]}


@pytest.fixture(scope="module")
def toy_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_toy_model(tmp_path_factory.mktemp("toy") / "model")


def _rows(run_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_lora_run(toy_model: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    from reasonrl.cli import main
    from reasonrl.models.lora import base_model_of, is_lora

    recipe = write_toy_recipe(tmp_path / "r.yaml", toy_model, tmp_path / "runs",
                              model={"lora": LORA}, optim={"lr": 5e-2},
                              trainer={"steps": 4, "save_every": 2})  # fmt: skip
    cfg = load_config(recipe)
    base, _ = load_policy(str(toy_model))
    state = train(cfg, progress=False, reward_fn=toy_reward)
    assert is_lora(state.model)
    trained = dict(base_model_of(state.model).named_parameters())
    lora = {n: p for n, p in trained.items() if "lora_" in n}
    assert lora and all(p.requires_grad for p in lora.values())
    for name, p in base.named_parameters():  # every base weight bit-identical
        module, _, leaf = name.rpartition(".")
        key = f"{module}.base_layer.{leaf}" if f"{module}.base_layer.{leaf}" in trained else name
        assert torch.equal(trained[key], p), key
    # the optimizer holds the adapter only
    held = {id(p) for group in state.optimizer.param_groups for p in group["params"]}
    assert held == {id(p) for p in lora.values()}
    # the engine sampled from base + adapter: its log-probs are the trainer's (fp32)
    rows = _rows(cfg.run_dir)
    assert max(r["is/mismatch_max_abs"] for r in rows) <= 1e-4
    assert any(r.get("actor/grad_norm", 0) > 0 for r in rows)
    # a checkpoint is the adapter in peft's format plus the tokenizer (no full weights)
    ckpt = cfg.run_dir / "checkpoints" / "step_00000004"
    names = {p.name for p in ckpt.iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "tokenizer.json"} <= names
    assert "model.safetensors" not in names
    # transformers opens it too (with peft installed): base from adapter_config.json + adapter
    direct = AutoModelForCausalLM.from_pretrained(str(ckpt), local_files_only=True)
    # export merges the adapter: plain transformers reloads the trained model's logits
    out = tmp_path / "merged"
    assert main(["export", str(cfg.run_dir), str(out)]) == 0
    assert not (out / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(str(out), local_files_only=True)
    ids = torch.tensor([[1, 5, 9, 11, 4]])
    state.model.eval()
    with torch.no_grad():
        want = state.model(input_ids=ids).logits
        assert torch.allclose(merged(ids).logits, want, atol=1e-5)
        assert torch.allclose(direct(ids).logits, want, atol=1e-5)
        assert not torch.allclose(base(ids).logits, want, atol=1e-3)  # training moved it
    assert main(["export", str(cfg.run_dir), str(tmp_path / "ad"), "--adapter"]) == 0
    assert (tmp_path / "ad" / "adapter_model.safetensors").is_file()


def test_lora_resume_is_exact(toy_model: Path, tmp_path: Path) -> None:
    kw = {"model": {"lora": LORA}, "optim": {"lr": 5e-2}}
    full = load_config(write_toy_recipe(tmp_path / "a.yaml", toy_model, tmp_path / "a",
                                        trainer={"steps": 4, "save_every": 2}, **kw))  # fmt: skip
    train(full, progress=False, reward_fn=toy_reward)
    part = load_config(write_toy_recipe(tmp_path / "b.yaml", toy_model, tmp_path / "b",
                                        trainer={"steps": 2, "save_every": 2}, **kw))  # fmt: skip
    train(part, progress=False, reward_fn=toy_reward)
    resumed = load_config(write_toy_recipe(tmp_path / "b.yaml", toy_model, tmp_path / "b",
                                           trainer={"steps": 4, "save_every": 2}, **kw),
                          )  # fmt: skip
    train(resumed, progress=False, reward_fn=toy_reward, resume=True)
    a, b = _rows(full.run_dir), _rows(resumed.run_dir)
    assert [r["step"] for r in b] == [1, 2, 3, 4]
    for ra, rb in zip(a, b, strict=True):
        assert ra["actor/loss"] == rb["actor/loss"] and ra["reward/mean"] == rb["reward/mean"]
