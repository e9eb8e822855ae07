"""PPO's learned critic: a causal-LM trunk with a scalar value head, and its own optimizer.

Alignment: V_t, the value of response token t, is the value of the state *before* y_t is
emitted, read from the hidden state at column P-1+t (P = `batch.prompt_len`): the same column
whose logits score y_t in `rl.logprobs.response_logprobs`. V_0 therefore sees only the prompt.
This is verl's `values[:, -response_length - 1 : -1]` (verl/workers/critic/dp_critic.py) and is
what GAE needs: delta_t = r_t + gamma V_{t+1} - V_t (arXiv 1506.02438).

Design decisions:
- A separate model, not a value head on the policy's trunk: initialised from `critic.model` or,
  when that is None, from the policy checkpoint `model.path` (verl and OpenRLHF both train a
  separate critic). The critic's squared-error gradients then never interfere with the policy's,
  it has its own learning rate (typically 10x the policy's), and a critic warm-up trains it
  alone without touching the policy.
- The head is `nn.Linear(hidden, 1)` with weight ~ N(0, 1/(hidden+1)) (OpenRLHF's value head
  init) and bias 0, drawn from a private generator so that building a critic consumes no global
  RNG. The values start near 0 with nonzero gradients into the trunk; a zero weight would also
  start at 0 but would give the trunk no gradient on the first step.
- Master weights stay fp32; the trunk runs under `runtime.precision.autocast(model.dtype)` and
  the head is evaluated in fp32 (one H x 1 product: costs nothing and keeps the regression
  target's precision).
- Eval mode for `values`, train mode for `update` (verl's critic); Qwen2-style models have no
  dropout, so both give the same numbers there.
- The loss is the clipped value loss of `algos.value` reduced by token-mean with ONE normaliser,
  the valid-token count of the whole batch (`algos.aggregate.global_normalizer`), so the
  micro-batch gradients add up to the full-batch gradient whatever `micro_batch_size` is; one
  optimizer step per epoch, like the policy update (`rl.update.policy_update`).
- The same non-finite guard as the policy (`rl.update.guarded_step`): a mini-batch step whose
  loss, gradient norm or learning rate is not finite is not taken (`critic/skipped_nonfinite`).
"""

from __future__ import annotations

import itertools
from typing import Any

import torch
from torch import Tensor, nn

from reasonrl.algos.aggregate import aggregate, global_normalizer, masked_mean
from reasonrl.algos.value import explained_variance, value_loss
from reasonrl.config import RLConfig
from reasonrl.models.io import load_policy
from reasonrl.rl.batching import micro_batches, trim
from reasonrl.rl.update import guarded_step
from reasonrl.runtime.metrics import reduce_metrics
from reasonrl.runtime.precision import autocast
from reasonrl.types import Batch


def decoder_of(model: nn.Module) -> nn.Module:
    """The transformer trunk of a Hugging Face causal LM (its hidden states, no LM head).

    `get_decoder()` where the model has one (Qwen2, Llama, Mistral, ...: `model.model`), else
    `base_model` (the attribute named by `base_model_prefix`).
    """
    get_decoder = getattr(model, "get_decoder", None)
    trunk = get_decoder() if callable(get_decoder) else None
    if trunk is None:
        trunk = getattr(model, "base_model", None)
    if not isinstance(trunk, nn.Module):
        raise TypeError(f"cannot find the decoder trunk of {type(model).__name__}")
    return trunk


def hidden_size_of(model: nn.Module) -> int:
    """`config.hidden_size` of an HF model (or of its text config for multimodal ones)."""
    config: Any = getattr(model, "config", None)
    size = getattr(config, "hidden_size", None)
    if size is None and hasattr(config, "get_text_config"):
        size = getattr(config.get_text_config(), "hidden_size", None)
    if size is None:
        raise TypeError(f"{type(model).__name__}.config has no hidden_size")
    return int(size)


