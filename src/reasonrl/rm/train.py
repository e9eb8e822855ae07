"""`reasonrl rm RECIPE`: train a scalar reward model with the Bradley–Terry loss.

Pairs come from a pairwise JSONL (`data.train_file`) or from the base model's own samples of
synthetic problems ranked by the strict reward (`data.synth_ops`). Evaluation on held-out pairs:
pairwise accuracy (r_w > r_l) and ECE of P(chosen > rejected) = sigma(r_w - r_l)
(`algos.preference`). Writes config.yaml, pairs_*.jsonl, metrics.jsonl, checkpoints/ and
`final/` (`models.reward_model.save_reward_model`), and summary.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from reasonrl.algos.preference import (
    bradley_terry_loss,
    expected_calibration_error,
    pairwise_accuracy,
)
from reasonrl.config.rm import RMConfig
from reasonrl.models.reward_model import (
    RewardModel,
    load_reward_model,
    pad_right,
    save_reward_model,
)
from reasonrl.rm.loop import build_pairs, make_optimizer, start_run, train_loop

Encoded = tuple[list[int], list[int], list[int]]


def pair_scores(
    rm: RewardModel, pairs: list[Encoded], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(r_w, r_l), each (N,): the 2N sequences prompt + response scored in one forward."""
    seqs = [p + c for p, c, _ in pairs] + [p + r for p, _, r in pairs]
    device = next(rm.parameters()).device
    ids, mask = pad_right(seqs, pad_id)
    scores = rm(ids.to(device), mask.to(device))
    return scores[: len(pairs)], scores[len(pairs) :]


@torch.no_grad()
def evaluate_pairs(
    rm: RewardModel, pairs: list[Encoded], pad_id: int, *, batch_size: int = 32
) -> dict[str, float]:
    """Held-out `pair_accuracy`, `ece` and mean `margin` (r_w - r_l); empty without pairs."""
    if not pairs:
        return {}
    rm.eval()
    rw, rl = [], []
    for i in range(0, len(pairs), batch_size):
        a, b = pair_scores(rm, pairs[i : i + batch_size], pad_id)
        rw.append(a.float().cpu())
        rl.append(b.float().cpu())
    w, l_ = torch.cat(rw), torch.cat(rl)
    return {"pair_accuracy": pairwise_accuracy(w, l_),
            "ece": expected_calibration_error(torch.sigmoid(w - l_)),
            "margin": float((w - l_).mean()), "pairs": float(len(pairs))}  # fmt: skip


def freeze_lower(rm: RewardModel, layers: int) -> int:
    """Freeze the token embeddings and the lowest `layers` decoder layers (`lm.base_model`'s
    `embed_tokens` and `layers`, the HF decoder layout); returns the parameters left trainable."""
    if layers:
        body = rm.lm.base_model
        blocks = getattr(body, "layers", None)
        if blocks is None or layers > len(blocks):
            raise ValueError(f"model.freeze_layers={layers}: the model has "
                             f"{0 if blocks is None else len(blocks)} decoder layers")  # fmt: skip
        frozen = [body.get_input_embeddings(), *list(blocks)[:layers]]
        for module in frozen:
            for p in module.parameters():
                p.requires_grad_(False)
    return sum(p.numel() for p in rm.parameters() if p.requires_grad)


def run_rm(cfg: RMConfig, *, cache: dict | None = None) -> Path:
    """Train per `cfg`; returns the `final/` reward-model directory. `cache`: see
    `rm.loop.build_pairs` (ablations reuse one sampler's labelled samples)."""
    out = start_run(cfg)
    rm, tokenizer = load_reward_model(cfg.model.init, device=cfg.model.device,
                                      pooling=cfg.model.pooling)  # fmt: skip
    sampler = rm.lm
    if cfg.data.sampler:
        from reasonrl.models.io import load_policy

        sampler, _ = load_policy(cfg.data.sampler, device=cfg.model.device)
    sets = build_pairs(cfg, tokenizer, sampler, cache=cache)
    trainable = freeze_lower(rm, cfg.model.freeze_layers)
    print("[rm] pairs: " + " ".join(f"{k} {v:g}" for k, v in sets.stats.items()), flush=True)
    pad_id = tokenizer.pad_token_id
    margin = cfg.loss.margin

    def step_fn(index: list[int]) -> tuple[torch.Tensor, dict[str, float]]:
        batch = [sets.train[i] for i in index]
        rw, rl = pair_scores(rm, batch, pad_id)
        loss = bradley_terry_loss(rw, rl, margin=margin).mean()
        return loss, {"acc": pairwise_accuracy(rw.detach(), rl.detach())}

    before = evaluate_pairs(rm, sets.eval, pad_id)
    optimizer = make_optimizer([p for p in rm.parameters() if p.requires_grad], cfg)
    best: dict = {}  # early stopping on the validation pairs (never on the held-out test)

    calls = [0]

    def eval_fn() -> dict[str, float]:
        calls[0] += 1
        got = evaluate_pairs(rm, sets.eval, pad_id)
        if sets.val:
            v = evaluate_pairs(rm, sets.val, pad_id)
            got |= {f"val_{k}": x for k, x in v.items() if k != "pairs"}
            if v["pair_accuracy"] > best.get("val_pair_accuracy", -1.0):
                best.update(
                    val_pair_accuracy=v["pair_accuracy"],
                    eval=dict(got, evals=calls[0]),
                    state={k: t.detach().clone() for k, t in rm.state_dict().items()},
                )
        return got

    steps, after = train_loop(cfg, rm, optimizer, len(sets.train), step_fn, eval_fn,
                              tag="rm")  # fmt: skip
    last = after
    if best:
        rm.load_state_dict(best.pop("state"))
        after = best["eval"]
    summary = {"steps": steps, "pairs": sets.stats, "before": before, "after": after,
               "last": last, "trainable_params": trainable,
               "config": cfg.model_dump(mode="json")}  # fmt: skip
    final = save_reward_model(rm, tokenizer, out / "final", extra=summary)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"[rm] saved {final}", flush=True)
    return final


__all__ = ["evaluate_pairs", "freeze_lower", "pair_scores", "run_rm"]
