"""`reasonrl dpo RECIPE`: DPO, IPO or conservative DPO with a frozen reference.

The policy starts from `model.init`; the reference is the same model, frozen. Because the
reference never changes, its sequence log-probs of every pair are computed ONCE before training
(exactly what a frozen copy would give, at no memory cost). Pairs: a pairwise JSONL, or the base
model's own samples of synthetic problems ranked by the strict reward (`strict`) or Kimi's
long2short builder (`rm.pairs`). Strict pass@1 on held-out synthetic problems is measured before
and after (summary.json). Losses: `algos.preference` (arXiv 2305.18290, 2310.12036).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from reasonrl.algos.logprobs import selected_logprobs
from reasonrl.algos.preference import log_ratio_margin, pairwise_accuracy, preference_loss
from reasonrl.config.rm import DPOConfig
from reasonrl.models.io import load_policy, save_policy
from reasonrl.models.reward_model import pad_right
from reasonrl.rm.loop import build_pairs, make_optimizer, start_run, train_loop

Encoded = tuple[list[int], list[int], list[int]]


def sequence_logprobs(lm: torch.nn.Module, prompts: list[list[int]], responses: list[list[int]],
                      pad_id: int) -> torch.Tensor:  # fmt: skip
    """log pi(y | x) summed over the response tokens only, (N,), one right-padded forward."""
    seqs = [p + r for p, r in zip(prompts, responses, strict=True)]
    device = next(lm.parameters()).device
    ids, mask = pad_right(seqs, pad_id)
    ids, mask = ids.to(device), mask.to(device)
    logits = lm(input_ids=ids, attention_mask=mask).logits[:, :-1]
    token_lp = selected_logprobs(logits, ids[:, 1:])  # (N, T-1): log p(token t+1 | <= t)
    resp = torch.zeros_like(mask[:, 1:], dtype=torch.bool)
    for i, (p, r) in enumerate(zip(prompts, responses, strict=True)):
        resp[i, len(p) - 1 : len(p) - 1 + len(r)] = True  # targets at positions len(p) .. end
    return (token_lp * resp).sum(-1)


def pair_logprobs(
    lm: torch.nn.Module, pairs: list[Encoded], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(log pi(y_w|x), log pi(y_l|x)), each (N,)."""
    prompts = [p for p, _, _ in pairs] * 2
    responses = [c for _, c, _ in pairs] + [r for _, _, r in pairs]
    lp = sequence_logprobs(lm, prompts, responses, pad_id)
    return lp[: len(pairs)], lp[len(pairs) :]


@torch.no_grad()
def reference_logprobs(
    lm: torch.nn.Module, pairs: list[Encoded], pad_id: int, batch: int = 32
) -> torch.Tensor:
    """(N, 2) frozen-reference log-probs (chosen, rejected) of every pair."""
    lm.eval()
    out = [torch.stack(pair_logprobs(lm, pairs[i : i + batch], pad_id), -1).cpu()
           for i in range(0, len(pairs), batch)]  # fmt: skip
    return torch.cat(out) if out else torch.zeros(0, 2)


def strict_pass(lm: torch.nn.Module, tokenizer: object, cfg: DPOConfig) -> dict[str, float]:
    """Sampled strict pass@1 (and pass@1) on held-out synthetic problems; empty when off."""
    e = cfg.eval
    if not e.problems_per_op or not cfg.data.synth_ops:
        return {}
    from reasonrl.eval.evaluate import evaluate
    from reasonrl.rm.pairs import synth_samples

    samples = synth_samples(cfg.data.synth_ops, e.problems_per_op, split="heldout",
                            seed=cfg.data.seed + 17)  # fmt: skip
    lm.eval()
    result = evaluate(lm, tokenizer, samples, samples_per_problem=e.samples,
                      temperature=e.temperature, max_new_tokens=cfg.data.max_new_tokens,
                      seed=cfg.train.seed + 5)  # fmt: skip
    return {"strict_pass@1": result.overall["strict_pass@1"], "pass@1": result.overall["pass@1"]}


def run_dpo(cfg: DPOConfig) -> Path:
    """Train per `cfg`; returns the `final/` policy directory (an HF causal-LM directory)."""
    out = start_run(cfg)
    lm, tokenizer = load_policy(cfg.model.init, dtype="fp32", device=cfg.model.device)
    sampler = lm
    if cfg.data.sampler:
        sampler, _ = load_policy(cfg.data.sampler, device=cfg.model.device)
    sets = build_pairs(cfg, tokenizer, sampler)
    print("[dpo] pairs: " + " ".join(f"{k} {v:g}" for k, v in sets.stats.items()), flush=True)
    pad_id = tokenizer.pad_token_id
    ref = reference_logprobs(lm, sets.train, pad_id)
    ref_eval = reference_logprobs(lm, sets.eval, pad_id)
    loss_cfg = cfg.loss
    before = strict_pass(lm, tokenizer, cfg)
    print(f"[dpo] before: {before}", flush=True)

    def step_fn(index: list[int]) -> tuple[torch.Tensor, dict[str, float]]:
        pw, pl = pair_logprobs(lm, [sets.train[i] for i in index], pad_id)
        rw, rl = ref[index, 0].to(pw.device), ref[index, 1].to(pw.device)
        loss = preference_loss(loss_cfg.kind, pw, pl, rw, rl, beta=loss_cfg.beta,
                               label_smoothing=loss_cfg.label_smoothing).mean()  # fmt: skip
        h = log_ratio_margin(pw.detach(), pl.detach(), rw, rl)
        return loss, {"margin": float(h.mean()), "acc": pairwise_accuracy(h, torch.zeros_like(h))}

    @torch.no_grad()
    def eval_fn() -> dict[str, float]:
        if not sets.eval:
            return {}
        lm.eval()
        pol = reference_logprobs(lm, sets.eval, pad_id)
        h = log_ratio_margin(pol[:, 0], pol[:, 1], ref_eval[:, 0], ref_eval[:, 1])
        return {"implicit_accuracy": pairwise_accuracy(h, torch.zeros_like(h)),
                "margin": float(h.mean())}  # fmt: skip

    optimizer = make_optimizer(list(lm.parameters()), cfg)
    steps, last = train_loop(cfg, lm, optimizer, len(sets.train), step_fn, eval_fn, tag="dpo")
    after = strict_pass(lm, tokenizer, cfg)
    print(f"[dpo] after: {after}", flush=True)
    summary = {"steps": steps, "pairs": sets.stats, "before": before, "after": after,
               "eval": last, "config": cfg.model_dump(mode="json")}  # fmt: skip
    final = save_policy(lm, tokenizer, out / "final", extra=summary)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"[dpo] saved {final}", flush=True)
    return final


__all__ = ["pair_logprobs", "run_dpo", "sequence_logprobs"]
