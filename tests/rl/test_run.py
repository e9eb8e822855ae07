"""End-to-end tiny runs: parameters move, losses are finite, SIGKILL + resume is exact."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from reasonrl.config import load_config
from reasonrl.rl.resume import RunDirExistsError
from reasonrl.rl.run import train
from tests.rl.toy import assert_same_run, make_toy_model, tb_steps, toy_reward, write_toy_recipe

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def toy_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_toy_model(tmp_path_factory.mktemp("toy") / "model")


def test_five_steps_change_parameters(toy_model: Path, tmp_path: Path) -> None:
    recipe = write_toy_recipe(tmp_path / "r.yaml", toy_model, tmp_path / "runs",
                              trainer={"steps": 5, "save_every": 5})  # fmt: skip
    cfg = load_config(recipe)
    from reasonrl.models.io import load_policy

    before, _ = load_policy(str(toy_model))
    state = train(cfg, progress=False, reward_fn=toy_reward)
    assert state.step == 5
    rows = [json.loads(x) for x in (cfg.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5]
    assert all(math.isfinite(r["actor/loss"]) for r in rows if "actor/loss" in r)
    after = dict(state.model.named_parameters())
    changed = [n for n, p in before.named_parameters() if not torch.equal(p, after[n])]
    assert len(changed) == len(list(before.parameters())), "every parameter should move"
    assert (cfg.run_dir / "config.yaml").exists()
    assert (cfg.run_dir / "samples.jsonl").read_text().strip()
    # a fresh run must not silently overwrite the checkpoints of an earlier one
    with pytest.raises(RunDirExistsError):
        train(cfg, progress=False, reward_fn=toy_reward)


def test_checkpoint_is_a_hugging_face_directory(toy_model: Path, tmp_path: Path) -> None:
    """Every RL checkpoint opens with plain transformers, and its logits are the trainer's."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    recipe = write_toy_recipe(tmp_path / "r.yaml", toy_model, tmp_path / "runs",
                              trainer={"steps": 2, "save_every": 2})  # fmt: skip
    cfg = load_config(recipe)
    state = train(cfg, progress=False, reward_fn=toy_reward)
    step_dir = cfg.run_dir / "checkpoints" / "step_00000002"
    model = AutoModelForCausalLM.from_pretrained(str(step_dir), local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(str(step_dir), local_files_only=True)
    ids = tokenizer("1 + 2 =", return_tensors="pt")["input_ids"]
    assert ids.shape[1] > 1
    state.model.eval()
    with torch.no_grad():
        want, got = state.model(ids).logits, model(ids).logits
    assert torch.equal(want, got)
    assert tokenizer(["7 * 8"])["input_ids"] == state.tokenizer(["7 * 8"])["input_ids"]
    # `reasonrl eval` and model.path accept the checkpoint and the run directory
    from reasonrl.cli.checks import check_model_path

    check_model_path(str(step_dir), "MODEL")
    check_model_path(str(cfg.run_dir), "MODEL")
    # `reasonrl export RUN OUT`: the newest checkpoint without the trainer's state
    from reasonrl.cli import main

    out = tmp_path / "exported"
    assert main(["export", str(cfg.run_dir), str(out)]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= names
    assert not names & {"optimizer.pt", "state.pt", "COMPLETE"}
    with torch.no_grad():
        assert torch.equal(AutoModelForCausalLM.from_pretrained(str(out))(ids).logits, want)
    assert main(["export", str(cfg.run_dir), str(out)]) == 2  # OUT not empty, no --force
    assert main(["export", str(cfg.run_dir), str(tmp_path / "x"), "--step", "7"]) == 2


# The runner can simulate a crash in the middle of writing checkpoint N: every file is written
# but the process dies before the COMPLETE manifest and the atomic rename.
RUNNER = """
import os, sys
sys.path.insert(0, {repo!r})
from reasonrl.config import load_config
from reasonrl.runtime import checkpoint
from reasonrl.rl.run import train
from tests.rl.toy import toy_reward
crash_at = int(os.environ.get("TOY_CRASH_AT_SAVE", "0"))
write_manifest = checkpoint._write_manifest
def crashing_manifest(tmp, step, **kwargs):
    if step == crash_at:
        os._exit(137)
    write_manifest(tmp, step, **kwargs)
checkpoint._write_manifest = crashing_manifest
cfg = load_config(sys.argv[1], sys.argv[2:])
train(cfg, resume=cfg.run_dir.exists(), progress=False, reward_fn=toy_reward)
"""


def _run(recipe: Path, *overrides: str, crash_at: int = 0) -> subprocess.Popen:
    env = {**os.environ, "PYTHONHASHSEED": "0", "TOY_CRASH_AT_SAVE": str(crash_at)}
    code = RUNNER.format(repo=str(REPO))
    cmd = [sys.executable, "-c", code, str(recipe), *overrides]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    t0 = time.monotonic()
    while not path.exists():
        assert proc.poll() is None, proc.stdout.read().decode()
        assert time.monotonic() - t0 < timeout, f"{path} never appeared"
        time.sleep(0.05)


def test_sigkill_and_resume_is_bit_identical(toy_model: Path, tmp_path: Path) -> None:
    recipe = write_toy_recipe(tmp_path / "r.yaml", toy_model, tmp_path / "runs")
    ref = _run(recipe, "trainer.run_name=straight")
    assert ref.wait(timeout=300) == 0, ref.stdout.read().decode()

    # 1) killed mid-training, right after the step-2 checkpoint landed
    proc = _run(recipe, "trainer.run_name=killed")
    _wait_for(tmp_path / "runs/killed/checkpoints/step_00000002", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # 2) resumed, then killed while writing the step-4 checkpoint
    crash = _run(recipe, "trainer.run_name=killed", crash_at=4)
    assert crash.wait(timeout=300) == 137, crash.stdout.read().decode()
    assert not (tmp_path / "runs/killed/checkpoints/step_00000004").exists()
    # 3) resumed again: the half-written checkpoint is ignored, training restarts from step 2
    final = _run(recipe, "trainer.run_name=killed")
    assert final.wait(timeout=300) == 0, final.stdout.read().decode()

    assert_same_run(tmp_path / "runs/straight", tmp_path / "runs/killed")
    # TensorBoard too holds each step once: the points the killed runs wrote after their last
    # checkpoint were dropped on resume
    assert tb_steps(tmp_path / "runs/killed") == list(range(1, 7))


def test_ppo_with_adaptive_kl_resumes_exactly(toy_model: Path, tmp_path: Path) -> None:
    """Critic weights, critic optimizer and the adaptive KL coefficient are trainer state: a run
    stopped at step 2 and resumed ends where a straight run ends (in-process, fp32, 1 thread)."""
    ppo = {"preset": None, "advantage": "gae", "lam": 0.95, "kl_coef": 0.05, "kl_target": 0.01,
           "kl_in": "reward", "ppo_epochs": 2, "micro_batch_size": 4}  # fmt: skip
    recipe = write_toy_recipe(tmp_path / "r.yaml", toy_model, tmp_path / "runs", algo=ppo,
                              trainer={"steps": 4, "save_every": 2})  # fmt: skip
    straight = train(load_config(recipe, ["trainer.run_name=straight"]), progress=False,
                     reward_fn=toy_reward)  # fmt: skip
    half = load_config(recipe, ["trainer.run_name=resumed", "trainer.steps=2"])
    train(half, progress=False, reward_fn=toy_reward)
    resumed = train(load_config(recipe, ["trainer.run_name=resumed"]), progress=False,
                    reward_fn=toy_reward, resume=True)  # fmt: skip
    assert resumed.step == straight.step == 4
    assert resumed.kl_ctl.value == straight.kl_ctl.value != 0.05  # adapted, and restored
    for a, b in ((straight.model, resumed.model), (straight.critic.model, resumed.critic.model)):
        sa, sb = a.state_dict(), b.state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa), "weights differ after resume"
    rows = [json.loads(x) for x in (half.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert all("critic/explained_variance" in r and "actor/epoch2/clipfrac" in r for r in rows)


def test_sampler_statistics_resume_exactly(toy_model: Path, tmp_path: Path) -> None:
    """A Kimi-prioritised sampler over a fixed pool: its per-prompt statistics are checkpointed
    with the source, so a run stopped at step 2 and resumed samples and trains as a straight run
    does (in-process)."""
    from reasonrl.data.samplers import SampledSource

    recipe = write_toy_recipe(tmp_path / "r.yaml", toy_model, tmp_path / "runs",
                              data={"sampler": {"kind": "kimi", "pool_size": 8}},
                              trainer={"steps": 4, "save_every": 2})  # fmt: skip
    straight = train(load_config(recipe, ["trainer.run_name=straight"]), progress=False,
                     reward_fn=toy_reward)  # fmt: skip
    assert isinstance(straight.source, SampledSource)
    half = load_config(recipe, ["trainer.run_name=resumed", "trainer.steps=2"])
    train(half, progress=False, reward_fn=toy_reward)
    resumed = train(load_config(recipe, ["trainer.run_name=resumed"]), progress=False,
                    reward_fn=toy_reward, resume=True)  # fmt: skip
    assert resumed.source.state_dict() == straight.source.state_dict()
    assert_same_run(tmp_path / "runs/straight", tmp_path / "runs/resumed")
    stats = json.loads((tmp_path / "runs/straight/prompt_stats.json").read_text())
    assert stats["sampler"] == "kimi" and stats["step"] == 4 and sum(stats["bands"].values()) > 0
    assert stats == json.loads((tmp_path / "runs/resumed/prompt_stats.json").read_text())
    from reasonrl.report.report import write_report

    page = write_report(tmp_path / "runs/straight").read_text()
    assert "prompt statistics (sampler kimi, step 4)" in page


def test_a_tiny_run_raises_the_reward(toy_model: Path, tmp_path: Path) -> None:
    """The whole loop learns: 25 GRPO steps on the toy reward raise its mean clearly."""
    recipe = write_toy_recipe(tmp_path / "r.yaml", toy_model, tmp_path / "runs",
                              algo={"kl_coef": 0.0}, optim={"lr": 3e-2},
                              rollout={"prompts_per_step": 4},
                              trainer={"steps": 25, "save_every": 25,
                                       "sample_every": 25})  # fmt: skip
    cfg = load_config(recipe)
    train(cfg, progress=False, reward_fn=toy_reward)
    rows = [json.loads(x) for x in (cfg.run_dir / "metrics.jsonl").read_text().splitlines()]
    first = sum(r["reward/mean"] for r in rows[:5]) / 5
    last = sum(r["reward/mean"] for r in rows[-5:]) / 5
    assert last > first + 0.15, (first, last)
