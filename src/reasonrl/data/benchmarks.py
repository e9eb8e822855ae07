"""Loaders for the benchmark files in ../shared/data (see its README for provenance).

Each returns `list[Sample]` with the gold answer in `Sample.answer` (as the grader expects it)
and everything else in `Sample.meta`. `BENCHMARKS` maps a short name to (relative path, loader);
`load_benchmark(name, data_dir)` reads one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from reasonrl.data.loaders import DataError, iter_jsonl, load_jsonl, sample_from_fields
from reasonrl.types import Sample

# Paraphrase of the d1 / TinyZero countdown instruction (arXiv 2504.12216, TinyZero repo).
COUNTDOWN_PROMPT = (
    "Using the numbers {numbers}, create an equation that equals {target}. You can use basic "
    "arithmetic operations (+, -, *, /) and each number must be used exactly once. Show your "
    "reasoning, then give only the equation in <answer> </answer> tags, for example "
    "<answer> (1 + 2) / 3 </answer>."
)


def load_gsm8k(path: str | Path) -> list[Sample]:
    """GSM8K: prompt = question; answer = the number after `####` (commas removed);
    meta["solution"] = the worked answer."""
    path = Path(path)
    fields = {"prompt": "question", "answer": "answer"}
    prefix = f"gsm8k_{path.name.split('.')[0]}"
    return load_jsonl(path, fields, answer_transform="hashes", id_prefix=prefix)


def load_math500(path: str | Path) -> list[Sample]:
    """MATH500: prompt = problem; answer = `answer`; id = unique_id; meta: solution, subject,
    level."""
    return load_jsonl(path, {"prompt": "problem", "answer": "answer", "id": "unique_id"})


def load_math(path: str | Path) -> list[Sample]:
    """Hendrycks MATH test (5000): answer = last `\\boxed{}` of `solution`; meta keeps level,
    type, idx and the solution."""
    return load_jsonl(path, {"prompt": "problem", "answer": "solution"}, answer_transform="boxed")


def load_aime(path: str | Path) -> list[Sample]:
    """AIME24: answer as an integer string ("025" -> "25"; the raw text kept in
    meta["answer_raw"]); id = the row's `id`."""
    path = Path(path)
    out = []
    for lineno, row in iter_jsonl(path):
        where = f"{path}:{lineno}"
        sample = sample_from_fields(
            row,
            where,
            fields={"prompt": "problem", "answer": "answer", "id": "id"},
            default_id=f"aime24/{lineno}",
        )
        raw = sample.answer or ""
        if not raw.strip().isdigit():
            raise DataError(f"{where}: AIME answer {raw!r} is not an integer")
        meta = sample.meta | {"answer_raw": raw}
        out.append(
            Sample(id=f"aime24/{sample.id}", prompt=sample.prompt, answer=str(int(raw)), meta=meta)
        )
    return out


def load_humaneval(path: str | Path) -> list[Sample]:
    """HumanEval: prompt = the function stub; answer = canonical solution body;
    meta: test (defines `check(candidate)`), entry_point."""
    return load_jsonl(
        path,
        {"prompt": "prompt", "answer": "canonical_solution", "id": "task_id"},
    )


def load_countdown(path: str | Path, *, prompt: str = COUNTDOWN_PROMPT) -> list[Sample]:
    """Countdown (d1 cd3): input "30,100,93", output "23" -> meta numbers/target, answer "23"."""
    path = Path(path)
    out = []
    for lineno, row in iter_jsonl(path):
        where = f"{path}:{lineno}"
        if not isinstance(row.get("input"), str) or "output" not in row:
            raise DataError(
                f"{where}: expected string 'input' and 'output' (row has {sorted(row)})"
            )
        try:
            numbers = [int(x) for x in row["input"].split(",")]
            target = int(row["output"])
        except ValueError:
            raise DataError(f"{where}: non-integer countdown numbers {row!r:.80}") from None
        text = prompt.format(numbers=numbers, target=target)
        meta = {"numbers": numbers, "target": target}
        out.append(Sample(id=f"countdown/{lineno}", prompt=text, answer=str(target), meta=meta))
    return out


BENCHMARKS: dict[str, tuple[str, Callable[[Path], list[Sample]]]] = {
    "gsm8k_train": ("gsm8k/train.jsonl", load_gsm8k),
    "gsm8k_test": ("gsm8k/test.jsonl", load_gsm8k),
    "math500": ("math/math500_test.jsonl", load_math500),
    "math_test": ("math/math_test_5000.jsonl", load_math),
    "aime24": ("aime/aime24_test.jsonl", load_aime),
    "humaneval": ("humaneval/HumanEval.jsonl.gz", load_humaneval),
    "countdown": ("countdown/countdown_cd3_test.jsonl", load_countdown),
}


DEFAULT_DATA_DIR = "../shared/data"  # data.data_dir's default: the shared folder beside a checkout
SHARED_DATA_ENV = "REASONRL_SHARED_DATA"


def resolve_data_dir(data_dir: str | Path) -> Path:
    """The folder `data_dir` names, absolute. The default (`../shared/data`) is looked for in
    order: $REASONRL_SHARED_DATA, from the current directory, beside this source checkout; any
    other value is taken as given (relative to the current directory). Existence is the
    caller's check (config load refuses a missing file with its key)."""
    text = str(data_dir)
    if text != DEFAULT_DATA_DIR:
        return Path(text).expanduser().resolve()
    candidates = [os.environ.get(SHARED_DATA_ENV)] if os.environ.get(SHARED_DATA_ENV) else []
    candidates += [text, str(Path(__file__).resolve().parents[4] / "shared" / "data")]
    for candidate in candidates:
        if Path(candidate).expanduser().is_dir():
            return Path(candidate).expanduser().resolve()
    return Path(text).resolve()


def load_benchmark(name: str, data_dir: str | Path) -> list[Sample]:
    """Load one of `BENCHMARKS` from `data_dir` (the shared data directory, `resolve_data_dir`)."""
    if name not in BENCHMARKS:
        raise KeyError(f"unknown benchmark {name!r}; known: {sorted(BENCHMARKS)}")
    rel, loader = BENCHMARKS[name]
    return loader(resolve_data_dir(data_dir) / rel)
