"""Kimi's shortest rejection sampling: the selector by hand and `reasonrl data rejection`."""

from __future__ import annotations

import json
from pathlib import Path

from reasonrl.cli import main as cli_main
from reasonrl.rm.pairs import shortest_correct, shortest_rejection_rows
from reasonrl.tasks.synth.reward import synth_reward
from reasonrl.types import Completion, Sample


def _c(text: str, n: int) -> Completion:
    return Completion(text=text, token_ids=tuple(range(n)), logprobs=(0.0,) * n)


def test_shortest_correct_by_hand() -> None:
    comps = [_c("a", 9), _c("b", 4), _c("c", 3), _c("d", 4)]
    assert shortest_correct(comps, [True, True, False, True]) == 1  # 3 is shorter but wrong
    assert shortest_correct(comps, [False] * 4) is None
    sample = Sample(id="s", prompt="P", meta={"op": 2})
    rows = shortest_rejection_rows([(sample, [1], comps, [True, True, False, True]),
                                    (sample, [1], comps, [False] * 4)], eos_text="")  # fmt: skip
    assert rows == [{"prompt": "P", "completion": "b", "id": "s", "op": 2, "tokens": 4}]
    cut = shortest_rejection_rows([(sample, [1], [_c("x <eos>", 2)], [True])], eos_text=" <eos>")
    assert cut[0]["completion"] == "x"


def test_data_rejection_writes_strict_correct_sft_rows(tmp_path: Path) -> None:
    out = tmp_path / "short.jsonl"
    argv = ["data", "rejection", "builtin:synth-micro", "--ops", "2", "--per-op", "4",
            "--samples", "4", "--max-new-tokens", "80", "--out", str(out)]  # fmt: skip
    assert cli_main(argv) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows, "the shipped base solves some op-2 problems"
    from reasonrl.rm.pairs import synth_samples

    by_id = {s.id: s for s in synth_samples([2], 4, split="train", seed=0)}
    for row in rows:  # each kept completion passes the strict reward it was selected by
        assert synth_reward(by_id[row["id"]], row["completion"], strict=True).verified
    assert cli_main([*argv[:-1], str(tmp_path / "x.jsonl"), "--samples", "0"]) == 2
