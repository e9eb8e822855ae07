"""Load problems as `Sample`s: the benchmark files in ../shared/data and any JSONL/Parquet/HF dir.

Generic loaders take a field mapping `{"prompt": <column>, "answer": <column>, "id": <column>}`
("answer" and "id" optional) and keep every other column in `Sample.meta`. An optional
`answer_transform` (a name in `ANSWER_TRANSFORMS`) turns a worked solution into the gold answer,
e.g. "hashes" for GSM8K's `#### 72` or "boxed" for MATH's last `\\boxed{}`.

A malformed row raises `DataError` naming the file and the line (JSONL, 1-based) or row
(Parquet/HF, 0-based) and what is wrong, instead of a KeyError deep in training.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from reasonrl.text import extract_boxed
from reasonrl.types import Sample


class DataError(ValueError):
    """A data file or row is malformed; the message names the file and line/row."""


def _hashes(text: str) -> str | None:
    if "####" not in text:
        return None
    return text.rsplit("####", 1)[1].strip().replace(",", "") or None


ANSWER_TRANSFORMS: dict[str, Callable[[str], str | None]] = {
    "hashes": _hashes,  # GSM8K: the text after the last "####", thousands commas removed
    "boxed": extract_boxed,  # MATH: the content of the last \boxed{}
    "strip": lambda s: s.strip() or None,
}

DEFAULT_FIELDS = {"prompt": "question", "answer": "answer"}


def _decode(raw: bytes, path: Path, lineno: int) -> str:
    try:
        # a UTF-8 byte-order mark (some editors write one) is not part of the first row
        return raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
    except UnicodeDecodeError as exc:
        bad = raw[exc.start : exc.start + 1].hex()
        raise DataError(
            f"{path}:{lineno}: not valid UTF-8 (byte 0x{bad} at column {exc.start + 1}); "
            "re-encode the file as UTF-8"
        ) from None


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a .jsonl or .jsonl.gz file; a line that
    is not UTF-8, not JSON or not an object raises `DataError` naming file:line."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                line = _decode(raw, path, lineno)
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from None
                if not isinstance(obj, dict):
                    kind = type(obj).__name__
                    raise DataError(f"{path}:{lineno}: expected a JSON object, got {kind}")
                yield lineno, obj
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None


def read_jsonl_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file; a malformed line raises `DataError` (a ValueError) naming file:line."""
    return [row for _, row in iter_jsonl(path)]


def _prompt_text(value: Any, where: str) -> tuple[str, dict[str, Any]]:
    """A prompt is a string, or a chat message list whose last user turn becomes the prompt."""
    if isinstance(value, str):
        return value, {}
    if isinstance(value, list) and value and all(isinstance(m, dict) for m in value):
        users = [m.get("content") for m in value if m.get("role") == "user"]
        if users and isinstance(users[-1], str):
            return users[-1], {"messages": value}
    raise DataError(f"{where}: prompt must be a string or a chat message list, got {value!r:.80}")


def sample_from_fields(
    row: Mapping[str, Any],
    where: str,
    *,
    fields: Mapping[str, str],
    default_id: str,
    answer_transform: str | None = None,
) -> Sample:
    """One `Sample` from one row; `where` ("file:line") prefixes every error message."""
    unknown = set(fields) - {"prompt", "answer", "id"}
    if unknown:
        raise DataError(f"field mapping has unknown keys {sorted(unknown)}; use prompt/answer/id")
    missing = [col for col in fields.values() if col not in row]
    if missing:
        raise DataError(f"{where}: missing field(s) {missing} (row has {sorted(row)})")
    prompt, extra = _prompt_text(row[fields["prompt"]], where)
    answer = row[fields["answer"]] if "answer" in fields else None
    if answer is not None and not isinstance(answer, str):
        answer = str(answer)  # numeric answers (e.g. AIME ints) are compared as text/numbers
    if answer is not None and answer_transform is not None:
        if answer_transform not in ANSWER_TRANSFORMS:
            raise DataError(f"unknown answer_transform {answer_transform!r}")
        answer = ANSWER_TRANSFORMS[answer_transform](answer)
        if answer is None:
            raise DataError(f"{where}: answer_transform {answer_transform!r} found no answer")
    sample_id = str(row[fields["id"]]) if "id" in fields else default_id
    used = set(fields.values())
    meta = {k: v for k, v in row.items() if k not in used} | extra
    if "answer" in fields and answer_transform is not None:
        meta["solution"] = row[fields["answer"]]
    return Sample(id=sample_id, prompt=prompt, answer=answer, meta=meta)