class ValueModel(nn.Module):
    """A decoder trunk plus a scalar head: one value per position.

    Args:
        trunk: module called as `trunk(input_ids=, attention_mask=, position_ids=,
            use_cache=False)` returning `.last_hidden_state` (N, L, H), e.g. `Qwen2Model`.
        hidden_size: H.
        init_seed: seed of the head's initialisation (private generator).
    """

    def __init__(self, trunk: nn.Module, hidden_size: int, *, init_seed: int = 0) -> None:
        super().__init__()
        self.trunk = trunk
        self.head = nn.Linear(hidden_size, 1)
        gen = torch.Generator().manual_seed(init_seed)
        with torch.no_grad():
            w = torch.randn(self.head.weight.shape, generator=gen) / (hidden_size + 1)
            self.head.weight.copy_(w)
            self.head.bias.zero_()

    @classmethod
    def from_causal_lm(cls, model: nn.Module, *, init_seed: int = 0) -> ValueModel:
        """Wrap the trunk of an HF causal LM (its LM head is dropped)."""
        head_device = next(model.parameters()).device
        return cls(decoder_of(model), hidden_size_of(model), init_seed=init_seed).to(head_device)

    def forward(self, input_ids: Tensor, attention_mask: Tensor, position_ids: Tensor) -> Tensor:
        """(N, L) float32 values: entry [i, j] is the value after reading tokens 0..j of row i."""
        out = self.trunk(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=False,
        )
        hidden = out.last_hidden_state
        with torch.autocast(device_type=hidden.device.type, enabled=False):
            return self.head(hidden.float()).squeeze(-1)


def response_values(model: ValueModel, batch: Batch) -> Tensor:
    """(N, T) float32 values of the response positions, aligned with `response_logprobs`.

    V[:, t] = model(...)[:, P-1+t]: the value of the state before response token t (module
    docstring). Not masked: multiply by `batch.response_mask` where padding matters.
    """
    p = batch.prompt_len
    t = batch.response_mask.shape[1]
    values = model(batch.input_ids, batch.attention_mask, batch.position_ids)
    return values[:, p - 1 : p - 1 + t]


