"""The shipped base `builtin:synth-micro`: loads offline, tokenizer intact, solves some op 2."""

from __future__ import annotations

import torch

from reasonrl.models.io import BUILTIN_MODELS, load_policy
from reasonrl.tasks.synth import build_synth_tokenizer, make_dataset, row_to_sample


def test_builtin_is_a_small_plain_hf_dir() -> None:
    path = BUILTIN_MODELS["synth-micro"]
    names = {p.name for p in path.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= names
    assert sum(p.stat().st_size for p in path.iterdir()) < 25 * 2**20  # issue 8: <= 25 MB


def test_builtin_loads_with_the_task_tokenizer() -> None:
    from transformers import AutoTokenizer

    model, tok = load_policy("builtin:synth-micro")
    assert model.config.model_type == "qwen2" and model.config.tie_word_embeddings
    text = make_dataset([3], 1, seed=0, split="heldout")[0]
    task_tok = build_synth_tokenizer()
    prompt_and_answer = text["prompt"] + text["completion"]
    want = task_tok(prompt_and_answer)["input_ids"]
    assert tok(prompt_and_answer)["input_ids"] == want
    plain = AutoTokenizer.from_pretrained(str(BUILTIN_MODELS["synth-micro"]))
    assert plain(prompt_and_answer)["input_ids"] == want
    assert model.config.vocab_size >= len(task_tok)


def test_builtin_solves_some_easy_problems() -> None:
    from reasonrl.eval.evaluate import evaluate

    torch.manual_seed(0)
    model, tok = load_policy("builtin:synth-micro")
    samples = [row_to_sample(r) for r in make_dataset([2], 16, seed=11, split="heldout")]
    result = evaluate(model, tok, samples, greedy=True, max_new_tokens=96)
    # the shipped base gets ~0.3 strict pass@1 on op 2 (benchmarks/base_checkpoint.md); an
    # untrained or broken checkpoint gets 0
    assert result.overall["strict_pass@1"] >= 1 / 16
