"""The environment written in docs/environments.md runs through the driver as documented."""

from __future__ import annotations

import re
from pathlib import Path

from reasonrl.envs.rollout import episode_metrics, run_episodes, score_episodes
from reasonrl.rollout.base import SamplingParams
from reasonrl.types import Sample
from tests.envs.fakes import TOK, ScriptEngine

DOC = Path(__file__).resolve().parents[2] / "docs" / "environments.md"


def test_the_documented_env_runs() -> None:
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL).group(1)
    assert len(code.splitlines()) <= 35
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)
    guesses = {0: "5\n", 1: "7\n"}  # turn k: wrong ("higher"), then right

    def script(history: str, j: int) -> str:
        return guesses[history.count("higher")]

    factory = namespace["GuessEnvs"](TOK)
    samples = [Sample(id="0", prompt="Guess: ", answer="7")]
    eps = run_episodes(ScriptEngine(script), factory, samples, SamplingParams(n=2),
                       decode=TOK.decode)  # fmt: skip
    ep = eps[0][0]
    assert ep.completion().text == "5\n higher\n7\n" and ep.finish_reason == "stop"
    rewards = score_episodes(lambda s, c: 0.0, factory, samples, eps)
    assert [r.score for r in rewards[0]] == [1.0, 1.0]  # the env's own reward
    assert episode_metrics([e.completion() for e in eps[0]])["env/wrong_guesses"] == 1.0
