"""The training update at full signal: padded rows vs the shared-prefix forward vs packing.

    PYTHONPATH=src .venv/bin/python benchmarks/update_bench.py [--repeats 3] [--threads 2]

One fixed batch shaped like the worst-case profile of benchmarks/vs_trl (`profile_step.py
--all-rows`): 16 synthetic prompts of ops 3-5 (BOS + prompt ids of the shipped tokenizer) x 8
completions, every row with a non-zero advantage, so all 128 rows train; completion lengths are
each problem's gold solution length x U(0.5, 1.5), capped at 160 (mean about 62 tokens like
the model's own), token ids random (the cost does not depend on them). The update is
`rl.update.policy_update` with the dapo recipe of benchmarks/vs_trl/settings.json
(micro-batch 32, AdamW, dtype auto); `algo.shared_prefix` off and on alternate in one process,
so load from other jobs hits both alike. `--packing` also times one forward+backward of the same
micro-batches packed into one row each (position ids reset per sequence, transformers' block-
diagonal mask from them, no padding) against the padded rows, with a plain log-prob loss.
Prints one JSON line per measurement and the medians.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time


def main() -> int:
    import torch

    from reasonrl.algos.logprobs import selected_logprobs
    from reasonrl.config import RLConfig
    from reasonrl.data.templates import encode_prompt
    from reasonrl.models.io import load_policy
    from reasonrl.rl.batching import collate, micro_batches, trim
    from reasonrl.rl.update import policy_update
    from reasonrl.runtime.precision import autocast, resolve_dtype
    from reasonrl.tasks.synth.dataset import make_dataset, row_to_sample
    from reasonrl.types import Completion

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--packing", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, tok = load_policy("builtin:synth-micro")
    model.train()
    rng = random.Random(0)
    rows = make_dataset([3, 4, 5], 40, seed=1000)
    rng.shuffle(rows)
    prompts, comps = [], []
    for row in rows[:16]:
        sample = row_to_sample(row)
        ids = encode_prompt(tok, sample.prompt)
        gold = len(tok(sample.meta.get("trace", "") or sample.answer)["input_ids"]) + 1
        for _ in range(8):
            n = max(1, min(160, round(gold * rng.uniform(0.5, 1.5))))
            token_ids = tuple(rng.randrange(5, len(tok)) for _ in range(n))
            comps.append(Completion(text="", token_ids=token_ids, logprobs=(-1.0,) * n))
            prompts.append(ids)
    adv = torch.tensor([rng.choice([-1.0, 1.0]) * rng.uniform(0.1, 2) for _ in comps])
    batch = collate(prompts, comps, adv, pad_id=tok.pad_token_id)
    p_len = sum(len(p) for p in prompts) / len(prompts)
    c_len = sum(len(c.token_ids) for c in comps) / len(comps)
    dtype = str(resolve_dtype(args.dtype))
    print(json.dumps({"rows": len(comps), "mean_prompt": p_len, "mean_completion": c_len,
                      "dtype": dtype, "threads": args.threads}))  # fmt: skip

    def cfg(shared: str) -> RLConfig:
        return RLConfig.model_validate({
            "rollout": {"n": 8, "prompts_per_step": 16, "max_new_tokens": 160},
            "algo": {"preset": "dapo", "micro_batch_size": 32, "kl_coef": 0.0,
                     "dynamic_sampling": False, "overlong_buffer": None, "shared_prefix": shared},
            "optim": {"lr": 1e-4, "grad_clip": 1.0},
            "model": {"dtype": args.dtype},
        })  # fmt: skip

    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)
    times: dict[str, list[float]] = {}

    def timed(name: str, fn) -> None:
        start = time.perf_counter()
        fn()
        times.setdefault(name, []).append(time.perf_counter() - start)
        print(json.dumps({"mode": name, "s": round(times[name][-1], 3)}), flush=True)

    def packed_step(mbs) -> None:
        """forward+backward of each micro-batch as one packed row (no padding)."""
        for idx in mbs:
            ids, pos, tgt_idx, tgt = [], [], [], []
            offset = 0
            for r in idx.tolist():
                real = batch.attention_mask[r].bool()
                seq = batch.input_ids[r][real]
                n_resp = int((batch.attention_mask[r, batch.prompt_len :]).sum())
                ids.append(seq)
                pos.append(torch.arange(len(seq)))
                start = offset + len(seq) - n_resp - 1  # position predicting the first response
                tgt_idx.append(torch.arange(start, start + n_resp))
                tgt.append(seq[len(seq) - n_resp :])
                offset += len(seq)
            with autocast(args.dtype):
                out = model(input_ids=torch.cat(ids)[None], position_ids=torch.cat(pos)[None],
                            use_cache=False)  # fmt: skip
                logits = out.logits[0, torch.cat(tgt_idx)]
            selected_logprobs(logits[None], torch.cat(tgt)[None]).sum().backward()
        model.zero_grad(set_to_none=True)

    def padded_step(mbs) -> None:
        for idx in mbs:
            mb = trim(batch.select(idx))
            p = mb.prompt_len
            with autocast(args.dtype):
                keep = mb.input_ids.shape[1] - p + 1
                logits = model(input_ids=mb.input_ids, attention_mask=mb.attention_mask,
                               position_ids=mb.position_ids, use_cache=False,
                               logits_to_keep=keep).logits[:, :-1]  # fmt: skip
            (selected_logprobs(logits, mb.input_ids[:, p:]) * mb.response_mask).sum().backward()
        model.zero_grad(set_to_none=True)

    every = torch.arange(len(comps))
    mbs = micro_batches(batch, every, 32)
    timed("warmup", lambda: policy_update(model, opt, batch, cfg("off")))
    for _ in range(args.repeats):
        for shared in ("off", "on"):
            step = lambda s=shared: policy_update(model, opt, batch, cfg(s))  # noqa: E731
            timed(f"update_shared_{shared}", step)
        if args.packing:
            timed("fwd_bwd_padded", lambda: padded_step(mbs))
            timed("fwd_bwd_packed", lambda: packed_step(mbs))
    print(json.dumps({k: round(statistics.median(v), 3) for k, v in times.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
