"""The RL run's schema: model, data, rollout, algo, reward, optim, trainer and eval sections.

Derived values (eval ops, the Dr. GRPO normaliser, eval length, run name) are filled in once, in
`RLConfig._derive`. Algorithm presets: `algo.preset: dapo` takes `PRESETS["dapo"]`
(`reasonrl.algos.presets`) under the keys the user wrote explicitly; every other key keeps the
`AlgoConfig` default. The preset is expanded by `AlgoConfig` itself, so it applies however the
config is built (a recipe, a dict, Python).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, Strict, field_validator, model_validator

from reasonrl.config.base import (
    Bool,
    ConfigModel,
    Float,
    NonNegInt,
    PosInt,
    Seed,
    refuse_ignored,
)

PresetName = Literal["grpo", "dr_grpo", "dapo", "gspo", "lite_ppo", "grpo_tcr", "minirl"]


# The built-in reward names of reward.kind; any other value is an import path (`import_path`).
BUILTIN_REWARDS = (
    "synth_process", "synth_strict", "synth_outcome",
    "math", "countdown", "code_tests", "code_tests_all",
    "learned", "judge",  # a reward model / a pairwise judge LM: reward.learned_*
)  # fmt: skip
# The built-in tool names of env.tool (reasonrl.envs.tools); any other value is an import path.
BUILTIN_TOOLS = ("python", "calculator")
# What train(reward_fn=...) / train(source=...) records for a callable that has no import path
# (defined in __main__, a notebook, a closure): it names the object and never loads.
PYTHON_PREFIX = "python:"
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_IMPORT_PATH = re.compile(rf"^{_IDENT}(\.{_IDENT})*:{_IDENT}(\.{_IDENT})*$")


def import_path(value: str, key: str) -> str:
    """`value` if it is "module.path:attribute" (exactly one ':', dotted identifiers on both
    sides) or the `python:...` record of a Python object; ValueError naming `key` otherwise.
    Whether the module imports is checked by `reasonrl train` before the model loads."""
    if value.startswith(PYTHON_PREFIX) and len(value) > len(PYTHON_PREFIX):
        return value
    if not _IMPORT_PATH.match(value):
        raise ValueError(
            f"{key}={value!r} is not an import path: write module.path:function (exactly one "
            "':', e.g. my_rewards:format_reward)"
        )
    return value


def _reward_kind(value: str, key: str) -> str:
    if ":" in value:
        return import_path(value, key)
    if value not in (*BUILTIN_REWARDS, "combine"):
        guess = difflib.get_close_matches(value, [*BUILTIN_REWARDS, "combine"], n=1, cutoff=0.5)
        hint = f"; did you mean '{guess[0]}'?" if guess else ""
        raise ValueError(
            f"{key}={value!r}: expected one of {', '.join(BUILTIN_REWARDS)}, combine, or an "
            f"import path module.path:function{hint}"
        )
    return value


class LoraConfig(ConfigModel):
    """LoRA (Hu et al., arXiv 2106.09685) through peft: W + (alpha / r) * B @ A on the target
    linear layers; only A and B train, are optimized and are checkpointed."""

    r: PosInt = 16
    """Rank of the adapter."""
    alpha: Float = Field(32.0, gt=0)
    """Scale numerator: the update is (alpha / r) * B @ A (plain LoRA scaling, not rsLoRA)."""
    dropout: Float = Field(0.0, ge=0, lt=1)
    """Dropout on the adapter's input (0 keeps the sampler's and trainer's log-probs equal)."""
    target_modules: tuple[str, ...] | Literal["all-linear"] = (
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
    )  # fmt: skip
    """Names (suffixes) of the linear layers that get an adapter, or `all-linear` (every linear
    layer but the output head); a name the model lacks is an error listing its linear layers."""


class ModelConfig(ConfigModel):
    path: str = "builtin:synth-micro"
    """HF directory or hub id of the policy; `builtin:synth-micro` = the shipped base checkpoint."""
    dtype: Literal["auto", "bf16", "fp32"] = "auto"
    """Compute dtype: bf16 autocast is 2-3x faster than fp32 on CPUs with native bf16
    (avx512_bf16/AMX) and ~10x slower without; `auto` picks bf16 only where it is fast."""
    device: str = Field("cpu", pattern=r"^(cpu|cuda(:\d+)?|mps)$")
    """torch device for training and the HF rollout engine; `reasonrl train` checks that this
    machine has it (a CUDA build of torch and the GPU index) before the model loads."""
    threads: PosInt | None = None
    """torch intra-op threads; None keeps torch's default."""
    lora: LoraConfig | None = None
    """Train a LoRA adapter instead of all weights (needs the `peft` extra); the engines sample
    from base + adapter merged, synced after every update; `reasonrl export` writes the merged
    model (or `--adapter` the adapter alone)."""
    train_dropout: Bool = False
    """Dropout in the policy's training forward. Off by default: the rollout engines sample with
    dropout off, so with it on the trainer scores other log-probs than the sampler drew from
    (is/mismatch_* shows the gap) and the PPO ratio is not 1 at the first step."""


