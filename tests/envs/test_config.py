"""The `env:` section: defaults, refusals, and the factory it builds."""

from __future__ import annotations

import pytest

from reasonrl.envs.single_turn import SingleTurnEnvs
from reasonrl.envs.tool_env import ToolEnvs
from reasonrl.rl.envs import make_env_factory
from reasonrl.types import Completion, Sample
from tests.envs.fakes import TOK
from tests.rl.stubs import stub_config


def test_default_is_single_turn_and_tool_keys_are_refused_there() -> None:
    cfg = stub_config()
    assert cfg.env.kind == "single_turn"
    assert isinstance(make_env_factory(cfg, TOK), SingleTurnEnvs)
    with pytest.raises(ValueError, match=r"env\.max_turns=2 is ignored by env\.kind=single_turn"):
        stub_config(env={"max_turns": 2})
    with pytest.raises(ValueError, match=r"env\.tool='perl'"):
        stub_config(env={"kind": "tool", "tool": "perl"})
    with pytest.raises(ValueError, match=r"needs env\.kind=single_turn"):
        stub_config(env={"kind": "tool"}, reward={"dense": "clip"},
                    algo={"advantage": "reinforce_pp"},
                    data={"task": "synth", "benchmark": None})  # fmt: skip


def test_tool_config_builds_a_tool_env_with_its_limits() -> None:
    cfg = stub_config(env={"kind": "tool", "tool": "calculator", "max_turns": 3,
                           "max_tool_calls": 2, "max_total_tokens": 99})  # fmt: skip
    fac = make_env_factory(cfg, TOK)
    assert isinstance(fac, ToolEnvs)
    assert (fac.max_turns, fac.max_tool_calls, fac.max_total_tokens) == (3, 2, 99)
    assert fac.stop == ("</code>",) and list(fac.tools) == ["calculator"]
    env = fac(Sample(id="0", prompt="Q"))
    assert list(env.reset()) == TOK("Q")["input_ids"]
    out = env.step(Completion("<code>12*34</code>", (1,), (0.0,)))
    assert out.observation_text == "\n<output>\n408\n</output>\n" and not out.done
    env.close()
