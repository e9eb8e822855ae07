"""The examples of docs/python-api.md run as they are written: each ```python block is executed
as a script (`__name__ == "__main__"`) in a fresh directory holding a link to recipes/."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "python-api.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", PAGE.read_text(encoding="utf-8"), re.M | re.S)
NAMES = ["custom_reward", "reward_by_import_path", "prompt_source", "callbacks", "evaluate"]


def test_the_page_has_the_examples_and_the_readme_links_it() -> None:
    assert len(BLOCKS) == len(NAMES)
    assert "docs/python-api.md" in (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.fixture
def run_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "recipes").symlink_to(ROOT / "recipes")
    monkeypatch.setattr(sys, "path", list(sys.path))  # a module the block writes stays local
    modules = set(sys.modules)

    def run(name: str) -> dict:
        namespace = {"__name__": "__main__"}
        exec(compile(BLOCKS[NAMES.index(name)], f"{PAGE}:{name}", "exec"), namespace)
        return namespace

    yield run
    for added in set(sys.modules) - modules:
        if added in ("my_rewards",):
            del sys.modules[added]


def _config(path: str) -> dict:
    return yaml.safe_load(Path(path).read_text())


def test_custom_reward_on_a_jsonl_file(run_block, capsys: pytest.CaptureFixture[str]) -> None:
    ns = run_block("custom_reward")
    assert ns["state"].step == 2
    assert "reward/words" in ns["row"]
    # a function of __main__ cannot be imported back: its record says so, no placeholder
    assert _config("runs/sums/config.yaml")["reward"]["kind"] == "python:__main__.first_word"
    assert capsys.readouterr().out.splitlines()[-1].startswith("2 ")


def test_rewards_by_import_path_combined(run_block) -> None:
    ns = run_block("reward_by_import_path")
    assert ns["state"].step == 1
    reward = _config("runs/combined/config.yaml")["reward"]
    assert reward["kind"] == "combine"
    assert [c["kind"] for c in reward["components"]] == [
        "my_rewards:first_word",
        "my_rewards:short",
    ]
    import json

    row = json.loads(Path("runs/combined/metrics.jsonl").read_text().splitlines()[-1])
    assert "reward/components/my_rewards:short" in row
    assert "reward/component_info" not in row  # nested dicts of dicts are not metrics


def test_custom_prompt_source(run_block) -> None:
    ns = run_block("prompt_source")
    assert ns["state"].step == 3
    assert ns["state"].source.drawn == 6
    assert _config("runs/curriculum/config.yaml")["data"]["source"] == "python:__main__.Curriculum"


def test_callbacks(run_block) -> None:
    ns = run_block("callbacks")
    watch = ns["watch"]
    assert len(watch.rewards) == 2
    assert [step for step, _ in watch.evals] == [0, 2]


def test_evaluate(run_block) -> None:
    ns = run_block("evaluate")
    assert 0.0 <= ns["result"].overall["pass@1"] <= 1.0