class SamplerConfig(ConfigModel):
    """Which training prompts a step draws (`reasonrl.data.samplers`, docs/curricula.md): each
    step picks `rollout.prompts_per_step` prompts among `candidates` times as many drawn from
    the data.task source, weighted by the per-prompt raw-reward statistics
    (`reasonrl.data.stats`)."""

    kind: Literal["uniform", "kimi", "curriculum", "edge", "drive", "pools"] = "uniform"
    """`uniform`: the source's own order (today's behaviour); `kimi`: weight max(1 - s, floor)
    (Kimi k1.5, arXiv 2501.12599); `curriculum`: easy to hard on data.sampler.difficulty_key;
    `edge`: only prompts with edge_low < s < edge_high (Interplay, arXiv 2512.07783); `drive`:
    uniform for drive_stage1_steps, then the hardest unsolved prompts carried forward (DRIVE,
    arXiv 2511.06307); `pools`: easy / normal / hard pools with a target mix (prime-rl). s is the
    prompt's running success rate, else its difficulty bucket's."""
    candidates: PosInt = 4
    """Candidates drawn from the source per prompt served (kinds other than uniform/drive)."""
    pool_size: NonNegInt = 0
    """With data.task=synth: train on a fixed pool of this many generated problems (cycled,
    reshuffled each epoch) so that per-prompt statistics see repeats; 0 = the endless stream."""
    decay: Float = Field(0.9, gt=0, le=1)
    """Decay of the running statistics per new group (1 = the plain mean over the run)."""
    difficulty_key: str = "op"
    """The sample meta field holding a numeric difficulty (synthetic `op`, a JSONL column)."""
    floor: Float = Field(0.05, ge=0, le=1)
    """kimi: the smallest weight, so a solved prompt is still seen now and then (the paper
    gives none; ours)."""
    curriculum_steps: PosInt | None = None
    """curriculum: steps over which the admitted difficulty rises from the easiest to the
    hardest seen; None = trainer.steps."""
    edge_low: Float = Field(0.0, ge=0, le=1)
    """edge: keep prompts whose success rate is above this (exclusive)."""
    edge_high: Float = Field(1.0, ge=0, le=1)
    """edge: keep prompts whose success rate is below this (exclusive)."""
    drive_stage1_steps: NonNegInt = 32
    """drive: steps of the uniform first stage (the paper's 32 entropy-expansion steps)."""
    drive_k: PosInt = 16
    """drive: most prompts in the carried-forward hard set (the K lowest success rates)."""
    drive_share: Float = Field(0.5, ge=0, le=1)
    """drive: share of each batch served from the carried set (the rest fresh, uniform)."""
    drive_max_carries: PosInt = 4
    """drive: a carried prompt leaves the set after this many extra visits."""
    pool_mix: tuple[Float, Float, Float] = (0.1, 0.8, 0.1)
    """pools: target share of easy, normal and hard prompts in a batch."""
    easy_threshold: Float = Field(1.0, ge=0, le=1)
    """pools: a prompt with success >= this is easy (all right with a 0/1 reward)."""
    hard_threshold: Float = Field(0.0, ge=0, le=1)
    """pools: a prompt with success <= this is hard (all wrong with a 0/1 reward)."""
    hack_filter: Bool = False
    """Kimi's easy-to-hack filter, with any kind: never serve again a prompt whose hack rate
    (right answer, raw reward < 1: trace not valid) exceeds hack_threshold."""
    hack_threshold: Float = Field(0.5, ge=0, le=1)
    """hack_filter: the largest tolerated hack rate."""

    @model_validator(mode="after")
    def _check_ranges(self) -> SamplerConfig:
        if self.edge_low >= self.edge_high:
            raise ValueError("data.sampler.edge_low must be below data.sampler.edge_high")
        if self.hard_threshold >= self.easy_threshold:
            raise ValueError("data.sampler.hard_threshold must be below easy_threshold")
        if sum(self.pool_mix) <= 0 or min(self.pool_mix) < 0:
            raise ValueError("data.sampler.pool_mix needs shares >= 0 with a positive sum")
        return self


class DataConfig(ConfigModel):
    task: Literal["synth", "jsonl", "benchmark"] = "synth"
    """`synth`: generated DAG problems; `jsonl`: a JSONL/Parquet/HF-datasets file (train_file,
    fields); `benchmark`: a file of the shared benchmark data by name (data.benchmark)."""
    benchmark: str | None = None
    """With task=benchmark: gsm8k_train | gsm8k_test | math500 | math_test | aime24 | humaneval |
    countdown (reasonrl.data.benchmarks.BENCHMARKS), read from data.data_dir."""
    data_dir: str = "../shared/data"
    """Folder holding the benchmark files (task=benchmark); the file must exist when the run
    starts (checked before the model loads)."""
    ops: tuple[Annotated[int, Strict(), Field(ge=1, le=30)], ...] = Field((3, 4, 5), min_length=1)
    """Operation counts (difficulty) of the synthetic RL problems, each 1..30."""
    contexts: tuple[Literal["zoo", "school", "movie"], ...] = Field(("zoo",), min_length=1)
    """Synthetic story contexts (templates), cycled round-robin."""
    modes: tuple[Literal["forward", "reverse"], ...] = Field(("forward",), min_length=1)
    """Synthetic problem modes: forward (constants first) or reverse (question first)."""
    magnitude: Literal["small", "large"] = "small"
    """Size of the synthetic numbers: small (the paper's: constants 1-4, values <= 99) or large
    (the tool task: 3-digit constants, values <= 999,999, mostly products; docs/environments.md),
    for training and held-out problems alike."""
    seed: Seed = 0
    """Seed of the problem generator / shuffling (0 .. 2**32-1)."""
    train_file: str | None = None
    """JSONL (.jsonl[.gz]), Parquet or HF-datasets directory of training prompts (task=jsonl);
    must exist, be non-empty and its first row parse with data.fields (checked before the model
    loads)."""
    eval_file: str | None = None
    """Held-out prompts (task=jsonl or benchmark), read like train_file and checked like it;
    scored during training when trainer.eval_every is set (rl/evaluation.py)."""
    fields: dict[str, str] = Field(default_factory=dict)
    """Maps reasonrl names (prompt, answer, id) to the JSONL file's field names."""
    eval_ops: tuple[Annotated[int, Strict(), Field(ge=1, le=30)], ...] | None = None
    """Ops to evaluate on; None means `ops` plus one op below and above (derived once)."""
    max_prompt_tokens: PosInt | None = None
    """Longest training prompt in tokens (task=jsonl/benchmark: every row is measured when the
    run starts; task=synth: each generated problem); None = the model's context
    (max_position_embeddings) minus rollout.max_new_tokens, computed once the model is loaded.
    A longer prompt could not be completed within the context; see data.long_prompts."""
    long_prompts: Literal["skip", "error"] = "skip"
    """What a prompt longer than data.max_prompt_tokens does: `skip` drops it (one warning names
    the file and rows, `data/skipped_long_prompts` counts them); `error` refuses the run (exit 2)
    naming the first such row."""
    source: str | None = None
    """Import path `module.path:factory` of a custom training prompt source: `factory(cfg)`
    gets the whole RLConfig and returns an object with `next(k) -> list[Sample]`,
    `state_dict()` and `load_state_dict(state)` (plain values, saved in checkpoints). It
    replaces the prompts of data.task; data.task still chooses the held-out evaluation and the
    rewards it allows, and with data.task=jsonl data.train_file is then optional. Its prompts
    are not measured against data.max_prompt_tokens. None = the source of data.task."""
    template: str = "none"
    """How a prompt becomes the model's input (RL rollouts, held-out evaluation and the prompt
    length check alike, `reasonrl.data.templates.PromptFormat`): `none` = the prompt as is (base
    models, the synthetic task); `chat` = the tokenizer's chat template, the question as the user
    turn with the generation prompt appended (Instruct models); a name of
    `reasonrl.data.templates.TEMPLATES` (plain, boxed, qa, r1, code_completion); or a format
    string containing {question} ({prompt} is an alias) and optionally keys of the sample's
    meta, e.g. `Question: {question} Answer:`."""
    system_prompt: str | None = None
    """System turn before the question; only with data.template=chat."""
    instruction: str | None = None
    """Text appended to the question after a newline, before the template applies; `boxed` is
    short for "Please reason step by step, and put your final answer within \\boxed{}." (the
    Qwen2.5-Math instruction). None = nothing appended."""
    sampler: SamplerConfig = Field(default_factory=SamplerConfig)
    """How training prompts are chosen from the source: uniform, Kimi, curriculum, edge, DRIVE,
    difficulty pools (docs/curricula.md)."""

    @model_validator(mode="after")
    def _check_prompt_format(self) -> DataConfig:
        from reasonrl.config.prompt import check_prompt_keys

        check_prompt_keys("data", self.template, self.system_prompt)
        return self

    @field_validator("source")
    @classmethod
    def _check_source(cls, value: str | None) -> str | None:
        return None if value is None else import_path(value, "data.source")

    @model_validator(mode="after")
    def _check_files(self) -> DataConfig:
        if self.task == "jsonl" and not self.train_file and self.source is None:
            raise ValueError("data.task=jsonl needs data.train_file (or data.source)")
        if self.task == "benchmark" and not self.benchmark:
            raise ValueError("data.task=benchmark needs data.benchmark")
        if self.task == "synth" and (self.train_file or self.eval_file):
            raise ValueError(
                "data.train_file/eval_file are not read when data.task=synth (its held-out split "
                "is generated); use data.task=jsonl"
            )
        if self.task != "synth":  # eval_ops is derived from ops for every task: not checked
            refuse_ignored(
                self, "data", ("ops", "contexts", "modes", "magnitude"), "unless data.task=synth"
            )
        if self.task != "benchmark":
            refuse_ignored(self, "data", ("benchmark", "data_dir"), "unless data.task=benchmark")
        if self.task == "synth" or (self.task == "benchmark" and not self.eval_file):
            refuse_ignored(
                self,
                "data",
                ("fields",),
                "unless a file is read (data.train_file or data.eval_file)",
            )
        return self


