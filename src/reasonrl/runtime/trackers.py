"""Experiment trackers beside metrics.jsonl: TensorBoard, Weights & Biases, Trackio, MLflow.

`trainer.report_to` names them; `MetricsLogger` builds them with `make_trackers` and hands every
step's metrics to each, and `SampleLogger` the step's sample rows (as a table where the tracker
has one). Every tracker is one small class behind the `Tracker` protocol, and each third-party
package is imported only when its tracker is built (the `tb`, `wandb`, `trackio`, `mlflow`
extras). `reasonrl train` checks the packages before anything loads (`cli/checks.py`), so a
missing one exits 2 naming `trainer.report_to` and the pip command.

Local / offline modes (each tracker's own environment variables are respected):
- tensorboard: event files in `run_dir/tb`, metric scalars and the sample table as text.
- wandb: `WANDB_MODE=offline` writes `run_dir/wandb/offline-run-*` (upload later with
  `wandb sync`); project `WANDB_PROJECT`, else `reasonrl`.
- trackio: always local first, a SQLite database under `TRACKIO_DIR` (default
  `~/.cache/huggingface/trackio`); project `TRACKIO_PROJECT`, else `reasonrl`.
- mlflow: `MLFLOW_TRACKING_URI` when set, else a file store `file:run_dir/mlruns` (MLflow 3 has
  it in maintenance mode: `MLFLOW_ALLOW_FILE_STORE=true` is set for it unless already set);
  experiment `MLFLOW_EXPERIMENT_NAME`, else `reasonrl`. MLflow allows only letters, digits and
  `_-. :/` in a metric name, so `@` becomes `_at_` (`eval/pass@1` -> `eval/pass_at_1`) and any
  other character `_`; the other trackers get the names unchanged.

Resume: the wandb run id and the MLflow run id are kept in `run_dir/trackers.json`, and a resumed
run continues the same tracker run (Trackio resumes by run name). Points of the steps after the
resumed checkpoint that the killed run had already sent are cut from TensorBoard's files like
metrics.jsonl; the other trackers cannot rewind: MLflow and Trackio keep both values of such a
step, and an online wandb run ignores a step below its last one (with a warning).
"""

from __future__ import annotations

import json
import math
import os
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from reasonrl.runtime.nested import flatten_dotted

PROJECT = "reasonrl"
# report_to names -> (module to import, pip extra of reasonrl); jsonl needs nothing.
TRACKER_PACKAGES: dict[str, tuple[str, str]] = {
    "tensorboard": ("tensorboard", "tb"),
    "wandb": ("wandb", "wandb"),
    "trackio": ("trackio", "trackio"),
    "mlflow": ("mlflow", "mlflow"),
}
REPORT_TO = ("jsonl", *TRACKER_PACKAGES)
# The columns of a sample table, in order (the keys of runtime.metrics.rollout_record + step).
SAMPLE_COLUMNS = (
    "step",
    "group",
    "prompt",
    "completion",
    "reward",
    "outcome",
    "verified",
    "finish_reason",
    "tokens",
    "answer",
    "parsed_answer",
)


class TrackerUnavailable(ImportError):
    """A tracker was asked for in `trainer.report_to` but its package is not installed."""


def install_hint(name: str) -> str:
    """`pip install 'reasonrl[wandb]'` (or the bare package) for a report_to name."""
    module, extra = TRACKER_PACKAGES[name]
    return f"pip install 'reasonrl[{extra}]' (or pip install {module})"


def _import(name: str) -> Any:
    import importlib

    module = TRACKER_PACKAGES[name][0]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise TrackerUnavailable(
            f"trainer.report_to={name}: the {module} package is not installed ({exc}); "
            f"{install_hint(name)}, or remove {name} from trainer.report_to"
        ) from exc


class Tracker(Protocol):
    """What `MetricsLogger` and `SampleLogger` call; a tracker never sees a tensor."""

    def log(self, step: int, metrics: Mapping[str, float]) -> None: ...

    def log_samples(self, step: int, rows: Sequence[Mapping[str, Any]]) -> None: ...

    def close(self) -> None: ...


