"""model.path forms: a hub id (cached snapshot, no network), a run directory, clear errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reasonrl.models.io import BUILTIN_MODELS, load_policy, resolve_policy_path


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Hugging Face cache holding `acme/tiny` (the shipped checkpoint's files) and no network."""
    from huggingface_hub import constants

    snapshot = tmp_path / "hub" / "models--acme--tiny" / "snapshots" / "0123abcd"
    shutil.copytree(BUILTIN_MODELS["synth-micro"], snapshot)
    refs = tmp_path / "hub" / "models--acme--tiny" / "refs"
    refs.mkdir()
    (refs / "main").write_text("0123abcd")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return snapshot


def test_hub_id_resolves_to_the_cached_snapshot(hub_cache: Path) -> None:
    assert resolve_policy_path("acme/tiny") == hub_cache
    model, tokenizer = load_policy("acme/tiny")
    assert model.config.model_type == "qwen2" and tokenizer.pad_token_id is not None


def test_uncached_hub_id_offline_is_one_clear_line(hub_cache: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        resolve_policy_path("Qwen/Qwen2.5-0.5B")
    text = str(info.value)
    assert "\n" not in text
    assert "'Qwen/Qwen2.5-0.5B'" in text and "HF_HUB_OFFLINE=1" in text and "cache" in text


def test_a_missing_local_path_is_not_taken_for_a_hub_id(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="model directory not found"):
        resolve_policy_path(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="model directory not found"):
        resolve_policy_path("./acme/tiny")


def test_run_directory_means_its_newest_complete_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="without a complete checkpoint"):
        resolve_policy_path(run)
    from reasonrl.runtime.checkpoint import save_checkpoint

    model, tokenizer = load_policy("builtin:synth-micro")
    from reasonrl.models.io import save_model_metadata

    def card(out: Path) -> None:
        save_model_metadata(model, tokenizer, out)

    for step in (1, 2):
        save_checkpoint(run, step, model=model, optimizer=None, scheduler=None,
                        sampler_state={}, side_files=card)  # fmt: skip
    assert resolve_policy_path(run) == run / "checkpoints" / "step_00000002"
    reloaded, _ = load_policy(run)
    assert reloaded.config.vocab_size == model.config.vocab_size