class RolloutConfig(ConfigModel):
    n: Annotated[int, Strict(), Field(ge=2)] = 8
    """Group size G: completions per prompt (group-relative advantages need at least 2)."""
    prompts_per_step: PosInt = 16
    """Prompts B per optimizer step; a step trains on B*G sequences."""
    max_new_tokens: PosInt = 160
    """Longest completion; longer ones are truncated (finish_reason="length")."""
    temperature: Float = Field(1.0, gt=0)
    """Sampling temperature."""
    top_p: Float = Field(1.0, gt=0, le=1)
    """Nucleus sampling mass (1.0 = off)."""
    top_k: NonNegInt = 0
    """Top-k sampling (0 = off)."""
    engine: Literal["auto", "fused", "hf", "vllm"] = "auto"
    """Rollout engine (reasonrl.rollout.registry): `fused` = the fast CPU decoder for Llama-style
    models (qwen2, qwen3, llama, mistral; rollout/decoder.py); `hf` = any transformers causal LM
    through its own forward and KV cache, on any device; `vllm` (GPU only, the `vllm` extra);
    `auto` = fused on CPU where it supports the model, else hf. A `fused` choice the model does
    not support is refused before training starts, with the reason."""
    max_batch_size: PosInt = 256
    """Most sequences decoded at once by the engine."""
    vllm_gpu_memory: Float = Field(0.5, gt=0, le=1)
    """rollout.engine=vllm: the share of GPU memory vLLM may take (its weights and KV cache); the
    rest is the trainer's. vLLM sleeps (frees it) during each update and wakes for the rollout."""
    max_staleness: NonNegInt = 0
    """Asynchronous rollouts (docs/scaling.md): 0 = synchronous, today's loop exactly; K >= 1 = a
    rollout thread with its own engine (a copy of the policy, synced with a version number at
    every step) samples the groups of steps t+1..t+K while step t trains. Admission control: a
    sample never trains more than K weight versions after the weights that sampled it (the
    producer pauses; nothing is discarded). Sets algo.is_level=token unless given. Local
    engines only (not vllm); exact resume holds for K=0 only (in-flight groups are regenerated
    from the saved sampler state with the resumed weights)."""
    producer_threads: PosInt | None = None
    """max_staleness >= 1: torch threads of the rollout thread; the trainer keeps model.threads,
    else the remaining cores. None = half of the cores (at least 1)."""
    partial_token_budget: NonNegInt = 0
    """Kimi k1.5 partial rollouts (arXiv 2501.12599, Sec. 2.6): tokens each completion may
    generate per iteration (0 = off). An unfinished completion is carried to the next step and
    continued from prompt + its tokens with the new weights; each token keeps the log-prob of
    the weights that sampled it. A step trains on the groups whose G completions all finished."""
    partial_old_segments: Literal["mask", "is"] = "mask"
    """partial_token_budget > 0: tokens sampled by older weights than a completion's last
    segment are masked out of the loss (`mask`, Kimi) or kept and importance-corrected against
    their own sampler log-probs (`is`: sets algo.is_level=token unless given)."""


KL_COEF_MAX = 10.0
# Losses whose clip_low/clip_high are the epsilons of a trust region around ratio 1.
TRUST_REGION_LOSSES = ("ppo_clip", "gspo", "minirl")
# Settings only some variants read -> those variants (algos.advantages.ADVANTAGE_KWARGS,
# algos.policy_loss.LOSS_KWARGS and rl/advantage.py for the token-level estimators; a test
# checks these tables against them).
ADVANTAGE_READERS: dict[str, tuple[str, ...]] = {
    "std_scope": ("grpo",),
    "std_unbiased": ("grpo", "lite_ppo", "reinforce_pp_baseline", "reinforce_pp"),
    "adv_eps": ("grpo", "lite_ppo"),
    "gamma": ("reinforce_pp", "gae"),
    "lam": ("gae",),
    "passk_k": ("passk",),
}
LOSS_READERS: dict[str, tuple[str, ...]] = {
    "clip_low": ("ppo_clip", "gspo", "cispo", "minirl"),
    "clip_high": ("ppo_clip", "gspo", "cispo", "minirl"),
    "dual_clip": ("ppo_clip",),
    "tau": ("kimi_omd",),
}
# A value an estimator that ignores the key behaves as anyway (its preset may write it).
IMPLIED_BY_ADVANTAGE: dict[tuple[str, str], Any] = {
    ("std_scope", "dr_grpo"): "none",
    ("std_scope", "kimi"): "none",
    ("std_scope", "rloo"): "none",
    ("std_scope", "remax"): "none",
    ("std_scope", "lite_ppo"): "batch",
}


