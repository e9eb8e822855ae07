"""Adapters: TRL-style reward functions, and the HTTP env client against a server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from reasonrl.envs.http import HTTPEnvs, observation_text
from reasonrl.envs.rollout import run_episodes, score_episodes
from reasonrl.rewards.batch import call_reward_batch
from reasonrl.rewards.trl_adapter import adapt_reward, from_trl, is_trl_reward
from reasonrl.rl.build import reward_of_kind
from reasonrl.rollout.base import SamplingParams
from reasonrl.types import Completion, Sample
from tests.envs.fakes import EOS, TOK, ScriptEngine, encode, tokenize
from tests.rl.stubs import stub_config

CALLS: list[dict] = []


def trl_len_reward(prompts, completions, completion_ids, answer, **kwargs):
    """A TRL reward: 1 when the completion contains the answer; records its batch."""
    CALLS.append({"prompts": prompts, "completions": completions, "ids": completion_ids,
                  "answer": answer, **kwargs})  # fmt: skip
    return [None if a is None else float(a in c) for c, a in zip(completions, answer)]


def _comp(text: str) -> Completion:
    return Completion(text, tuple(tokenize(text)), (0.0,) * len(text))


def test_trl_reward_is_called_once_per_batch_with_trl_arguments() -> None:
    CALLS.clear()
    assert is_trl_reward(trl_len_reward) and not is_trl_reward(lambda sample, completion: 1.0)
    fn = from_trl(trl_len_reward)
    samples = [Sample(id="a", prompt="P1", answer="7", meta={"op": 2}),
               Sample(id="b", prompt="P2", answer="8", meta={"level": "x"}),
               Sample(id="c", prompt="P3", answer=None)]  # fmt: skip
    comps = [_comp("is 7"), _comp("is 9"), _comp("?")]
    results = call_reward_batch(fn, samples, comps)
    assert [r.score for r in results] == [1.0, 0.0, None]  # None = not applicable, as in TRL
    assert len(CALLS) == 1  # one call for the whole batch
    call = CALLS[0]
    assert call["prompts"] == ["P1", "P2", "P3"] and call["completions"] == ["is 7", "is 9", "?"]
    assert call["ids"][0] == tokenize("is 7") and call["answer"] == ["7", "8", None]
    assert call["op"] == [2, None, None] and call["level"] == [None, "x", None]
    assert call["trainer_state"] is None
    assert fn(samples[0], comps[0]) == 1.0  # the per-sample path


def test_trl_reward_by_import_path_and_from_python() -> None:
    cfg = stub_config()
    fn = reward_of_kind(cfg, "tests.envs.test_adapters:trl_len_reward", "reward.kind")
    assert getattr(fn, "trl_fn", None) is trl_len_reward
    assert adapt_reward(fn) is fn  # an adapted reward is not adapted twice
    plain = reward_of_kind(cfg, "tests.rl.stubs:even_fraction", "reward.kind")
    assert not hasattr(plain, "trl_fn")


def test_a_broken_trl_reward_fails_samples_not_the_run() -> None:
    def bad(prompts, completions, **kwargs):
        return [1.0]  # wrong count for a batch of 2

    fn = from_trl(bad)
    out = call_reward_batch(fn, [Sample(id="a", prompt="p")] * 2, [_comp("x")] * 2)
    assert [r.score for r in out] == [1.0, 1.0]  # fell back to one call per sample


# --- HTTP env ---------------------------------------------------------------------------------


class GuessServer(BaseHTTPRequestHandler):
    """A guess-the-number env: reset gives the prompt, a wrong guess gets higher/lower."""

    episodes: ClassVar[dict[str, dict]] = {}
    closed: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        route = self.path.strip("/")
        if route == "reset":
            eid = f"e{len(self.episodes)}"
            self.episodes[eid] = {"target": int(body["sample"]["answer"]), "guesses": 0}
            out = {"episode_id": eid, "observation": {"message": body["sample"]["prompt"]}}
        elif route == "step":
            ep = self.episodes[body["episode_id"]]
            if ep["target"] < 0:  # a server-side failure
                self.send_error(500)
                return
            ep["guesses"] += 1
            text = body["action"]["text"].rstrip(EOS + "\n")
            guess = int(text.split()[-1]) if text.split() else -1
            if guess == ep["target"]:
                out = {"done": True, "reward": 1.0, "info": {"guesses": ep["guesses"]}}
            else:
                hint = " higher\n" if guess < ep["target"] else " lower\n"
                out = {"observation": hint, "done": False, "metrics": {"wrong": 1}}
        elif route == "close":
            self.closed.append(body["episode_id"])
            out = {}
        else:
            self.send_error(404)
            return
        data = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:  # quiet
        pass


@pytest.fixture
def server():
    GuessServer.episodes, GuessServer.closed = {}, []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), GuessServer)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_http_env_plays_episodes_through_the_driver(server: str) -> None:
    def script(history: str, j: int) -> str:  # guesses 3, then 5 after "higher"
        return " 5\n" if "higher" in history else " 3\n"

    fac = HTTPEnvs(server, encode=encode, tokenize=tokenize, stop=("\n",), max_turns=4)
    samples = [Sample(id="0", prompt="Guess:", answer="5"), Sample(id="1", prompt="Guess:",
                                                                      answer="3")]  # fmt: skip
    eps = run_episodes(ScriptEngine(script), fac, samples, SamplingParams(n=2, max_new_tokens=8),
                       decode=TOK.decode)  # fmt: skip
    first = eps[0][0]
    assert list(first.prompt_ids) == tokenize("Guess:")  # reset's observation, tokenized
    assert first.completion().text == " 3\n higher\n 5\n" and first.finish_reason == "stop"
    comp = first.completion()
    assert comp.loss_mask == tuple([1.0] * 3 + [0.0] * 8 + [1.0] * 3)  # the hint is masked
    assert first.metrics == {"wrong": 1.0, "guesses": 2.0}
    assert len(eps[1][0].turns) == 1 and eps[1][0].reward.score == 1.0
    scores = score_episodes(lambda s, c: 0.0, fac, samples, eps)
    assert [[r.score for r in row] for row in scores] == [[1.0, 1.0], [1.0, 1.0]]
    assert sorted(GuessServer.closed) == ["e0", "e1", "e2", "e3"]  # every episode closed


def test_http_env_failure_ends_that_episode_only(server: str) -> None:
    fac = HTTPEnvs(server, encode=encode, tokenize=tokenize, stop=("\n",), max_turns=3)
    samples = [Sample(id="0", prompt="p", answer="-1"), Sample(id="1", prompt="p", answer="3")]
    eps = run_episodes(ScriptEngine(lambda h, j: " 3\n"), fac, samples, SamplingParams(n=1),
                       decode=TOK.decode)  # fmt: skip
    assert eps[0][0].finish_reason == "error" and eps[0][0].reward.score == 0.0
    assert eps[1][0].finish_reason == "stop" and eps[1][0].reward.score == 1.0
    with pytest.raises(ValueError, match="http"):
        HTTPEnvs("ftp://x", encode=encode, tokenize=tokenize)
    assert observation_text({"text": "a"}) == "a" and observation_text(None) is None
