"""The SFT run's schema: model, data, optim and train sections (`reasonrl sft RECIPE`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from reasonrl.config.base import ConfigModel, Float, NonNegInt, PosInt, Seed, refuse_ignored

Beta = Annotated[Float, Field(ge=0, lt=1)]


class SFTModelConfig(ConfigModel):
    init: str = "micro"
    """A size of `models.factory.MODEL_SIZES` (fresh weights), an HF dir, or builtin:NAME; a
    directory must exist (checked before anything is built)."""
    tokenizer: str | None = None
    """`synth` (the synthetic task's word-level tokenizer) or a directory; default: the model's own
    tokenizer for a checkpoint, `synth` for a fresh model. Only with a fresh model size."""
    device: str = Field("cpu", pattern=r"^(cpu|cuda(:\d+)?|mps)$")
    """torch device for training (checked before anything is built); batches are moved to it."""
    tool_tokens: bool = False
    """Append the synth tokenizer's tool tags (`<code>`, `<output>`, ...) and grow the model's
    embeddings before training (`tasks.synth.add_tool_tokens`), so a base such as
    builtin:synth-micro can learn tool calls; the saved model keeps them (recipes/agent_prime)."""


class SFTDataConfig(ConfigModel):
    train_file: str | None = None
    """JSONL with `prompt`, `completion` and optional `weight` / `repeat` per row; must exist,
    be non-empty and parse (checked before the model is built). This or synth_ops is needed."""
    eval_file: str | None = None
    """Held-out JSONL for the eval loss (default: generated when synth_ops is set); checked like
    train_file."""
    synth_ops: list[PosInt] | None = None
    """Generate synthetic problems with these op counts instead of reading train_file."""
    synth_per_op: PosInt = 1000
    synth_eval_per_op: PosInt = 32
    synth_contexts: tuple[Literal["zoo", "school", "movie"], ...] = Field(("zoo",), min_length=1)
    """Context keys of reasonrl.tasks.synth, cycled round-robin."""
    synth_modes: tuple[Literal["forward", "reverse"], ...] = Field(("forward",), min_length=1)
    seed: Seed = 0
    max_len: PosInt = 512
    """Longer rows are dropped (never truncated: a cut completion teaches a wrong ending)."""
    template: str = "none"
    """How a row's prompt becomes the model's input, as in the RL config's data.template (one
    implementation, `reasonrl.data.templates.PromptFormat`, so SFT trains on the prefix RL and
    evaluation will see): `none` (the prompt as is), `chat` (the tokenizer's chat template), a
    name of `TEMPLATES`, or a format string containing {question} ({prompt} is an alias) and
    optionally other fields of the row."""
    system_prompt: str | None = None
    """System turn before the question; only with data.template=chat."""
    instruction: str | None = None
    """Text appended to the prompt after a newline before the template applies; `boxed` = the
    Qwen2.5-Math step-by-step \\boxed{} instruction. None = nothing appended."""

    @model_validator(mode="after")
    def _check_prompt_format(self) -> SFTDataConfig:
        from reasonrl.config.prompt import check_prompt_keys

        check_prompt_keys("data", self.template, self.system_prompt)
        return self


class SFTOptimConfig(ConfigModel):
    lr: Float = Field(1e-3, gt=0)
    min_lr_ratio: Float = Field(0.1, ge=0, le=1)
    """Floor of the cosine schedule as a fraction of lr, in [0, 1]."""
    warmup_steps: NonNegInt = 100
    weight_decay: Float = Field(0.1, ge=0)
    beta1: Beta = 0.9
    """AdamW beta1, in [0, 1)."""
    beta2: Beta = 0.95
    """AdamW beta2, in [0, 1)."""
    grad_clip: Float = Field(1.0, gt=0)


class SFTTrainConfig(ConfigModel):
    batch_size: PosInt = 32
    """Sequences per micro-batch."""
    grad_accum: PosInt = 1
    max_steps: PosInt = 1000
    """Optimiser steps; the cosine schedule spans them."""
    time_budget_min: Float | None = Field(None, gt=0)
    """Stop (and save) after this many minutes; the schedule then follows elapsed time when that is
    further along than the step count, so the run is annealed when it stops."""
    dtype: Literal["auto", "bf16", "fp32"] = "auto"
    """Autocast dtype of the forward pass (master weights stay fp32). `auto` = bf16 only where it is
    fast (native bf16 CPU or CUDA): on AVX2-only CPUs emulated bf16 is ~30x SLOWER than fp32."""
    threads: PosInt = 2
    seed: Seed = 0
    log_every: PosInt = 50
    eval_every: PosInt = 500
    eval_strict_per_op: NonNegInt = 0
    """Greedy strict pass@1 on this many held-out synthetic problems per op per eval (0: off)."""
    eval_max_new_tokens: PosInt = 256
    save_every: NonNegInt = 0
    """Save a checkpoint every this many steps (0: only the final model)."""
    out_dir: str = "runs/sft"


class SFTConfig(ConfigModel):
    """A supervised training run: model, data, optimiser, loop."""

    model: SFTModelConfig = SFTModelConfig()
    data: SFTDataConfig = SFTDataConfig()
    optim: SFTOptimConfig = SFTOptimConfig()
    train: SFTTrainConfig = SFTTrainConfig()

    @model_validator(mode="after")
    def _check(self) -> SFTConfig:
        if not self.data.train_file and not self.data.synth_ops:
            raise ValueError(
                "SFT needs data: set data.train_file (a JSONL of prompt/completion rows) or "
                "data.synth_ops (op counts of generated synthetic problems)"
            )
        if self.data.synth_ops:
            refuse_ignored(
                self.data,
                "data",
                ("train_file",),
                "when data.synth_ops is set (the rows are generated)",
            )
        else:
            refuse_ignored(
                self.data,
                "data",
                ("synth_eval_per_op", "synth_per_op", "synth_contexts", "synth_modes"),
                "unless data.synth_ops is set",
            )
        return self
