"""Tiny random models and fake rollouts shared by the trainer tests."""

from __future__ import annotations

import random

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from reasonrl.types import Completion

VOCAB = 32
PAD = 0


def tiny_model(seed: int = 0) -> Qwen2ForCausalLM:
    torch.manual_seed(seed)
    cfg = Qwen2Config(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        tie_word_embeddings=True,
        pad_token_id=PAD,
    )
    model = Qwen2ForCausalLM(cfg)
    model.eval()  # no dropout in Qwen2 anyway; eval keeps the tests explicit
    return model


def fake_rollouts(n: int, seed: int = 0) -> tuple[list[list[int]], list[Completion]]:
    """n prompts of lengths 3..7 and completions of lengths 1..9 with made-up sampler log-probs."""
    rng = random.Random(seed)
    prompts, comps = [], []
    for _ in range(n):
        prompts.append([rng.randrange(1, VOCAB) for _ in range(rng.randint(3, 7))])
        length = rng.randint(1, 9)
        ids = tuple(rng.randrange(1, VOCAB) for _ in range(length))
        lps = tuple(-rng.random() * 3 for _ in range(length))
        comps.append(Completion(text="", token_ids=ids, logprobs=lps))
    return prompts, comps
