"""The run's environment factory from the `env:` section (docs/environments.md).

`env.kind=single_turn` (the default) is the degenerate env: the prompt encoded as it always was
(`data.templates.prompt_token_ids` with the run's prompt format), one completion, reward.kind.
`env.kind=tool` plays `envs.tool_env.ToolEnv` episodes with `env.tool`. The factory is built on
first use and kept on the TrainState (`state.env`), so a test or a Python caller may set its
own EnvFactory there instead.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from reasonrl.algos.tool_reward import (
    failed_call_penalty,
    gated_tool_reward,
    messages_of,
    tcr_reward,
)
from reasonrl.config import RLConfig
from reasonrl.config.rl import EnvConfig
from reasonrl.data.templates import PromptFormat, prompt_token_ids
from reasonrl.envs.base import EnvFactory
from reasonrl.envs.single_turn import SingleTurnEnvs
from reasonrl.envs.tool_env import ToolEnvs
from reasonrl.envs.tools.base import Tool
from reasonrl.envs.tools.format import TagFormat
from reasonrl.rewards.api import RewardFn, is_correct, normalize_reward_output
from reasonrl.types import Completion, RewardResult, Sample

if TYPE_CHECKING:
    from reasonrl.rl.state import TrainState

# env.tool's built-in names -> the import path of a zero-argument Tool factory.
TOOL_PATHS = {
    "python": "reasonrl.envs.tools.python:PythonTool",
    "calculator": "reasonrl.envs.tools.calculator:CalculatorTool",
}


def make_tool(name: str) -> Tool:
    """The Tool `env.tool` names: a built-in name or an import path of a zero-arg factory."""
    module, _, attr = TOOL_PATHS.get(name, name).partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    tool = obj()
    if not isinstance(tool, Tool):
        raise TypeError(f"env.tool={name!r} made {type(tool).__name__}, not a Tool "
                        "(needs a `name` and `open()`)")  # fmt: skip
    return tool


def make_env_factory(cfg: RLConfig, tokenizer: Any) -> EnvFactory:
    """The EnvFactory of `cfg.env` for this tokenizer."""
    fmt = PromptFormat.from_config(cfg)  # data.template / system_prompt / instruction

    def encode(sample: Any) -> list[int]:
        return prompt_token_ids(tokenizer, sample, fmt)

    if cfg.env.kind == "single_turn":
        return SingleTurnEnvs(encode)
    e = cfg.env
    tool = make_tool(e.tool)
    tags = TagFormat(tags=(("code", tool.name),))  # <code> calls the configured tool
    return ToolEnvs(
        encode=encode,
        tokenize=lambda text: tokenizer(text, add_special_tokens=False)["input_ids"],
        tools=[tool],
        parse=tags.parse,
        render=tags.render,
        stop=tuple(tags.stop_strings),
        max_turns=e.max_turns,
        max_tool_calls=e.max_tool_calls,
        max_total_tokens=e.max_total_tokens,
    )


def env_factory(state: TrainState) -> EnvFactory:
    """`state.env`, built from the config the first time."""
    if state.env is None:
        state.env = make_env_factory(state.cfg, state.tokenizer)
    return state.env


def decoder(tokenizer: Any) -> Callable[[Sequence[int]], str]:
    """Token ids -> text as the engines decode a completion (special tokens kept)."""
    return lambda ids: tokenizer.decode(list(ids), skip_special_tokens=False)


def response_limit(cfg: RLConfig) -> int:
    """The longest response side an episode may have: L_max of the overlong shaping.
    Single-turn: rollout.max_new_tokens; env.kind=tool: env.max_total_tokens (sampled and
    observation tokens of all turns; rollout.max_new_tokens caps one turn only)."""
    return cfg.env.max_total_tokens if cfg.env.kind == "tool" else cfg.rollout.max_new_tokens


def ensure_tool_tokens(cfg: RLConfig, tokenizer: Any, model: Any) -> bool:
    """env.kind=tool with the synthetic task's word-level tokenizer lacking the tool tags (e.g.
    builtin:synth-micro as shipped): append them and grow the model's embeddings
    (`tasks.synth.add_tool_tokens`, the ids of `build_synth_tokenizer(tools=True)`), so the
    policy can emit `<code>` at all. Returns whether tokens were added. A model primed by
    recipes/agent_prime.yaml already has them (nothing happens); another tokenizer (BPE) spells
    the tags with its own tokens and is left alone. Call before any copy of the model is made
    (reference, engine copy, LoRA)."""
    if cfg.env.kind != "tool":
        return False
    vocab = tokenizer.get_vocab()
    if "<code>" in vocab or not {"<solution>", "##0"} <= set(vocab):
        return False
    from reasonrl.tasks.synth.tokenizer import add_tool_tokens

    add_tool_tokens(tokenizer, model)
    return True


def tool_reward_active(env: EnvConfig) -> bool:
    """Whether any of env.failed_call_penalty / turn_credit / tool_bonus is on."""
    return env.kind == "tool" and bool(
        env.failed_call_penalty or env.turn_credit or env.tool_bonus is not None
    )


def with_tool_reward(cfg: RLConfig, reward_fn: RewardFn) -> RewardFn:
    """The run's reward with the `env:` tool terms (algos/tool_reward.py) applied to each
    episode's score, in this order: turn_credit replaces the score by Demystifying's +1 / credited
    -1, tool_bonus adds AgentMath's gated bonus, failed_call_penalty subtracts per failed call.
    "Correct" is the strict verdict (`verified`) where the reward gives one, else `is_correct`.
    Counts come from the episode (`EpisodeCompletion.metrics`: tool_calls, tool_errors); a plain
    completion has none. `outcome`, `verified` and `answer` are kept, so held-out pass@k is
    unchanged; the unshaped score is kept as info["task_score"]. Returns `reward_fn` itself
    when no term is on."""
    e = cfg.env
    if not tool_reward_active(e):
        return reward_fn

    def shaped(result: RewardResult, completion: Completion) -> RewardResult:
        if result.score is None or result.info.get("failed", False):
            return result
        metrics = getattr(completion, "metrics", None) or {}
        calls, failed = metrics.get("tool_calls", 0.0), metrics.get("tool_errors", 0.0)
        correct = result.verified if result.verified is not None else is_correct(result)
        score = float(result.score)
        if e.turn_credit:
            score = tcr_reward(correct, messages_of(calls))
        if e.tool_bonus is not None:
            alpha, beta, r_max = e.tool_bonus
            score = (
                score
                - float(correct)
                + gated_tool_reward(float(correct), calls, alpha=alpha, beta=beta, r_max=r_max)
            )
        score = failed_call_penalty(score, failed, e.failed_call_penalty)
        info = {**result.info, "task_score": result.score}
        return RewardResult(score, info, result.answer, result.outcome, result.verified)

    def reward(sample: Sample, completion: Completion) -> RewardResult:
        return shaped(normalize_reward_output(reward_fn(sample, completion)), completion)

    batch = getattr(reward_fn, "batch", None)
    if callable(batch):

        def batched(samples: list[Sample], completions: list[Completion]) -> list[RewardResult]:
            values = batch(samples, completions)
            return [shaped(normalize_reward_output(v), c) for v, c in zip(values, completions)]

        reward.batch = batched  # type: ignore[attr-defined]
    for attr in ("gold_answer",):  # maj@k's gold answer
        if hasattr(reward_fn, attr):
            setattr(reward, attr, getattr(reward_fn, attr))
    reward.__name__ = getattr(reward_fn, "__name__", "reward")
    return reward