class AlgoConfig(ConfigModel):
    kind: Literal["pg", "es"] = "pg"
    """pg: policy-gradient RL (every other algo key); es: EGGROLL evolution strategies (arXiv
    2511.16652, the `es` section; docs/beyond-policy-gradient.md), which reads no other algo key."""
    preset: PresetName | None = None
    """Named bundle of the fields below (reasonrl.algos.presets); explicit keys override it."""
    advantage: Literal[
        "grpo", "dr_grpo", "lite_ppo", "rloo", "kimi", "reinforce_pp_baseline", "passk",
        "remax", "reinforce_pp", "gae",
    ] = "grpo"  # fmt: skip
    """Advantage estimator. Group estimators (reasonrl.algos.advantages.ADVANTAGES) score a
    (B, G) reward matrix; `remax` also samples one greedy completion per prompt as its baseline;
    `reinforce_pp` (discounted reward-to-go, batch-whitened) and `gae` (needs the `critic`
    section's value model) are token-level (reasonrl.algos.token_advantages)."""
    gamma: Float = Field(1.0, ge=0, le=1)
    """Discount of the token-level estimators (reinforce_pp, gae); 1.0 = LLM practice (verl)."""
    lam: Float = Field(1.0, ge=0, le=1)
    """GAE lambda (advantage=gae); verl's default 1.0 (Monte-Carlo advantage with a baseline)."""
    std_scope: Literal["group", "batch", "none"] = "group"
    """Where the reward std used for scaling is computed (none = Dr. GRPO); read by
    advantage=grpo only: another estimator accepts the default or the value it behaves as (none
    for dr_grpo, kimi, rloo, remax; batch for lite_ppo) and refuses the rest."""
    std_unbiased: Bool = True
    """Bessel-corrected std (torch.std default, as TRL and verl)."""
    adv_eps: Float = Field(1e-6, ge=0)
    """eps in (r - mean) / (std + eps)."""
    loss: Literal["ppo_clip", "gspo", "cispo", "kimi_omd", "reinforce", "minirl"] = "ppo_clip"
    """Policy loss (reasonrl.algos.policy_loss): `reinforce` is plain REINFORCE, `minirl` adds
    MiniRL's decoupled masking with clip_low/clip_high."""
    clip_low: Float = Field(0.2, gt=0, le=1)
    """Lower clip range: ratio >= 1 - clip_low. In (0, 1) for ppo_clip, gspo and minirl (the
    epsilon of a trust region around ratio 1; GSPO's are tiny, 3e-4); cispo also takes 1 (the IS
    weight has no lower bound, as MiniMax-M1 sets it). Read by those four losses only."""
    clip_high: Float = Field(0.2, gt=0)
    """Upper clip range: ratio <= 1 + clip_high (DAPO clip-higher: 0.28). In (0, 1) for
    ppo_clip, gspo and minirl; any positive value for cispo, whose clip only bounds a
    stop-gradient IS weight. Read by those four losses only."""
    dual_clip: Float | None = Field(None, gt=1)
    """Dual-clip constant c > 1 bounding the loss for negative advantages (None = off);
    loss=ppo_clip only."""
    agg: Literal[
        "token_mean", "token_sum", "seq_mean_token_mean", "seq_mean_token_sum",
        "seq_mean_token_sum_norm",
    ] = "token_mean"  # fmt: skip
    """How the (N, T) loss matrix is reduced to a scalar."""
    agg_const: Float | None = Field(None, gt=0)
    """Normaliser of seq_mean_token_sum_norm (read by it only); None means rollout.max_new_tokens
    (derived)."""
    kl_coef: Float = Field(0.0, ge=0, le=KL_COEF_MAX)
    """Weight of the KL penalty to the reference model (0 = no reference model). At most 10:
    papers use 0.001-0.2, and against rewards in [0, 1] a weight above 10 only freezes the policy
    (a value like 1e12 is a typo); the adaptive controller (kl_target) may still raise it."""
    kl_estimator: Literal["k1", "k2", "k3", "abs", "k1+", "k3+"] = "k3"
    """KL estimator (Schulman's k1/k2/k3; `k1+`/`k3+`: value of k1/k3, gradient of k2)."""
    kl_in: Literal["loss", "reward"] = "loss"
    """Where the KL acts: a loss term (GRPO) or folded into token rewards before the advantage
    (PPO-RLHF, REINFORCE++); `reward` needs a token-level advantage (reinforce_pp, gae)."""
    kl_target: Float | None = Field(None, gt=0)
    """Adaptive KL controller target (Ziegler et al. 2019): kl_coef is the initial value and is
    adapted each step towards this KL; None = fixed kl_coef."""
    kl_horizon: PosInt = 10000
    """Adaptive KL controller horizon (in samples), as verl's kl_ctrl.horizon."""
    entropy_coef: Float = Field(0.0, ge=0, le=1)
    """Entropy bonus weight, in [0, 1] (0 = off; a negative weight, entropy minimisation, is not
    this key's job; above 1 the bonus outweighs any reward in [0, 1])."""
    dynamic_sampling: Bool = False
    """DAPO: drop groups whose rewards are all equal and refill the batch."""
    overlong_buffer: PosInt | None = None
    """DAPO soft overlong penalty: length of the buffer before max_new_tokens (None = off)."""
    overlong_factor: Float = Field(1.0, ge=0)
    """Largest overlong penalty."""
    overlong_filter: Bool = False
    """Mask the loss of truncated completions."""
    length_penalty_coef: Float = Field(0.0, ge=0)
    """Kimi k1.5 length reward weight (0 = off): adds coef * len_reward to each score, where
    len_reward in [-0.5, 0.5] favours short completions within a group (wrong ones never gain)."""
    length_penalty_start: NonNegInt = 0
    """Kimi's warm-up: the length reward applies from this RL step on (0 = from the start);
    the paper trains without it first, then with a constant weight for the rest."""
    is_level: Literal["none", "token", "sequence"] = "none"
    """Rollout-vs-trainer importance correction level (arXiv 2512.01374); default none, and
    token with rollout.engine=vllm unless set (its log-probs differ from the trainer's)."""
    is_mode: Literal["truncate", "mask"] = "truncate"
    """Truncate large IS weights at is_high, or mask those tokens/sequences."""
    is_high: Float = Field(2.0, ge=1)
    """IS weight threshold, >= 1 (below 1 even on-policy tokens, weight 1, would be cut)."""
    ppo_epochs: PosInt = 1
    """Passes over each batch of rollouts."""
    micro_batch_size: PosInt = 32
    """Sequences per forward/backward micro-batch (gradient accumulation)."""
    shared_prefix: Literal["auto", "on", "off"] = "off"
    """Training forward that runs each distinct prompt of a micro-batch once and attends its
    completions to that prompt's keys/values (reasonrl.rl.shared_prefix; same log-probs and
    gradients as the padded rows). auto = on when the model supports it (a transformers causal
    LM with a KV cache, no sliding window) and rollout.n > 1; on = refuse an unsupported model.
    Default off until a quiet-machine measurement shows it faster (benchmarks/vs_trl/README.md)."""
    old_logprobs: Literal["recompute", "rollout"] = "recompute"
    """PPO ratio denominator: recompute with the trainer, or reuse the sampler's log-probs."""
    tau: Float = Field(0.1, gt=0)
    """Kimi OMD regulariser strength (loss=kimi_omd only)."""
    passk_k: PosInt = 4
    """k of the pass@k advantage (advantage=passk only; arXiv 2508.10751); must be <= rollout.n."""
    drirl: Bool = False
    """DR-IRL's GRPO-S (arXiv 2503.18991; reasonrl.rl.drirl): multiply each completion's group
    advantage by alpha = hardness (1 - fraction of its steps matching a gold step; 1 off the
    synthetic task) x responsiveness of its difficulty bucket (data.sampler.difficulty_key;
    gap = 1 - reward, r(demonstration) = 1). Group estimators only."""
    drirl_tau: Float = Field(1.0, ge=0)
    """drirl: outlier threshold on a reward gap's squared deviation from its bucket's mean."""

    @model_validator(mode="before")
    @classmethod
    def _expand_preset(cls, data: Any) -> Any:
        """preset bundle < explicit keys; an unknown name is left for the `preset` Literal to
        report (with the nearest valid name)."""
        if isinstance(data, dict) and isinstance(data.get("preset"), str):
            from reasonrl.algos.presets import PRESETS

            return {**PRESETS.get(data["preset"], {}), **data}
        return data

    @model_validator(mode="after")
    def _check(self) -> AlgoConfig:
        token_level = self.advantage in ("reinforce_pp", "gae")
        if self.drirl:
            from reasonrl.algos.advantages import ADVANTAGES

            if self.advantage not in ADVANTAGES:
                raise ValueError(
                    f"algo.drirl scales a group advantage; algo.advantage={self.advantage} is "
                    f"not a group estimator (choose from {', '.join(ADVANTAGES)})"
                )
        if self.kl_in == "reward" and not token_level:
            raise ValueError(
                f"algo.kl_in=reward needs a token-level advantage (reinforce_pp, gae), got "
                f"algo.advantage={self.advantage}"
            )
        if self.kl_target is not None and self.kl_coef == 0:
            raise ValueError("algo.kl_target (adaptive KL) needs an initial algo.kl_coef > 0")
        if self.old_logprobs == "rollout" and self.ppo_epochs != 1:
            raise ValueError(
                f"algo.old_logprobs=rollout needs algo.ppo_epochs=1 (got {self.ppo_epochs}): "
                "after the first epoch the sampler's log-probs are stale"
            )
        if self.loss in TRUST_REGION_LOSSES:
            for key in ("clip_low", "clip_high"):
                value = getattr(self, key)
                if value >= 1:
                    raise ValueError(
                        f"algo.{key}={value:g} must be < 1 with algo.loss={self.loss}: it is the "
                        "epsilon of the ratio band [1 - clip_low, 1 + clip_high] around 1 "
                        "(typical 0.2, DAPO clip_high 0.28, GSPO 3e-4/4e-4)"
                    )
        self._refuse_ignored()
        return self

    def _refuse_ignored(self) -> None:
        """Settings that the chosen estimator, loss or aggregation never reads are refused, so
        that e.g. std_scope=batch with dr_grpo (which never divides by a std) cannot pass as an
        experiment. Settings of a feature that is switched off (kl_* with kl_coef=0, is_* with
        is_level=none, overlong_factor without overlong_buffer) are accepted: one override turns
        the feature off."""
        for key, readers in ADVANTAGE_READERS.items():
            implied = IMPLIED_BY_ADVANTAGE.get((key, self.advantage))
            if self.advantage not in readers and getattr(self, key) != implied:
                refuse_ignored(
                    self,
                    "algo",
                    (key,),
                    f"by algo.advantage={self.advantage} (read by {', '.join(readers)} only)",
                )
        for key, readers in LOSS_READERS.items():
            if self.loss not in readers:
                refuse_ignored(
                    self,
                    "algo",
                    (key,),
                    f"by algo.loss={self.loss} (read by {', '.join(readers)} only)",
                )
        if self.agg != "seq_mean_token_sum_norm":
            refuse_ignored(
                self,
                "algo",
                ("agg_const",),
                f"by algo.agg={self.agg} (read by seq_mean_token_sum_norm only)",
            )


