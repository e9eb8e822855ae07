"""The multi-turn rollout driver: episodes batched through the engine, token in, token out.

`run_episodes` plays G episodes per sample. Each round generates one turn for every live episode
in one `engine.generate` call on the episodes' full token histories (prompt + every sampled and
observation token so far, never re-tokenized), then steps the envs; finished episodes leave the
batch. The first turn of a group whose G resets agree is ONE prompt with n = G and the caller's
seed, which is exactly the single-turn engine call (so the degenerate env changes nothing);
later turns are one row per episode, n = 1, with a seed offset per turn.

The trained sequence of an episode is `prompt_ids + completion().token_ids`: the sampled tokens
(loss mask 1, the sampler's log-probs) and the observation tokens exactly as inserted (loss mask
0, log-prob 0.0, never trained). `score_episodes` gives every episode its reward: the env's own,
else the run's reward on the transcript, in one batched call for the whole round.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext, suppress
from dataclasses import dataclass, field, replace
from typing import Any

from reasonrl.envs.base import Env, EnvFactory, StepResult
from reasonrl.rewards.api import normalize_reward_output
from reasonrl.rewards.batch import call_reward_batch
from reasonrl.rollout.base import RolloutEngine, SamplingParams
from reasonrl.types import Completion, RewardResult, Sample

TURN_SEED = 1_000_033  # seed offset of turn k >= 1: each turn draws fresh noise
Timer = Callable[[str], AbstractContextManager[Any]]


@dataclass(frozen=True, slots=True)
class EpisodeCompletion(Completion):
    """A multi-turn episode's response side as one `Completion` (rewards, samples.jsonl and the
    trainer read it as any completion), with what the trainer and the metrics need besides.

    loss_mask: 1.0 on sampled tokens, 0.0 on observation tokens (aligned with `token_ids`;
        `logprobs` holds 0.0 there). episode_finish: the episode's finish reason. turns: policy
        turns. metrics: the env's step metrics summed over the episode. step_s: env.step time.
    """

    loss_mask: tuple[float, ...] = ()
    episode_finish: str = "stop"
    turns: int = 1
    metrics: dict[str, float] = field(default_factory=dict)
    step_s: float = 0.0

    @property
    def observation_tokens(self) -> int:
        return int(len(self.loss_mask) - sum(self.loss_mask))


@dataclass
class Episode:
    """One episode's trajectory: the turns the policy sampled and the observations between them.

    prompt_ids: what `reset()` returned. turns: the policy's completions, in order (a turn cut
    at the token limit holds only its kept prefix). observations: token ids inserted after
    turn i (`observations[i]`, possibly empty). finish_reason: one of
    `envs.base.EPISODE_FINISH_REASONS`. reward: the env's own final reward (None = scored by the
    run's reward). metrics: the env's step metrics summed over the episode.
    """

    prompt_ids: tuple[int, ...]
    turns: list[Completion] = field(default_factory=list)
    observations: list[tuple[int, ...]] = field(default_factory=list)
    observation_texts: list[str] = field(default_factory=list)
    finish_reason: str | None = None
    reward: RewardResult | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    step_s: float = 0.0  # seconds spent in env.step (tool calls)
    multi_turn: bool = True  # False: made by a single-turn factory (max_turns == 1)

    @property
    def done(self) -> bool:
        return self.finish_reason is not None

    @property
    def token_ids(self) -> list[int]:
        """Response-side tokens: turn 1, observation 1, turn 2, ... as they were produced."""
        return [t for ids, _ in self._pieces() for t in ids]

    def loss_mask(self) -> list[float]:
        """1.0 on sampled tokens, 0.0 on observation tokens (aligned with `token_ids`)."""
        return [float(trained) for ids, trained in self._pieces() for _ in ids]

    def logprobs(self) -> list[float]:
        """The sampler's log-probs on sampled tokens, 0.0 on observations (masked anyway)."""
        out: list[float] = []
        for i, turn in enumerate(self.turns):
            out += turn.logprobs
            if i < len(self.observations):
                out += [0.0] * len(self.observations[i])
        return out

    def completion(self) -> Completion:
        """The whole response side as one `Completion` (what the reward and the trainer see).

        A one-turn episode of a single-turn factory (`multi_turn=False`) returns the engine's
        own completion object, so a single-turn run trains on exactly what it did before
        environments. Otherwise an `EpisodeCompletion`: the text is
        the turns' texts and the observation texts concatenated, and the finish reason "length"
        (truncated: the overlong filter/penalty apply) when the episode ended by "length" or
        "max_tokens", else "stop".
        """
        if not self.multi_turn:
            return self.turns[0]
        text = ""
        for i, turn in enumerate(self.turns):
            text += turn.text
            if i < len(self.observation_texts):
                text += self.observation_texts[i]
        cut = self.finish_reason in ("length", "max_tokens")
        return EpisodeCompletion(
            text=text,
            token_ids=tuple(self.token_ids),
            logprobs=tuple(self.logprobs()),
            finish_reason="length" if cut else "stop",
            loss_mask=tuple(self.loss_mask()),
            episode_finish=self.finish_reason or "stop",
            turns=len(self.turns),
            metrics=dict(self.metrics),
            step_s=self.step_s,
        )

    def _pieces(self) -> Iterator[tuple[Sequence[int], bool]]:
        for i, turn in enumerate(self.turns):
            yield turn.token_ids, True
            if i < len(self.observations):
                yield self.observations[i], False


