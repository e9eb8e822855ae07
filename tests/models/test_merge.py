"""Weight averaging (`reasonrl merge`): the formula per tensor, refusals, and the CLI round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from reasonrl.cli import main as cli_main
from reasonrl.models.io import load_policy, save_policy
from reasonrl.models.merge import merge_state_dicts
from tests.rl.toy import make_toy_model


def test_merge_is_the_weighted_mean_of_float_tensors() -> None:
    a = {"w": torch.tensor([1.0, 3.0]), "n": torch.tensor([7])}
    b = {"w": torch.tensor([5.0, -1.0]), "n": torch.tensor([7])}
    out = merge_state_dicts(a, b, weight=0.25)  # 0.25 * a + 0.75 * b
    assert out["w"].tolist() == [4.0, 0.0] and out["n"].tolist() == [7]
    half = merge_state_dicts({"w": torch.ones(2, dtype=torch.bfloat16)},
                             {"w": torch.zeros(2, dtype=torch.bfloat16)}, weight=0.5)  # fmt: skip
    assert half["w"].dtype == torch.bfloat16 and half["w"].tolist() == [0.5, 0.5]


@pytest.mark.parametrize(
    ("b", "match"),
    [
        ({"x": torch.zeros(2)}, "parameters differ"),
        ({"w": torch.zeros(3), "n": torch.tensor([7])}, "shape"),
        ({"w": torch.zeros(2), "n": torch.tensor([8])}, "non-float"),
    ],
)
def test_merge_refuses_different_architectures(b: dict, match: str) -> None:
    a = {"w": torch.ones(2), "n": torch.tensor([7])}
    with pytest.raises(ValueError, match=match):
        merge_state_dicts(a, b, weight=0.5)


def test_merge_command_writes_a_loadable_average(tmp_path: Path) -> None:
    first = make_toy_model(tmp_path / "a")
    model, tok = load_policy(first)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    second = save_policy(model, tok, tmp_path / "b")
    argv = ["merge", str(first), str(second), str(tmp_path / "m"), "--weight", "0.75"]
    assert cli_main(argv) == 0
    merged, _ = load_policy(tmp_path / "m")
    base, _ = load_policy(first)
    for (name, p), q in zip(merged.named_parameters(), base.parameters(), strict=True):
        torch.testing.assert_close(p, q + 0.25, msg=name)  # 0.75 * q + 0.25 * (q + 1)
    assert (tmp_path / "m" / "reasonrl.json").is_file()
    assert cli_main(["merge", str(first), str(second), str(tmp_path / "m")]) == 2  # not empty
    assert cli_main(["merge", str(first), str(tmp_path / "none"), str(tmp_path / "x")]) == 2
    assert cli_main(["merge", str(first), str(second), str(tmp_path / "y"), "--weight", "2"]) == 2