class ESConfig(ConfigModel):
    """EGGROLL evolution strategies (arXiv 2511.16652; read only when algo.kind=es)."""

    population: PosInt = Field(32, multiple_of=2)
    """N, perturbed models per generation; even: members 2p and 2p+1 are an antithetic pair."""
    rank: PosInt = 1
    """r of each weight's perturbation E = A B^T / sqrt(r) (the paper's default: 1)."""
    sigma: Float = Field(0.02, gt=0)
    """Noise scale sigma (the paper's LLM default is 1e-3, for 0.1B-14B models; the 1.7M-weight
    synth-micro needs larger perturbations to change a greedy answer: recipes/es_synth.yaml)."""
    lr: Float = Field(1.0, gt=0)
    """Step size of W += lr sqrt(N) (1/N) sum f_i E_i (the paper's lr_scale, default 1.0);
    optim.warmup_steps / optim.schedule scale it, the other optim keys are unused."""
    shaping: Literal["zscore", "centered_rank"] = "zscore"
    """Fitness shaping: zscore (the paper's code) or centred ranks in [-0.5, 0.5] (arXiv
    1703.03864; ties share their average rank)."""
    noise: Literal["low_rank", "full"] = "low_rank"
    """low_rank (EGGROLL) or full (full-rank Gaussian ES, the memory baseline)."""
    apply: Literal["auto", "hook", "inplace"] = "auto"
    """How a member's perturbation reaches the engine: hook (forward hooks add x B A^T sigma /
    sqrt(r) to nn.Linear outputs, no weight copy; needs rollout.engine=hf), inplace (W += E and
    an exact restore from one base copy; any engine), auto (hook with the hf engine)."""
    greedy: Bool = True
    """Greedy decoding for every member (the paper's temperature 0); false samples at
    rollout.temperature with one seed shared by all members."""
    samples: PosInt = 1
    """Completions per prompt per member (more than 1 needs greedy=false)."""

    @model_validator(mode="after")
    def _check(self) -> ESConfig:
        if self.greedy and self.samples > 1:
            raise ValueError(f"es.samples={self.samples} needs es.greedy=false (greedy repeats)")
        return self


class CriticConfig(ConfigModel):
    """The learned value model of PPO (read only when algo.advantage=gae)."""

    model: str | None = None
    """Where the critic starts: None = a copy of the policy checkpoint (model.path) with a fresh
    scalar value head; or an HF directory."""
    lr: Float = Field(1e-4, gt=0)
    """Critic AdamW learning rate (its own optimizer)."""
    weight_decay: Float = Field(0.0, ge=0)
    """Critic AdamW weight decay."""
    grad_clip: Float | None = Field(1.0, gt=0)
    """Critic gradient-norm clip (None = off)."""
    value_clip: Float | None = Field(0.5, gt=0)
    """PPO value clipping range around the rollout-time values (verl cliprange_value 0.5);
    None = unclipped squared error."""
    mini_batches: PosInt = 1
    """Critic optimizer steps per pass over a batch (the rows split into this many parts, as
    verl's critic ppo_mini_batch_size does); the passes are algo.ppo_epochs."""
    warmup_steps: NonNegInt = 0
    """Steps during which only the critic learns (the policy is not updated; verl critic_warmup)."""


class RewardComponent(ConfigModel):
    """One term of `reward.kind: combine`."""

    kind: str
    """A built-in reward name or module.path:function (as reward.kind; not `combine`)."""
    weight: Float = 1.0
    """Its weight in the sum (renormalised over the components that apply to a sample)."""

    @field_validator("kind")
    @classmethod
    def _check_kind(cls, value: str) -> str:
        if value == "combine":
            raise ValueError("reward.components[].kind cannot itself be combine")
        return _reward_kind(value, "reward.components[].kind")


