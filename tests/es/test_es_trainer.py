"""The ES trainer: which weights are perturbed, hook == in place == dense weights, the update
regenerates the rollouts' noise, config refusals, and a tiny run that checkpoints and resumes
exactly through `reasonrl train`'s loop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from reasonrl.algos.es import antithetic, es_step_delta, shape_fitness
from reasonrl.config import load_config
from reasonrl.es.perturb import MemberNoise, NoiseSpec, base_copy, es_targets, hooked, in_place
from reasonrl.es.update import es_deltas
from tests.rl.helpers import VOCAB, tiny_model
from tests.rl.toy import make_toy_model, toy_reward, write_toy_recipe


def test_targets_are_the_untied_linear_weights() -> None:
    model = tiny_model()
    names = [t.name for t in es_targets(model)]
    assert "lm_head.weight" not in names  # tied to the embedding
    assert len(names) == 2 * 7  # q, k, v, o, gate, up, down per layer
    assert names[0] == "model.layers.0.self_attn.q_proj.weight"


@pytest.mark.parametrize("noise", ["low_rank", "full"])
def test_hook_equals_in_place_equals_dense_weights(noise: str) -> None:
    model = tiny_model()
    targets = es_targets(model)
    spec = NoiseSpec(seed=3, generation=1, rank=2, sigma=0.05, noise=noise)  # type: ignore[arg-type]
    member = MemberNoise(targets, spec, member=1)
    ids = torch.randint(1, VOCAB, (2, 7))
    with torch.no_grad():
        plain = model(ids).logits
        with hooked(targets, member):
            by_hook = model(ids).logits
        base = base_copy(targets)
        with in_place(targets, member, base):
            by_weights = model(ids).logits
            for t in targets:  # W = base + E inside
                i = t.index
                assert torch.allclose(t.module.weight, base[i] + member.dense(i))
        after = model(ids).logits
    assert not torch.allclose(by_hook, plain, atol=1e-4)
    assert torch.allclose(by_hook, by_weights, atol=1e-5)
    assert torch.equal(after, plain)  # the restore is bit-exact
    assert all(torch.equal(t.module.weight, w) for t, w in zip(targets, base, strict=True))
    # antithetic partner: the opposite perturbation
    partner = MemberNoise(targets, spec, member=0)
    assert torch.equal(partner.dense(0), -member.dense(0))
    if noise == "low_rank":  # (m + n) r floats per weight vs m n
        expected = sum(4 * (m + n) * 2 for m, n in (t.shape for t in targets))
    else:
        expected = sum(4 * m * n for m, n in (t.shape for t in targets))
    assert member.nbytes == expected


@pytest.mark.parametrize("noise", ["low_rank", "full"])
def test_update_regenerates_the_rollout_noise(noise: str) -> None:
    """es_deltas == lr sqrt(N) (1/N) sum_i f_i E_i with E_i from the members the rollouts used."""
    model = tiny_model()
    targets = es_targets(model)
    spec = NoiseSpec(seed=0, generation=5, rank=1, sigma=0.1, noise=noise)  # type: ignore[arg-type]
    fitness = shape_fitness(torch.tensor([0.0, 1.0, 0.5, 0.5, 2.0, 1.0]))
    deltas, peak = es_deltas(targets, spec, fitness, lr=0.3)
    members = [MemberNoise(targets, spec, i) for i in range(6)]
    for t, d in zip(targets, deltas, strict=True):
        g = sum(fitness[i] * members[i].dense(t.index) for i in range(6)) / 6
        assert torch.allclose(d, es_step_delta(g, lr=0.3, population=6), atol=1e-6)
    assert peak > 0
    assert antithetic(4) == (2, 1.0)
    with pytest.raises(ValueError, match="even"):
        es_deltas(targets, spec, fitness[:5], lr=0.3)


def test_config_refusals(tmp_path: Path) -> None:
    recipes = Path(__file__).resolve().parents[2] / "recipes"  # any working directory
    recipe = recipes / "es_synth.yaml"
    cfg = load_config(recipe)
    assert cfg.algo.kind == "es" and cfg.es.population == 8
    with pytest.raises(ValueError, match=r"unless algo.kind=es"):
        load_config(recipes / "quickstart.yaml", ["es.rank=2"])
    with pytest.raises(ValueError, match=r"algo.clip_high"):
        load_config(recipe, ["algo.clip_high=0.28"])
    with pytest.raises(ValueError, match="multiple of 2"):
        load_config(recipe, ["es.population=5"])
    with pytest.raises(ValueError, match=r"rollout.engine=hf"):
        load_config(recipe, ["es.apply=hook"])
    with pytest.raises(ValueError, match=r"es.greedy=false"):
        load_config(recipe, ["es.samples=2"])


def _es_recipe(tmp_path: Path, model: Path, **es: object) -> Path:
    import yaml

    path = write_toy_recipe(
        tmp_path / "r.yaml", model, tmp_path / "runs",
        es={"population": 4, "sigma": 0.05, "lr": 0.5, **es},
        rollout={"n": 2, "prompts_per_step": 2, "max_new_tokens": 8},
        trainer={"steps": 2, "save_every": 1},
    )  # fmt: skip
    recipe = yaml.safe_load(path.read_text())
    recipe["algo"] = {"kind": "es"}  # no policy-gradient key: ES refuses them
    path.write_text(yaml.safe_dump(recipe))
    return path


@pytest.mark.parametrize("engine", ["fused", "hf"])
def test_es_run_checkpoints_and_resumes_exactly(tmp_path: Path, engine: str) -> None:
    from reasonrl.es.run import train

    model = make_toy_model(tmp_path / "model")
    recipe = _es_recipe(tmp_path, model, greedy=False)
    over = [f"rollout.engine={engine}"]
    straight = train(load_config(recipe, [*over, "trainer.run_name=a"]), progress=False,
                     reward_fn=toy_reward)  # fmt: skip
    half = load_config(recipe, [*over, "trainer.run_name=b", "trainer.steps=1"])
    train(half, progress=False, reward_fn=toy_reward)
    resumed = train(load_config(recipe, [*over, "trainer.run_name=b"]), progress=False,
                    reward_fn=toy_reward, resume=True)  # fmt: skip
    assert straight.step == resumed.step == 2
    sa, sb = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa), "weights differ after resume"
    rows = [json.loads(x) for x in (half.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    for key in ("es/fitness_mean", "es/fitness_std", "es/update_norm", "reward/mean"):
        assert all(key in r for r in rows), key
    assert any(r["es/update_norm"] > 0 for r in rows)
    before = make_toy_model(tmp_path / "fresh")
    from reasonrl.models.io import load_policy

    base, _ = load_policy(str(before))
    moved = [n for n, p in base.named_parameters() if not torch.equal(p, sa[n])]
    assert moved and all(n.endswith("proj.weight") for n in moved)  # only the ES targets move


def test_rl_train_refuses_es_without_its_step(tmp_path: Path) -> None:
    from reasonrl.rl.run import train

    model = make_toy_model(tmp_path / "model")
    with pytest.raises(ValueError, match=r"reasonrl.es.run"):
        train(load_config(_es_recipe(tmp_path, model)), progress=False, reward_fn=toy_reward)
