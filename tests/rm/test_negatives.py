"""rm.negatives (demonstrations, hard negatives), validation split, freezing, the IRL recipe."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from reasonrl.rm.negatives import (
    KINDS,
    completion_ids,
    corrupt,
    demonstration_pairs,
    gold_completion,
    hard_negative_pairs,
)
from reasonrl.rm.pairs import synth_samples
from reasonrl.tasks.synth.reward import synth_reward
from reasonrl.types import Completion


@pytest.fixture(scope="module")
def tok():
    from reasonrl.models.io import load_policy

    return load_policy("builtin:synth-micro")[1]


@pytest.fixture(scope="module")
def problems():
    return synth_samples([2, 3], 8, split="train", seed=0)


def test_gold_is_strict_correct_and_ends_with_eos(tok, problems) -> None:
    for s in problems:
        assert synth_reward(s, gold_completion(s), strict=True).verified
    ids = completion_ids(tok, gold_completion(problems[0]))
    assert ids[-1] == tok.eos_token_id and tok.eos_token_id not in ids[:-1]


@pytest.mark.parametrize("kind", KINDS)
def test_each_corruption_changes_one_step(problems, kind) -> None:
    rng = random.Random(0)
    made = [corrupt(s.meta["trace"], kind, rng, prompt=s.prompt) for s in problems]
    made = [(s, m) for s, m in zip(problems, made, strict=True) if m is not None]
    assert made, kind
    for s, m in made:
        assert m != s.meta["trace"]
        assert m.count("Define") == s.meta["trace"].count("Define")  # same steps, one changed


def test_hard_negatives_are_strict_wrong_pairs_of_gold(tok, problems) -> None:
    pairs = hard_negative_pairs(problems, tok, per_problem=3, rng=random.Random(0))
    assert len(pairs) >= 2 * len(problems)
    by_id = {s.id: s for s in problems}
    for p in pairs:
        s = by_id[p.meta["id"]]
        assert p.chosen == gold_completion(s)
        assert not synth_reward(s, p.rejected, strict=True).verified
        assert p.rejected_ids[-1] == tok.eos_token_id
    assert len({(p.meta["id"], p.rejected) for p in pairs}) == len(pairs)  # no duplicates


def test_demonstrations_pair_gold_with_wrong_samples(tok, problems) -> None:
    s = problems[0]
    good = Completion(text=gold_completion(s), token_ids=(5,), logprobs=(0.0,))
    bad = Completion(text=" nonsense", token_ids=(6,), logprobs=(0.0,))
    pairs = demonstration_pairs([(s, [1], [good, bad, bad], [True, False, False])], tok,
                                max_pairs=1, rng=random.Random(0))  # fmt: skip
    assert len(pairs) == 1 and pairs[0].rejected == " nonsense" and pairs[0].rejected_ids == (6,)


def test_freeze_lower_layers() -> None:
    from reasonrl.models.reward_model import load_reward_model
    from reasonrl.rm.train import freeze_lower

    rm, _ = load_reward_model("builtin:synth-micro")
    total = sum(p.numel() for p in rm.parameters())
    left = freeze_lower(rm, 2)
    assert 0 < left < total
    assert not any(p.requires_grad for p in rm.lm.base_model.layers[1].parameters())
    assert all(p.requires_grad for p in rm.lm.base_model.layers[2].parameters())
    assert all(p.requires_grad for p in rm.head.parameters())
    with pytest.raises(ValueError, match="decoder layers"):
        freeze_lower(rm, 99)


def test_extras_need_synth_ops_and_dpo_refuses_rm_keys() -> None:
    from reasonrl.config.rm import DPOConfig, PrefDataConfig

    with pytest.raises(ValueError, match=r"need data\.synth_ops"):
        PrefDataConfig(train_file="x.jsonl", hard_negatives=2)
    with pytest.raises(ValueError, match="read only by"):
        DPOConfig.model_validate({"data": {"synth_ops": [2], "val_fraction": 0.2}})


def test_irl_recipe_resolves_to_valid_rm_and_rl_configs(monkeypatch: pytest.MonkeyPatch) -> None:
    from reasonrl.config import RLConfig, load_config
    from reasonrl.config.rm import IRLConfig, RMConfig

    monkeypatch.chdir(Path(__file__).resolve().parents[2])  # its recipe paths are the repo's

    cfg = load_config("recipes/irl_synth.yaml", [], schema=IRLConfig)
    rm = load_config(cfg.rm_recipe, [*cfg.rm_overrides, "data.sampler=builtin:synth-micro"],
                     schema=RMConfig)  # fmt: skip
    assert rm.data.demonstrations == "all" and rm.data.pair_builder == "none"
    rl = load_config(cfg.rl_recipe, [*cfg.rl_overrides, "reward.kind=learned",
                                     "reward.learned_model=x", "trainer.steps=3"],
                     schema=RLConfig)  # fmt: skip
    assert rl.reward.kind == "learned"


def test_learned_reward_logs_strict_of_the_same_samples(tmp_path) -> None:
    """reward.kind=learned, combine none, synthetic task: info `strict` (reward/strict) and the
    strict verdict ride along; the score is the RM's alone."""
    import torch

    from reasonrl.config import load_config
    from reasonrl.models.reward_model import load_reward_model, save_reward_model
    from reasonrl.rewards.batch import call_reward_batch
    from reasonrl.rl.build import make_reward

    torch.manual_seed(0)
    rm, tok = load_reward_model("builtin:synth-micro")
    save_reward_model(rm, tok, tmp_path / "rm")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"reward:\n  kind: learned\n  learned_model: {tmp_path / 'rm'}\n"
                      "  learned_normalize: false\n")  # fmt: skip
    reward = make_reward(load_config(recipe))
    s = synth_samples([2], 1, split="train", seed=0)[0]
    ids = tuple(completion_ids(tok, gold_completion(s)))
    good = Completion(gold_completion(s), ids, (0.0,) * len(ids))
    bad = Completion(" x", (5,), (0.0,))
    res = call_reward_batch(reward, [s, s], [good, bad])
    assert [r.info["strict"] for r in res] == [1.0, 0.0]
    assert res[0].verified is True and res[1].verified is False
    assert [r.score for r in res] == pytest.approx([r.info["learned"] for r in res])
