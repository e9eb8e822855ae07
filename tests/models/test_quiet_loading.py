"""Loading and saving a policy print no third-party progress bar and leave the global switch as
they found it."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers.utils import logging as hf_logging

from reasonrl.models.io import load_policy, save_policy


def test_load_and_save_print_no_progress_bar(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert hf_logging.is_progress_bar_enabled()
    model, tokenizer = load_policy("builtin:synth-micro")
    save_policy(model, tokenizer, tmp_path / "copy")
    load_policy(tmp_path / "copy")
    out, err = capfd.readouterr()
    assert "Loading weights" not in err + out and "Writing model shards" not in err + out
    assert hf_logging.is_progress_bar_enabled()  # restored: not switched off for the process
    hf_logging.disable_progress_bar()
    try:
        load_policy("builtin:synth-micro")
        assert not hf_logging.is_progress_bar_enabled()  # a caller's choice is kept too
    finally:
        hf_logging.enable_progress_bar()
