"""Preference learning: pair builders, pairwise JSONL, the RM head, learned reward (batched ==
per-sample), the pairwise judge's swap symmetry, and tiny `reasonrl rm` / `reasonrl dpo` runs."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from reasonrl.config import load_config
from reasonrl.config.rm import DPOConfig, RMConfig
from reasonrl.data.loaders import DataError
from reasonrl.models.reward_model import (
    RewardModel,
    load_reward_model,
    pad_right,
    save_reward_model,
)
from reasonrl.rewards.batch import call_reward_batch
from reasonrl.rewards.judge import PairwiseJudge
from reasonrl.rewards.learned import LearnedReward, RunningMoments
from reasonrl.rm.data import load_pairs
from reasonrl.rm.loop import batch_indices
from reasonrl.rm.pairs import long2short_pairs, strict_pairs
from reasonrl.types import Completion, RewardResult, Sample

BUILTIN = "builtin:synth-micro"


@pytest.fixture(scope="module")
def rm_and_tok() -> tuple[RewardModel, object]:
    torch.manual_seed(0)
    return load_reward_model(BUILTIN)


def test_strict_pairs() -> None:
    pairs = strict_pairs([True, False, False, True, False], max_pairs=3, rng=random.Random(0))
    assert len(pairs) == 3
    assert all(c in (0, 3) and r in (1, 2, 4) for c, r in pairs)
    assert len({r for _, r in pairs}) == 3  # each wrong one used once before any reuse
    assert strict_pairs([True, True], max_pairs=4, rng=random.Random(0)) == []


def test_long2short_rule() -> None:
    correct = [True, True, True, False]
    lengths = [10, 15, 16, 5]  # shortest correct = 0 (10); 15 is not > 1.5 * 10, 16 is
    pairs = long2short_pairs(correct, lengths, ratio=1.5, max_pairs=9, rng=random.Random(0))
    assert sorted(pairs) == [(0, 2), (0, 3)]
    assert long2short_pairs([False], [3], max_pairs=2, rng=random.Random(0)) == []


def test_load_pairs_field_mapping(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"q": "2+2", "good": "4", "bad": "5", "src": "x"}) + "\n")
    (pair,) = load_pairs(path, prompt_key="q", chosen_key="good", rejected_key="bad")
    assert (pair.prompt, pair.chosen, pair.rejected, pair.meta) == ("2+2", "4", "5", {"src": "x"})
    with pytest.raises(DataError, match=r"p\.jsonl:1"):
        load_pairs(path)  # default keys: no 'chosen' field


def test_batch_order_is_a_function_of_step() -> None:
    one_epoch = sorted(i for s in range(3) for i in batch_indices(10, 4, 0, s))
    assert one_epoch == list(range(10))
    assert batch_indices(10, 4, 0, 5) == batch_indices(10, 4, 0, 5)


def test_pooling_ignores_padding(rm_and_tok: tuple) -> None:
    rm, _ = rm_and_tok
    for pooling in ("last", "mean"):
        rm.pooling = pooling
        alone = rm(*pad_right([[5, 6, 7]], 0))
        padded = rm(*pad_right([[5, 6, 7], [5, 6, 7, 8, 9]], 0))
        assert torch.allclose(alone[0], padded[0], atol=1e-5), pooling
    rm.pooling = "last"
    ids, mask = pad_right([[5, 6, 7]], 0)
    assert not torch.allclose(rm(ids, mask), RewardModel(rm.lm, pooling="mean")(ids, mask))


def test_save_load_round_trip(rm_and_tok: tuple, tmp_path: Path) -> None:
    rm, tok = rm_and_tok
    ids, mask = pad_right([[5, 6, 7, 8]], 0)
    save_reward_model(rm, tok, tmp_path / "rm")
    again, _ = load_reward_model(tmp_path / "rm")
    assert torch.allclose(rm.eval()(ids, mask), again(ids, mask), atol=1e-6)


def _batch() -> tuple[list[Sample], list[Completion]]:
    samples = [Sample(id=str(i), prompt=f"p{i}", answer="1") for i in range(3)]
    comps = [Completion(f"c{i}", tuple(range(4, 9 + i)), (0.0,) * (5 + i)) for i in range(3)]
    return [samples[0], samples[0], samples[1], samples[2]], [
        comps[0],
        comps[1],
        comps[1],
        comps[2],
    ]


def _encode(s: Sample, c: Completion) -> list[int]:
    return [1, 10 + int(s.id), *c.token_ids]


def test_learned_reward_batched_equals_per_sample(rm_and_tok: tuple) -> None:
    rm, tok = rm_and_tok
    samples, comps = _batch()
    calls: list[int] = []
    verifiable = lambda s, c: RewardResult(1.0, {}, outcome=c.text != "c1")  # noqa: E731
    reward = LearnedReward(rm, tok, encode=_encode, normalize=False, combine="gated",
                           verifiable=verifiable)  # fmt: skip
    real = reward.raw_scores
    reward.raw_scores = lambda s, c: calls.append(len(s)) or real(s, c)  # type: ignore[method-assign]
    batched = call_reward_batch(reward, samples, comps)
    assert calls == [4]  # one RM pass for the whole batch
    single = [reward(s, c) for s, c in zip(samples, comps, strict=True)]
    for b, o in zip(batched, single, strict=True):
        assert b.score == pytest.approx(o.score, abs=1e-5)
    assert batched[1].score == 0.0 and batched[0].score > 0  # gated on the verifier
    assert batched[0].outcome is True and "learned" in batched[0].info


def test_running_normalisation() -> None:
    m = RunningMoments()
    m.update([1.0, 2.0, 3.0, 4.0])
    assert (m.mean, m.std) == (2.5, pytest.approx(1.118034, abs=1e-6))


def test_learned_weighted_and_normalised(rm_and_tok: tuple) -> None:
    rm, tok = rm_and_tok
    samples, comps = _batch()
    reward = LearnedReward(rm, tok, encode=_encode, normalize=True, combine="weighted",
                           weight=0.25, verifiable=lambda s, c: 1.0)  # fmt: skip
    out = reward.batch(samples, comps)
    z = torch.tensor([r.info["learned_norm"] for r in out])
    assert float(z.mean()) == pytest.approx(0.0, abs=1e-5)  # this batch alone set the moments
    assert out[0].score == pytest.approx(0.25 * out[0].info["learned_norm"] + 0.75, abs=1e-6)


def test_judge_swap_symmetry() -> None:
    from reasonrl.models.io import load_policy

    lm, tok = load_policy(BUILTIN)
    judge = PairwiseJudge(lm, tok, yes="A", no="B")
    q = Sample(id="q", prompt="<question> x </question>", answer="3")
    y, z = " Answer: 3 </solution>", " Answer: 7 </solution>"
    # R(y, z) + R(z, y) = 1 whatever the judge's position bias
    assert judge.compare(q.prompt, y, z) + judge.compare(q.prompt, z, y) == pytest.approx(1.0)
    p_yz, p_zy = judge.first_better([(q.prompt, y, z), (q.prompt, z, y)])
    assert judge.compare(q.prompt, y, z) == pytest.approx(0.5 * (p_yz + 1 - p_zy))
    (res,) = call_reward_batch(judge, [q], [Completion(y, (1,), (0.0,))])
    assert 0.0 <= res.score <= 1.0  # batched path agrees with the single call
    assert res.score == pytest.approx(judge(q, Completion(y, (1,), (0.0,))).score, abs=1e-6)
    with pytest.raises(ValueError, match="one token"):
        PairwiseJudge(lm, tok, yes=" YES maybe", no="B")


def _pairs_file(tmp_path: Path) -> Path:
    rows = [{"prompt": "<question> a </question> <solution>", "chosen": " Answer: 2 </solution>",
             "rejected": " Answer: 9 9 9 </solution>"}] * 8  # fmt: skip
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_rm_run_learns_and_resumes(tmp_path: Path) -> None:
    from reasonrl.rm.train import run_rm

    data = _pairs_file(tmp_path)
    recipe = tmp_path / "rm.yaml"
    recipe.write_text(f"data:\n  train_file: {data}\n  eval_file: {data}\n")
    over = [f"train.out_dir={tmp_path / 'run'}", "train.batch_size=4", "train.epochs=3",
            "optim.lr=1e-3", "optim.warmup_steps=0", "train.save_every=2"]  # fmt: skip
    cfg = load_config(recipe, over, schema=RMConfig)
    final = run_rm(cfg)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["after"]["pair_accuracy"] == 1.0 and summary["steps"] == 6
    assert (final / "reward_head.safetensors").is_file()
    assert (tmp_path / "run" / "checkpoints").is_dir()
    again = run_rm(load_config(recipe, [*over, "train.resume=true"], schema=RMConfig))
    rows = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["step"] for r in rows] == [1, 2, 3, 4, 5, 6]  # resumed at step 4
    assert again == final


def test_dpo_run_raises_margin(tmp_path: Path) -> None:
    from reasonrl.rm.dpo import run_dpo

    data = _pairs_file(tmp_path)
    recipe = tmp_path / "dpo.yaml"
    recipe.write_text(f"data:\n  train_file: {data}\n  eval_file: {data}\n")
    over = [f"train.out_dir={tmp_path / 'dpo'}", "train.batch_size=4", "train.epochs=2",
            "optim.lr=1e-3", "optim.warmup_steps=0", "loss.kind=ipo"]  # fmt: skip
    run_dpo(load_config(recipe, over, schema=DPOConfig))
    summary = json.loads((tmp_path / "dpo" / "summary.json").read_text())
    assert summary["eval"]["margin"] > 0 and summary["eval"]["implicit_accuracy"] == 1.0


def test_dpo_config_refuses_unread_keys(tmp_path: Path) -> None:
    from reasonrl.config import ConfigError

    recipe = tmp_path / "d.yaml"
    recipe.write_text("loss:\n  label_smoothing: 0.1\n")
    with pytest.raises(ConfigError, match="label_smoothing"):
        load_config(recipe, schema=DPOConfig)


def test_reward_kind_learned_from_yaml(rm_and_tok: tuple, tmp_path: Path) -> None:
    from reasonrl.rl.build import make_reward
    from reasonrl.rm.pairs import synth_samples

    rm, tok = rm_and_tok
    save_reward_model(rm, tok, tmp_path / "rm")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"reward:\n  kind: learned\n  learned_model: {tmp_path / 'rm'}\n"
                      "  learned_combine: gated\n")  # fmt: skip
    reward = make_reward(load_config(recipe))
    sample = synth_samples([2], 1, split="train", seed=0)[0]
    gold = " " + sample.meta["trace"] + f" </solution> <answer> {sample.answer} </answer>"
    ids = tuple(tok(gold, add_special_tokens=False)["input_ids"])
    good, bad = Completion(gold, ids, (0.0,) * len(ids)), Completion(" x", (5,), (0.0,))
    results = call_reward_batch(reward, [sample, sample], [good, bad])
    assert results[0].verified is True and results[0].score > 0  # the strict gate opens
    assert results[1].score == 0.0 and results[1].verified is False
