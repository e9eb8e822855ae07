"""Fault injection into a run: non-finite updates, refused resumes, signals, a full disk.

One test per behaviour of docs/reliability.md. The update-level tests use the stub engine (a
fraction of a second each); the run-level ones a tiny random Qwen2 (`tests/rl/toy.py`, about
0.2 s a step), in-process where the fault can be raised in-process (a signal sent to this very
process, a tmpfs full disk), in a subprocess only where the process must die (a second signal).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_model

from reasonrl import cli
from reasonrl.config import RLConfig, load_config, save_resolved
from reasonrl.rl import run as run_module
from reasonrl.rl.resume import ResumeError, resume_point
from reasonrl.rl.run import train_main
from reasonrl.rl.step import train_step
from reasonrl.runtime import checkpoint as checkpoint_module
from reasonrl.runtime.checkpoint import (
    MARKER,
    NonFiniteWeightsError,
    latest_checkpoint,
    list_checkpoints,
    prune_checkpoints,
    save_checkpoint,
    verify_checkpoint,
    weights_finite,
)
from tests.rl.helpers import tiny_model
from tests.rl.stubs import stub_config, stub_state
from tests.rl.toy import (
    assert_same_run,
    make_toy_model,
    tb_steps,
    toy_reward,
    write_toy_recipe,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def toy_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_toy_model(tmp_path_factory.mktemp("toy") / "model")


def _ours(err: str) -> list[str]:
    """The lines reasonrl wrote to stderr (transformers' loading bars go there too)."""
    return [line for line in err.splitlines() if line.startswith("reasonrl:")]


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _tree_hash(root: Path) -> str:
    """Names, kinds, sizes, mtimes and contents of everything under `root`."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        digest.update(f"{path.relative_to(root)}|{path.is_dir()}|{st.st_mtime_ns}".encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _snapshot(state: Any) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    weights = {k: v.detach().clone() for k, v in state.model.state_dict().items()}
    return weights, copy.deepcopy(state.optimizer.state_dict())


def _assert_same(a: Any, b: Any) -> None:
    """Equal nested state dicts, tensors bit for bit."""
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _assert_same(a[key], b[key])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same(x, y)
    else:
        assert a == b


# ----------------------------------------------------------------------------- non-finite updates


def _inject_nan_loss(monkeypatch: pytest.MonkeyPatch, state: Any) -> None:
    from reasonrl.rl import update

    real = update.aggregate
    monkeypatch.setattr(update, "aggregate", lambda *a, **k: real(*a, **k) * float("nan"))


def _inject_inf_loss(monkeypatch: pytest.MonkeyPatch, state: Any) -> None:
    from reasonrl.rl import update

    real = update.aggregate  # loss + inf: the loss is inf, the gradient stays finite
    monkeypatch.setattr(update, "aggregate", lambda *a, **k: real(*a, **k) + float("inf"))


def _inject_inf_grad(monkeypatch: pytest.MonkeyPatch, state: Any) -> None:
    param = next(state.model.parameters())  # a finite loss, one gradient made inf
    param.register_hook(lambda grad: grad + float("inf"))  # the state is this test's own


def _inject_inf_lr(monkeypatch: pytest.MonkeyPatch, state: Any) -> None:
    for group in state.optimizer.param_groups:  # the config refuses .inf: set it behind its back
        group["lr"] = float("inf")


@pytest.mark.parametrize(
    ("inject", "cause"),
    [
        (_inject_nan_loss, "loss"),
        (_inject_inf_loss, "loss"),
        (_inject_inf_grad, "grad"),
        (_inject_inf_lr, "lr"),
    ],
    ids=["nan-loss", "inf-loss", "inf-grad", "inf-lr"],
)
def test_nonfinite_update_is_skipped_leaving_weights_and_optimizer_bit_identical(
    monkeypatch: pytest.MonkeyPatch, inject: Callable[..., None], cause: str
) -> None:
    state = stub_state(stub_config())
    train_step(state)  # a good step first: the optimizer then has state (Adam moments) to keep
    weights, optim = _snapshot(state)
    inject(monkeypatch, state)
    metrics, _ = train_step(state)
    assert metrics["actor/skipped_nonfinite"] == 1.0
    assert metrics[f"actor/nonfinite_{cause}"] == 1.0
    _assert_same(weights, dict(state.model.state_dict()))
    _assert_same(optim["state"], state.optimizer.state_dict()["state"])  # moments and step count
    assert all(p.grad is None for p in state.model.parameters())  # no NaN left in .grad
    assert state.step == 2  # the step counts (the schedule and the sampling seed move on)


def test_critic_nonfinite_step_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    from reasonrl.rl import critic as critic_module

    state = stub_state(stub_config(algo={"advantage": "gae", "micro_batch_size": 4}))
    assert state.critic is not None
    train_step(state)
    before = {k: v.clone() for k, v in state.critic.model.state_dict().items()}
    critic_optim = copy.deepcopy(state.critic.optimizer.state_dict())
    real = critic_module.aggregate
    monkeypatch.setattr(critic_module, "aggregate", lambda *a, **k: real(*a, **k) * float("nan"))
    metrics, _ = train_step(state)
    assert metrics["critic/skipped_nonfinite"] == 1.0 and metrics["critic/nonfinite_loss"] == 1.0
    _assert_same(before, dict(state.critic.model.state_dict()))
    _assert_same(critic_optim["state"], state.critic.optimizer.state_dict()["state"])
    assert "actor/skipped_nonfinite" not in metrics  # the policy's own update was fine


def test_nonfinite_streak_stops_run_exit_1_naming_the_lr(
    toy_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's own repro: optim.lr=1e6. Step 1 blows the weights up (finite, ~1e6), steps
    2-4 have a NaN gradient and are skipped; the third skip in a row stops the run."""
    recipe = write_toy_recipe(tmp_path / "r.yaml", toy_model, tmp_path / "runs",
                              optim={"lr": 1e6}, algo={"kl_coef": 0.04},
                              trainer={"steps": 6, "save_every": 2, "keep_last": 1,
                                       "sample_every": 100})  # fmt: skip
    cfg = load_config(recipe)
    assert cfg.trainer.max_nonfinite_steps == 3
    assert train_main(cfg, progress=False, reward_fn=toy_reward) == 1
    err = _ours(capsys.readouterr().err)
    assert len(err) == 1 and "3 updates in a row (steps 2-4)" in err[0]
    assert "optim.lr=1e+06 is too high" in err[0] and "step_00000002" in err[0]
    rows = _rows(cfg.run_dir / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert [r.get("actor/skipped_nonfinite") for r in rows] == [None, 1.0, 1.0, 1.0]
    # step 2's checkpoint holds step 1's (finite) weights; nothing was saved after the stop
    assert [p.name for p in list_checkpoints(cfg.run_dir)] == ["step_00000002"]
    assert weights_finite(cfg.run_dir / "checkpoints/step_00000002")


def test_nonfinite_weights_are_never_checkpointed(tmp_path: Path) -> None:
    model = tiny_model(0)
    with torch.no_grad():
        next(model.parameters())[0, 0] = float("nan")
    with pytest.raises(NonFiniteWeightsError, match="step 3"):
        save_checkpoint(tmp_path, 3, model=model, optimizer=None, scheduler=None,
                        sampler_state={})  # fmt: skip
    assert not (tmp_path / "checkpoints").exists() or not any((tmp_path / "checkpoints").iterdir())


def _legacy_nan_checkpoint(run: Path, step: int) -> Path:
    """A checkpoint as an older version wrote it: non-finite weights, valid manifest, no flag."""
    model = tiny_model(0)
    path = save_checkpoint(run, step, model=model, optimizer=None, scheduler=None,
                           sampler_state={})  # fmt: skip
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
    save_model(model, str(path / "model.safetensors"))
    manifest = json.loads((path / MARKER).read_text())
    del manifest["finite"]
    weights = (path / "model.safetensors").read_bytes()
    manifest["files"]["model.safetensors"] = {
        "sha256": hashlib.sha256(weights).hexdigest(),
        "bytes": len(weights),
    }
    (path / MARKER).write_text(json.dumps(manifest))
    assert verify_checkpoint(path)
    return path


def test_pruning_keeps_the_newest_finite_checkpoint(tmp_path: Path) -> None:
    good = save_checkpoint(tmp_path, 2, model=tiny_model(0), optimizer=None, scheduler=None,
                           sampler_state={})  # fmt: skip
    bad = [_legacy_nan_checkpoint(tmp_path, step) for step in (4, 6)]
    assert weights_finite(good) and not any(weights_finite(p) for p in bad)
    prune_checkpoints(tmp_path, keep_last=1)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000002", "step_00000006"]
    # and --resume skips the non-finite one, naming why
    cfg = RLConfig.model_validate({"trainer": {"out_dir": str(tmp_path.parent),
                                               "run_name": tmp_path.name}})  # fmt: skip
    assert resume_point(cfg, resume=True) == good


# ----------------------------------------------------------------------------- strict resume


def _fake_run(recipe: Path, *overrides: str) -> RLConfig:
    """A run directory as a run leaves it (config, logs, a checkpoint), without training."""
    cfg = load_config(recipe, list(overrides))
    save_resolved(cfg, cfg.run_dir)
    (cfg.run_dir / "metrics.jsonl").write_text('{"step": 1}\n{"step": 2}\n')
    save_checkpoint(cfg.run_dir, 2, model=tiny_model(0), optimizer=None, scheduler=None,
                    sampler_state={})  # fmt: skip
    return cfg


def test_resume_without_valid_checkpoint_exits_2_and_touches_nothing(
    toy_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    recipe = write_toy_recipe(tmp_path / "r.yaml", toy_model, tmp_path / "runs")
    cfg = _fake_run(recipe)
    ckpts = cfg.run_dir / "checkpoints"
    (ckpts / "step_00000002" / MARKER).unlink()  # a save that never finished
    broken = save_checkpoint(cfg.run_dir, 4, model=tiny_model(0), optimizer=None,
                             scheduler=None, sampler_state={})  # fmt: skip
    with (broken / "optimizer.pt").open("r+b") as fh:
        fh.truncate(3)
    (ckpts / ".tmp-step_00000006-1-abc").mkdir()  # a crashed save's debris
    before = _tree_hash(cfg.run_dir)
    monkeypatch.setattr(run_module, "build_state", lambda *a, **k: pytest.fail("model loaded"))
    assert cli.main(["train", str(recipe), "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(ckpts) in err
    assert f"step_00000002: no {MARKER} manifest" in err
    assert "step_00000004: optimizer.pt has 3 bytes" in err
    assert ".tmp-step_00000006-1-abc: an unfinished save" in err
    assert _tree_hash(cfg.run_dir) == before


def test_resume_with_mistyped_run_name_exits_2_without_a_new_run(
    toy_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = write_toy_recipe(tmp_path / "r.yaml", toy_model, tmp_path / "runs")
    _fake_run(recipe)
    assert cli.main(["train", str(recipe), "trainer.run_name=rr", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "no run" in err and "'rr'" in err and "runs in" in err and ": r;" in err
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["r"]


def test_resume_with_changed_config_exits_2_listing_the_keys(
    toy_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    recipe = write_toy_recipe(tmp_path / "r.yaml", toy_model, tmp_path / "runs")
    cfg = _fake_run(recipe)
    before = _tree_hash(cfg.run_dir)
    monkeypatch.setattr(run_module, "build_state", lambda *a, **k: pytest.fail("model loaded"))
    argv = ["train", str(recipe), "optim.lr=0.02", "algo.clip_high=0.3", "trainer.steps=9",
            "--resume"]  # fmt: skip
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--allow-config-change" in err
    assert "optim.lr: 0.01 -> 0.02" in err and "algo.clip_high: " in err
    assert "trainer.steps" not in err  # allowed to change
    assert _tree_hash(cfg.run_dir) == before
    # the allow-list needs no flag; anything else needs --allow-config-change
    ckpt = cfg.run_dir / "checkpoints" / "step_00000002"
    longer = load_config(recipe, ["trainer.steps=9", "trainer.time_budget_s=60"])
    assert resume_point(longer, resume=True) == ckpt
    changed = load_config(recipe, ["optim.lr=0.02"])
    with pytest.raises(ResumeError, match=r"optim\.lr"):
        resume_point(changed, resume=True)
    assert resume_point(changed, resume=True, allow_config_change=True) == ckpt
    assert cli.main(["train", str(recipe), "--allow-config-change"]) == 2  # only with --resume


def test_resume_says_where_it_resumed_and_truncates_every_log(
    toy_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run killed after step 3 was logged but before its checkpoint: resuming from step 2
    drops step 3's rows (metrics, samples, TensorBoard) and the crashed save's temp dir, redoes
    step 3 exactly, and says so."""
    recipe = write_toy_recipe(tmp_path / "r.yaml", toy_model, tmp_path / "runs",
                              trainer={"steps": 3, "save_every": 2, "sample_every": 1})  # fmt: skip
    cfg = load_config(recipe)
    assert train_main(cfg, progress=False, reward_fn=toy_reward) == 0
    first = _rows(cfg.run_dir / "metrics.jsonl")
    samples = [r["step"] for r in _rows(cfg.run_dir / "samples.jsonl")]
    ckpts = cfg.run_dir / "checkpoints"
    shutil.rmtree(ckpts / "step_00000003")
    (ckpts / ".tmp-step_00000003-1-abc").mkdir()
    capsys.readouterr()
    assert train_main(cfg, resume=True, progress=False, reward_fn=toy_reward) == 0
    out = capsys.readouterr().out
    assert f"resumed from step 2 ({ckpts / 'step_00000002'})" in out
    again = _rows(cfg.run_dir / "metrics.jsonl")
    assert [r["step"] for r in again] == [1, 2, 3]
    drop = ("perf/", "time")
    assert [{k: v for k, v in r.items() if not k.startswith(drop)} for r in again] == [
        {k: v for k, v in r.items() if not k.startswith(drop)} for r in first
    ]
    assert [r["step"] for r in _rows(cfg.run_dir / "samples.jsonl")] == samples
    assert tb_steps(cfg.run_dir) == [1, 2, 3]
    assert sorted(p.name for p in ckpts.iterdir()) == ["step_00000002", "step_00000003"]


def test_resume_without_a_saved_config_yaml_continues(toy_model: Path, tmp_path: Path) -> None:
    """A run directory whose config.yaml is gone (copied checkpoints, an older version) has
    nothing to compare the config with: it resumes, and writes config.yaml again."""
    recipe = write_toy_recipe(tmp_path / "r.yaml", toy_model, tmp_path / "runs",
                              trainer={"steps": 3, "save_every": 2})  # fmt: skip
    cfg = load_config(recipe)
    assert train_main(cfg, progress=False, reward_fn=toy_reward) == 0
    shutil.rmtree(cfg.run_dir / "checkpoints" / "step_00000003")
    (cfg.run_dir / "config.yaml").unlink()
    assert train_main(cfg, resume=True, progress=False, reward_fn=toy_reward) == 0
    assert (cfg.run_dir / "config.yaml").exists()
    assert [r["step"] for r in _rows(cfg.run_dir / "metrics.jsonl")] == [1, 2, 3]


# ----------------------------------------------------------------------------- signals


@pytest.fixture(scope="module")
def straight_run(toy_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted 4-step run to compare interrupted-and-resumed runs with."""
    out = tmp_path_factory.mktemp("straight")
    recipe = write_toy_recipe(out / "r.yaml", toy_model, out / "runs", trainer=_SIGNAL_TRAINER)
    cfg = load_config(recipe)
    assert train_main(cfg, progress=False, reward_fn=toy_reward) == 0
    return cfg.run_dir


_SIGNAL_TRAINER = {"steps": 4, "save_every": 4, "sample_every": 1}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_finishes_the_step_saves_and_resumes_bit_identically(
    toy_model: Path, tmp_path: Path, straight_run: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], signum: int,
) -> None:  # fmt: skip
    recipe = write_toy_recipe(tmp_path / "r.yaml", toy_model, tmp_path / "runs",
                              trainer=_SIGNAL_TRAINER)  # fmt: skip
    cfg = load_config(recipe)
    real_step = run_module.train_step

    def step_then_signal(state: Any) -> Any:
        if state.step == 1:  # the signal arrives while step 2 is in flight
            os.kill(os.getpid(), signum)
        return real_step(state)

    monkeypatch.setattr(run_module, "train_step", step_then_signal)
    previous = signal.getsignal(signum)
    assert train_main(cfg, progress=False, reward_fn=toy_reward) == 128 + signum
    err = _ours(capsys.readouterr().err)
    name = signal.Signals(signum).name
    ckpt = cfg.run_dir / "checkpoints" / "step_00000002"
    assert err[-1] == f"reasonrl: interrupted by {name} after step 2: checkpoint {ckpt}; " \
        "continue with --resume"  # fmt: skip
    assert len(err) == 2 and "stopping after this step" in err[0]  # the receipt, the result
    assert latest_checkpoint(cfg.run_dir) == ckpt  # step 2 finished and was saved (not due)
    assert [r["step"] for r in _rows(cfg.run_dir / "metrics.jsonl")] == [1, 2]
    assert signal.getsignal(signum) is previous  # the run's handlers are gone again
    monkeypatch.setattr(run_module, "train_step", real_step)
    assert train_main(cfg, resume=True, progress=False, reward_fn=toy_reward) == 0
    assert_same_run(straight_run, cfg.run_dir)


# A slow reward (0.05 s a sample, 0.4 s a step) keeps a step in flight while the signals arrive.
SECOND_SIGNAL_RUNNER = """
import sys, time
sys.path.insert(0, {repo!r})
from reasonrl.config import load_config
from reasonrl.rl.run import train_main
from tests.rl.toy import toy_reward
def slow_reward(sample, completion):
    time.sleep(0.05)
    return toy_reward(sample, completion)
sys.exit(train_main(load_config(sys.argv[1]), progress=False, reward_fn=slow_reward))
"""


def test_second_signal_exits_at_once_leaving_the_last_checkpoint_valid(
    toy_model: Path, tmp_path: Path
) -> None:
    recipe = write_toy_recipe(tmp_path / "r.yaml", toy_model, tmp_path / "runs",
                              trainer={"steps": 200, "save_every": 1})  # fmt: skip
    run_dir = tmp_path / "runs" / "r"
    code = SECOND_SIGNAL_RUNNER.format(repo=str(REPO))
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    cmd = [sys.executable, "-c", code, str(recipe)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    t0 = time.monotonic()
    while not (run_dir / "checkpoints" / "step_00000001").exists():
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() - t0 < 120, "no checkpoint after 120 s"
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    assert proc.stderr is not None
    seen = []  # wait until the first is handled: two pending signals of a kind merge into one
    while not seen or "stopping after this step" not in seen[-1]:
        seen.append(proc.stderr.readline().decode())
        assert seen[-1], "".join(seen)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, "".join(seen) + err.decode()
    assert _ours(err.decode()) == ["reasonrl: second SIGINT: exiting now (the last checkpoint "
                                   "stays valid)"]  # fmt: skip
    last = latest_checkpoint(run_dir)
    assert last is not None and verify_checkpoint(last)
    assert len(_rows(run_dir / "metrics.jsonl")) < 200


# ----------------------------------------------------------------------------- full disk


@pytest.fixture
def small_disk(tmp_path: Path) -> Any:
    """A 4 MiB tmpfs (root only; skipped where mounting is not allowed)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)],
                         capture_output=True, text=True)  # fmt: skip
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {res.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(disk: Path, leave: int) -> Path:
    """A file taking all but `leave` bytes of the disk's free space."""
    filler = disk / "filler"
    free = shutil.disk_usage(disk).free
    with filler.open("wb") as fh:
        fh.write(b"\0" * max(0, free - leave))
    return filler


@pytest.mark.parametrize("where", ["before", "during"], ids=["precheck", "enospc-mid-write"])
def test_full_disk_stops_cleanly_and_resume_works_once_space_is_freed(
    toy_model: Path, small_disk: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], straight_run: Path, where: str,
) -> None:  # fmt: skip
    """`before`: the free-space check refuses the save; `during`: the check is fooled (another
    writer filled the disk since) and torch.save / safetensors hit ENOSPC mid-write."""
    recipe = write_toy_recipe(small_disk / "r.yaml", toy_model, small_disk / "runs",
                              trainer={**_SIGNAL_TRAINER, "save_every": 2})  # fmt: skip
    cfg = load_config(recipe, ["trainer.steps=2"])
    assert train_main(cfg, progress=False, reward_fn=toy_reward) == 0
    ckpts = cfg.run_dir / "checkpoints"
    size = sum(f.stat().st_size for f in (ckpts / "step_00000002").iterdir())
    filler = _fill(small_disk, leave=size // 2)
    write_errors: list[BaseException] = []
    if where == "during":
        real, classify = shutil.disk_usage, checkpoint_module.is_disk_full
        monkeypatch.setattr(shutil, "disk_usage",
                            lambda p: real(p)._replace(free=1 << 40))  # fmt: skip
        monkeypatch.setattr(checkpoint_module, "is_disk_full",
                            lambda exc: write_errors.append(exc) or classify(exc))  # fmt: skip
    cfg = load_config(recipe)  # trainer.steps=4: allowed to change on resume
    assert train_main(cfg, resume=True, progress=False, reward_fn=toy_reward) == 1
    err = _ours(capsys.readouterr().err)
    assert len(err) == 1, err
    assert f"no space left in {ckpts} for checkpoint step 4" in err[0]
    assert f"needs about {size:,} bytes" in err[0]
    assert "step_00000002) is kept" in err[0] and "--resume" in err[0]
    if where == "during":  # torch.save's zip writer: no errno, only "unexpected pos"
        assert [type(e).__name__ for e in write_errors] == ["RuntimeError"]
        assert "unexpected pos" in str(write_errors[0])
    assert sorted(p.name for p in ckpts.iterdir()) == ["step_00000002"]  # no partial dir
    assert verify_checkpoint(ckpts / "step_00000002")
    monkeypatch.undo()
    filler.unlink()
    assert train_main(cfg, resume=True, progress=False, reward_fn=toy_reward) == 0
    assert latest_checkpoint(cfg.run_dir) == ckpts / "step_00000004"
    assert_same_run(straight_run, cfg.run_dir)


@pytest.mark.parametrize(
    ("exc", "full"),
    [
        (OSError(28, "No space left on device"), True),
        (Exception("Error while serializing: I/O error: No space left on device (os error 28)"),
         True),
        (RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 832 vs 726"),
         True),
        (OSError(5, "Input/output error"), False),
        (RuntimeError("CUDA out of memory"), False),
    ],
    ids=["oserror", "safetensors", "torch-save", "eio", "other"],
)  # fmt: skip
def test_enospc_is_recognised_however_it_surfaces(exc: BaseException, full: bool) -> None:
    assert checkpoint_module.is_disk_full(exc) is full
