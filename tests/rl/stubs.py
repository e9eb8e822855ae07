"""A stub engine, tokenizer, prompt source and rewards, so orchestration tests can check what each
loop feature does in a fraction of a second, without a trained model.

The stub engine samples made-up token ids (seeded by SamplingParams.seed) and reports log-prob -1
for each; the trainer's own forward of the tiny random model provides the real log-probs.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch

from reasonrl.config import RLConfig
from reasonrl.data.sources import ListSource
from reasonrl.rl.build import lr_schedule, make_kl_controller
from reasonrl.rl.state import TrainState
from reasonrl.rollout.base import SamplingParams
from reasonrl.types import Completion, RewardResult, Sample
from tests.rl.helpers import PAD, VOCAB, tiny_model


class StubTokenizer:
    """Prompt text "3 5 7" -> ids [3, 5, 7]; no BOS."""

    pad_token_id = PAD
    bos_token_id = None
    eos_token_id = None

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": [int(t) for t in text.split()]}


class StubEngine:
    """Completions of lengths 1..max_new_tokens with random ids; records every call."""

    def __init__(self, *, fixed_length: int | None = None) -> None:
        self.calls: list[SamplingParams] = []
        self.weight_syncs = 0
        self.fixed_length = fixed_length

    def generate(
        self, prompt_ids: Sequence[Sequence[int]], params: SamplingParams
    ) -> list[list[Completion]]:
        self.calls.append(params)
        rng = random.Random(params.seed)
        out = []
        for _ in prompt_ids:
            group = []
            for _ in range(params.n):
                length = self.fixed_length or rng.randint(1, params.max_new_tokens)
                ids = tuple(rng.randrange(1, VOCAB) for _ in range(length))
                reason = "length" if length == params.max_new_tokens else "stop"
                group.append(Completion(" ".join(map(str, ids)), ids, (-1.0,) * length, reason))
            out.append(group)
        return out

    def load_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        self.weight_syncs += 1
        self.synced = dict(named_tensors)


def even_fraction(sample: Sample, completion: Completion) -> float:
    """Share of even token ids: varies within a group, so advantages are non-zero."""
    ids = completion.token_ids
    return sum(t % 2 == 0 for t in ids) / max(1, len(ids))


def prompts(n: int = 8) -> list[Sample]:
    rng = random.Random(1)
    return [
        Sample(
            prompt=" ".join(str(rng.randrange(1, VOCAB)) for _ in range(4)), answer="", id=str(i)
        )
        for i in range(n)
    ]


def stub_config(**sections: dict[str, Any]) -> RLConfig:
    """A small valid config; keyword arguments update its sections (algo={...}, ...)."""
    raw: dict[str, Any] = {
        "rollout": {"n": 4, "prompts_per_step": 4, "max_new_tokens": 8},
        "algo": {"micro_batch_size": 4},
        "optim": {"lr": 1e-2, "grad_clip": None},
        "reward": {"kind": "math"},
        "data": {"task": "benchmark", "benchmark": "gsm8k_train"},
    }
    for name, update in sections.items():
        raw[name] = {**raw.get(name, {}), **update}
    return RLConfig.model_validate(raw)


def stub_state(
    cfg: RLConfig,
    reward: Callable[[Sample, Completion], float | RewardResult | None] = even_fraction,
    *,
    engine: StubEngine | None = None,
    samples: list[Sample] | None = None,
) -> TrainState:
    model = tiny_model(0)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr)
    ref = None
    if cfg.algo.kl_coef > 0:
        ref = copy.deepcopy(model).eval().requires_grad_(False)
    critic = None
    if cfg.algo.advantage == "gae":
        from reasonrl.rl.critic import Critic, ValueModel

        c = cfg.critic
        critic = Critic(
            ValueModel.from_causal_lm(copy.deepcopy(model), init_seed=cfg.trainer.seed),
            lr=c.lr,
            weight_decay=c.weight_decay,
            grad_clip=c.grad_clip,
            value_clip=c.value_clip,
            micro_batch_size=cfg.algo.micro_batch_size,
            dtype="fp32",
            device="cpu",
        )
    return TrainState(
        cfg=cfg,
        model=model,
        tokenizer=StubTokenizer(),
        optimizer=optimizer,
        scheduler=torch.optim.lr_scheduler.LambdaLR(optimizer, lr_schedule(cfg)),
        engine=engine or StubEngine(),
        source=ListSource(samples or prompts(), seed=0),
        reward_fn=reward,
        ref_model=ref,
        critic=critic,
        kl_ctl=make_kl_controller(cfg),
    )
