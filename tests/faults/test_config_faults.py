"""Fault injection on the inputs of a run (issue 14): every bad config value, path, device and data
file is refused with exit 2 and one line naming the file, the key and the value, before any model
loads and before anything is written; rewards that hang, raise SystemExit or return a string fail
one sample, counted by cause; over-long prompts are skipped (named by file and row) or refused;
empty and non-UTF-8 data files are named (with the line); eval.temperature=0 means greedy."""

from __future__ import annotations

import ast
import gzip
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from reasonrl import cli
from reasonrl.cli import common
from reasonrl.config import ConfigError, RLConfig, load_config, save_resolved
from reasonrl.data.loaders import DataError, iter_jsonl
from reasonrl.types import Completion, RewardResult, Sample
from tests.recipe_schemas import recipe_schema

SRC = Path(__file__).resolve().parents[2] / "src" / "reasonrl"
RECIPES = Path(__file__).resolve().parents[2] / "recipes"
GOOD = "trainer:\n  out_dir: runs\n  steps: 2\n"
ROW = '{"question": "1+1?", "answer": "2"}\n'


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "good.yaml").write_text(GOOD)
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "comments.yaml").write_text("# a recipe\n\n# with nothing in it\n")
    (tmp_path / "rows.jsonl").write_text(ROW * 3)
    (tmp_path / "blank.jsonl").write_text("\n\n")
    (tmp_path / "latin1.jsonl").write_bytes(
        ROW.encode() + '{"question": "caf\xe9"}\n'.encode("latin-1")
    )
    return tmp_path