def numeric(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The int/float values of a metrics row (bools and text left out)."""
    return {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def sample_table(rows: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """(columns, data) of sample rows: SAMPLE_COLUMNS present in any row, plain values."""
    columns = [c for c in SAMPLE_COLUMNS if any(c in row for row in rows)]
    data = [[_cell(row.get(c)) for c in columns] for row in rows]
    return columns, data


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return json.dumps(value, default=str)


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The sample rows as one Markdown table (TensorBoard's text plugin renders it)."""
    columns, data = sample_table(rows)

    def esc(value: Any) -> str:
        text = "" if value is None else str(value)
        return text.replace("|", "\\|").replace("\r", "").replace("\n", "<br>")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in data]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- ids across resume


def _ids_path(run_dir: Path) -> Path:
    return run_dir / "trackers.json"


def _saved_id(run_dir: Path, name: str) -> str | None:
    path = _ids_path(run_dir)
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get(name)
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _save_id(run_dir: Path, name: str, run_id: str) -> None:
    path = _ids_path(run_dir)
    try:
        ids = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        ids = {}
    ids = ids if isinstance(ids, dict) else {}
    ids[name] = run_id
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(ids, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- the trackers


class TensorBoardTracker:
    """Scalars per step and the sample table as text (`samples`) in `run_dir/tb`."""

    def __init__(self, log_dir: Path, *, resume_step: int | None = None) -> None:
        _import("tensorboard")  # SummaryWriter needs the package, not just torch
        from torch.utils.tensorboard import SummaryWriter

        # purge_step: TensorBoard discards points at steps >= resume_step + 1 from earlier files
        purge = None if resume_step is None else resume_step + 1
        self.writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge)

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        for key, value in numeric(metrics).items():
            self.writer.add_scalar(key, value, step)

    def log_samples(self, step: int, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            self.writer.add_text("samples", markdown_table(rows), step)

    def close(self) -> None:
        self.writer.close()


class _WandbStyleTracker:
    """The part wandb and Trackio share (Trackio follows wandb's API): `log(dict, step=)` for
    metrics, a `Table(columns=, data=)` logged under `samples`, `finish()` at the end. A
    subclass sets `_log`, `_table` and `_finish` from its package."""

    _log: Any
    _table: Any
    _finish: Any

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        self._log(numeric(metrics), step=step)

    def log_samples(self, step: int, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            columns, data = sample_table(rows)
            self._log({"samples": self._table(columns=columns, data=data)}, step=step)

    def close(self) -> None:
        self._finish()


class WandbTracker(_WandbStyleTracker):
    """A wandb run named after the run directory, with the resolved config; samples as a
    `wandb.Table` under `samples`. WANDB_MODE (online, offline, disabled) is wandb's own."""

    def __init__(
        self,
        run_dir: Path,
        *,
        config: Mapping[str, Any] | None = None,
        resume_step: int | None = None,
    ) -> None:
        self.wandb = _import("wandb")
        run_id = _saved_id(run_dir, "wandb") if resume_step is not None else None
        resuming = run_id is not None
        run_id = run_id or uuid.uuid4().hex[:12]
        self.run = self.wandb.init(
            project=os.environ.get("WANDB_PROJECT", PROJECT),
            name=run_dir.name,
            dir=str(run_dir),
            id=run_id,
            resume="allow" if resuming else None,
            config=dict(config or {}),
            settings=self.wandb.Settings(console="off"),  # our progress line stays ours
        )
        _save_id(run_dir, "wandb", run_id)
        self._log, self._table, self._finish = self.run.log, self.wandb.Table, self.run.finish


class TrackioTracker(_WandbStyleTracker):
    """A Trackio run (wandb's API, stored locally under TRACKIO_DIR); samples as a
    `trackio.Table` under `samples`."""

    def __init__(
        self,
        run_dir: Path,
        *,
        config: Mapping[str, Any] | None = None,
        resume_step: int | None = None,
    ) -> None:
        self.trackio = _import("trackio")
        self.run = self.trackio.init(
            project=os.environ.get("TRACKIO_PROJECT", PROJECT),
            name=run_dir.name,
            config=dict(config or {}),
            resume="allow" if resume_step is not None else "never",
            embed=False,  # never open a dashboard from a training run
        )
        self._log, self._table = self.trackio.log, self.trackio.Table
        self._finish = self.trackio.finish


_MLFLOW_BAD = re.compile(r"[^A-Za-z0-9_\-. :/]")


def mlflow_key(key: str) -> str:
    """A metric or param name MLflow accepts: `@` -> `_at_`, other characters outside
    letters, digits and `_-. :/` -> `_`."""
    return _MLFLOW_BAD.sub("_", key.replace("@", "_at_"))


def flat_params(tree: Mapping[str, Any]) -> dict[str, str]:
    """`{"algo.clip_high": "0.28", ...}` of a nested config (MLflow params are flat strings,
    at most 6000 characters)."""
    return {
        mlflow_key(name): (value if isinstance(value, str) else json.dumps(value, default=str))[
            :6000
        ]
        for name, value in flatten_dotted(tree).items()
    }


class MlflowTracker:
    """An MLflow run (experiment `reasonrl`) with the config as params; sample tables as
    `samples/step_NNNNNN.json` artifacts (`mlflow.log_table`)."""

    def __init__(
        self,
        run_dir: Path,
        *,
        config: Mapping[str, Any] | None = None,
        resume_step: int | None = None,
    ) -> None:
        self.mlflow = _import("mlflow")
        uri = os.environ.get("MLFLOW_TRACKING_URI")
        if not uri:
            uri = (run_dir / "mlruns").resolve().as_uri()
            # MLflow 3 keeps the file store in maintenance mode and refuses it unless asked
            # for; it needs no database packages, and this local store is all a run needs.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.mlflow.set_tracking_uri(uri)
        self.mlflow.set_experiment(os.environ.get("MLFLOW_EXPERIMENT_NAME", PROJECT))
        run_id = _saved_id(run_dir, "mlflow") if resume_step is not None else None
        self.run = self.mlflow.start_run(run_id=run_id, run_name=None if run_id else run_dir.name)
        _save_id(run_dir, "mlflow", self.run.info.run_id)
        if run_id is None and config:
            self.mlflow.log_params(flat_params(config))

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        values = {mlflow_key(k): v for k, v in numeric(metrics).items()}
        if values:
            self.mlflow.log_metrics(values, step=step)

    def log_samples(self, step: int, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            columns, data = sample_table(rows)
            table = {c: [row[i] for row in data] for i, c in enumerate(columns)}
            self.mlflow.log_table(data=table, artifact_file=f"samples/step_{step:06d}.json")

    def close(self) -> None:
        self.mlflow.end_run()


def make_trackers(
    names: Iterable[str],
    run_dir: str | Path,
    *,
    config: Mapping[str, Any] | None = None,
    resume_step: int | None = None,
) -> list[Tracker]:
    """The trackers of `trainer.report_to` (jsonl is MetricsLogger's own file, not built here);
    raises TrackerUnavailable when a package is missing. Trackers already built are closed
    when a later one fails, so nothing is left open."""
    run_dir = Path(run_dir)
    built: list[Tracker] = []
    try:
        for name in dict.fromkeys(names):
            if name == "jsonl":
                continue
            if name == "tensorboard":
                built.append(TensorBoardTracker(run_dir / "tb", resume_step=resume_step))
            elif name == "wandb":
                built.append(WandbTracker(run_dir, config=config, resume_step=resume_step))
            elif name == "trackio":
                built.append(TrackioTracker(run_dir, config=config, resume_step=resume_step))
            elif name == "mlflow":
                built.append(MlflowTracker(run_dir, config=config, resume_step=resume_step))
            else:
                raise ValueError(f"unknown tracker {name!r}; known: {', '.join(REPORT_TO)}")
    except BaseException:
        for tracker in built:
            tracker.close()
        raise
    return built
