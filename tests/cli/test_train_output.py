"""What `reasonrl train` prints: the banner first, then one plain step line every
`trainer.log_every` steps when the output is not a terminal (nohup, SLURM, `> log 2>&1`)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from reasonrl.config import load_config
from reasonrl.rl.run import train
from tests.rl.toy import make_toy_model, toy_reward, write_toy_recipe

REPO = Path(__file__).resolve().parents[2]
STEP_LINE = re.compile(
    r"^step (\d+)/20 \| reward \S+ \|.* loss \S+ \|.* tok/s \| elapsed \S+ \| ETA \S+$"
)


@pytest.fixture(scope="module")
def toy_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_toy_model(tmp_path_factory.mktemp("toy") / "model")


def test_redirected_run_logs_banner_then_step_lines(toy_model: Path, tmp_path: Path) -> None:
    """`reasonrl train R trainer.steps=20 trainer.log_every=5 > log 2>&1` in a real process."""
    recipe = write_toy_recipe(tmp_path / "tiny.yaml", toy_model, tmp_path / "runs",
                              trainer={"save_every": 20})  # fmt: skip
    log = tmp_path / "log"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "COLUMNS": "80"}
    with log.open("w") as fh:
        proc = subprocess.run(
            [sys.executable, "-m", "reasonrl.cli", "train", str(recipe), "trainer.steps=20",
             "trainer.log_every=5"],
            stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=tmp_path, timeout=300,
        )  # fmt: skip
    text = log.read_text()
    assert proc.returncode == 0, text
    lines = text.splitlines()
    assert lines[0].startswith(f"reasonrl train: run {tmp_path / 'runs' / 'tiny'} | model ")
    assert "algo grpo (advantage grpo, loss ppo_clip" in lines[0] and "20 steps" in lines[0]
    assert lines[1].startswith("model Qwen2ForCausalLM, ")
    assert " parameters | engine fused (auto)" in lines[1]
    steps = [int(m.group(1)) for line in lines if (m := STEP_LINE.match(line))]
    assert steps == [1, 5, 10, 15, 20], text  # step 1, then every log_every
    for line in lines:
        if line.startswith("step "):
            assert "kl " in line and "entropy " in line and len(line) > 80  # never cut to 80
    assert "\r" not in text and "Loading weights" not in text and "it/s]" not in text
    assert lines[-1].startswith("run directory: ")


def test_resumed_run_banner_names_the_step(
    toy_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = write_toy_recipe(tmp_path / "r.yaml", toy_model, tmp_path / "runs",
                              trainer={"steps": 2, "save_every": 2})  # fmt: skip
    train(load_config(recipe), progress=False, reward_fn=toy_reward)
    capsys.readouterr()
    train(load_config(recipe, ["trainer.steps=3", "trainer.log_every=3"]), progress=False,
          reward_fn=toy_reward, resume=True)  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("reasonrl train: run ") and "3 steps" in lines[0]
    assert lines[1].endswith("reward toy_reward")  # a Python reward is named, not reward.kind
    assert lines[2].startswith("resumed from step 2 (") and "step_00000002" in lines[2]
    assert [ln.split(" |")[0] for ln in lines if ln.startswith("step ")] == ["step 3/3"]
