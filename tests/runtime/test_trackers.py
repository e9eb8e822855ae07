"""trainer.report_to: TensorBoard, wandb, Trackio and MLflow behind one Tracker protocol.

The glue is tested against fake `wandb` / `trackio` / `mlflow` modules that record the calls
under the real API names (so CI without the extras tests it), and, where the package is
installed, by a real `reasonrl train ... trainer.report_to=[X]` in the tracker's offline/local
mode (skipped otherwise: the extras are not in the Makefile's EXTRAS).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sqlite3
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from reasonrl.config import ConfigError, load_config
from reasonrl.config.rl import TrainerConfig
from reasonrl.runtime.metrics import MetricsLogger, SampleLogger
from reasonrl.runtime.trackers import (
    TrackerUnavailable,
    markdown_table,
    mlflow_key,
    sample_table,
)
from tests.rl.toy import make_toy_model, write_toy_recipe

REPO = Path(__file__).resolve().parents[2]
ROWS = [
    {"id": "a", "group": 0, "prompt": "x | y", "completion": "one\ntwo", "reward": 1.0},
    {"id": "b", "group": 0, "prompt": "x | y", "completion": "three", "reward": float("nan")},
]
METRICS = {"reward/mean": 0.5, "eval/pass@1": 0.25, "perf/step_s": 2, "flag": True, "s": "x"}


# ----------------------------------------------------------------------------- fake packages


class Calls(list):
    def names(self) -> list[str]:
        return [name for name, _, _ in self]


def fake_wandb(calls: Calls) -> types.ModuleType:
    mod = types.ModuleType("wandb")

    class Run:
        def log(self, data: dict, step: int | None = None) -> None:
            calls.append(("run.log", (data,), {"step": step}))

        def finish(self) -> None:
            calls.append(("run.finish", (), {}))

    class Table:
        def __init__(self, columns: list[str], data: list[list[Any]]) -> None:
            self.columns, self.data = columns, data

    def init(**kwargs: Any) -> Run:
        calls.append(("init", (), kwargs))
        return Run()

    mod.init, mod.Table = init, Table
    mod.Settings = lambda **kw: ("Settings", kw)
    return mod


def fake_trackio(calls: Calls) -> types.ModuleType:
    mod = types.ModuleType("trackio")

    class Table:
        def __init__(self, columns: list[str], data: list[list[Any]]) -> None:
            self.columns, self.data = columns, data

    mod.Table = Table
    mod.init = lambda **kw: calls.append(("init", (), kw)) or object()
    mod.log = lambda metrics, step=None: calls.append(("log", (metrics,), {"step": step}))
    mod.finish = lambda: calls.append(("finish", (), {}))
    return mod


def fake_mlflow(calls: Calls) -> types.ModuleType:
    mod = types.ModuleType("mlflow")

    def record(name: str, result: Any = None) -> Any:
        def fn(*args: Any, **kwargs: Any) -> Any:
            calls.append((name, args, kwargs))
            return result

        return fn

    run = types.SimpleNamespace(info=types.SimpleNamespace(run_id="mlrun123"))
    for name in ("set_tracking_uri", "set_experiment", "log_params", "log_metrics", "log_table"):
        setattr(mod, name, record(name))
    mod.start_run, mod.end_run = record("start_run", run), record("end_run")
    return mod


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> dict[str, Calls]:
    calls = {"wandb": Calls(), "trackio": Calls(), "mlflow": Calls()}
    for name, make in (("wandb", fake_wandb), ("trackio", fake_trackio), ("mlflow", fake_mlflow)):
        monkeypatch.setitem(sys.modules, name, make(calls[name]))
    for var in (
        "WANDB_PROJECT",
        "TRACKIO_PROJECT",
        "MLFLOW_TRACKING_URI",
        "MLFLOW_EXPERIMENT_NAME",
    ):
        monkeypatch.delenv(var, raising=False)
    return calls


def _one_run(run_dir: Path, names: list[str], *, resume_step: int | None = None) -> None:
    with MetricsLogger(run_dir, report_to=names, resume_step=resume_step) as log:
        samples = SampleLogger(run_dir, resume_step=resume_step, trackers=log.trackers)
        for step in (1, 2):
            log.log(step, METRICS)
            samples.log(step, ROWS)
        samples.close()


# ----------------------------------------------------------------------------- glue, with fakes


def test_wandb_glue_logs_metrics_samples_and_config(fakes: dict, tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("algo:\n  clip_high: 0.28\n")
    _one_run(tmp_path, ["jsonl", "wandb"])
    calls = fakes["wandb"]
    assert calls.names() == ["init", *["run.log"] * 4, "run.finish"]
    init = calls[0][2]
    assert init["project"] == "reasonrl" and init["name"] == tmp_path.name
    assert init["dir"] == str(tmp_path) and init["config"] == {"algo": {"clip_high": 0.28}}
    assert init["resume"] is None and init["settings"] == ("Settings", {"console": "off"})
    metrics, table = calls[1], calls[2]
    # numbers only, names unchanged; the step is wandb's step
    assert metrics[1][0] == {"reward/mean": 0.5, "eval/pass@1": 0.25, "perf/step_s": 2.0}
    assert metrics[2] == {"step": 1}
    t = table[1][0]["samples"]
    assert t.columns == ["step", "group", "prompt", "completion", "reward"]
    assert t.data[1] == [1, 0, "x | y", "three", None] and table[2] == {"step": 1}
    # metrics.jsonl is still the run's record
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 2
    assert json.loads((tmp_path / "trackers.json").read_text())["wandb"] == init["id"]


def test_wandb_resume_continues_the_same_run(fakes: dict, tmp_path: Path) -> None:
    _one_run(tmp_path, ["wandb"])
    first = fakes["wandb"][0][2]["id"]
    fakes["wandb"].clear()
    _one_run(tmp_path, ["wandb"], resume_step=1)
    init = fakes["wandb"][0][2]
    assert init["id"] == first and init["resume"] == "allow"


def test_trackio_glue(fakes: dict, tmp_path: Path) -> None:
    _one_run(tmp_path, ["trackio"])
    calls = fakes["trackio"]
    assert calls.names() == ["init", *["log"] * 4, "finish"]
    init = calls[0][2]
    assert init["project"] == "reasonrl" and init["name"] == tmp_path.name
    assert init["resume"] == "never" and init["embed"] is False
    assert calls[1][1][0]["eval/pass@1"] == 0.25 and calls[1][2] == {"step": 1}
    assert calls[2][1][0]["samples"].columns[:3] == ["step", "group", "prompt"]
    fakes["trackio"].clear()
    _one_run(tmp_path, ["trackio"], resume_step=2)
    assert fakes["trackio"][0][2]["resume"] == "allow"  # trackio resumes by run name


def test_mlflow_glue_file_store_sanitized_names(
    fakes: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    (tmp_path / "config.yaml").write_text("algo:\n  clip_high: 0.28\ndata:\n  ops: [3, 4]\n")
    _one_run(tmp_path, ["mlflow"])
    calls = fakes["mlflow"]
    assert calls.names() == [
        "set_tracking_uri", "set_experiment", "start_run", "log_params",
        "log_metrics", "log_table", "log_metrics", "log_table", "end_run",
    ]  # fmt: skip
    assert calls[0][1] == ((tmp_path / "mlruns").resolve().as_uri(),)
    assert os.environ["MLFLOW_ALLOW_FILE_STORE"] == "true"
    assert calls[1][1] == ("reasonrl",)
    assert calls[2][2] == {"run_id": None, "run_name": tmp_path.name}
    assert calls[3][1][0] == {"algo.clip_high": "0.28", "data.ops": "[3, 4]"}
    assert calls[4][1][0] == {"reward/mean": 0.5, "eval/pass_at_1": 0.25, "perf/step_s": 2.0}
    assert calls[4][2] == {"step": 1}
    table = calls[5][2]
    assert table["artifact_file"] == "samples/step_000001.json"
    assert table["data"]["completion"] == ["one\ntwo", "three"]
    # resume: the same MLflow run, params not logged again
    calls.clear()
    _one_run(tmp_path, ["mlflow"], resume_step=1)
    assert calls[2][2] == {"run_id": "mlrun123", "run_name": None}
    assert "log_params" not in calls.names()


def test_mlflow_respects_tracking_uri(
    fakes: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///x.db")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "mine")
    _one_run(tmp_path, ["mlflow"])
    assert fakes["mlflow"][0][1] == ("sqlite:///x.db",) and fakes["mlflow"][1][1] == ("mine",)


def test_mlflow_key_and_tables() -> None:
    assert mlflow_key("eval/op3/pass@1") == "eval/op3/pass_at_1"
    assert mlflow_key("a(b)=c d:e-f.g") == "a_b__c d:e-f.g"
    columns, data = sample_table([{"step": 3, "info": {"k": 1}, "reward": float("inf")}])
    assert columns == ["step", "reward"] and data == [[3, None]]
    text = markdown_table(ROWS)
    assert text.splitlines()[0] == "| group | prompt | completion | reward |"
    assert "x \\| y" in text and "one<br>two" in text


def test_a_failing_tracker_closes_the_ones_built(fakes: dict, tmp_path: Path) -> None:
    sys.modules["mlflow"].set_experiment = lambda name: (_ for _ in ()).throw(OSError("nope"))
    with pytest.raises(OSError, match="nope"):
        MetricsLogger(tmp_path, report_to=["wandb", "mlflow"])
    assert fakes["wandb"].names() == ["init", "run.finish"]
    assert not (tmp_path / "metrics.jsonl").exists()  # nothing written before the failure


def test_missing_package_names_the_key_and_pip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb -> ImportError
    with pytest.raises(TrackerUnavailable, match=r"trainer.report_to=wandb.*reasonrl\[wandb\]"):
        MetricsLogger(tmp_path, report_to=["wandb"])


def test_no_report_to_keeps_tensorboard_when_installed(tmp_path: Path) -> None:
    with MetricsLogger(tmp_path) as log:
        names = [type(t).__name__ for t in log.trackers]
    has_tb = importlib.util.find_spec("tensorboard") is not None
    assert names == (["TensorBoardTracker"] if has_tb else [])
    with MetricsLogger(tmp_path / "b", report_to=["jsonl"]) as log:
        assert log.trackers == []
    assert not (tmp_path / "b" / "tb").exists()


def test_tensorboard_gets_the_sample_table_as_text(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _one_run(tmp_path, ["tensorboard"])
    acc = EventAccumulator(str(tmp_path / "tb"), size_guidance={"tensors": 0})
    acc.Reload()
    assert "samples/text_summary" in acc.Tags()["tensors"]
    events = acc.Tensors("samples/text_summary")
    assert [e.step for e in events] == [1, 2]
    text = events[0].tensor_proto.string_val[0].decode()
    assert "| group | prompt | completion | reward |" in text
    assert [e.step for e in acc.Scalars("reward/mean")] == [1, 2]


# ----------------------------------------------------------------------------- config and checks


def test_report_to_config() -> None:
    assert TrainerConfig().report_to is None
    assert TrainerConfig(report_to=["wandb", "wandb"]).report_to == ("jsonl", "wandb")
    assert TrainerConfig(report_to=[]).report_to == ("jsonl",)
    with pytest.raises(ValueError, match="report_to"):
        TrainerConfig(report_to=["comet"])


@pytest.fixture(scope="module")
def toy_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_toy_model(tmp_path_factory.mktemp("toy") / "model")


def _recipe(toy_model: Path, tmp_path: Path) -> Path:
    return write_toy_recipe(tmp_path / "tiny.yaml", toy_model, tmp_path / "runs",
                            trainer={"steps": 2, "save_every": 2, "sample_every": 1})  # fmt: skip


def test_missing_tracker_exits_2_before_loading(
    toy_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from reasonrl.cli import main
    from reasonrl.cli.checks import check_trackers

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a)
    )
    with pytest.raises(ConfigError, match=r"r.yaml: trainer.report_to=\[jsonl, mlflow\]: mlflow"):
        check_trackers(("jsonl", "mlflow"), "r.yaml")
    recipe = _recipe(toy_model, tmp_path)
    assert main(["train", str(recipe), "trainer.report_to=[mlflow]"]) == 2
    err = capsys.readouterr().err
    assert "trainer.report_to" in err and "pip install 'reasonrl[mlflow]'" in err
    assert not (tmp_path / "runs").exists()  # refused before anything was written
    check_trackers(None)  # the default needs nothing
    check_trackers(("jsonl",))


# ----------------------------------------------------------------------------- real trackers


def _train(recipe: Path, tracker: str, env: dict[str, str]) -> Path:
    cmd = [sys.executable, "-m", "reasonrl.cli", "train", str(recipe),
           f"trainer.report_to=[{tracker}]", f"trainer.run_name={tracker}"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), **env}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = recipe.parent / "runs" / tracker
    rows = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 2 and load_config(run_dir / "config.yaml").trainer.report_to == (
        "jsonl",
        tracker,
    )
    assert not (run_dir / "tb").exists()  # report_to names exactly the trackers
    return run_dir


def test_wandb_offline_records_the_run(toy_model: Path, tmp_path: Path) -> None:
    pytest.importorskip("wandb")
    home = tmp_path / "wandb_home"
    env = {"WANDB_MODE": "offline", "WANDB_DIR": str(home), "WANDB_CONFIG_DIR": str(home),
           "WANDB_CACHE_DIR": str(home), "WANDB_SILENT": "true"}  # fmt: skip
    run_dir = _train(_recipe(toy_model, tmp_path), "wandb", env)
    runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    run_id = json.loads((run_dir / "trackers.json").read_text())["wandb"]
    data = (runs[0] / f"run-{run_id}.wandb").read_bytes()
    for key in (b"reward/mean", b"actor/loss", b"samples", b"clip_high"):
        assert key in data, key  # the history, the sample table and the config are recorded
    assert list((runs[0] / "files" / "media" / "table").glob("samples_*.table.json"))


def test_trackio_records_the_run_locally(toy_model: Path, tmp_path: Path) -> None:
    pytest.importorskip("trackio")
    store = tmp_path / "trackio"
    _train(_recipe(toy_model, tmp_path), "trackio", {"TRACKIO_DIR": str(store)})
    with sqlite3.connect(store / "reasonrl.db") as db:
        rows = db.execute("SELECT run_name, step, metrics FROM metrics").fetchall()
    logged = [(name, step, json.loads(m)) for name, step, m in rows]
    steps = sorted({step for _, step, m in logged if "reward/mean" in m})
    assert steps == [1, 2] and {name for name, _, _ in logged} == {"trackio"}
    assert any("samples" in m for _, _, m in logged)


def test_mlflow_records_the_run_in_a_file_store(
    toy_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run_dir = _train(_recipe(toy_model, tmp_path), "mlflow", {})
    run_id = json.loads((run_dir / "trackers.json").read_text())["mlflow"]
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = mlflow.MlflowClient(tracking_uri=(run_dir / "mlruns").resolve().as_uri())
    run = client.get_run(run_id)
    assert run.info.run_name == "mlflow" and run.info.status == "FINISHED"
    assert run.data.params["trainer.steps"] == "2"
    history = client.get_metric_history(run_id, "reward/mean")
    assert sorted(m.step for m in history) == [1, 2]
    artifacts = [a.path for a in client.list_artifacts(run_id, "samples")]
    assert artifacts == ["samples/step_000001.json", "samples/step_000002.json"]
