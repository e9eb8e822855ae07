"""An environment served over HTTP (OpenEnv / verifiers-style servers): reset/step as JSON.

The protocol (POST, JSON bodies, one server for many concurrent episodes):

    POST {url}/reset  {"sample": {"id", "prompt", "answer", "meta"}}
        -> {"episode_id": str, "observation": str | null}
    POST {url}/step   {"episode_id": str, "action": {<action_field>: turn text}}
        -> {"observation": str | null, "reward": float | null, "done": bool,
            "metrics": {str: float}}        (OpenEnv's "info" is read as metrics too)
    POST {url}/close  {"episode_id": str}   (optional: a 404 or an error is ignored)

An observation may also be an object holding the text under one of OBS_FIELDS (OpenEnv's
observation dataclasses: {"message": ...}, {"text": ...}). The first observation is the prompt
text, tokenized with the run's tokenizer; a null one means "encode the sample as usual"
(`encode`). Later observations are tokenized on their own and inserted after the turn, as tool
outputs are (token in, token out; masked out of the loss). `reward` null at `done` = score the
transcript with the run's reward; a number is the episode's reward.

Transport: the standard library (`urllib.request`), no dependency; one request per call with
`timeout_s`. A failed request raises, so the driver ends that episode with finish reason "error"
(score 0) and the others go on. Only what `url` names is contacted.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Any

from reasonrl.envs.base import StepResult
from reasonrl.types import Completion, Sample

OBS_FIELDS = ("text", "message", "content", "prompt", "observation")


def post_json(url: str, payload: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """POST `payload` as JSON, return the decoded JSON object (ValueError if it is not one)."""
    data = json.dumps(payload).encode("utf-8")
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        body = json.loads(response.read().decode("utf-8") or "{}")
    if not isinstance(body, dict):
        raise ValueError(f"{url} answered {type(body).__name__}, not a JSON object")
    return body


def observation_text(value: Any) -> str | None:
    """The text of an observation: a string, or the first OBS_FIELDS entry of an object."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in OBS_FIELDS:
            if isinstance(value.get(key), str):
                return value[key]
    raise ValueError(f"cannot read an observation text from {str(value)[:80]!r}")


class HTTPEnv:
    """One episode on the server (module docstring)."""

    def __init__(self, sample: Sample, factory: HTTPEnvs) -> None:
        self.sample, self.f = sample, factory
        self.episode_id: str | None = None

    def reset(self) -> Sequence[int]:
        s = self.sample
        body = self.f.post(
            "reset",
            {
                "sample": {
                    "id": s.id,
                    "prompt": s.prompt,
                    "answer": s.answer,
                    "meta": dict(s.meta or {}),
                }
            },
        )
        self.episode_id = str(body.get("episode_id", ""))
        text = observation_text(body.get("observation"))
        return self.f.encode(s) if text is None else self.f.tokenize(text)

    def step(self, action: Completion) -> StepResult:
        body = self.f.post("step", {"episode_id": self.episode_id,
                                    "action": {self.f.action_field: action.text}})  # fmt: skip
        metrics = {**(body.get("info") or {}), **(body.get("metrics") or {})}
        metrics = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}
        done = bool(body.get("done", False))
        reward = body.get("reward")
        if done:
            return StepResult(done=True, reward=None if reward is None else float(reward),
                              metrics=metrics)  # fmt: skip
        text = observation_text(body.get("observation")) or ""
        return StepResult(observation=tuple(self.f.tokenize(text)) if text else (),
                          observation_text=text, metrics=metrics)  # fmt: skip

    def close(self) -> None:
        if self.episode_id is None:
            return
        # close is optional on the server: a failure there changes nothing here
        with suppress(urllib.error.URLError, OSError, ValueError):
            self.f.post("close", {"episode_id": self.episode_id})
        self.episode_id = None


class HTTPEnvs:
    """EnvFactory of `HTTPEnv`s on the server at `url` (e.g. "http://127.0.0.1:8000").

    encode: sample -> prompt ids when the server's reset gives no observation; tokenize: text ->
    ids (observations). stop: strings that end a turn (the server's action boundary);
    action_field: the key the turn text goes under in the action object.
    """

    def __init__(
        self,
        url: str,
        *,
        encode: Callable[[Sample], Sequence[int]],
        tokenize: Callable[[str], Sequence[int]],
        stop: tuple[str, ...] = (),
        max_turns: int = 4,
        max_total_tokens: int | None = None,
        action_field: str = "text",
        timeout_s: float = 30.0,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"HTTPEnvs needs an http(s) URL, got {url!r}")
        self.url = url.rstrip("/")
        self.encode, self.tokenize = encode, tokenize
        self.stop, self.max_turns, self.max_total_tokens = tuple(stop), max_turns, max_total_tokens
        self.action_field, self.timeout_s = action_field, timeout_s

    def post(self, route: str, payload: dict[str, Any]) -> dict[str, Any]:
        return post_json(f"{self.url}/{route}", payload, self.timeout_s)

    def __call__(self, sample: Sample) -> HTTPEnv:
        return HTTPEnv(sample, self)