def run_episodes(
    engine: RolloutEngine,
    factory: EnvFactory,
    samples: Sequence[Sample],
    params: SamplingParams,
    *,
    decode: Callable[[Sequence[int]], str] | None = None,
    workers: int = 1,
    timer: Timer | None = None,
) -> list[list[Episode]]:
    """Play `params.n` episodes per sample to the end; returns B lists of G episodes.

    Args:
        engine: any `RolloutEngine`.
        factory: makes each episode's env; its `stop`, `max_turns`, `max_total_tokens` apply.
        samples: B samples.
        params: sampling settings of the first turn (n = G); `params.max_new_tokens` caps every
            turn, `factory.stop` is added to `params.stop`.
        decode: token ids -> text, for observations without `observation_text` and turns cut at
            the token limit (needed only by multi-turn factories).
        workers: env steps run at once (threads); 1 = in order, in this thread.
        timer: `timer(name)` context managers: "generate" around engine calls and, for
            multi-turn factories, "env" around env steps.
    """
    clock: Timer = timer or (lambda _name: nullcontext())
    multi = factory.max_turns > 1
    g = params.n
    base = replace(params, stop=params.stop + tuple(factory.stop)) if factory.stop else params
    envs: list[list[Env]] = []
    try:
        for s in samples:
            envs.append([])
            for _ in range(g):
                envs[-1].append(factory(s))
        episodes = [
            [Episode(tuple(int(t) for t in env.reset()), multi_turn=multi) for env in row]
            for row in envs
        ]
        live = [(ep, env) for eps, row in zip(episodes, envs) for ep, env in zip(eps, row)]
        turn = 0
        while live:
            with clock("generate"):
                turns = _generate(engine, base, episodes, live, turn, factory)
            with clock("env") if multi else nullcontext():
                results = _step_all([env for _, env in live], turns, workers)
            still = []
            for (ep, env), (comp, cut), (result, seconds) in zip(live, turns, results):
                ep.step_s += seconds
                _advance(ep, comp, cut, result, factory, decode)
                if ep.done:
                    _close(env)
                else:
                    still.append((ep, env))
            live, turn = still, turn + 1
        return episodes
    finally:  # every exit path, exceptions included: no tool session outlives its episode
        for row in envs:
            for env in row:
                _close(env)