def load_jsonl(
    path: str | Path,
    fields: Mapping[str, str] = DEFAULT_FIELDS,
    *,
    answer_transform: str | None = None,
    limit: int | None = None,
    id_prefix: str | None = None,
) -> list[Sample]:
    """Samples from a .jsonl / .jsonl.gz file with a field mapping.

    Without an "id" column, ids are `<id_prefix>/<line>` (default prefix: the file's stem).
    """
    path = Path(path)
    stem = id_prefix or path.name.split(".")[0]
    out = []
    for lineno, row in iter_jsonl(path):
        if limit is not None and len(out) >= limit:
            break
        out.append(
            sample_from_fields(
                row,
                f"{path}:{lineno}",
                fields=fields,
                default_id=f"{stem}/{lineno}",
                answer_transform=answer_transform,
            )
        )
    return out


def _rows_to_samples(
    rows: Iterator[Mapping[str, Any]] | list[Mapping[str, Any]],
    source: str,
    fields: Mapping[str, str],
    answer_transform: str | None,
    limit: int | None,
) -> list[Sample]:
    out = []
    for i, row in enumerate(rows):
        if limit is not None and i >= limit:
            break
        where = f"{source}: row {i}"
        out.append(
            sample_from_fields(
                row,
                where,
                fields=fields,
                default_id=f"{Path(source).name}/{i}",
                answer_transform=answer_transform,
            )
        )
    return out


def load_parquet(
    path: str | Path,
    fields: Mapping[str, str] = DEFAULT_FIELDS,
    *,
    answer_transform: str | None = None,
    limit: int | None = None,
) -> list[Sample]:
    """Samples from a Parquet file (pyarrow, imported lazily); rows are 0-based in errors."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise DataError(f"{path}: cannot read Parquet ({exc})") from None
    return _rows_to_samples(table.to_pylist(), str(path), fields, answer_transform, limit)


def load_hf_dataset(
    path: str | Path,
    fields: Mapping[str, str] = DEFAULT_FIELDS,
    *,
    split: str | None = None,
    answer_transform: str | None = None,
    limit: int | None = None,
) -> list[Sample]:
    """Samples from a directory written by `datasets.Dataset.save_to_disk` (lazy import).

    A `DatasetDict` directory needs `split` (e.g. "train").
    """
    import datasets

    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as exc:
        raise DataError(f"{path}: cannot load HF dataset ({exc})") from None
    if isinstance(ds, datasets.DatasetDict):
        if split is None or split not in ds:
            raise DataError(f"{path}: a DatasetDict; pass split= one of {sorted(ds)}")
        ds = ds[split]
    return _rows_to_samples(iter(ds), str(path), fields, answer_transform, limit)


def load_any(
    path: str | Path,
    fields: Mapping[str, str] = DEFAULT_FIELDS,
    *,
    answer_transform: str | None = None,
    split: str | None = None,
    limit: int | None = None,
) -> list[Sample]:
    """Dispatch on the path: a directory is an HF dataset, `.parquet`, else JSONL (.gz ok)."""
    path = Path(path)
    kw = {"answer_transform": answer_transform, "limit": limit}
    if path.is_dir():
        return load_hf_dataset(path, fields, split=split, **kw)
    if path.suffix == ".parquet":
        return load_parquet(path, fields, **kw)
    if path.name.endswith((".jsonl", ".jsonl.gz", ".json")):
        return load_jsonl(path, fields, **kw)
    raise DataError(f"{path}: unknown data format (expected .jsonl[.gz], .parquet or a directory)")
