"""Metric sinks and the once-per-step reduction (design principle P14).

Pure functions return metric *tensors*; the trainer collects one dict per micro-batch and calls
`reduce_metrics` once per optimizer step, which synchronises once (a single `.tolist()`) instead
of calling `.item()` per micro-batch. `MetricsLogger` then writes the flat, prefixed row
(`rollout/`, `reward/`, `actor/`, `perf/`, `eval/`) to `metrics.jsonl` and the trackers of
`trainer.report_to` (`runtime/trackers.py`: TensorBoard, wandb, Trackio, MLflow; without
report_to, TensorBoard when the `tb` extra is installed). `SampleLogger` writes rollouts
to `samples.jsonl` and hands the same rows to those trackers as a sample table.

Resume: both loggers take `resume_step`; rows of steps after it (written by the killed run after
its last checkpoint) are dropped, so a resumed run's files equal an uninterrupted run's. The
TensorBoard event files are rewritten the same way (`truncate_events`), and the new writer also
carries `purge_step`, so TensorBoard itself drops any later point it still finds.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import struct
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from reasonrl.runtime.trackers import Tracker, make_trackers


def reduce_metrics(
    rows: Sequence[Mapping[str, torch.Tensor | float]],
    weights: Sequence[float] | None = None,
) -> dict[str, float]:
    """Mean of each key over micro-batches, with one device sync for the whole step.

    mean_k = sum_i w_i * x_{i,k} / sum_i w_i over the micro-batches i that report key k.
    Keys ending in `_max` (e.g. `actor/ratio_max`) are reduced by max instead, `_min` by min.

    Args:
        rows: one dict per micro-batch; values are scalar tensors (any device) or floats.
        weights: per micro-batch weights (e.g. token counts); None means equal weights.

    Returns:
        {key: float}; keys in first-seen order.
    """
    if weights is not None and len(weights) != len(rows):
        raise ValueError(f"{len(weights)} weights for {len(rows)} metric rows")
    values: dict[str, list[torch.Tensor]] = {}
    wts: dict[str, list[float]] = {}
    for i, row in enumerate(rows):
        w = 1.0 if weights is None else float(weights[i])
        for key, value in row.items():
            if isinstance(value, torch.Tensor):
                value = value.detach().float().mean().cpu()
            else:
                value = torch.tensor(float(value))
            values.setdefault(key, []).append(value)
            wts.setdefault(key, []).append(w)
    if not values:
        return {}
    reduced = []
    for key, vals in values.items():
        stacked = torch.stack(vals)
        if key.endswith("_max"):
            reduced.append(stacked.max())
        elif key.endswith("_min"):
            reduced.append(stacked.min())
        else:
            w = torch.tensor(wts[key])
            reduced.append((stacked * w).sum() / w.sum())
    return dict(zip(values, torch.stack(reduced).tolist(), strict=True))


def _finite_or_none(value: Any) -> Any:
    # Strict JSON has no NaN/Infinity; null keeps the file parseable by any tool.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _jsonable(value: Any) -> Any:
    """Tensors, numpy scalars/arrays, tuples and sets become plain JSON values."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return _jsonable(value.tolist())
    if hasattr(value, "tolist"):  # numpy
        return _jsonable(value.tolist())
    if isinstance(value, float):
        return _finite_or_none(value)
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


def truncate_jsonl(path: Path, last_step: int) -> int:
    """Keep rows with `step <= last_step` (and drop a torn last line); returns rows kept."""
    if not path.exists():
        return 0
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a kill
        if isinstance(row, dict) and row.get("step", 0) <= last_step:
            kept.append(line)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")
    os.replace(tmp, path)
    return len(kept)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write `data` as JSON through a temporary file: a kill never leaves a torn file behind
    for the report."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _event_records(data: bytes) -> Iterable[tuple[bytes, bytes]]:
    """(record bytes, payload) of each whole TFRecord: u64 length, u32 crc, payload, u32 crc."""
    pos = 0
    while pos + 12 <= len(data):
        (length,) = struct.unpack("<Q", data[pos : pos + 8])
        end = pos + 12 + length + 4
        if end > len(data):
            return  # a record cut short by a kill
        yield data[pos:end], data[pos + 12 : pos + 12 + length]
        pos = end


def truncate_events(log_dir: Path, last_step: int) -> int:
    """Drop TensorBoard events with `step > last_step` from every event file under `log_dir`
    (records kept byte for byte; a torn last record dropped); returns the events dropped.

    Without the tensorboard package (whose protobuf parses an event) the files are left alone.
    """
    try:
        from tensorboard.compat.proto.event_pb2 import Event
    except ImportError:
        return 0
    dropped = 0
    for path in sorted(log_dir.glob("**/events.out.tfevents.*")):
        kept = bytearray()
        data = path.read_bytes()
        for record, payload in _event_records(data):
            event = Event()
            try:
                event.ParseFromString(payload)
            except Exception:  # a corrupt record is dropped like a torn one
                dropped += 1
                continue
            if event.step > last_step and event.HasField("summary"):
                dropped += 1
                continue
            kept += record
        if len(kept) != len(data):
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(bytes(kept))
            os.replace(tmp, path)
    return dropped


def _last_time(path: Path) -> float:
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    last = json.loads(lines[-1]) if lines else {}
    value = last.get("time_s") if isinstance(last, dict) else None
    return float(value) if isinstance(value, int | float) else 0.0