def _generate(
    engine: RolloutEngine,
    params: SamplingParams,
    episodes: list[list[Episode]],
    live: list[tuple[Episode, Env]],
    turn: int,
    factory: EnvFactory,
) -> list[tuple[Completion, bool]]:
    """One turn for every live episode: (completion, ended by the episode's token limit), in
    `live` order."""
    limit = factory.max_total_tokens
    room = [None if limit is None else limit - len(ep.token_ids) for ep, _ in live]
    cap = params.max_new_tokens
    if limit is not None:  # no row may use more than the most room any row has left
        cap = max(1, min(cap, max(r for r in room if r is not None)))
    out: dict[int, Completion] = {}
    index = {id(ep): i for i, (ep, _) in enumerate(live)}
    if turn == 0:  # a group whose resets agree: one prompt, n = G (the single-turn call)
        agree = [all(e.prompt_ids == row[0].prompt_ids for e in row) for row in episodes]
        shared = [row for row, ok in zip(episodes, agree) if ok]
        alone = [e for row, ok in zip(episodes, agree) if not ok for e in row]
        if shared:
            groups = engine.generate(
                [row[0].prompt_ids for row in shared], replace(params, max_new_tokens=cap)
            )
            for row, comps in zip(shared, groups, strict=True):
                for ep, comp in zip(row, comps, strict=True):
                    out[index[id(ep)]] = comp
        rows = alone
    else:
        rows = [ep for ep, _ in live]
    if rows:
        seed = None if params.seed is None else params.seed + TURN_SEED * turn
        one = replace(params, n=1, seed=seed, max_new_tokens=cap)
        histories = [[*ep.prompt_ids, *ep.token_ids] for ep in rows]
        for ep, comps in zip(rows, engine.generate(histories, one), strict=True):
            out[index[id(ep)]] = comps[0]
    turns = []
    for i, r in enumerate(room):
        comp = out[i]
        over = r is not None and len(comp.token_ids) > r
        if over:  # keep the sampled prefix that fits: still exactly what the policy drew
            comp = Completion("", comp.token_ids[:r], comp.logprobs[:r], "length")
        # ended by the episode's token budget (cut here, or by the engine at the capped length)
        budget = r is not None and comp.truncated and len(comp.token_ids) >= r
        turns.append((comp, over or budget))
    return turns


def _step_all(
    envs: list[Env], turns: list[tuple[Completion, bool]], workers: int
) -> list[tuple[StepResult | BaseException, float]]:
    def one(pair: tuple[Env, tuple[Completion, bool]]) -> tuple[StepResult | BaseException, float]:
        env, (comp, _) = pair
        t0 = time.perf_counter()
        try:
            result: StepResult | BaseException = env.step(comp)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # a broken env fails its episode, never the run
            result = exc
        return result, time.perf_counter() - t0

    pairs = list(zip(envs, turns, strict=True))
    if workers <= 1 or len(pairs) <= 1:
        return [one(p) for p in pairs]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, pairs))


def _advance(
    ep: Episode,
    comp: Completion,
    cut: bool,
    result: StepResult | BaseException,
    factory: EnvFactory,
    decode: Callable[[Sequence[int]], str] | None,
) -> None:
    """Append the turn and the env's answer to `ep`; set its finish reason when it ends."""
    if cut and not comp.text:  # a prefix cut in `_generate`: decode what was kept
        comp = replace(comp, text=_decode(decode, comp.token_ids))
    ep.turns.append(comp)
    if isinstance(result, BaseException):
        ep.finish_reason = "error"
        ep.reward = RewardResult(
            0.0, {"failed": True, "error": repr(result)[:200], "error_kind": "env_error"},
            outcome=False,
        )  # fmt: skip
        return
    for key, value in result.metrics.items():
        ep.metrics[key] = ep.metrics.get(key, 0.0) + float(value)
    if result.done or cut:
        ep.finish_reason = "max_tokens" if cut else (result.finish_reason or comp.finish_reason)
        if result.reward is not None:
            ep.reward = normalize_reward_output(result.reward)
        return
    if comp.truncated:  # the engine cut the turn: an episode cannot go on from mid-turn
        ep.finish_reason = "length"
    elif len(ep.turns) >= factory.max_turns:
        ep.finish_reason = "max_turns"
    else:
        obs = tuple(int(t) for t in result.observation or ())
        limit = factory.max_total_tokens
        if limit is not None and len(ep.token_ids) + len(obs) >= limit:
            ep.finish_reason = "max_tokens"  # no room left for a turn after this observation
            return
        ep.observations.append(obs)
        text = result.observation_text
        ep.observation_texts.append(text if text is not None else _decode(decode, obs))


def _decode(decode: Callable[[Sequence[int]], str] | None, ids: Sequence[int]) -> str:
    if decode is None:
        raise ValueError("run_episodes needs `decode` for a multi-turn env (a turn or an "
                         "observation has no text)")  # fmt: skip
    return decode(list(ids))