class RewardConfig(ConfigModel):
    kind: str = "synth_strict"
    """Reward function: synth_* (need data.task=synth), one of reasonrl.rewards.REWARDS (math,
    countdown, code_tests, code_tests_all), `combine` (the weighted sum of reward.components),
    or an import path `module.path:function` naming any `(sample, completion) -> float |
    RewardResult | None` callable (imported when the run starts; `reasonrl train` refuses a path
    that does not import, exit 2). A reward passed from Python (`train(reward_fn=f)`) is recorded
    here as f's import path, or as `python:module.qualname` when f has none (that config.yaml
    then needs the same reward_fn again); see docs/python-api.md."""
    components: tuple[RewardComponent, ...] = ()
    """With kind=combine: a list of {kind, weight}; the reward is sum_k w_k * r_k over the
    components that apply (return a score), rescaled by sum of all weights / sum of applicable
    ones (reasonrl.rewards.combine_rewards); each component's mean is logged as
    reward/components/<kind>. Weights must not sum to zero."""
    alpha: Float = Field(0.2, ge=0, le=1)
    """Mixing weight of synth_process and synth_strict: alpha * outcome + (1 - alpha) * process
    (read by those two kinds only)."""
    dense: Literal["none", "raw", "clip", "delta", "clip_delta"] = "none"
    """Dense per-step rewards (arXiv 2410.15115; data.task=synth, token-level advantage): each
    Define step's correctness (0/1) as is (raw: farmable), Clipped (min(r - dense_eta, 0)),
    Delta'd (r_k - r_{k+1}) or both, times dense_coef, on the token where the step ends, added
    to the outcome reward (docs/beyond-policy-gradient.md)."""
    dense_coef: Float = Field(0.1, ge=0)
    """Weight of the refined step rewards (reward.dense != none)."""
    dense_eta: Float = 1.0
    """Clip's threshold eta: a step scoring below it gets r - eta < 0 (clip, clip_delta)."""
    repexp_coef: Float = Field(0.0, ge=0)
    """RepExp exploration bonus weight beta (arXiv 2510.11686; 0 = off, 0.01 in the paper's
    code): shaped score += beta * h^T (lam I + sum_group h h^T)^{-1} h of the policy's own
    response representation h, added before the advantage; raw reward metrics are unchanged,
    the mean bonus is logged as reward/repexp_mean (docs/beyond-policy-gradient.md)."""
    repexp_lambda: Float = Field(0.01, gt=0)
    """RepExp ridge regulariser lambda of Sigma = lambda I + sum h h^T (paper code: 0.01)."""
    repexp_dim: NonNegInt = 32
    """RepExp: sparse random projection of the hidden states to this many dims, redrawn each
    step (paper: 32 for MATH/GSM8K RL); 0 = the raw hidden size."""
    repexp_pool: Literal["mean", "last"] = "mean"
    """RepExp representation: mean of the last-layer hidden states over the response tokens
    (the paper's; it beat the last token by >2x) or the last response token's."""
    repexp_sqrt: Bool = False
    """RepExp: sqrt(h^T Sigma^-1 h) (the classic elliptical bonus) instead of the paper's
    leverage score h^T Sigma^-1 h."""
    repexp_leave_one_out: Bool = False
    """RepExp: Sigma without the rollout's own term (the paper includes it)."""
    repexp_gate: Bool = True
    """RepExp: no bonus in a group none of whose rollouts is correct (as the paper)."""
    learned_model: str | None = None
    """kind=learned: the reward-model directory (`reasonrl rm`'s final/); kind=judge: the judge
    LM (an HF directory or builtin:NAME). Required by those two kinds (docs/preferences.md)."""
    learned_normalize: Bool = True
    """kind=learned: normalise RM scores by their running mean and std."""
    learned_combine: Literal["none", "weighted", "gated"] = "none"
    """kind=learned: none (the RM score), weighted (w * RM + (1 - w) * verifiable, w =
    learned_weight) or gated (sigmoid(RM) where the verifiable reward says correct, else 0)."""
    learned_weight: Float = Field(0.5, ge=0, le=1)
    """kind=learned, learned_combine=weighted: the RM's weight w."""
    learned_verifiable: str = "synth_strict"
    """kind=learned: the verifiable reward combined with the RM (a reward.kind name or import
    path; read when learned_combine is not none)."""
    judge_tokens: tuple[str, str] = (" YES", " NO")
    """kind=judge: the two answer tokens whose logits give P(response A is better than B)."""
    timeout_s: Float | None = Field(30.0, gt=0)
    """Seconds one reward call may take: a call still running then is abandoned and scored as a
    failed sample (`reward/failed/timeout`), so a verifier that hangs costs one sample, not the
    run. Each call runs in a daemon thread (Python cannot kill a thread: a stuck call keeps its
    thread until the process exits). None = no limit (the call runs in the trainer's thread and a
    hang hangs the run). Raise it for slow verifiers; math and code rewards also bound their
    worker processes themselves."""

    @field_validator("kind")
    @classmethod
    def _check_kind(cls, value: str) -> str:
        return _reward_kind(value, "reward.kind")

    @model_validator(mode="after")
    def _check_components(self) -> RewardConfig:
        if self.kind == "combine":
            if not self.components:
                raise ValueError(
                    "reward.kind=combine needs reward.components: [{kind, weight}, ...]"
                )
            if sum(c.weight for c in self.components) == 0:
                raise ValueError("reward.components: the weights sum to zero")
        elif self.components:
            raise ValueError(
                f"reward.components is read only with reward.kind=combine (got "
                f"reward.kind={self.kind}); set reward.kind=combine or remove it"
            )
        return self


class EnvConfig(ConfigModel):
    """The environment episodes run in (`reasonrl.envs`, docs/environments.md). The default,
    single_turn, is one completion scored by reward.kind: the loop as it always was."""

    kind: Literal["single_turn", "tool"] = "single_turn"
    """`single_turn`: one completion per episode; `tool`: the policy may call env.tool with
    `<code>...</code>` (the turn stops at `</code>`), sees `<output>...</output>` and goes on;
    reward.kind scores the whole transcript. Observation tokens are masked out of the loss."""
    tool: str = "python"
    """env.kind=tool: `python` (the sandboxed stateful interpreter), `calculator`, or an import
    path module.path:factory of a zero-argument callable returning a Tool."""
    max_turns: PosInt = 4
    """env.kind=tool: most policy turns per episode (a call in the last one ends it,
    finish reason max_turns)."""
    max_tool_calls: PosInt = 3
    """env.kind=tool: most tool calls per episode (one more ends it, finish max_tool_calls)."""
    max_total_tokens: PosInt = 512
    """env.kind=tool: most response tokens per episode, sampled and observation tokens together
    (finish max_tokens); rollout.max_new_tokens caps each turn."""
    workers: PosInt = 1
    """env.kind=tool: env steps (tool calls) run at once in threads after each turn."""
    failed_call_penalty: Float = Field(0.0, ge=0)
    """env.kind=tool: subtracted from an episode's reward per failed tool call (ok=False)."""
    turn_credit: bool = False
    """env.kind=tool: Demystifying's reward (arXiv 2510.11701): +1 if correct, else
    min(-0.6, -1 + 0.1 x tool calls) (algos/tool_reward.tcr_reward); replaces the task score."""
    tool_bonus: tuple[Float, Float, Float] | None = None
    """env.kind=tool: AgentMath's gated tool reward (alpha, beta, R_max): a correct episode gets
    + min(R_max, alpha + beta x tool calls), a wrong one nothing (arXiv 2512.20745)."""

    @field_validator("tool")
    @classmethod
    def _check_tool(cls, value: str) -> str:
        if ":" in value:
            return import_path(value, "env.tool")
        if value not in BUILTIN_TOOLS:
            raise ValueError(f"env.tool={value!r}: expected one of {', '.join(BUILTIN_TOOLS)} "
                             "or an import path module.path:factory")  # fmt: skip
        return value


