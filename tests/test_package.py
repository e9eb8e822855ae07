"""The package skeleton: light import, version, typed records."""

from __future__ import annotations

import subprocess
import sys

import pytest

from reasonrl import Batch, Completion, RewardResult, Sample

HEAVY = ["transformers", "ray", "vllm", "peft", "matplotlib", "math_verify", "torch"]


def test_import_reasonrl_is_light() -> None:
    code = (
        "import sys, reasonrl, reasonrl.types\n"
        f"heavy = {HEAVY!r}\n"
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import reasonrl pulled in: {out.stdout.strip()}"


def test_records_are_frozen() -> None:
    s = Sample(id="a", prompt="p")
    with pytest.raises(AttributeError):
        s.prompt = "q"  # type: ignore[misc]
    c = Completion(text="x", token_ids=(1, 2), logprobs=(-0.1, -0.2), finish_reason="length")
    assert c.truncated
    assert RewardResult(score=None).score is None


def test_batch_select_and_to() -> None:
    import torch

    b = Batch(
        input_ids=torch.arange(6).view(3, 2),
        attention_mask=torch.ones(3, 2, dtype=torch.long),
        position_ids=torch.arange(2).expand(3, 2),
        response_mask=torch.ones(3, 1),
        rollout_logprobs=torch.zeros(3, 1),
        advantages=torch.tensor([[1.0], [2.0], [3.0]]),
    )
    sub = b.select(torch.tensor([2, 0]))
    assert sub.advantages.flatten().tolist() == [3.0, 1.0]
    assert sub.old_logprobs is None
    assert b.prompt_len == 1
    assert b.to("cpu").input_ids.equal(b.input_ids)


def test_the_python_api_loads_lazily() -> None:
    code = (
        "import sys, reasonrl\n"
        f"heavy = {HEAVY!r}\n"
        "before = [m for m in heavy if m in sys.modules]\n"
        "from reasonrl import Callback, RewardFn, evaluate, load_config, train\n"
        "from reasonrl.rl.run import train as run_train\n"
        "from reasonrl.eval.evaluate import evaluate as eval_evaluate\n"
        "assert train is run_train and evaluate is eval_evaluate, 'not the one implementation'\n"
        "assert {'train', 'evaluate', 'load_config'} <= set(dir(reasonrl))\n"
        "print(before)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        import reasonrl

        reasonrl.nope  # noqa: B018
