"""Partial rollouts (rollout.partial_token_budget, Kimi k1.5 arXiv 2501.12599 Sec. 2.6): carried
completions are continued with the new weights, each token keeps the log-prob of the weights
that sampled it, old segments are masked or IS-corrected."""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence
from contextlib import closing

import pytest
import torch

from reasonrl.rl.async_rollouts import with_rollouts
from reasonrl.rl.partial import PartialRollouts
from reasonrl.rl.step import train_step
from reasonrl.rl.versions import VersionedGroups, loss_mask
from reasonrl.rollout.base import SamplingParams
from reasonrl.runtime.timing import Timer
from reasonrl.types import Completion
from tests.rl.helpers import VOCAB
from tests.rl.stubs import StubEngine, StubTokenizer, stub_config, stub_state

PROMPT_LEN = 4  # stubs.prompts(): four tokens each
MAX_NEW = 8


class DecodingTokenizer(StubTokenizer):
    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        return " ".join(map(str, ids))


def with_decoder(state):
    state.tokenizer = DecodingTokenizer()
    return state


class ContinuingEngine(StubEngine):
    """Deterministic in the context: the first response token comes from (seed, sample index),
    every later one from the tokens before it, and a completion ends (EOS) at a length set by its
    prompt and first token, so a continuation from prompt + prefix is what one unbudgeted call
    would have generated. Each token's log-prob is -(a fingerprint of the weights sampling it):
    the engine reads the weights of `model` at every call (as a shared-weights engine does)."""

    def __init__(self, model: torch.nn.Module | None = None) -> None:
        super().__init__()
        self.model = model

    def load_weights(self, named_tensors) -> None:  # the producer's private copy
        from reasonrl.rollout.completions import copy_weights

        assert self.model is not None
        copy_weights(self.model, named_tensors, owner="ContinuingEngine")

    def fingerprint(self) -> float:
        assert self.model is not None
        return float(sum(p.detach().double().abs().sum() for p in self.model.parameters()))

    def generate(
        self, prompt_ids: Sequence[Sequence[int]], params: SamplingParams
    ) -> list[list[Completion]]:
        self.calls.append(params)
        lp = -self.fingerprint()
        out = []
        for p in prompt_ids:
            orig, prefix = list(p[:PROMPT_LEN]), list(p[PROMPT_LEN:])
            group = []
            for j in range(params.n):
                resp: list[int] = []
                rng = random.Random(f"{params.seed}/{j}/{orig}")
                first = prefix[0] if prefix else rng.randrange(1, VOCAB)
                target = 1 + (sum(orig) + 7 * first) % MAX_NEW
                reason = "length"
                while len(resp) < params.max_new_tokens:
                    done = prefix + resp
                    nxt = (sum(orig + done) * 31 + len(done)) % (VOCAB - 1) + 1
                    resp.append(nxt if done else first)
                    if len(prefix) + len(resp) == target:
                        reason = "stop"
                        break
                group.append(Completion(" ".join(map(str, resp)), tuple(resp),
                                        (lp,) * len(resp), reason))  # fmt: skip
            out.append(group)
        return out


def partial_state(budget: int, old: str = "mask", k: int = 0):
    cfg = stub_config(rollout={"max_new_tokens": MAX_NEW, "partial_token_budget": budget,
                               "partial_old_segments": old, "max_staleness": k})  # fmt: skip
    state = with_decoder(stub_state(cfg, engine=ContinuingEngine()))
    state.engine.model = state.model
    copy_engine = ContinuingEngine(copy.deepcopy(state.model)) if k else None
    state = with_rollouts(state, copy_engine)
    return state


def test_budget_at_least_max_new_tokens_is_the_ordinary_rollout() -> None:
    state = partial_state(MAX_NEW)
    plain = stub_state(stub_config(rollout={"max_new_tokens": MAX_NEW}),
                       engine=ContinuingEngine())  # fmt: skip
    plain.engine.model = plain.model
    from reasonrl.rl.rollouts import sample_groups

    params = SamplingParams(n=4, max_new_tokens=MAX_NEW, seed=3)
    a = state.rollouts.next(state, params, Timer())
    b = sample_groups(plain, params, Timer())
    assert [c.token_ids for g in a.completions for c in g] == [
        c.token_ids for g in b.completions for c in g
    ]
    assert a.carried_groups == 0 and torch.equal(a.scores, b.scores)


