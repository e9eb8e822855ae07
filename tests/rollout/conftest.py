"""Tiny random Qwen2 models, a word tokenizer stub, and a naive reference sampler."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import torch

from reasonrl.rollout.base import SamplingParams
from reasonrl.rollout.sampling import sample_next, sequence_keys

VOCAB = 40
EOS = 2
PAD = 0


class WordTokenizer:
    """Token i decodes to the word "w{i}"; words are joined by single spaces."""

    pad_token_id = PAD
    eos_token_id = EOS

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        return " ".join(f"w{int(i)}" for i in ids)


def tiny_model(seed: int = 0, *, llama: bool = False) -> torch.nn.Module:
    """A 2-layer GQA decoder (hidden 64, 4 heads, 2 kv heads) with non-trivial random weights."""
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    config_cls, model_cls = (
        (LlamaConfig, LlamaForCausalLM) if llama else (Qwen2Config, Qwen2ForCausalLM)
    )
    config = config_cls(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        vocab_size=VOCAB,
        tie_word_embeddings=True,
        eos_token_id=EOS,
        pad_token_id=PAD,
        max_position_embeddings=512,
    )
    torch.manual_seed(seed)
    model = model_cls(config).eval()
    with torch.no_grad():  # HF init is near-uniform; this mixes EOS-ended and truncated texts
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


@pytest.fixture(autouse=True)
def _one_thread():
    """These tests run many tiny ops: a second thread only adds synchronisation, and on a busy
    2-core machine OpenMP barriers waiting for a descheduled thread made them ~5x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def model() -> torch.nn.Module:
    return tiny_model()


@pytest.fixture
def tokenizer() -> WordTokenizer:
    return WordTokenizer()


PROMPTS = [[5, 6, 7, 8, 9, 10, 11], [12, 13], [14, 15, 16, 17], [18]]


def naive_generate(
    model: torch.nn.Module,
    prompts: Sequence[Sequence[int]],
    params: SamplingParams,
    *,
    eos: int | None = EOS,
) -> list[list[tuple[list[int], list[float]]]]:
    """Reference sampler: one sequence at a time, full forward over the whole text every step.

    Uses the same per-(sequence, step) noise as the engine, so with the same seed and weights
    the tokens must agree.
    """
    assert params.seed is not None
    keys = sequence_keys(params.seed, prompts, params.n)
    out = []
    for b, prompt in enumerate(prompts):
        group = []
        for j in range(params.n):
            seq, lps = list(prompt), []
            key = keys[b * params.n + j][None]
            for step in range(params.max_new_tokens):
                with torch.no_grad():
                    logits = model(torch.tensor([seq])).logits[:, -1]
                tok, lp = sample_next(
                    logits,
                    key,
                    torch.tensor([step]),
                    temperature=params.temperature,
                    top_k=params.top_k,
                    top_p=params.top_p,
                    greedy=params.greedy,
                )
                seq.append(int(tok))
                lps.append(float(lp))
                if int(tok) == eos:
                    break
            group.append((seq[len(prompt) :], lps))
        out.append(group)
    return out


def hf_greedy(model: torch.nn.Module, prompt: Sequence[int], max_new_tokens: int) -> list[int]:
    """`model.generate`'s greedy response tokens for one prompt (EOS stops it): the reference
    every engine's greedy decoding must equal."""
    with torch.no_grad():
        out = model.generate(
            torch.tensor([list(prompt)]),
            attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
            do_sample=False,
            max_new_tokens=max_new_tokens,
            eos_token_id=EOS,
            pad_token_id=PAD,
        )
    return out[0, len(prompt) :].tolist()