# An Adam moment decay: beta >= 1 never forgets (or diverges), beta < 0 is meaningless.
Beta = Annotated[Float, Field(ge=0, lt=1)]


class OptimConfig(ConfigModel):
    lr: Float = Field(1e-4, gt=0)
    """AdamW learning rate."""
    weight_decay: Float = Field(0.0, ge=0)
    """AdamW weight decay."""
    betas: tuple[Beta, Beta] = (0.9, 0.999)
    """AdamW betas, each in [0, 1)."""
    grad_clip: Float | None = Field(1.0, gt=0)
    """Global gradient-norm clip (None = off)."""
    warmup_steps: NonNegInt = 0
    """Linear warm-up steps."""
    schedule: Literal["constant", "cosine"] = "constant"
    """Learning-rate schedule after warm-up."""


# The trackers of trainer.report_to (reasonrl.runtime.trackers.REPORT_TO).
TrackerName = Literal["jsonl", "tensorboard", "wandb", "trackio", "mlflow"]


class RayConfig(ConfigModel):
    """trainer.backend=ray (docs/scaling.md, "Ray"; `reasonrl.distributed_ray`)."""

    address: str | None = None
    """Ray cluster to join (`ray.init(address=...)`, e.g. "auto" or "ray://host:10001"); None = a
    local cluster on 127.0.0.1 started for the run and shut down at its end (no dashboard)."""
    num_cpus: PosInt | None = 2
    """address=None: CPUs the local cluster offers (each worker reserves one); None = all."""
    rollout_workers: PosInt = 2
    """Rollout actors, each owning an engine and a copy of the policy; a step's prompts are
    split across them by whole groups (identical prompts stay on one actor)."""
    reward_workers: NonNegInt = 1
    """Reward actors that grade completions off the trainer's process (sandboxed code, math);
    0 = grade in the driver as the local backend does."""
    worker_threads: PosInt = 1
    """Torch intra-op threads of each rollout actor."""