@pytest.fixture
def guarded(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The run loop records calls (and would create the run dir); loading any model fails the test.
    CUDA is absent, whatever this machine has, so `model.device=cuda` has one expected outcome."""
    import torch

    import reasonrl.models.io as io

    calls: list[Any] = []

    def train_main(cfg: RLConfig, **kwargs: Any) -> int:
        calls.append(cfg)
        cfg.run_dir.mkdir(parents=True)
        return 0

    def no_model(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a model was loaded before the config was checked")

    real_load = common.load_target
    monkeypatch.setattr(
        common, "load_target", lambda t: train_main if t.endswith(":train_main") else real_load(t)
    )
    monkeypatch.setattr(io, "load_policy", no_model)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", None)
    return calls


JSONL = ["data.task=jsonl", "data.train_file=rows.jsonl", "reward.kind=math"]

# (recipe, overrides, what the one line must name): the "config accepted that cannot work" list
# of issue 14 and its neighbours.
BAD = {
    "empty-recipe": ("empty.yaml", [], ["empty.yaml", "empty"]),
    "comment-only-recipe": ("comments.yaml", [], ["comments.yaml", "empty"]),
    "clip_low=1": ("good.yaml", ["algo.clip_low=1.0"], ["algo.clip_low=1", "< 1"]),
    "clip_low>1": ("good.yaml", ["algo.clip_low=1.5"], ["algo.clip_low", "1.5"]),
    "clip_high=1 ppo": ("good.yaml", ["algo.clip_high=1.0"], ["algo.clip_high=1", "ppo_clip"]),
    "entropy<0": ("good.yaml", ["algo.entropy_coef=-0.1"], ["algo.entropy_coef", "-0.1"]),
    "kl_coef=1e12": (
        "good.yaml",
        ["algo.kl_coef=1e12"],
        ["algo.kl_coef", "1e12", "less than or equal to 10"],
    ),
    "kl_coef<0": ("good.yaml", ["algo.kl_coef=-0.5"], ["algo.kl_coef", "-0.5"]),
    "betas=[2,3]": ("good.yaml", ["optim.betas=[2,3]"], ["optim.betas[0]", "2"]),
    "beta=1": ("good.yaml", ["optim.betas=[0.9,1.0]"], ["optim.betas[1]", "1.0"]),
    "seed<0": ("good.yaml", ["trainer.seed=-1"], ["trainer.seed", "-1"]),
    "seed>2**32": ("good.yaml", ["trainer.seed=4294967296"], ["trainer.seed", "4294967296"]),
    "data.seed<0": ("good.yaml", ["data.seed=-3"], ["data.seed", "-3"]),
    "lr=inf": ("good.yaml", ["optim.lr=.inf"], ["optim.lr", "finite"]),
    "lr=nan": ("good.yaml", ["optim.lr=.nan"], ["optim.lr", "nan"]),
    "is_high<1": ("good.yaml", ["algo.is_high=0.5"], ["algo.is_high", "0.5"]),
    "cuda-on-cpu": ("good.yaml", ["model.device=cuda"], ["model.device=cuda", "CPU-only"]),
    "missing-model": ("good.yaml", ["model.path=no/such/model"], ["model.path=no/such/model"]),
    "bad-builtin": ("good.yaml", ["model.path=builtin:nope"], ["model.path=builtin:nope"]),
    "missing-train-file": (
        "good.yaml",
        ["data.task=jsonl", "data.train_file=nope.jsonl", "reward.kind=math"],
        ["data.train_file=nope.jsonl", "no such file"],
    ),
    "missing-eval-file": (
        "good.yaml",
        [*JSONL, "data.eval_file=nope.jsonl"],
        ["data.eval_file=nope.jsonl", "no such file"],
    ),
    "empty-train-file": (
        "good.yaml",
        ["data.task=jsonl", "data.train_file=blank.jsonl", "reward.kind=math"],
        ["data.train_file=blank.jsonl", "no rows"],
    ),
    "non-utf8-train-file": (
        "good.yaml",
        ["data.task=jsonl", "data.train_file=latin1.jsonl", "reward.kind=math"],
        ["data.train_file=latin1.jsonl", "latin1.jsonl:2", "UTF-8"],
    ),
    "field-mapping-misses": (
        "good.yaml",
        [*JSONL, "data.fields={prompt: problem}"],
        ["data.train_file=rows.jsonl", "missing field", "problem"],
    ),
    "unknown-benchmark": (
        "good.yaml",
        ["data.task=benchmark", "data.benchmark=gsm8k_tset", "reward.kind=math"],
        ["data.benchmark=gsm8k_tset", "gsm8k_test"],
    ),
    "benchmark-dir-missing": (
        "good.yaml",
        [
            "data.task=benchmark",
            "data.benchmark=gsm8k_test",
            "data.data_dir=nowhere",
            "reward.kind=math",
        ],
        ["data.data_dir=nowhere", "gsm8k/test.jsonl"],
    ),
    "std_scope-with-dr_grpo": (
        "good.yaml",
        ["algo.advantage=dr_grpo", "algo.std_scope=batch"],
        ["algo.std_scope=batch", "ignored by algo.advantage=dr_grpo"],
    ),
    "clip-with-reinforce": (
        "good.yaml",
        ["algo.loss=reinforce", "algo.clip_high=0.28"],
        ["algo.clip_high=0.28", "ignored by algo.loss=reinforce"],
    ),
    "critic-without-gae": ("good.yaml", ["critic.lr=0.001"], ["critic.lr=0.001", "gae"]),
    "passk_k-without-passk": ("good.yaml", ["algo.passk_k=2"], ["algo.passk_k=2", "passk"]),
    "ops-with-jsonl": ("good.yaml", [*JSONL, "data.ops=[2]"], ["data.ops=[2]", "task=synth"]),
    "timeout<=0": ("good.yaml", ["reward.timeout_s=0"], ["reward.timeout_s", "0"]),
    "max_prompt_tokens=0": (
        "good.yaml",
        ["data.max_prompt_tokens=0"],
        ["data.max_prompt_tokens", "0"],
    ),
}


@pytest.mark.parametrize(("recipe", "overrides", "needles"), BAD.values(), ids=BAD.keys())
def test_bad_input_exits_2_naming_the_key_before_any_model_load(
    workdir: Path,
    guarded: list[Any],
    capsys: pytest.CaptureFixture[str],
    recipe: str,
    overrides: list[str],
    needles: list[str],
) -> None:
    assert cli.main(["train", recipe, *overrides]) == 2
    err = capsys.readouterr().err
    assert err.startswith("reasonrl: error: ") and err.count("\n") == 1, err
    assert recipe in err, err
    for needle in needles:
        assert needle in err, err
    assert guarded == [] and not (workdir / "runs").exists()


def test_the_same_inputs_fixed_do_run(workdir: Path, guarded: list[Any]) -> None:
    # the guard itself is not what refuses: good values reach the loop
    assert cli.main(["train", "good.yaml", *JSONL, "data.eval_file=rows.jsonl"]) == 0
    assert cli.main(["train", "good.yaml", "algo.preset=dr_grpo", "trainer.run_name=b"]) == 0
    cispo = ["algo.loss=cispo", "algo.clip_low=1.0", "algo.clip_high=4.0", "trainer.run_name=c"]
    assert cli.main(["train", "good.yaml", *cispo]) == 0  # no lower bound: MiniMax-M1's CISPO
    gz = workdir / "rows.jsonl.gz"
    gz.write_bytes(gzip.compress(("\ufeff" + ROW).encode()))  # a BOM is not a row's first byte
    jsonl_gz = ["data.task=jsonl", f"data.train_file={gz}", "reward.kind=math"]
    assert cli.main(["train", "good.yaml", *jsonl_gz, "trainer.run_name=d"]) == 0
    assert len(guarded) == 4


def test_quickstart_checks_before_loading(
    workdir: Path, guarded: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["quickstart", "model.device=cuda:1"]) == 2
    assert "model.device=cuda:1" in capsys.readouterr().err


def test_sft_refuses_bad_paths_and_values(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "sft.yaml").write_text("data:\n  train_file: nope.jsonl\ntrain:\n  max_steps: 1\n")
    (workdir / "nodata.yaml").write_text("train:\n  max_steps: 1\n")
    (workdir / "both.yaml").write_text("data:\n  train_file: rows.jsonl\n  synth_ops: [2]\n")
    cases = [
        (["sft", "sft.yaml"], "data.train_file=nope.jsonl"),
        (["sft", "nodata.yaml"], "data.train_file"),
        (["sft", "both.yaml"], "data.train_file=rows.jsonl is ignored"),
        (["sft", "sft.yaml", "data.train_file=rows.jsonl", "optim.beta2=1.0"], "optim.beta2"),
        (["sft", "sft.yaml", "data.train_file=rows.jsonl", "model.init=mirco"], "model.init=mirco"),
        (["sft", "sft.yaml", "data.train_file=rows.jsonl", "train.seed=-1"], "train.seed"),
    ]
    for argv, needle in cases:
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert needle in err and err.count("\n") == 1, err
    assert not (workdir / "runs").exists()


def test_eval_command_checks_paths_and_values(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["eval", "no/such/model", "--data", "rows.jsonl"]) == 2
    assert "MODEL=no/such/model" in capsys.readouterr().err
    assert cli.main(["eval", "builtin:synth-micro", "--data", "blank.jsonl"]) == 2
    assert "--data=blank.jsonl" in capsys.readouterr().err
    for bad in (["--samples", "0"], ["--temperature", "-1"], ["--temperature", "nan"]):
        assert cli.main(["eval", "builtin:synth-micro", "--data", "rows.jsonl", *bad]) == 2


ABBREVIATED = [
    ["train", "good.yaml", "--resum"],
    ["eval", "builtin:synth-micro", "--data", "rows.jsonl", "--sampl", "2"],
    ["data", "synth", "--ops", "2", "--per-op", "1", "--out", "x.jsonl", "--cont", "zoo"],
    ["quickstart", "--see", "1"],
    ["report", ".", "--sample", "3"],
    ["recipes", "--di", "."],
]


@pytest.mark.parametrize("argv", ABBREVIATED, ids=[a[0] for a in ABBREVIATED])
def test_abbreviated_options_are_refused(
    workdir: Path, guarded: list[Any], capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    assert cli.main(argv) == 2
    assert "unrecognized arguments" in capsys.readouterr().err
    assert guarded == [] and not (workdir / "runs").exists() and not (workdir / "x.jsonl").exists()


def test_every_argument_parser_refuses_abbreviations() -> None:
    found = 0
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in (
                "ArgumentParser",
                "add_parser",
            ):
                found += 1
                kw = {k.arg: k.value for k in node.keywords}
                flag = kw.get("allow_abbrev")
                assert isinstance(flag, ast.Constant) and flag.value is False, (
                    f"{path}:{node.lineno}: pass allow_abbrev=False"
                )
    assert found >= 9


@pytest.mark.parametrize("path", sorted(RECIPES.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_recipe_reloads_from_its_resolved_config(path: Path, tmp_path: Path) -> None:
    # ignored-key refusals compare with defaults, so a resolved config.yaml (every key written,
    # presets expanded, derived values filled) must load again unchanged
    schema = recipe_schema(path)
    cfg = load_config(path, schema=schema)
    again = load_config(save_resolved(cfg, tmp_path), schema=schema)
    assert again.model_dump() == cfg.model_dump()


def test_variant_reader_tables_match_the_registries() -> None:
    from reasonrl.algos.advantages import ADVANTAGE_KWARGS
    from reasonrl.algos.policy_loss import LOSS_KWARGS
    from reasonrl.config.rl import ADVANTAGE_READERS, LOSS_READERS

    token_level = {
        "reinforce_pp": {"gamma", "std_unbiased"},
        "gae": {"gamma", "lam"},
        "remax": set(),
    }
    reads = {name: set(kw.values()) for name, kw in ADVANTAGE_KWARGS.items()} | token_level
    for name, fields in reads.items():
        assert {k for k, users in ADVANTAGE_READERS.items() if name in users} == fields, name
    for name, fields in LOSS_KWARGS.items():
        assert {k for k, users in LOSS_READERS.items() if name in users} == set(fields), name


# --- rewards: timeouts, SystemExit, wrong types, counted per cause -------------------------------


def _groups(reward: Any, timeout_s: float | None, **algo: Any) -> Any:
    from reasonrl.rl.rollouts import sample_groups
    from reasonrl.rollout.base import SamplingParams
    from reasonrl.runtime.timing import Timer
    from tests.rl.stubs import stub_config, stub_state

    cfg = stub_config(reward={"kind": "math", "timeout_s": timeout_s}, algo=algo)
    state = stub_state(cfg, reward)
    params = SamplingParams(n=cfg.rollout.n, max_new_tokens=cfg.rollout.max_new_tokens, seed=1)
    return sample_groups(state, params, Timer())


def test_a_hanging_reward_costs_one_sample_within_the_timeout() -> None:
    release = threading.Event()
    calls: list[int] = []

    def hangs_once(sample: Sample, completion: Completion) -> float:
        calls.append(1)
        if len(calls) == 3:
            release.wait()  # never returns on its own
        return 1.0

    start = time.monotonic()
    try:
        groups = _groups(hangs_once, timeout_s=0.3)
    finally:
        release.set()  # let the abandoned thread finish
    elapsed = time.monotonic() - start
    m = groups.metrics()
    assert len(calls) == 16 and elapsed < 0.3 + 5.0
    assert m["reward/failed"] == 1.0 and m["reward/failed/timeout"] == 1.0
    assert groups.rewards[0][2].info["error_kind"] == "timeout"


def test_systemexit_string_and_none_rewards_fail_or_count_one_sample() -> None:
    outcomes = [SystemExit(3), "1.0", None, b"1", RewardResult(score="1.0"), float("nan"), 1.0]  # type: ignore[arg-type]
    calls: list[int] = []

    def odd(sample: Sample, completion: Completion) -> Any:
        out = outcomes[len(calls) % len(outcomes)]
        calls.append(1)
        if isinstance(out, BaseException):
            raise out
        return out

    m = _groups(odd, timeout_s=5.0).metrics()  # 16 calls over the 7 outcomes, in order
    # SystemExit at calls 0, 7, 14; str/bytes/str-score (bad_type) at 1, 3, 4, 8, 10, 11, 15; ...
    assert m["reward/failed/SystemExit"] == 3.0
    assert m["reward/failed/bad_type"] == 7.0
    assert m["reward/failed/non_finite"] == 2.0
    assert m["reward/not_applicable"] == 2.0
    assert m["reward/failed"] == 12.0


def test_keyboard_interrupt_from_a_reward_propagates() -> None:
    from reasonrl.rewards.api import call_reward

    def ctrl_c(sample: Sample, completion: Completion) -> float:
        raise KeyboardInterrupt

    sample, completion = Sample(id="x", prompt="p"), Completion("t", (1,), (0.0,))
    for timeout_s in (None, 5.0):
        with pytest.raises(KeyboardInterrupt):
            call_reward(ctrl_c, sample, completion, timeout_s=timeout_s)
    assert call_reward(lambda s, c: "1.0", sample, completion).info["error_kind"] == "bad_type"


def test_the_configured_timeout_reaches_call_reward(monkeypatch: pytest.MonkeyPatch) -> None:
    import reasonrl.rewards.batch as rollouts  # rl.rollouts scores through call_reward_batch

    seen: list[float | None] = []
    real = rollouts.call_reward

    def spy(*args: Any, timeout_s: float | None = None, **kw: Any) -> RewardResult:
        seen.append(timeout_s)
        return real(*args, timeout_s=timeout_s, **kw)

    monkeypatch.setattr(rollouts, "call_reward", spy)
    _groups(lambda s, c: 0.5, timeout_s=7.5)
    assert seen and set(seen) == {7.5}
    assert RLConfig().reward.timeout_s == 30.0  # finite by default


# --- data limits -------------------------------------------------------------------------------


class _CharTokenizer:
    """One token per character, plus BOS."""

    bos_token_id = 1

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": [ord(ch) % 50 + 2 for ch in text]}


def _jsonl_cfg(path: Path, **data: Any) -> RLConfig:
    return RLConfig.model_validate(
        {"data": {"task": "jsonl", "train_file": str(path), **data}, "reward": {"kind": "math"}}
    )


def test_long_prompts_are_skipped_named_by_file_and_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from reasonrl.rl.build import make_source

    path = tmp_path / "mixed.jsonl"
    prompts = ["short", "x" * 500, "fine too", "y" * 80]
    path.write_text("".join(f'{{"question": "{p}", "answer": "1"}}\n' for p in prompts))
    cfg = _jsonl_cfg(path, max_prompt_tokens=40)
    source = make_source(cfg, _CharTokenizer(), max_prompt_tokens=40)
    err = capsys.readouterr().err
    assert str(path) in err and "skipped 2 of 4" in err and "row 1" in err and "row 3" in err
    assert sorted(s.prompt for s in source.samples) == ["fine too", "short"]
    assert source.skipped == 2
    refuse = _jsonl_cfg(path, max_prompt_tokens=40, long_prompts="error")
    with pytest.raises(ConfigError, match=r"row 1 \(id mixed/2, 501 tokens\)"):
        make_source(refuse, _CharTokenizer(), max_prompt_tokens=40)


def test_the_default_prompt_limit_is_context_minus_max_new_tokens() -> None:
    from reasonrl.rl.build import prompt_limit

    cfg = RLConfig.model_validate({"rollout": {"max_new_tokens": 160}})
    assert prompt_limit(cfg, 1024) == 864
    assert prompt_limit(cfg, None) is None
    with pytest.raises(ConfigError, match="leaves no room"):
        prompt_limit(cfg, 100)
    big = RLConfig.model_validate({"data": {"max_prompt_tokens": 900}})
    with pytest.raises(ConfigError, match="at most 864"):
        prompt_limit(big, 1024)


def test_synthetic_prompts_over_the_limit_are_skipped_and_counted() -> None:
    from reasonrl.rl.build import make_source

    cfg = RLConfig.model_validate({"data": {"ops": [2, 6]}})
    lengths = [len(s.prompt) for s in make_source(cfg).next(40)]
    limit = sorted(lengths)[len(lengths) // 2]
    source = make_source(cfg, _CharTokenizer(), max_prompt_tokens=limit)
    got = source.next(20)
    assert all(len(s.prompt) + 1 <= limit for s in got) and source.skipped > 0
    state = source.state_dict()
    again = make_source(cfg, _CharTokenizer(), max_prompt_tokens=limit)
    again.load_state_dict(state)
    assert again.next(5) == source.next(5) and again.skipped == source.skipped


def test_empty_and_non_utf8_data_files_are_named(tmp_path: Path) -> None:
    from reasonrl.rl.build import make_source

    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(DataError, match=f"{empty}: no rows"):
        make_source(_jsonl_cfg(empty))
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(ROW.encode() * 2 + b'{"question": "\xff"}\n')
    with pytest.raises(DataError, match=rf"{bad}:3: not valid UTF-8 \(byte 0xff at column 15\)"):
        list(iter_jsonl(bad))


# --- eval.temperature = 0 means greedy -----------------------------------------------------------


class _Engine:
    def __init__(self) -> None:
        self.params: Any = None

    def generate(self, prompt_ids: Any, params: Any) -> list[list[Completion]]:
        self.params = params
        return [[Completion(" 1", (5,), (0.0,), "stop")] * params.n for _ in prompt_ids]


def test_eval_temperature_zero_is_greedy_everywhere() -> None:
    from reasonrl.cli.quickstart import format_table
    from reasonrl.rl.evaluation import eval_metrics, run_eval

    cfg = RLConfig.model_validate({"eval": {"temperature": 0, "samples": 8}})
    samples = [Sample(id=str(i), prompt="q", answer="1", meta={"op": 2}) for i in range(3)]
    engine = _Engine()

    def right(sample: Sample, completion: Completion) -> RewardResult:
        return RewardResult(1.0, outcome=True, verified=True)

    result = run_eval(None, _CharTokenizer(), samples, cfg, engine=engine, reward_fn=right)
    assert engine.params.greedy and engine.params.n == 1
    assert result["settings"]["greedy"] is True and result["settings"]["samples_per_problem"] == 1
    assert eval_metrics(result)["eval/pass@1"] == 1.0
    table = format_table(result, result, cfg.eval.samples)  # crashed with KeyError before
    assert "strict_pass@8" not in table and "pass@1" in table
