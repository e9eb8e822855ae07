"""The rollout package stays light to import; the optional vLLM engine fails clearly."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest


def test_import_rollout_does_not_import_torch() -> None:
    code = "import sys, reasonrl.rollout; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed")
def test_vllm_engine_without_vllm_says_how_to_install() -> None:
    from reasonrl.rollout import VLLMEngine

    with pytest.raises(ImportError, match=r"reasonrl\[vllm\]"):
        VLLMEngine("some/model")
