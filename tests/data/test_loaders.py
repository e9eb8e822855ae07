"""Loaders: the shared benchmark files, generic JSONL/Parquet/HF dirs, malformed input."""

from __future__ import annotations

import gzip
import json

import pytest

from reasonrl.data.benchmarks import BENCHMARKS, load_benchmark
from reasonrl.data.loaders import DataError, load_any, load_hf_dataset, load_jsonl, load_parquet

EXPECTED_ROWS = {
    "gsm8k_train": 7473,
    "gsm8k_test": 1319,
    "math500": 500,
    "math_test": 5000,
    "aime24": 30,
    "humaneval": 164,
    "countdown": 256,
}


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_benchmark_files_load_with_gold_answers(shared_data, name):
    samples = load_benchmark(name, shared_data)
    assert len(samples) == EXPECTED_ROWS[name]
    assert all(s.prompt and s.answer for s in samples)
    assert len({s.id for s in samples}) == len(samples)  # ids are unique


def test_benchmark_specific_fields(shared_data):
    gsm = load_benchmark("gsm8k_test", shared_data)[0]
    assert gsm.answer == "18" and gsm.meta["solution"].endswith("#### 18")
    m5 = load_benchmark("math500", shared_data)[0]
    assert m5.id == "test/precalculus/807.json" and m5.meta["level"] == 2
    math = load_benchmark("math_test", shared_data)[0]
    assert math.answer == "2" and math.meta["type"] == "Algebra"  # last \boxed{2} of solution
    aime = load_benchmark("aime24", shared_data)
    padded = [s for s in aime if s.meta["answer_raw"].startswith("0")]
    assert len(padded) == 7 and all(not s.answer.startswith("0") for s in padded)
    he = load_benchmark("humaneval", shared_data)[0]
    assert he.id == "HumanEval/0" and he.meta["entry_point"] == "has_close_elements"
    cd = load_benchmark("countdown", shared_data)[0]
    assert cd.meta == {"numbers": [30, 100, 93], "target": 23} and "[30, 100, 93]" in cd.prompt


def test_generic_jsonl_field_mapping(tmp_path):
    p = tmp_path / "d.jsonl"
    rows = [{"q": "1+1?", "a": 2, "src": "x"}, {"q": "2+2?", "a": 4, "src": "y"}]
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    out = load_jsonl(p, {"prompt": "q", "answer": "a"})
    assert [(s.id, s.prompt, s.answer, s.meta) for s in out] == [
        ("d/1", "1+1?", "2", {"src": "x"}),
        ("d/2", "2+2?", "4", {"src": "y"}),
    ]
    gz = tmp_path / "d.jsonl.gz"
    with gzip.open(gz, "wt") as fh:
        fh.write(p.read_text())
    assert [s.prompt for s in load_any(gz, {"prompt": "q"})] == ["1+1?", "2+2?"]


def test_chat_message_prompts(tmp_path):
    p = tmp_path / "chat.jsonl"
    msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi?"}]
    p.write_text(json.dumps({"messages": msgs, "answer": "hello"}) + "\n")
    (s,) = load_jsonl(p, {"prompt": "messages", "answer": "answer"})
    assert s.prompt == "hi?" and s.meta["messages"] == msgs


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            ['{"question": "a", "answer": "1"}', '{"question": "b", "answer": '],
            r"d\.jsonl:2: invalid JSON",
        ),
        (
            ['{"question": "a", "answer": "1"}', '{"question": "b"}'],
            r"d\.jsonl:2: missing field\(s\) \['answer'\]",
        ),
        (['["not", "an", "object"]'], r"d\.jsonl:1: expected a JSON object"),
        (['{"question": 5, "answer": "1"}'], r"d\.jsonl:1: prompt must be a string"),
    ],
)
def test_malformed_rows_name_file_and_line(tmp_path, lines, message):
    p = tmp_path / "d.jsonl"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=message):
        load_jsonl(p)


def test_answer_transform_failure_names_the_line(tmp_path):
    p = tmp_path / "g.jsonl"
    p.write_text(
        '{"question": "q", "answer": "steps\\n#### 5"}\n{"question": "q", "answer": "no hashes"}\n'
    )
    with pytest.raises(DataError, match=r"g\.jsonl:2: answer_transform 'hashes' found no answer"):
        load_jsonl(p, answer_transform="hashes")


def test_unknown_mapping_key_and_format_are_errors(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text('{"question": "a", "answer": "1"}\n')
    with pytest.raises(DataError, match="unknown keys"):
        load_jsonl(p, {"prompt": "question", "label": "answer"})
    with pytest.raises(DataError, match="unknown data format"):
        load_any(tmp_path / "d.csv")


def test_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"problem": ["p0", "p1"], "sol": ["x \\boxed{3}", "y"]}), path)
    with pytest.raises(DataError, match=r"d\.parquet: row 1: answer_transform 'boxed'"):
        load_parquet(path, {"prompt": "problem", "answer": "sol"}, answer_transform="boxed")
    (s,) = load_any(path, {"prompt": "problem", "answer": "sol"}, answer_transform="boxed", limit=1)
    assert (s.id, s.prompt, s.answer) == ("d.parquet/0", "p0", "3")


def test_hf_dataset_dir(tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"question": ["a", "b"], "answer": ["1", "2"], "k": [0, 1]})
    ds.save_to_disk(str(tmp_path / "ds"))
    out = load_any(tmp_path / "ds")
    assert [(s.prompt, s.answer, s.meta) for s in out] == [
        ("a", "1", {"k": 0}),
        ("b", "2", {"k": 1}),
    ]
    datasets.DatasetDict({"train": ds}).save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(DataError, match="DatasetDict; pass split="):
        load_hf_dataset(tmp_path / "dd")
    assert len(load_hf_dataset(tmp_path / "dd", split="train")) == 2