def test_half_budget_finishes_within_two_iterations_with_each_segments_logprobs() -> None:
    state = partial_state(MAX_NEW // 2)
    fps: dict[int, float] = {}
    for _ in range(5):
        fps[state.step] = state.engine.fingerprint()
        metrics, groups = train_step(state)
        assert isinstance(groups, VersionedGroups)
        assert metrics["rollout/segments_max"] <= 2
        for comps, versions in zip(groups.completions, groups.token_versions, strict=True):
            for c, v in zip(comps, versions, strict=True):
                assert len(set(v)) <= 2 and groups.trained_at - v[0] <= 1  # two iterations
                # every token's log-prob is that of the weights of its own version
                assert c.logprobs == tuple(-fps[x] for x in v)
                assert c.finish_reason == "stop" or len(c.token_ids) == MAX_NEW
        assert metrics["rollout/partial_carried"] >= 0
    assert len(fps) == 5 and len(set(fps.values())) == 5  # the weights changed every step


def test_continued_tokens_equal_an_unbudgeted_generation() -> None:
    engine = ContinuingEngine()
    state = with_decoder(stub_state(stub_config(rollout={"max_new_tokens": MAX_NEW}),
                                    engine=engine))  # fmt: skip
    engine.model = state.model
    params = SamplingParams(n=4, max_new_tokens=MAX_NEW, seed=11)
    producer = PartialRollouts(3, mask_old_segments=True)
    trained = []
    for it in range(4):
        groups = producer(state, params, Timer(), it)
        trained += [(tuple(ids), [c.token_ids for c in g])
                    for ids, g in zip(groups.prompt_ids, groups.completions)]  # fmt: skip
    assert trained
    for ids, comps in trained:  # budget 3 of 8: up to three segments, concatenated
        full = engine.generate([list(ids)], params)[0]
        assert comps == [c.token_ids for c in full]


def test_mask_keeps_only_the_last_segment_and_is_keeps_all() -> None:
    for old, want in (("mask", [0, 0, 1, 1, 1]), ("is", [1, 1, 1, 1, 1])):
        state = partial_state(2, old)
        g = VersionedGroups(samples=[], prompt_ids=[], completions=[[Completion("", (1,) * 5,
                            (0.0,) * 5)]], rewards=[], scores=torch.zeros(1, 1),
                            token_versions=[[(3, 3, 4, 4, 4)]],
                            mask_old_segments=state.rollouts.produce.mask_old_segments)  # fmt: skip
        assert loss_mask(g, 6)[0].tolist() == [*map(float, want), 1.0]
    assert stub_config(rollout={"partial_token_budget": 2, "partial_old_segments": "is"}
                       ).algo.is_level == "token"  # fmt: skip
    assert stub_config(rollout={"partial_token_budget": 2}).algo.is_level == "none"
    with pytest.raises(ValueError, match="dynamic_sampling"):
        stub_config(rollout={"partial_token_budget": 2}, algo={"dynamic_sampling": True})


def test_masked_old_segments_carry_no_loss() -> None:
    state = partial_state(MAX_NEW // 2, "mask")
    masked = 0.0
    for _ in range(4):
        _, groups = train_step(state)
        width = max(len(c.token_ids) for g in groups.completions for c in g)
        masked += float((loss_mask(groups, width) == 0).sum())
    assert masked > 0  # some completions spanned two versions; their first segment is masked


def test_partial_with_async_producer() -> None:
    state = partial_state(MAX_NEW // 2, "is", k=1)
    with closing(state.rollouts):
        lags = []
        for _ in range(4):
            metrics, _ = train_step(state)
            lags.append(metrics["rollout/version_lag_max"])
            assert metrics["rollout/segments_max"] <= 2
    # admission control bounds the iteration that finishes a group by K = 1; a member that
    # finished one iteration earlier, in a group carried once, is one version older still
    assert max(lags) <= 2
