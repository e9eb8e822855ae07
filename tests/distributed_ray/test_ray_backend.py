"""A Ray run on this machine (2 rollout actors + 1 reward actor + the trainer in the driver,
max_staleness 0) gives the local backend's metrics for the same seed, and a driver killed with
SIGKILL after its first checkpoint resumes to the uninterrupted run, leaving no Ray process
behind. Marked `ray` (excluded by default: `make test-ray`); skipped without Ray."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

from reasonrl.config import load_config  # noqa: E402
from reasonrl.config.rl import RayConfig  # noqa: E402
from reasonrl.distributed_ray import cluster  # noqa: E402
from reasonrl.distributed_ray.run import train_main as ray_main  # noqa: E402
from reasonrl.rl.run import train_main as local_main  # noqa: E402
from tests.rl.toy import assert_same_run, final_state, make_toy_model, write_toy_recipe  # noqa: E402

pytestmark = pytest.mark.ray
REPO = Path(__file__).resolve().parents[2]
STEPS = 4
# what only the Ray backend logs: the weight version of every sample (0 lag at K = 0)
VERSION_KEYS = {
    "rollout/staleness_mean", "rollout/staleness_max", "rollout/version_lag_max",
    "rollout/weight_version_min", "rollout/segments_max", "rollout/partial_carried",
}  # fmt: skip
# the engine's own log-probs (IS diagnostics): equal up to float rounding, the batch differs
ROUNDING = ("is/mismatch",)


def recipe(root: Path, model: Path, name: str, backend: str) -> Path:
    trainer = {"steps": STEPS, "save_every": 2, "out_dir": str(root), "sample_every": 1}
    if backend == "ray":
        trainer |= {"backend": "ray", "ray": {"rollout_workers": 2, "reward_workers": 1,
                                              "num_cpus": 2}}  # fmt: skip
    return write_toy_recipe(root / f"{name}.yaml", model, root, trainer=trainer,
                            reward={"kind": "tests.rl.toy:toy_reward"})  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The local run and the Ray run (one local Ray cluster for the module's in-process runs)."""
    root = tmp_path_factory.mktemp("ray")
    model = make_toy_model(root / "model")
    assert local_main(load_config(recipe(root, model, "local", "local")), progress=False) == 0
    started = cluster.start(RayConfig(num_cpus=2))
    try:
        assert ray_main(load_config(recipe(root, model, "ray", "ray")), progress=False) == 0
        assert ray.is_initialized()  # a cluster the run did not start is left to its owner
        yield root
    finally:
        cluster.stop(started)


def test_ray_run_gives_the_local_metrics(runs: Path) -> None:
    w_local, local = final_state(runs / "local")
    w_ray, rows = final_state(runs / "ray")
    assert len(rows) == len(local) == STEPS
    for a, b in zip(local, rows, strict=True):
        assert set(b) - set(a) == VERSION_KEYS | {"perf/time_publish"}, set(b) ^ set(a)
        for key, value in a.items():
            if key.startswith(("perf/", "time")):
                continue
            if key.startswith(ROUNDING):
                assert b[key] == pytest.approx(value, rel=0.5, abs=1e-6), key
            else:
                assert b[key] == value, (a["step"], key)
        assert b["rollout/staleness_max"] == 0 and b["rollout/weight_version_min"] == a["step"] - 1
        assert b["perf/time_publish"] > 0  # the weights went through the object store
    assert all(w_local[k].equal(w_ray[k]) for k in w_local)


def test_sigkilled_driver_resumes_and_leaves_no_ray_process(runs: Path) -> None:
    model = runs / "model"
    path = recipe(runs, model, "killed", "ray")
    run_dir = runs / "killed"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "reasonrl.cli", "train", str(path)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=env)  # fmt: skip
    t0 = time.monotonic()
    while not (run_dir / "checkpoints" / "step_00000002").exists():
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() - t0 < 300, "no checkpoint after 300 s"
        time.sleep(0.05)
    family = psutil.Process(proc.pid).children(recursive=True)  # its raylet, GCS, workers
    assert family, "the driver started no Ray processes"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    # the raylet and GCS share the driver's fate at once; their agents (runtime-env, dashboard
    # agent) notice the raylet is gone on their next check, about a minute later: awaited below,
    # while the resume runs
    t_kill = time.monotonic()
    core = [p for p in family if p.name() in ("raylet", "gcs_server")]
    assert core, [p.name() for p in family]
    _, alive = psutil.wait_procs(core, timeout=30)
    assert not alive, f"left running: {[(p.pid, p.name()) for p in alive]}"
    # resumed on this module's cluster; bit-exact: the weights, rows and prompts of a straight run
    assert ray_main(load_config(path), resume=True, progress=False) == 0
    assert_same_run(runs / "ray", run_dir)
    _, alive = psutil.wait_procs(family, timeout=max(1.0, 180 - (time.monotonic() - t_kill)))
    assert not alive, f"left running: {[(p.pid, p.name()) for p in alive]}"
    print(f"every Ray process of the killed driver ended {time.monotonic() - t_kill:.0f} s later")


def test_async_rollouts_on_the_actors_keep_the_staleness_bound(runs: Path) -> None:
    """max_staleness 1 under Ray: the producer thread samples through the actors one version
    ahead; no sample trains more than 1 version late; the run's actors are gone at its end."""
    trainer = {"steps": 3, "save_every": 3, "out_dir": str(runs), "backend": "ray",
               "ray": {"rollout_workers": 2, "reward_workers": 1}}  # fmt: skip
    path = write_toy_recipe(runs / "async.yaml", runs / "model", runs, trainer=trainer,
                            rollout={"max_staleness": 1, "producer_threads": 1},
                            reward={"kind": "tests.rl.toy:toy_reward"})  # fmt: skip
    assert ray_main(load_config(path), progress=False) == 0
    _, rows = final_state(runs / "async")
    lags = [r["rollout/version_lag_max"] for r in rows]
    assert max(lags) == 1 and all(0 <= lag <= 1 for lag in lags)
    t0 = time.monotonic()  # killed actors give their CPUs back to the module's cluster
    while ray.available_resources().get("CPU", 0) < ray.cluster_resources()["CPU"]:
        assert time.monotonic() - t0 < 30, "the run's actors still hold CPUs"
        time.sleep(0.2)
