"""A character tokenizer, a scripted engine and a fake tool for the environment tests.

The engine behaves as the real ones do at a turn's end (rollout/base.py): it stops at the token
that completes a stop string (kept in the tokens), or after max_new_tokens ("length"), and
reports log-prob -0.5 - 0.01 * position for each token, so masks and alignments are checkable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from reasonrl.envs.tools.base import ToolResult
from reasonrl.rollout.base import SamplingParams
from reasonrl.types import Completion, Sample

EOS = "$"  # the "EOS" character: a turn with it ended the episode


class CharTokenizer:
    """One token per character: id = ord(c) (no BOS, pad 0)."""

    pad_token_id = 0
    bos_token_id = None
    eos_token_id = ord(EOS)

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": [ord(c) for c in text]}

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        return "".join(chr(i) for i in ids)


TOK = CharTokenizer()


def encode(sample: Sample) -> list[int]:
    return TOK(sample.prompt)["input_ids"]


def tokenize(text: str) -> list[int]:
    return TOK(text)["input_ids"]


class ScriptEngine:
    """`script(history_text, turn_index) -> text` decides each turn; records every call."""

    def __init__(self, script: Callable[[str, int], str]) -> None:
        self.script = script
        self.calls: list[tuple[list[list[int]], SamplingParams]] = []

    def generate(
        self, prompt_ids: Sequence[Sequence[int]], params: SamplingParams
    ) -> list[list[Completion]]:
        self.calls.append(([list(p) for p in prompt_ids], params))
        out = []
        for prompt in prompt_ids:
            history = TOK.decode(prompt)
            group = []
            for j in range(params.n):
                text = self.script(history, j)
                reason = "stop"
                for stop in params.stop:  # cut at the token completing the stop string
                    at = text.find(stop)
                    if at >= 0:
                        text = text[: at + len(stop)]
                if len(text) > params.max_new_tokens:
                    text, reason = text[: params.max_new_tokens], "length"
                ids = tuple(tokenize(text))
                lps = tuple(-0.5 - 0.01 * k for k in range(len(ids)))
                group.append(Completion(text, ids, lps, reason))
            out.append(group)
        return out

    def load_weights(self, named_tensors: Iterable) -> None:
        pass


class FakeSession:
    def __init__(self, tool: FakeTool) -> None:
        self.tool, self.calls, self.closed = tool, [], False

    def call(self, arguments: str) -> ToolResult:
        self.calls.append(arguments)
        if arguments == "raise":
            raise RuntimeError("tool crashed")
        if arguments == "bad":
            return ToolResult("Traceback: NameError", ok=False, error="exception")
        return ToolResult(str(eval(arguments, {"__builtins__": {}})))  # arithmetic only

    def close(self) -> None:
        self.closed = True
        self.tool.closed += 1


class FakeTool:
    """Evaluates arithmetic; "bad" returns an error result, "raise" raises."""

    name = "python"

    def __init__(self) -> None:
        self.sessions: list[FakeSession] = []
        self.closed = 0

    def open(self) -> FakeSession:
        self.sessions.append(FakeSession(self))
        return self.sessions[-1]
