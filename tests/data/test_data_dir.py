"""data.data_dir: the default found from anywhere, other values as given, checked at load."""

from __future__ import annotations

from pathlib import Path

import pytest

from reasonrl.data.benchmarks import DEFAULT_DATA_DIR, SHARED_DATA_ENV, resolve_data_dir


def test_default_follows_the_environment_variable(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(SHARED_DATA_ENV, str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert resolve_data_dir(DEFAULT_DATA_DIR) == tmp_path.resolve()


def test_default_is_found_beside_the_checkout_from_any_directory(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(SHARED_DATA_ENV, raising=False)
    monkeypatch.chdir(tmp_path)  # ../shared/data does not exist from here
    beside = Path(__file__).resolve().parents[3] / "shared" / "data"
    if not beside.is_dir():
        pytest.skip("no shared/data beside this checkout")
    assert resolve_data_dir(DEFAULT_DATA_DIR) == beside.resolve()


def test_other_values_are_taken_as_given(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(SHARED_DATA_ENV, str(tmp_path / "elsewhere"))
    monkeypatch.chdir(tmp_path)
    assert resolve_data_dir("data") == (tmp_path / "data").resolve()


def test_a_missing_benchmark_file_names_the_key_and_the_resolved_path(tmp_path: Path) -> None:
    from reasonrl.cli.checks import check_benchmark
    from reasonrl.config import ConfigError

    with pytest.raises(ConfigError, match=r"r\.yaml: data\.data_dir=.*has no gsm8k/train\.jsonl"):
        check_benchmark("gsm8k_train", str(tmp_path), "data.benchmark", "r.yaml")