class JsonlWriter:
    """Append-only JSON lines, flushed per row; truncated to `resume_step` (or replaced) at open."""

    def __init__(self, path: Path, resume_step: int | None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is not None:
            truncate_jsonl(path, resume_step)
        elif path.exists():
            path.unlink()  # a fresh run never appends to an old file
        self.path = path
        self._fh = path.open("a", encoding="utf-8")

    def write(self, row: Mapping[str, Any]) -> None:
        self._fh.write(json.dumps(row, allow_nan=False) + "\n")
        self._fh.flush()  # survive a kill: the OS has every finished row

    def close(self) -> None:
        self._fh.close()


def _saved_config(run_dir: Path) -> dict[str, Any] | None:
    """The resolved config the run saved (run_dir/config.yaml), for the trackers' run config."""
    path = run_dir / "config.yaml"
    if not path.exists():
        return None
    import yaml

    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded if isinstance(loaded, dict) else None


class MetricsLogger:
    """One row per step to metrics.jsonl and the trackers of `report_to` (the console's step
    lines are `runtime.progress.StepProgress`'s).

    Args:
        run_dir: the run directory.
        tensorboard: without `report_to`: also write TensorBoard events to run_dir/tb when
            tensorboard is installed (the default before `trainer.report_to` existed).
        resume_step: continuing a run from this checkpoint step (drops later rows).
        report_to: `trainer.report_to`: exactly these trackers (`runtime.trackers.REPORT_TO`;
            metrics.jsonl is always written); a missing package raises TrackerUnavailable.
        config: the run's config for wandb/Trackio/MLflow; None reads run_dir/config.yaml.
    """

    def __init__(
        self,
        run_dir: str | Path,
        *,
        tensorboard: bool = True,
        resume_step: int | None = None,
        report_to: Sequence[str] | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        if report_to is None:  # TensorBoard when it is installed, as before report_to
            has_tb = importlib.util.find_spec("tensorboard") is not None
            report_to = ["tensorboard"] if tensorboard and has_tb else []
        if "tensorboard" in report_to and resume_step is not None:
            truncate_events(self.run_dir / "tb", resume_step)
        if config is None:
            config = _saved_config(self.run_dir)
        # Trackers first: a missing package fails before metrics.jsonl is touched.
        self.trackers: list[Tracker] = make_trackers(
            report_to, self.run_dir, config=config, resume_step=resume_step
        )
        self._jsonl = JsonlWriter(self.run_dir / "metrics.jsonl", resume_step)
        # A resumed run continues the wall clock of the rows it kept.
        self._start = time.time() - _last_time(self.run_dir / "metrics.jsonl")

    def log(self, step: int, metrics: Mapping[str, float]) -> dict[str, Any]:
        """Write one step's metrics; returns the row as written."""
        row = {"step": step, "time_s": round(time.time() - self._start, 3)}
        row.update({k: _jsonable(v) for k, v in metrics.items()})
        self._jsonl.write(row)
        for tracker in self.trackers:
            tracker.log(step, metrics)
        return row

    def close(self) -> None:
        self._jsonl.close()
        for tracker in self.trackers:
            tracker.close()

    def __enter__(self) -> MetricsLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def rollout_record(rollout: Any) -> dict[str, Any]:
    """The JSON fields of a `reasonrl.types.Rollout` (or a plain dict with the same keys)."""
    if isinstance(rollout, Mapping):
        return {k: _jsonable(v) for k, v in rollout.items()}
    sample, completion, reward = rollout.sample, rollout.completion, rollout.reward
    return {
        "id": sample.id,
        "group": rollout.group,
        "prompt": sample.prompt,
        "answer": sample.answer,
        "completion": completion.text,
        "finish_reason": completion.finish_reason,
        "tokens": len(completion.token_ids),
        "reward": _finite_or_none(reward.score),
        "parsed_answer": reward.answer,  # the completion's answer as the task normalised it
        "outcome": reward.outcome,
        "verified": reward.verified,
        "advantage": _finite_or_none(getattr(rollout, "advantage", None)),
        "info": _jsonable(reward.info),
        "meta": _small_meta(sample.meta),
    }


def _small_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The sample's scalar metadata (the synthetic task's op, context, mode and gold trace), so
    the report can group by op and show the gold beside a completion; long values (e.g. a
    benchmark's hidden tests) are left out."""
    return {
        k: v for k, v in meta.items()
        if isinstance(v, (str, int, float, bool)) and len(str(v)) <= 4000
    }  # fmt: skip


class SampleLogger:
    """Rollouts (prompt, completion, reward, info) to samples.jsonl, tagged with the step, and
    the same rows to `trackers` (usually `MetricsLogger.trackers`, which closes them) as one
    sample table per step."""

    def __init__(
        self,
        run_dir: str | Path,
        *,
        resume_step: int | None = None,
        trackers: Sequence[Tracker] = (),
    ) -> None:
        self._jsonl = JsonlWriter(Path(run_dir) / "samples.jsonl", resume_step)
        self._trackers = list(trackers)

    def log(self, step: int, rollouts: Iterable[Any], *, limit: int | None = None) -> int:
        """Write up to `limit` rollouts of this step; returns how many were written."""
        rows = []
        for rollout in rollouts:
            if limit is not None and len(rows) >= limit:
                break
            row = {"step": step, **rollout_record(rollout)}
            self._jsonl.write(row)
            rows.append(row)
        for tracker in self._trackers:
            tracker.log_samples(step, rows)
        return len(rows)

    def close(self) -> None:
        self._jsonl.close()
