"""RepExp in the RL step (arXiv 2510.11686): the policy's representations -> a reward bonus.

    shaped (B, G) += reward.repexp_coef * group_elliptical_bonus(hbar)   (algos.repexp)

hbar is the policy's last-layer hidden state (before the LM head) over the response, pooled by
`reward.repexp_pool` (mean over the response tokens, the paper's choice, or the last token),
sparse-randomly projected to `reward.repexp_dim` dims with a projection redrawn every step (as
the official code does). The bonus goes into the shaped scores only, so dynamic sampling and the
raw reward metrics still see what the verifier said; its mean (before the coefficient) is
logged as `reward/repexp_mean`.

Cost: the hidden states are not a by-product of anything the step already computes before the
advantages (the rollout engine returns tokens and log-probs only; the update's forward comes
after the advantages), so this is ONE extra no-grad forward of the policy over the batch,
micro-batched like the log-prob forwards and timed as `perf/time_repexp`. The paper takes its
features from a frozen copy of the base model (one extra forward too, ~1.37x step time);
current-policy features are what it calls the free variant. With repexp_coef = 0 nothing runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from reasonrl.algos.repexp import group_elliptical_bonus, sparse_projection
from reasonrl.rl.batching import micro_batches, trim
from reasonrl.runtime.precision import autocast
from reasonrl.types import Batch

if TYPE_CHECKING:
    from reasonrl.rl.rollouts import Groups
    from reasonrl.rl.state import TrainState
    from reasonrl.runtime.timing import Timer


@torch.no_grad()
def response_representations(
    model: torch.nn.Module,
    batch: Batch,
    *,
    pool: str = "mean",
    micro_batch_size: int = 32,
    dtype: str = "auto",
) -> torch.Tensor:
    """(N, d) float32 last-layer hidden states of each row's response, pooled.

    The hidden state at the position of response token y_t is h(x, y_1..y_t); `mean` averages
    it over the row's real response tokens (attention mask, so tokens kept out of the loss
    still count), `last` takes the last one. A row with no response token gets zeros.
    """
    n = batch.input_ids.shape[0]
    device = next(model.parameters()).device
    out: torch.Tensor | None = None
    for idx in micro_batches(batch, torch.arange(n), micro_batch_size):
        mb = trim(batch.select(idx)).to(device)
        p = mb.prompt_len
        with autocast(dtype, device):
            res = model(
                input_ids=mb.input_ids,
                attention_mask=mb.attention_mask,
                position_ids=mb.position_ids,
                use_cache=False,
                output_hidden_states=True,
            )
        hidden = res.hidden_states[-1][:, p:, :].float()  # (b, T, d): after the final norm
        real = mb.attention_mask[:, p:].to(hidden.dtype)
        if pool == "mean":
            rep = (hidden * real[..., None]).sum(1) / real.sum(1, keepdim=True).clamp(min=1)
        elif pool == "last":
            last = (real.sum(1).long() - 1).clamp(min=0)
            rep = hidden[torch.arange(len(idx)), last] * (real.sum(1, keepdim=True) > 0)
        else:
            raise ValueError(f"response_representations: pool must be mean or last, got {pool}")
        if out is None:
            out = torch.zeros(n, rep.shape[-1])
        out[idx] = rep.to(out.device)
    assert out is not None
    return out


def repexp_scores(
    state: TrainState, groups: Groups, batch: Batch, scores: torch.Tensor, timer: Timer
) -> tuple[torch.Tensor, dict[str, float]]:
    """(B, G) scores + reward.repexp_coef * bonus, and {"reward/repexp_mean": mean bonus}.

    With repexp_coef = 0 the scores come back as the same tensor and nothing is computed (the
    run is bit-identical to one without RepExp). Rows whose reward did not apply get no bonus.
    """
    rc = state.cfg.reward
    if rc.repexp_coef == 0:
        return scores, {}
    with timer("repexp"):
        phi = response_representations(
            state.model, batch, pool=rc.repexp_pool,
            micro_batch_size=state.cfg.algo.micro_batch_size, dtype=state.cfg.model.dtype,
        ).double()  # fmt: skip
        if rc.repexp_dim and rc.repexp_dim < phi.shape[-1]:  # redrawn every step, seeded
            gen = torch.Generator().manual_seed(state.cfg.trainer.seed * 1_000_003 + state.step)
            phi = phi @ sparse_projection(phi.shape[-1], rc.repexp_dim, generator=gen)
        b, g = scores.shape
        bonus = group_elliptical_bonus(
            phi.reshape(b, g, -1), groups.correct() if rc.repexp_gate else None,
            lam=rc.repexp_lambda, leave_one_out=rc.repexp_leave_one_out, sqrt=rc.repexp_sqrt,
        )  # fmt: skip
        bonus = bonus * groups.applicable().to(bonus.dtype)
    shaped = scores + rc.repexp_coef * bonus.to(scores.dtype)
    return shaped, {"reward/repexp_mean": float(bonus.mean())}