class TrainerConfig(ConfigModel):
    steps: PosInt = 100
    """Optimizer steps to run."""
    backend: Literal["local", "ray"] = "local"
    """local = the single-process loop (torchrun for data parallel); ray = Ray actors for the
    rollout and reward workers, the trainer in the driver (trainer.ray; needs the `ray` extra:
    pip install 'reasonrl[ray]'). Same seed, max_staleness=0: the local backend's metrics."""
    ray: RayConfig = Field(default_factory=RayConfig)
    """trainer.backend=ray settings."""
    parallel: Literal["ddp", "fsdp2"] = "ddp"
    """Data parallel under torchrun (docs/scaling.md): ddp = every rank holds the whole policy,
    gradients all-reduced after the micro-batches; fsdp2 = the trainer's copy is sharded
    (`torch.distributed.fsdp.fully_shard`: parameters, gradients and AdamW moments 1/M per
    rank), the rollout engine reads a full copy refreshed after each step. Both give the
    single-process step; one process ignores it."""
    seed: Seed = 0
    """Seed of torch / numpy / random for the run (0 .. 2**32-1, numpy's range)."""
    out_dir: str = "runs"
    """Parent directory of run directories."""
    run_name: str | None = Field(None, pattern=r"^[A-Za-z0-9._-]+$")
    """Run directory name under out_dir; None means the recipe file's stem (derived)."""
    log_every: PosInt = 1
    """Console log period in steps (metrics.jsonl always gets every step)."""
    save_every: PosInt = 50
    """Checkpoint period in steps (the last step is always saved)."""
    keep_last: PosInt = 2
    """Checkpoints kept on disk."""
    sample_every: PosInt = 10
    """Period (steps) of writing rollouts to samples.jsonl."""
    eval_every: PosInt | None = None
    """Held-out evaluation period in steps: with N, evaluate at step 0, every N steps and at the
    end (eval/* in metrics.jsonl, eval_stepN.json); None = no evaluation during training."""
    time_budget_s: Float | None = Field(None, gt=0)
    """Stop (after saving) once this much wall time has passed."""
    max_nonfinite_steps: PosInt = 3
    """Steps in a row whose update was skipped for a NaN/inf loss, gradient or learning rate
    after which the run stops (exit 1, naming the likely cause); each skip leaves the weights
    and optimizer state untouched."""
    report_to: tuple[TrackerName, ...] | None = None
    """Where metrics and sample tables go besides the console: metrics.jsonl/samples.jsonl are
    always written (`jsonl` is added when missing), each other tracker needs its extra (`pip
    install 'reasonrl[wandb]'`; checked before the model loads, exit 2) and logs in its
    offline/local mode as docs/usage.md#trackers says; None = jsonl plus TensorBoard when the
    `tb` extra is installed."""

    @field_validator("report_to")
    @classmethod
    def _jsonl_first(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        return tuple(dict.fromkeys(("jsonl", *value)))  # the run's own record; no duplicates


class EvalConfig(ConfigModel):
    problems_per_op: PosInt = 100
    """Held-out problems per op."""
    samples: PosInt = 8
    """Samples per problem (k of pass@k)."""
    temperature: Float = Field(1.0, ge=0)
    """Evaluation sampling temperature; 0 = greedy (argmax): one completion per problem, so
    pass@1 only (eval.samples is then not used)."""
    max_new_tokens: PosInt | None = None
    """None means rollout.max_new_tokens (derived)."""


def _neighbour_ops(ops: Sequence[int]) -> tuple[int, ...]:
    # Evaluating one op below and above the trained range shows over-fitting to a step count
    # (an early run of RL on op 4 alone made op 5 collapse).
    wanted = set(ops) | {min(ops) - 1, max(ops) + 1}
    return tuple(sorted(op for op in wanted if 1 <= op <= 30))


class RLConfig(ConfigModel):
    """Everything one RL run needs; see docs/usage.md for each section."""

    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    algo: AlgoConfig = Field(default_factory=AlgoConfig)
    reward: RewardConfig = Field(default_factory=RewardConfig)
    env: EnvConfig = Field(default_factory=EnvConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    critic: CriticConfig = Field(default_factory=CriticConfig)
    es: ESConfig = Field(default_factory=ESConfig)

    @property
    def run_dir(self) -> Path:
        """`trainer.out_dir / trainer.run_name` (run_name is always set after loading)."""
        return Path(self.trainer.out_dir) / (self.trainer.run_name or "run")

    def reward_problem(self) -> str | None:
        """Why the configured reward cannot score this data (the default reward.kind, made for
        data.task=synth, with another task), or None."""
        kind = self.reward.kind
        if kind.startswith("synth_") and self.data.task != "synth":
            return (
                f"reward.kind={kind} (the default) needs data.task=synth; set reward.kind to a "
                "reward for this data (math, module.path:function, ...) or, from Python, pass "
                "train(reward_fn=...)"
            )
        return None

    @classmethod
    def prepare_raw(cls, raw: dict[str, Any], source: Path) -> dict[str, Any]:
        raw = dict(raw)
        trainer = raw.get("trainer", {})
        if isinstance(trainer, dict) and trainer.get("run_name") is None:
            raw["trainer"] = {**trainer, "run_name": source.stem}
        return raw

    def _check_es(self) -> None:
        """es.* only with algo.kind=es; with it, no key that only policy gradients read."""
        if self.algo.kind != "es":
            refuse_ignored(self.es, "es", ESConfig.model_fields, "unless algo.kind=es")
            return
        pg_keys = [k for k in AlgoConfig.model_fields if k != "kind"]
        refuse_ignored(self.algo, "algo", pg_keys, "by algo.kind=es (the es section is read)")
        if self.model.lora is not None:
            raise ValueError("algo.kind=es perturbs full weights: remove model.lora")
        if self.es.apply == "hook" and self.rollout.engine != "hf":
            raise ValueError("es.apply=hook needs rollout.engine=hf (hooks on nn.Linear)")

    @model_validator(mode="after")
    def _derive(self) -> RLConfig:
        """Cross-section checks, then the derived values, computed here and nowhere else."""
        self._check_es()
        seqs = self.rollout.prompts_per_step * self.rollout.n
        mbs = self.algo.micro_batch_size
        if seqs % mbs and self.algo.kind == "pg":  # ES has no micro-batches
            raise ValueError(
                f"rollout.prompts_per_step*rollout.n = {self.rollout.prompts_per_step}*"
                f"{self.rollout.n} = {seqs} is not divisible by algo.micro_batch_size={mbs}"
            )
        buf = self.algo.overlong_buffer
        # L_max of the shaping: one completion, or a tool episode's whole response side
        tool = self.env.kind == "tool"
        limit = self.env.max_total_tokens if tool else self.rollout.max_new_tokens
        what = "env.max_total_tokens" if tool else "rollout.max_new_tokens"
        if buf is not None and buf >= limit:
            hint = (
                f" (algo.preset={self.algo.preset} sets it; override it)"
                if self.algo.preset
                else ""
            )
            raise ValueError(
                f"algo.overlong_buffer={buf} must be smaller than {what}={limit}{hint}"
            )
        if self.algo.advantage == "passk" and self.algo.passk_k > self.rollout.n:
            raise ValueError(
                f"algo.passk_k={self.algo.passk_k} must be <= rollout.n={self.rollout.n}"
            )
        if self.reward.dense != "none" and (
            self.algo.advantage not in ("reinforce_pp", "gae") or self.data.task != "synth"
        ):
            raise ValueError(
                f"reward.dense={self.reward.dense} needs a token-level algo.advantage "
                f"(reinforce_pp, gae) and data.task=synth, got algo.advantage="
                f"{self.algo.advantage}, data.task={self.data.task}"
            )
        named = [
            (f"reward.components[{i}].kind", c.kind) for i, c in enumerate(self.reward.components)
        ]
        # A default reward.kind is refused only where the reward is built or checked
        # (`reward_problem`): a Python run may pass its own reward_fn instead.
        if "kind" in self.reward.model_fields_set:
            named.insert(0, ("reward.kind", self.reward.kind))
        for key, kind in named:
            if kind.startswith("synth_") and self.data.task != "synth":
                raise ValueError(f"{key}={kind} needs data.task=synth")
        kinds = [self.reward.kind, *(c.kind for c in self.reward.components)]
        if self.rollout.engine == "vllm" and not self.model.device.startswith("cuda"):
            raise ValueError("rollout.engine=vllm needs model.device=cuda")
        if self.env.kind == "single_turn":
            refuse_ignored(self.env, "env", [k for k in EnvConfig.model_fields if k != "kind"],
                           "by env.kind=single_turn (read by env.kind=tool)")  # fmt: skip
        elif self.reward.dense != "none":
            raise ValueError(f"reward.dense={self.reward.dense} needs env.kind=single_turn")
        self._check_async()
        if self.algo.advantage != "gae":
            refuse_ignored(
                self.critic,
                "critic",
                CriticConfig.model_fields,
                f"unless algo.advantage=gae (got algo.advantage={self.algo.advantage})",
            )
        if not {"synth_process", "synth_strict"} & set(kinds):
            refuse_ignored(
                self.reward,
                "reward",
                ("alpha",),
                f"by reward.kind={self.reward.kind} (read by synth_process and synth_strict only)",
            )
        # Sections are frozen; replacing them on the instance being built is the one sanctioned
        # place where derived values are written (copies, so callers' objects stay untouched).
        derived = {
            "data": {"eval_ops": self.data.eval_ops or _neighbour_ops(self.data.ops)},
            "eval": {"max_new_tokens": self.eval.max_new_tokens or self.rollout.max_new_tokens},
        }
        algo: dict[str, Any] = {}
        if self.algo.agg == "seq_mean_token_sum_norm" and self.algo.agg_const is None:
            algo["agg_const"] = float(self.rollout.max_new_tokens)
        if self.rollout.engine == "vllm" and "is_level" not in self.algo.model_fields_set:
            algo["is_level"] = "token"  # vLLM's kernels give other log-probs than the trainer's
        ro = self.rollout
        partial_is = ro.partial_token_budget > 0 and ro.partial_old_segments == "is"
        stale = ro.max_staleness > 0 or partial_is
        if stale and "is_level" not in self.algo.model_fields_set:
            algo["is_level"] = "token"  # samples of older weights: pi_old / mu_old corrects them
        if algo:
            derived["algo"] = algo
        for name, update in derived.items():
            object.__setattr__(self, name, getattr(self, name).model_copy(update=update))
        return self

    def _check_async(self) -> None:
        """Asynchronous and partial rollouts (rl/async_rollouts.py): what they do not combine
        with."""
        ro, a = self.rollout, self.algo
        for key, on in (
            ("max_staleness", ro.max_staleness),
            ("partial_token_budget", ro.partial_token_budget),
        ):
            if not on:
                continue
            if ro.engine == "vllm":
                raise ValueError(f"rollout.{key}={on} needs a local engine, not vllm")
            if a.advantage == "remax":
                raise ValueError(
                    f"rollout.{key}={on} cannot be combined with algo.advantage="
                    "remax (its greedy baseline samples with the trainer's weights)"
                )
        if ro.partial_token_budget and a.dynamic_sampling:
            raise ValueError(
                "rollout.partial_token_budget cannot be combined with "
                "algo.dynamic_sampling (a step trains on the groups that finished)"
            )