class Critic:
    """The value model of PPO with its own AdamW (betas: torch's defaults, as verl's critic).

    Args:
        model: the ValueModel (moved to `device`).
        lr, weight_decay: AdamW settings (`critic.lr`, `critic.weight_decay`).
        grad_clip: max gradient norm (None = no clipping; the norm is still reported).
        value_clip: clip range c of the value loss (None = plain squared error).
        micro_batch_size: sequences per forward/backward.
        dtype: compute dtype for autocast ("auto", "bf16", "fp32").
        device: where the model runs; batches are moved there a micro-batch at a time.
    """

    def __init__(
        self,
        model: ValueModel,
        *,
        lr: float,
        weight_decay: float = 0.0,
        grad_clip: float | None = 1.0,
        value_clip: float | None = 0.5,
        micro_batch_size: int = 32,
        dtype: str = "auto",
        device: str | torch.device = "cpu",
    ) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=lr, weight_decay=weight_decay
        )
        self.grad_clip = grad_clip
        self.value_clip = value_clip
        self.micro_batch_size = micro_batch_size
        self.dtype = dtype

    @classmethod
    def from_config(cls, cfg: RLConfig, device: str | torch.device | None = None) -> Critic:
        """The critic of a run: trunk from `critic.model` (None: the policy's `model.path`),
        fp32 master weights, `critic.*` optimizer settings, `algo.micro_batch_size`,
        `model.dtype`; the head is seeded with `trainer.seed`."""
        device = cfg.model.device if device is None else device
        c = cfg.critic
        lm, _tokenizer = load_policy(c.model or cfg.model.path, dtype="fp32", device=device)
        model = ValueModel.from_causal_lm(lm, init_seed=cfg.trainer.seed)
        return cls(
            model,
            lr=c.lr,
            weight_decay=c.weight_decay,
            grad_clip=c.grad_clip,
            value_clip=c.value_clip,
            micro_batch_size=cfg.algo.micro_batch_size,
            dtype=cfg.model.dtype,
            device=device,
        )

    def _forward(self, mb: Batch) -> Tensor:
        with autocast(self.dtype, self.device):
            return response_values(self.model, mb)

    @torch.no_grad()
    def values(self, batch: Batch) -> Tensor:
        """(N, T) float32 values of every response token (0 on masked tokens), no gradient.

        Micro-batched by length and trimmed like the policy's forward; the result lives on the
        batch's device.
        """
        self.model.eval()
        mask = batch.response_mask
        out = torch.zeros(mask.shape, dtype=torch.float32, device=mask.device)
        every = torch.arange(mask.shape[0])
        for idx in micro_batches(batch, every, self.micro_batch_size):
            mb = trim(batch.select(idx)).to(self.device)
            v = self._forward(mb) * mb.response_mask
            out[idx, : v.shape[1]] = v.to(out.device)
        return out

    def update(
        self,
        batch: Batch,
        returns: Tensor,
        old_values: Tensor,
        *,
        epochs: int = 1,
        mini_batches: int = 1,
    ) -> dict[str, float]:
        """`epochs` x `mini_batches` optimizer steps of the clipped value loss.

        Each epoch splits the rows with a valid token into `mini_batches` interleaved parts
        (rows i, i+k, i+2k, ...; k = mini_batches, as verl's ppo_mini_batch_size splits a batch)
        and, for each part, accumulates token-mean gradients over micro-batches with the part's
        valid token count as the one normaliser, clips the gradient norm and takes one AdamW
        step. Gradients are left in `.grad` after the last step (as `policy_update` does).

        Args:
            batch: the rollout batch (its `response_mask` selects the tokens that count).
            returns: (N, T) regression targets (GAE returns).
            old_values: (N, T) values at rollout time (`values(batch)`; the clip anchor).
            epochs: passes over the batch (`algo.ppo_epochs`).
            mini_batches: optimizer steps per pass (`critic.mini_batches`); more steps fit a
                fresh value head faster at the same compute.

        Returns:
            critic/value_loss, critic/vf_clipfrac, critic/value_error (mean |V - R|),
            critic/values_mean: token-weighted means over every micro-batch of every epoch;
            critic/grad_norm: mean pre-clip norm over the optimizer steps;
            critic/returns_mean: mean R;
            critic/explained_variance: of `old_values` against `returns` over the batch (how
            well the critic predicted these returns before this update; verl's
            critic/vf_explained_var);
            critic/skipped_nonfinite (the fraction of optimizer steps not taken because their
            loss, gradient or learning rate was not finite) and critic/nonfinite_{cause}, only
            when a step was skipped.
        """
        mask = batch.response_mask
        for name, given in (("returns", returns), ("old_values", old_values)):
            if given.shape != mask.shape:
                raise ValueError(
                    f"{name} has shape {tuple(given.shape)}, expected {tuple(mask.shape)}"
                )
        if epochs < 1 or mini_batches < 1:
            raise ValueError(f"epochs and mini_batches must be >= 1, got {epochs}, {mini_batches}")
        rows = torch.arange(mask.shape[0])[(mask > 0).any(dim=1).cpu()]
        parts = [rows[i::mini_batches] for i in range(min(mini_batches, len(rows)))]
        out = {
            "critic/returns_mean": float(masked_mean(returns.float(), mask)),
            "critic/explained_variance": float(explained_variance(old_values, returns, mask)),
        }
        if len(rows) == 0:  # no valid token: an AdamW step on zero gradient would still move
            return out | {"critic/skipped_step": 1.0}
        self.model.train()
        rows_metrics: list[dict[str, Tensor]] = []
        weights: list[float] = []
        grad_norms: list[Tensor] = []
        causes: list[str] = []
        max_norm = float("inf") if self.grad_clip is None else self.grad_clip
        for _, part in itertools.product(range(epochs), parts):
            self.optimizer.zero_grad(set_to_none=True)
            loss_sum = torch.zeros((), device=self.device)
            norm = global_normalizer(mask[part], "token_mean").to(self.device)
            for idx in micro_batches(batch, part, self.micro_batch_size):
                mb = trim(batch.select(idx)).to(self.device)
                t = mb.response_mask.shape[1]
                target = returns[idx, :t].to(self.device, torch.float32)
                anchor = old_values[idx, :t].to(self.device, torch.float32)
                v = self._forward(mb)
                loss_mat, metrics = value_loss(
                    v, anchor, target, mb.response_mask, clip_range=self.value_clip
                )
                loss = aggregate(loss_mat, mb.response_mask, "token_mean", normalizer=norm)
                loss.backward()
                loss_sum = loss_sum + loss.detach().float()
                rows_metrics.append(metrics)
                weights.append(float(mb.response_mask.sum()))
            grad_norms.append(torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm))
            cause = guarded_step(self.optimizer, self.model.parameters(), loss_sum, grad_norms[-1])
            if cause is not None:
                causes.append(cause)
        self.model.eval()
        reduced = reduce_metrics(rows_metrics, weights)
        out |= {f"critic/{k}": v for k, v in reduced.items()}
        out["critic/grad_norm"] = float(torch.stack(grad_norms).float().mean())
        if causes:
            out["critic/skipped_nonfinite"] = len(causes) / len(grad_norms)
            out |= {f"critic/nonfinite_{cause}": 1.0 for cause in causes}
        return out

    def state_dict(self) -> dict[str, Any]:
        """Model and optimizer state (plain values and tensors: `torch.load(weights_only=True)`
        reads it back)."""
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict()` exactly (the next update is bit-identical)."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
