"""Schemas of the preference runs: `reasonrl rm RECIPE` (RMConfig) and `reasonrl dpo RECIPE`
(DPOConfig). Both share the model, data, optim and train sections; each has its own `loss`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from reasonrl.config.base import Bool, ConfigModel, Float, NonNegInt, PosInt, Seed


class PrefModelConfig(ConfigModel):
    init: str = "builtin:synth-micro"
    """The model trained: an HF causal-LM directory or builtin:NAME (a reward model gets a fresh
    scalar head on it; DPO trains it as the policy and keeps a frozen copy as the reference)."""
    device: str = Field("cpu", pattern=r"^(cpu|cuda(:\d+)?|mps)$")
    """torch device for training and sampling."""
    pooling: Literal["last", "mean"] = "last"
    """Reward model only: the hidden state the head reads, the last non-padding token's or the
    mean over all tokens (`reasonrl.models.reward_model`)."""
    freeze_layers: NonNegInt = 0
    """Reward model only: freeze the token embeddings and the lowest this many transformer
    layers (0: train everything); the head and the upper layers still learn."""


class PrefDataConfig(ConfigModel):
    train_file: str | None = None
    """Pairwise JSONL: one {prompt, chosen, rejected} row per line (names set by the *_key
    settings); this or synth_ops is needed."""
    eval_file: str | None = None
    """Held-out pairwise JSONL in the same format (default with train_file: none, so no
    held-out accuracy; with synth_ops: pairs built on held-out problems)."""
    prompt_key: str = "prompt"
    """Field of a row holding the prompt text (an empty string when a row lacks it)."""
    chosen_key: str = "chosen"
    """Field of a row holding the preferred response."""
    rejected_key: str = "rejected"
    """Field of a row holding the other response."""
    synth_ops: list[PosInt] | None = None
    """Build pairs from the sampler's own completions of synthetic problems with these op counts,
    ranked by the strict process-verified reward (instead of reading train_file)."""
    synth_problems_per_op: PosInt = 40
    """Training problems per op whose completions are paired."""
    synth_eval_problems_per_op: PosInt = 20
    """Held-out problems per op (disjoint split) for the evaluation pairs."""
    samples: PosInt = 8
    """Completions sampled per problem to build pairs from."""
    temperature: Float = Field(1.0, gt=0)
    """Sampling temperature of those completions."""
    max_new_tokens: PosInt = 128
    """Cap of a sampled completion."""
    pair_builder: Literal["strict", "long2short", "none"] = "strict"
    """`strict`: a strict-correct completion vs a strict-wrong one of the same prompt;
    `none`: no sampled pairs for training (demonstrations / hard negatives only; the held-out
    pairs are then built with `strict`);
    `long2short` (Kimi k1.5, arXiv 2501.12599 §2.4): the shortest strict-correct one vs wrong
    ones and correct ones longer than long2short_ratio times it."""
    long2short_ratio: Float = Field(1.5, ge=1)
    """long2short: a correct completion is rejected when longer than this times the shortest."""
    max_pairs_per_prompt: PosInt = 4
    """At most this many pairs per problem (so easy problems do not dominate)."""
    sampler: str | None = None
    """Model that samples the completions (default: model.init, i.e. the base model's own)."""
    seed: Seed = 0
    """Seed of problem generation, sampling and pairing."""
    max_len: PosInt = 512
    """Pairs whose prompt + response exceeds this many tokens are dropped."""
    demonstrations: Literal["off", "wrong", "all"] = "off"
    """With synth_ops: add (gold completion, sample) pairs of every training problem, at most
    max_pairs_per_prompt each (`reasonrl.rm.negatives`): `wrong` pairs gold with the
    strict-wrong samples only; `all` with every sample, no verifier needed (the adversarial
    IRL discriminator's data: demonstrations vs the policy)."""
    hard_negatives: NonNegInt = 0
    """With synth_ops: add this many (gold, gold with one step corrupted) pairs per training
    problem; each corruption (a quantity's name, a step's letter or value) is checked
    strict-wrong (`reasonrl.rm.negatives`)."""
    hard_negative_problems_per_op: NonNegInt = 0
    """Extra training problems per op (not sampled, so free) that get only hard negatives."""
    val_fraction: Float = Field(0.0, ge=0, lt=1)
    """Reward model only: this fraction of the TRAINING problems is held back; their strict
    pairs form a validation set, evaluated every train.eval_every steps, and the checkpoint
    with the best validation accuracy becomes final/ (early stopping). The held-out test pairs
    never choose anything."""

    @model_validator(mode="after")
    def _check(self) -> PrefDataConfig:
        if not self.train_file and not self.synth_ops:
            raise ValueError("set data.train_file (pairwise JSONL) or data.synth_ops")
        if self.train_file and self.synth_ops:
            raise ValueError("set only one of data.train_file and data.synth_ops")
        extras = (self.demonstrations != "off" or self.hard_negatives
                  or self.hard_negative_problems_per_op)  # fmt: skip
        if extras and not self.synth_ops:
            raise ValueError("data.demonstrations/hard_negatives need data.synth_ops")
        if self.hard_negative_problems_per_op and not self.hard_negatives:
            raise ValueError("data.hard_negative_problems_per_op needs data.hard_negatives > 0")
        return self


class PrefOptimConfig(ConfigModel):
    lr: Float = Field(1e-4, gt=0)
    """Peak AdamW learning rate (linear warm-up, then cosine to min_lr_ratio * lr)."""
    min_lr_ratio: Float = Field(0.1, ge=0, le=1)
    """Floor of the cosine schedule as a fraction of lr."""
    warmup_steps: NonNegInt = 10
    """Linear warm-up steps."""
    weight_decay: Float = Field(0.0, ge=0)
    """AdamW weight decay."""
    grad_clip: Float = Field(1.0, gt=0)
    """Global gradient-norm clip."""


class PrefTrainConfig(ConfigModel):
    batch_size: PosInt = 16
    """Pairs per optimiser step."""
    epochs: PosInt = 2
    """Passes over the training pairs; steps = epochs * ceil(pairs / batch_size)."""
    threads: PosInt = 2
    """torch CPU threads."""
    seed: Seed = 0
    """Seed of initialisation (the head) and pair order."""
    log_every: PosInt = 10
    """Log a metrics line every this many steps."""
    eval_every: NonNegInt = 0
    """Held-out evaluation every this many steps (0: only at the end)."""
    save_every: NonNegInt = 0
    """Checkpoint (runtime.checkpoint, resumable) every this many steps (0: only the final
    model)."""
    keep_last: PosInt = 1
    """Checkpoints kept."""
    resume: Bool = False
    """Continue from the newest valid checkpoint in out_dir (same config): weights, optimizer,
    RNG and position in the pair order; the pairs are rebuilt (same seed, same pairs)."""
    out_dir: str = "runs/rm"
    """Run directory: config.yaml, pairs.jsonl, metrics.jsonl, checkpoints/, final/."""


class RMLossConfig(ConfigModel):
    margin: Float = Field(0.0, ge=0)
    """Bradley–Terry margin m: loss -log sigma(r_w - r_l - m) (Llama 2, arXiv 2307.09288)."""


class DPOLossConfig(ConfigModel):
    kind: Literal["dpo", "ipo", "cdpo"] = "dpo"
    """dpo (arXiv 2305.18290), ipo (arXiv 2310.12036), cdpo (DPO with label smoothing)."""
    beta: Float = Field(0.1, gt=0)
    """DPO's beta (the KL strength); IPO's tau."""
    label_smoothing: Float = Field(0.0, ge=0, lt=0.5)
    """cdpo only: probability that a preference label is flipped."""

    @model_validator(mode="after")
    def _check(self) -> DPOLossConfig:
        if self.label_smoothing and self.kind != "cdpo":
            raise ValueError("loss.label_smoothing is read only with loss.kind=cdpo")
        return self


class PrefEvalConfig(ConfigModel):
    problems_per_op: NonNegInt = 20
    """DPO: held-out synthetic problems per op (of data.synth_ops) for strict pass@1 before and
    after training (0: off)."""
    samples: PosInt = 4
    """Completions per problem for the sampled strict pass@1."""
    temperature: Float = Field(1.0, gt=0)
    """Sampling temperature of the evaluation."""


class RMConfig(ConfigModel):
    """A reward-model run: Bradley–Terry on (chosen, rejected) pairs; held-out pairwise accuracy
    and calibration (ECE)."""

    model: PrefModelConfig = PrefModelConfig()
    data: PrefDataConfig = PrefDataConfig(synth_ops=[2, 3])
    optim: PrefOptimConfig = PrefOptimConfig()
    train: PrefTrainConfig = PrefTrainConfig()
    loss: RMLossConfig = RMLossConfig()


class DPOConfig(ConfigModel):
    """A DPO-family run with a frozen reference on pairs (self-generated or from a file)."""

    model: PrefModelConfig = PrefModelConfig()
    data: PrefDataConfig = PrefDataConfig(synth_ops=[2, 3])
    optim: PrefOptimConfig = PrefOptimConfig(lr=1e-5)
    train: PrefTrainConfig = PrefTrainConfig(out_dir="runs/dpo")
    loss: DPOLossConfig = DPOLossConfig()
    eval: PrefEvalConfig = PrefEvalConfig()

    @model_validator(mode="after")
    def _check(self) -> DPOConfig:
        if self.model.pooling != "last":
            raise ValueError("model.pooling is read only by reasonrl rm (a reward model)")
        if self.model.freeze_layers or self.data.val_fraction:
            raise ValueError(
                "model.freeze_layers and data.val_fraction are read only by "
                "reasonrl rm (a reward model)"
            )
        return self


__all__ = ["DPOConfig", "DPOLossConfig", "PrefDataConfig", "RMConfig", "RMLossConfig"]


class IRLConfig(ConfigModel):
    """IRL from demonstrations (`reasonrl irl RECIPE`, reasonrl.cli.irl): rounds of (train the
    reward model on demonstrations vs the current policy's samples, then rl_steps RL steps with
    it as the reward); the IRL survey's adversarial / max-entropy loop (arXiv 2507.13158)."""

    rm_recipe: str = "recipes/rm_synth.yaml"
    """The reward-model recipe of every round (RMConfig)."""
    rm_overrides: list[str] = Field(default_factory=list)
    """Dotted overrides of rm_recipe (the driver sets train.out_dir, data.sampler, model.init)."""
    rl_recipe: str = "recipes/quickstart.yaml"
    """The RL recipe of every round (RLConfig); its reward becomes reward.kind=learned."""
    rl_overrides: list[str] = Field(default_factory=list)
    """Dotted overrides of rl_recipe (the driver sets model.path, reward.*, trainer.steps,
    trainer.out_dir, trainer.run_name)."""
    rounds: PosInt = 2
    """Alternations of RM training and RL."""
    rl_steps: PosInt = 10
    """RL steps per round."""
    continue_rm: Bool = True
    """Round r > 0 starts the reward model from round r - 1's (else from rm_recipe's
    model.init, a fresh head)."""
    eval_problems_per_op: NonNegInt = 20
    """Held-out problems per RL op for strict pass@1 of the base and of each round's policy
    (rl_recipe's eval.samples at its temperature; 0: off)."""
    out_dir: str = "runs/irl"
    """Run directory: round{r}/rm, round{r}/rl, irl.json."""


__all__ += ["IRLConfig"]
