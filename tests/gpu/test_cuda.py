"""The CUDA path, wherever CUDA exists (`pytest -m gpu`): a run trains on the GPU, the engine's
log-probs match the trainer's, checkpoints reload. Skipped on machines without CUDA."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.fixture(scope="module")
def toy_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.rl.toy import make_toy_model

    return make_toy_model(tmp_path_factory.mktemp("toy") / "model")


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_a_run_trains_on_cuda(toy_model: Path, tmp_path: Path, dtype: str, lora: bool) -> None:
    from reasonrl.config import load_config
    from reasonrl.rl.run import train
    from tests.rl.toy import toy_reward, write_toy_recipe

    model = {"device": "cuda", "dtype": dtype}
    if lora:
        pytest.importorskip("peft")
        model["lora"] = {"r": 4, "alpha": 8.0}
    recipe = write_toy_recipe(tmp_path / "r.yaml", toy_model, tmp_path / "runs", model=model,
                              trainer={"steps": 3, "save_every": 3})  # fmt: skip
    cfg = load_config(recipe)
    state = train(cfg, progress=False, reward_fn=toy_reward)
    assert state.engine_name == "hf"  # auto on CUDA: the fused decoder is CPU-only
    assert next(state.model.parameters()).device.type == "cuda"
    rows = [json.loads(x) for x in (cfg.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 3
    bound = 1e-4 if dtype == "fp32" else 5e-2  # bf16 kernels differ between sampler and trainer
    assert max(r["is/mismatch_max_abs"] for r in rows) <= bound
    assert (cfg.run_dir / "checkpoints" / "step_00000003").is_dir()
