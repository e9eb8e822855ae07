"""A toy run for end-to-end tests: a tiny random Qwen2 with the synthetic task's tokenizer and a
reward with spread (a random model almost never solves the real task, so every group would have
zero advantage and nothing would be learnt)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file
from transformers import Qwen2Config, Qwen2ForCausalLM

from reasonrl.types import Completion, Sample


def toy_reward(sample: Sample, completion: Completion) -> float:
    """Fraction of response tokens with an even id: easy to improve, always has spread."""
    ids = completion.token_ids
    return sum(t % 2 == 0 for t in ids) / max(1, len(ids))


def make_toy_model(path: Path) -> Path:
    from reasonrl.models.io import save_policy
    from reasonrl.tasks.synth.tokenizer import build_synth_tokenizer

    tok = build_synth_tokenizer()
    torch.manual_seed(0)
    cfg = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    save_policy(Qwen2ForCausalLM(cfg), tok, path)
    return path


def write_toy_recipe(path: Path, model_dir: Path, out_dir: Path, **overrides: dict) -> Path:
    recipe = {
        "model": {"path": str(model_dir), "dtype": "fp32", "threads": 1},
        "data": {"ops": [2, 3], "seed": 1},
        "rollout": {"n": 4, "prompts_per_step": 2, "max_new_tokens": 12},
        "algo": {"preset": "grpo", "micro_batch_size": 4},
        "optim": {"lr": 1e-2},
        "trainer": {"steps": 6, "save_every": 2, "out_dir": str(out_dir), "sample_every": 1},
    }
    if overrides.get("data", {}).get("task", "synth") != "synth":
        recipe["data"] = {"seed": 1}  # data.ops is refused unless data.task=synth
    for section, values in overrides.items():
        recipe[section] = {**recipe.get(section, {}), **values}
    path.write_text(yaml.safe_dump(recipe))
    return path


def final_state(run_dir: Path) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """The newest checkpoint's weights and the metrics.jsonl rows of a run."""
    ckpts = sorted((run_dir / "checkpoints").glob("step_*"))
    weights = load_file(str(ckpts[-1] / "model.safetensors"))
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return weights, rows


def assert_same_run(reference: Path, resumed: Path) -> None:
    """Bit-identical final weights and equal metrics rows (timings aside) of two runs."""
    w_ref, rows_ref = final_state(reference)
    w_res, rows_res = final_state(resumed)
    assert w_ref.keys() == w_res.keys()
    assert all(torch.equal(w_ref[k], w_res[k]) for k in w_ref), "weights differ after resume"
    drop = ("perf/", "time")  # timings differ between runs; everything else must match exactly
    strip = [{k: v for k, v in r.items() if not k.startswith(drop)} for r in rows_ref]
    strip_res = [{k: v for k, v in r.items() if not k.startswith(drop)} for r in rows_res]
    assert strip == strip_res


def tb_steps(run_dir: Path, tag: str = "reward/mean") -> list[int]:
    """Steps of every `tag` point in a run's TensorBoard event files, sorted (a step written
    twice appears twice). Sorted because event file names only order by the second they were
    created in: a resumed run's new file can sort before the truncated old one."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    steps = []
    for path in sorted((run_dir / "tb").glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            if any(v.tag == tag for v in event.summary.value):
                steps.append(event.step)
    return sorted(steps)
