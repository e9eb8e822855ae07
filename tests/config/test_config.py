"""Config loading: strict keys, types, overrides, derived values, presets, resolved round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from reasonrl.config import (
    AlgoConfig,
    ConfigError,
    RLConfig,
    load_config,
    parse_override,
    save_resolved,
)
from tests.recipe_schemas import recipe_schema


def write(tmp_path: Path, text: str, name: str = "recipe.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    return write(tmp_path, "rollout:\n  n: 8\n  prompts_per_step: 16\noptim:\n  lr: 1e-4\n")


def error_of(path: Path, overrides: list[str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides or [])
    message = str(info.value)
    assert "\n" not in message  # one line, always
    return message


def test_defaults_and_yaml_float_string(recipe: Path) -> None:
    cfg = load_config(recipe)
    # PyYAML reads `1e-4` (no dot) as a string; the Float type still accepts it as a number.
    assert cfg.optim.lr == pytest.approx(1e-4)
    assert cfg.rollout.n == 8 and cfg.algo.advantage == "grpo"
    assert cfg.trainer.run_name == "recipe"  # derived from the file stem
    assert cfg.run_dir == Path("runs") / "recipe"


def test_derived_values(recipe: Path) -> None:
    cfg = load_config(recipe, ["data.ops=[3,4,5]", "rollout.max_new_tokens=96"])
    assert cfg.data.eval_ops == (2, 3, 4, 5, 6)  # one op below and above
    assert cfg.eval.max_new_tokens == 96
    assert cfg.algo.agg_const is None  # only derived for the Dr. GRPO aggregation
    edge = load_config(recipe, ["data.ops=[1, 2]", "algo.agg=seq_mean_token_sum_norm"])
    assert edge.data.eval_ops == (1, 2, 3)  # op 0 does not exist
    assert edge.algo.agg_const == 160.0  # rollout.max_new_tokens default


def test_overrides_are_yaml_values(recipe: Path) -> None:
    cfg = load_config(
        recipe, ["algo.clip_high=0.28", "data.contexts=[zoo, school]", "trainer.eval_every=5"]
    )
    assert cfg.algo.clip_high == 0.28
    assert cfg.data.contexts == ("zoo", "school")
    assert cfg.trainer.eval_every == 5
    assert parse_override(" a.b = 3 ") == (["a", "b"], 3)
    assert parse_override("a.b=") == (["a", "b"], None)


def test_unknown_key_names_file_and_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, "algo:\n  clip_hihg: 0.3\n")
    msg = error_of(path)
    assert str(path) in msg and "algo.clip_hihg" in msg
    assert "did you mean 'algo.clip_high'" in msg


def test_unknown_section_and_override_key(recipe: Path) -> None:
    msg = error_of(recipe, ["rollouts.n=4"])
    assert "rollouts" in msg and "did you mean 'rollout'" in msg
    msg = error_of(recipe, ["rollout.temprature=0.5"])
    assert "did you mean 'rollout.temperature'" in msg
    assert "[from override rollout.temprature=0.5]" in msg


def test_wrong_type(recipe: Path) -> None:
    msg = error_of(recipe, ["rollout.n=abc"])
    assert msg.startswith(str(recipe)) and "rollout.n" in msg and "'abc'" in msg
    # Booleans and fractional numbers are not silently read as ints / floats.
    assert "rollout.n" in error_of(recipe, ["rollout.n=true"])
    assert "rollout.n" in error_of(recipe, ["rollout.n=2.5"])
    assert "boolean" in error_of(recipe, ["optim.lr=yes"])


def test_literal_typo_suggests_choice(recipe: Path) -> None:
    msg = error_of(recipe, ["algo.advantage=drgrpo"])
    assert "algo.advantage" in msg and "did you mean 'dr_grpo'" in msg and "'drgrpo'" in msg


@pytest.mark.parametrize("bad", ["rollout.n", "=3", "rollout..n=3", "rollout.n.x=3"])
def test_bad_override_syntax(recipe: Path, bad: str) -> None:
    msg = error_of(recipe, [bad])
    assert "bad override" in msg and repr(bad) in msg


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    assert "config file not found" in error_of(tmp_path / "nope.yaml")
    assert "line 2" in error_of(write(tmp_path, "rollout: [1\n"))
    assert "duplicate key 'n' at line 3" in error_of(write(tmp_path, "rollout:\n  n: 8\n  n: 4\n"))
    assert "expected a mapping" in error_of(write(tmp_path, "- 1\n- 2\n"))


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        (["algo.micro_batch_size=7"], "16*8 = 128 is not divisible by algo.micro_batch_size=7"),
        (["algo.old_logprobs=rollout", "algo.ppo_epochs=2"], "needs algo.ppo_epochs=1"),
        (["algo.overlong_buffer=200"], "must be smaller than rollout.max_new_tokens=160"),
        (["data.task=jsonl"], "data.task=jsonl needs data.train_file"),
        (["rollout.engine=vllm"], "needs model.device=cuda"),
        (["data.ops=[]"], "data.ops"),
        (["data.ops=[3,31]"], "data.ops[1]"),
        (["algo.clip_low=0"], "algo.clip_low"),
        (["rollout.n=1"], "rollout.n"),
    ],
)
def test_invalid_combinations(recipe: Path, overrides: list[str], needle: str) -> None:
    assert needle in error_of(recipe, overrides)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 16), prompts=st.integers(1, 16), mbs=st.integers(1, 64))
def test_divisibility_rule(n: int, prompts: int, mbs: int) -> None:
    raw = {"rollout": {"n": n, "prompts_per_step": prompts}, "algo": {"micro_batch_size": mbs}}
    if (n * prompts) % mbs == 0:
        assert RLConfig.model_validate(raw).algo.micro_batch_size == mbs
    else:
        with pytest.raises(ValidationError, match="not divisible"):
            RLConfig.model_validate(raw)


def test_frozen(recipe: Path) -> None:
    cfg = load_config(recipe)
    with pytest.raises(ValidationError):
        cfg.rollout.n = 4  # type: ignore[misc]


def test_resolved_round_trip(recipe: Path, tmp_path: Path) -> None:
    cfg = load_config(recipe, ["algo.agg=seq_mean_token_sum_norm", "trainer.run_name=x"])
    path = save_resolved(cfg, tmp_path / "run")
    assert path == tmp_path / "run" / "config.yaml"
    assert load_config(path) == cfg
    assert "agg_const: 160.0" in path.read_text()  # the derived value is written out


def test_preset_resolution_order(
    recipe: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # schema defaults < preset bundle < explicit user keys
    from reasonrl.algos import presets

    monkeypatch.setattr(
        presets, "PRESETS", {"dapo": {"clip_high": 0.28, "dynamic_sampling": True, "kl_coef": 0.01}}
    )
    path = write(tmp_path, "algo:\n  preset: dapo\n  kl_coef: 0.0\n", "p.yaml")
    algo = load_config(path).algo
    assert (algo.clip_low, algo.clip_high, algo.kl_coef) == (0.2, 0.28, 0.0)
    assert algo.dynamic_sampling is True
    plain = load_config(recipe).algo  # no preset: the schema's defaults
    assert (plain.clip_high, plain.kl_coef, plain.dynamic_sampling) == (0.2, 0.0, False)
    msg = error_of(write(tmp_path, "algo:\n  preset: dapoo\n", "q.yaml"))
    assert "algo.preset" in msg and "did you mean 'dapo'" in msg


def test_real_presets_are_valid(tmp_path: Path) -> None:
    presets = pytest.importorskip("reasonrl.algos.presets")
    fields = set(AlgoConfig.model_fields)
    for name, bundle in presets.PRESETS.items():
        assert set(bundle) <= fields, name
        path = write(tmp_path, f"algo:\n  preset: {name}\n", f"{name}.yaml")
        # Paper-scale overlong buffers (4096) exceed a small max_new_tokens: scaled in recipes.
        scaled = ["algo.overlong_buffer=32"] if bundle.get("overlong_buffer") else []
        assert load_config(path, scaled).algo.preset == name
        if scaled:
            assert "algo.preset=" in error_of(path)


RECIPES = sorted((Path(__file__).resolve().parents[2] / "recipes").glob("*.yaml"))


def test_required_recipes_exist() -> None:
    names = {p.stem for p in RECIPES}
    assert {"quickstart", "grpo", "dr_grpo", "dapo", "gspo", "lite_ppo"} <= names


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_loads_and_has_header(path: Path) -> None:
    header = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    text = "\n".join(header)
    assert header[0].strip("# ")  # the one-line purpose `reasonrl recipes` prints
    for field in ("# Hardware:", "# Launch:", "# Paper:"):
        assert field in text, f"{path.name} header lacks {field}"
    assert "arXiv" in text and f"recipes/{path.name}" in text
    schema = recipe_schema(path)
    if schema is not RLConfig:  # supervised, preference and IRL runs have their own schemas
        load_config(path, schema=schema)
        return
    cfg = load_config(path)
    assert cfg.trainer.run_name == path.stem
    if cfg.algo.preset:
        assert f"preset: {cfg.algo.preset}" in path.read_text()


def test_contexts_and_passk_checks(recipe: Path) -> None:
    assert "did you mean 'school'" in error_of(recipe, ["data.contexts=[zoo, shcool]"])
    msg = error_of(recipe, ["algo.advantage=passk", "algo.passk_k=9"])
    assert "algo.passk_k=9 must be <= rollout.n=8" in msg


def test_usage_doc_lists_every_key() -> None:
    from reasonrl.config.reference import current_block, generated_block

    doc = (Path(__file__).resolve().parents[2] / "docs" / "usage.md").read_text()
    for section, field in RLConfig.model_fields.items():
        assert f"**`{section}`**" in doc
        for key in field.annotation.model_fields:
            assert f"| `{key}` |" in doc, f"docs/usage.md lacks {section}.{key}"
    # the reference is the schema's own text: run `python -m reasonrl.config.reference --write`
    assert current_block(doc) == generated_block(RLConfig)
