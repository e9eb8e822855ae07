"""SFT: completion-only loss, no padding leakage, accumulation, schedule, a short run learns."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from reasonrl.cli import main as cli_main
from reasonrl.config.sft import SFTOptimConfig
from reasonrl.data.templates import encode_prompt
from reasonrl.models.factory import ModelSize, build_model
from reasonrl.sft.data import TokenizedRow, bucketed_batches, collate_sft, encode_rows
from reasonrl.sft.step import completion_loss_sum, make_optimizer, sft_step
from reasonrl.tasks.synth import build_synth_tokenizer, make_dataset

TINY = ModelSize(32, 1, 2, 1, 64)  # ~10k params + 42k embeddings: fast on CPU


@pytest.fixture(scope="module")
def tokenizer():
    return build_synth_tokenizer()


@pytest.fixture
def model(tokenizer):
    return build_model(TINY, tokenizer, seed=0)


def test_collate_masks_prompt_and_padding() -> None:
    rows = [TokenizedRow((5, 6, 7), (8, 9)), TokenizedRow((5,), (8, 9, 10), weight=2.0)]
    batch = collate_sft(rows, pad_id=0)
    assert batch.input_ids.tolist() == [[5, 6, 7, 8, 9], [5, 8, 9, 10, 0]]
    # weight sits on completion tokens only (the targets), never on prompt or padding
    assert batch.loss_weight.tolist() == [[0, 0, 0, 1, 1], [0, 2, 2, 2, 0]]
    assert batch.n_tokens == 5


def test_loss_counts_completion_tokens_only(model) -> None:
    rows = [TokenizedRow((1, 20, 21, 22), (30, 31, 2))]
    batch = collate_sft(rows, pad_id=0)
    got = completion_loss_sum(model, batch)
    logp = torch.log_softmax(model(batch.input_ids).logits[0].float(), dim=-1)
    # positions 3, 4, 5 predict the completion tokens 30, 31, 2; positions 0-2 predict prompt
    # tokens and must not count
    want = -(logp[3, 30] + logp[4, 31] + logp[5, 2])
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
    seen: list[int] = []

    def record(module, inputs, output) -> None:
        seen.append(output.shape[0])

    hook = model.get_output_embeddings().register_forward_hook(record)
    completion_loss_sum(model, batch)
    hook.remove()
    assert seen == [3]  # the LM head only ever sees the 3 loss positions


def test_right_padding_does_not_leak(model) -> None:
    short = TokenizedRow((1, 20, 21), (30, 2))
    long = TokenizedRow((1, 22, 23, 24, 25, 26), (31, 32, 33, 2))
    alone = completion_loss_sum(model, collate_sft([short], pad_id=0))
    both = completion_loss_sum(model, collate_sft([short, long], pad_id=0))
    long_alone = completion_loss_sum(model, collate_sft([long], pad_id=0))
    assert (both - long_alone).item() == pytest.approx(alone.item(), abs=1e-4)


def test_grad_accumulation_equals_one_big_batch(tokenizer) -> None:
    rows = [TokenizedRow((1, 20 + i), (*range(30, 31 + i), 2)) for i in range(4)]
    deltas = []
    for split in ([rows], [rows[:1], rows[1:]]):
        m = build_model(TINY, tokenizer, seed=0)
        before = torch.cat([p.detach().flatten().clone() for p in m.parameters()])
        opt = torch.optim.SGD(m.parameters(), lr=1.0)  # SGD lr 1: the update IS minus the grad
        micro = [collate_sft(part, pad_id=0) for part in split]
        sft_step(m, opt, micro, lr=1.0, grad_clip=1e9, dtype="fp32")
        deltas.append(torch.cat([p.detach().flatten() for p in m.parameters()]) - before)
    assert deltas[0].abs().max() > 0
    # the loss is normalised by all completion tokens of the step, so 1x4 == (1 + 3)
    torch.testing.assert_close(deltas[0], deltas[1], rtol=1e-4, atol=1e-6)


def test_encode_rows_repeat_weight_and_errors(tokenizer) -> None:
    rows = [
        {"prompt": "<question> a </question> <solution>", "completion": " b", "repeat": 3},
        {"prompt": "<question> c </question> <solution>", "completion": " d", "weight": 0.5},
    ]
    out = encode_rows(tokenizer, rows)
    assert len(out) == 4 and out[0] is out[2] and out[3].weight == 0.5
    assert out[0].prompt_ids[0] == tokenizer.bos_token_id  # exactly one BOS, prompt first
    assert out[0].prompt_ids == tuple(encode_prompt(tokenizer, rows[0]["prompt"]))
    assert out[0].completion_ids[-1] == tokenizer.eos_token_id
    with pytest.raises(ValueError, match="row 1: field 'repeat'"):
        encode_rows(tokenizer, [rows[0], {**rows[0], "repeat": 0}])
    with pytest.raises(ValueError, match="row 0: field 'completion'"):
        encode_rows(tokenizer, [{"prompt": "x"}])
    assert encode_rows(tokenizer, rows, max_len=3) == []  # too long: dropped, never truncated


def test_bucketing_keeps_every_row_once() -> None:
    rows = [TokenizedRow((1,) * (i % 17 + 1), (2,)) for i in range(100)]
    batches = bucketed_batches(
        rows, batch_size=8, rng=random.Random(0), bucket_batches=4, drop_last=False
    )
    assert sorted(len(r) for b in batches for r in b) == sorted(len(r) for r in rows)
    spread = [max(map(len, b)) - min(map(len, b)) for b in batches if len(b) == 8]
    assert sum(spread) / len(spread) < 8  # sorted windows: similar lengths in a batch


def test_fifty_steps_lower_the_loss(tokenizer) -> None:
    torch.manual_seed(0)
    rows = make_dataset([2], 32, seed=0, split="train")
    data = encode_rows(tokenizer, rows)
    m = build_model(TINY, tokenizer, seed=0)
    opt = make_optimizer(m, SFTOptimConfig(lr=3e-3))
    probe = collate_sft(data[:32], pad_id=tokenizer.pad_token_id)
    with torch.no_grad():
        before = (completion_loss_sum(m, probe) / probe.n_tokens).item()
    rng = random.Random(0)
    for _ in range(50):
        batch = collate_sft(rng.sample(data, 4), pad_id=tokenizer.pad_token_id)
        sft_step(m, opt, [batch], lr=3e-3, grad_clip=1.0, dtype="fp32")
    with torch.no_grad():
        after = (completion_loss_sum(m, probe) / probe.n_tokens).item()
    # initial loss ~ ln(1321) = 7.2; 50 steps on op-2 traces reach well under half of it
    assert before > 6.5
    assert after < 0.5 * before


def test_main_trains_and_saves_hf_dir(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "model: {init: nano}\n"
        "data: {synth_ops: [2], synth_per_op: 16, synth_eval_per_op: 4}\n"
        f"train: {{batch_size: 4, max_steps: 3, log_every: 1, eval_every: 3, threads: 1, "
        f"dtype: fp32, out_dir: {tmp_path / 'run'}}}\n"
    )
    assert cli_main(["sft", str(recipe)]) == 0
    final = tmp_path / "run" / "final"
    assert AutoModelForCausalLM.from_pretrained(str(final)).config.model_type == "qwen2"
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if "loss" in x] == [1, 2, 3]
    assert any("eval_loss" in x for x in lines)
    assert (tmp_path / "run" / "config.yaml").is_file()


def test_main_reports_config_errors(tmp_path: Path, capsys) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("train: {max_stepz: 3}\n")
    assert cli_main(["sft", str(recipe)]) == 2
    assert "max_stepz" in capsys.readouterr().err