def _close(env: Env) -> None:
    close = getattr(env, "close", None)
    if callable(close):
        with suppress(Exception):  # a failing close must not hide the episode's result
            close()


def score_episodes(
    reward_fn: Callable[[Sample, Completion], object],
    factory: EnvFactory,
    samples: Sequence[Sample],
    episodes: Sequence[Sequence[Episode]],
    *,
    timeout_s: float | None = None,
) -> list[list[RewardResult]]:
    """Each episode's final `RewardResult`, B lists of G.

    Episodes without an env reward are scored by `reward_fn` on their transcript in ONE
    `call_reward_batch` call (row-major order: the single-turn loop's call exactly); then the
    factory's optional `score_group(sample, completions, results)` replaces each group's results
    (a hook that raises or returns the wrong count fails that group's samples).
    """
    flat = [(s, ep) for s, row in zip(samples, episodes, strict=True) for ep in row]
    todo = [i for i, (_, ep) in enumerate(flat) if ep.reward is None]
    scored = call_reward_batch(
        reward_fn, [flat[i][0] for i in todo], [flat[i][1].completion() for i in todo],
        timeout_s=timeout_s,
    )  # fmt: skip
    results: list[RewardResult | None] = [ep.reward for _, ep in flat]
    for i, r in zip(todo, scored, strict=True):
        results[i] = r
    out, k = [], 0
    for row in episodes:
        out.append([r for r in results[k : k + len(row)] if r is not None])
        k += len(row)
    hook = getattr(factory, "score_group", None)
    if callable(hook):
        for b, (s, row) in enumerate(zip(samples, episodes, strict=True)):
            out[b] = _group_scores(hook, s, row, out[b])
    return out


def _group_scores(
    hook: Callable[..., Any], sample: Sample, row: Sequence[Episode], results: list[RewardResult]
) -> list[RewardResult]:
    try:
        values = list(hook(sample, [ep.completion() for ep in row], results))
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        values = [exc] * len(row)
    if len(values) != len(row):
        values = [ValueError(f"score_group returned {len(values)} scores for {len(row)}")] * len(
            row
        )
    out = []
    for v in values:
        if isinstance(v, BaseException):
            info = {"failed": True, "error": repr(v)[:200], "error_kind": "score_group"}
            out.append(RewardResult(0.0, info, outcome=False))
        else:
            out.append(normalize_reward_output(v))
    return out


def episode_metrics(completions: Sequence[Completion]) -> dict[str, float]:
    """`env/*` metrics of the multi-turn episodes among `completions` (their
    `EpisodeCompletion`s; {} when there is none, so a single-turn run logs no env/ key):
    turns, observation tokens, the share of each finish reason, the mean per episode of every
    summed step metric (`env/tool_calls`, ...), the tool error rate, env.step seconds."""
    eps = [c for c in completions if isinstance(c, EpisodeCompletion)]
    if not eps:
        return {}
    n = len(eps)
    out = {
        "env/turns_mean": sum(c.turns for c in eps) / n,
        "env/obs_tokens_mean": sum(c.observation_tokens for c in eps) / n,
        "env/step_s": sum(c.step_s for c in eps),
    }
    for c in eps:
        key = f"env/finish/{c.episode_finish}"
        out[key] = out.get(key, 0.0) + 1.0 / n
    for key in sorted({k for c in eps for k in c.metrics}):
        out[f"env/{key}"] = sum(c.metrics.get(key, 0.0) for c in eps) / n
    calls = sum(c.metrics.get("tool_calls", 0.0) for c in eps)
    if calls:
        errors = sum(c.metrics.get("tool_errors", 0.0) for c in eps)
        out["env/tool_error_rate"] = errors / calls
    return out


def loss_masks(completions: Sequence[Completion]) -> list[list[float]] | None:
    """Per-token loss masks for `rl.batching.collate`: an `EpisodeCompletion`'s own (0 on
    observation tokens), all ones for a plain completion; None when no completion has
    observations (collate's default, the single-turn batch unchanged)."""
    if not any(isinstance(c, EpisodeCompletion) for c in completions):
        return None
    return [
        list(c.loss_mask) if isinstance(c, EpisodeCompletion) else [1.0] * len(c.token_ids)
        for c in completions
    ]
