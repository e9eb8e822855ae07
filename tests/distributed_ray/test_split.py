"""The Ray backend without Ray: the group split and the refusal when Ray is missing."""

from __future__ import annotations

import importlib.util

import pytest

from reasonrl.cli.checks import check_rl
from reasonrl.config import ConfigError, RLConfig
from reasonrl.distributed_ray.engine import split_groups


def test_split_keeps_groups_and_repeats_together_in_blocks() -> None:
    prompts = [[1], [2], [3], [1], [4], [5]]
    parts = split_groups(prompts, 2)
    # distinct prompts [1] [2] [3] [4] [5]: blocks {1, 2} and {3, 4, 5}; [1]'s repeat joins it
    assert parts == [[0, 1, 3], [2, 4, 5]]
    assert sorted(i for p in parts for i in p) == list(range(len(prompts)))
    assert split_groups([[7]], 3) == [[], [], [0]]  # dist.shard: the last block gets it
    assert split_groups([], 2) == [[], []]


def test_ray_backend_without_ray_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "ray" else real(name, *a))  # fmt: skip
    cfg = RLConfig.model_validate({"trainer": {"backend": "ray"}})  # the recipe itself is valid
    hint = r"r.yaml: trainer.backend=ray: .*pip install 'reasonrl\[ray\]'"
    with pytest.raises(ConfigError, match=hint):
        check_rl(cfg, "r.yaml")  # what `reasonrl train` runs before the model loads
    check_rl(RLConfig.model_validate({}))  # the default (local) needs nothing


def test_rl_run_refuses_the_ray_backend_without_its_setup(tmp_path) -> None:
    pytest.importorskip("ray")
    from reasonrl.rl.run import train

    cfg = RLConfig.model_validate({"trainer": {"backend": "ray", "out_dir": str(tmp_path)}})
    with pytest.raises(ValueError, match="distributed_ray"):
        train(cfg, progress=False)
