"""Dataset builder: de-duplication, determinism, disjoint hash-based split, row -> Sample."""

from __future__ import annotations

import pytest

from reasonrl.tasks.synth.dataset import ROW_FIELDS, make_dataset, row_to_sample
from reasonrl.types import Sample


def test_rows_fields_counts_and_dedup() -> None:
    rows = make_dataset([2, 3, 5], 30, contexts=("zoo", "school", "movie"), seed=1)
    assert len(rows) == 90
    assert all(set(ROW_FIELDS) <= set(r) for r in rows)
    assert [r["op"] for r in rows] == [2] * 30 + [3] * 30 + [5] * 30
    assert len({r["id"] for r in rows}) == 90
    assert {r["context"] for r in rows} == {"zoo", "school", "movie"}
    for r in rows:
        assert r["prompt"].startswith("<question> ") and r["prompt"].endswith(" <solution>")
        assert r["completion"] == f" {r['trace']} </solution> <answer> {r['answer']} </answer>"


def test_determinism_and_seed_change() -> None:
    a = make_dataset([4], 20, seed=3)
    assert a == make_dataset([4], 20, seed=3)
    assert a != make_dataset([4], 20, seed=4)


def test_train_and_heldout_never_overlap() -> None:
    train = make_dataset([2, 3], 150, seed=0, split="train")
    held = make_dataset([2, 3], 15, seed=12345, split="heldout")
    assert len(held) == 30
    assert not {r["id"] for r in train} & {r["id"] for r in held}
    assert not {r["prompt"] for r in train} & {r["prompt"] for r in held}


def test_row_to_sample() -> None:
    row = make_dataset([3], 1, seed=0)[0]
    sample = row_to_sample(row)
    assert isinstance(sample, Sample)
    assert sample.answer == str(row["answer"]) and sample.meta["trace"] == row["trace"]
    assert sample.meta["op"] == 3 and sample.meta["mode"] == "forward"
    with pytest.raises(ValueError, match="lacks field"):
        row_to_sample({"id": "r1", "prompt": "p"})


def test_too_few_distinct_problems_is_a_clear_error() -> None:
    # A zero draw budget cannot yield any row: the builder must name the op and split.
    with pytest.raises(ValueError, match=r"unique 'all' problems for op=2"):
        make_dataset([2], 50, seed=0, max_draws_factor=0)
