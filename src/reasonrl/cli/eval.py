"""`reasonrl eval MODEL --data FILE.jsonl`: sample, score, print the table, write the outputs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """`reasonrl eval MODEL --data FILE.jsonl ...`: print the table, write JSON/markdown/plot."""
    p = argparse.ArgumentParser(prog="reasonrl eval", description=__doc__.splitlines()[0])
    p.add_argument("model", help="HF model directory or builtin:synth-micro")
    p.add_argument("--data", required=True, help="JSONL of problems (e.g. reasonrl data synth)")
    p.add_argument("--samples", type=int, default=8, help="completions per problem (n)")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--greedy", action="store_true", help="argmax decoding, n = 1")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--limit-per-op", type=int, default=None, help="first N problems per op")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--dtype", default="fp32", choices=("fp32", "bf16"), help="weights dtype")
    p.add_argument("--reward", default="synth", help="synth (default) or a reasonrl.rewards name")
    p.add_argument("--out", default=None, help="write eval.json, eval.md and passk_by_op.png")
    args = p.parse_args(list(argv) if argv is not None else None)
    import torch

    from reasonrl.eval.evaluate import evaluate, load_samples, reward_by_name
    from reasonrl.eval.tables import markdown_table, write_outputs
    from reasonrl.models.io import load_policy

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        samples = load_samples(args.data, limit_per_op=args.limit_per_op)
        reward_fn = reward_by_name(args.reward)
        model, tokenizer = load_policy(args.model, dtype=args.dtype)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = evaluate(model, tokenizer, samples, samples_per_problem=args.samples,
                      temperature=args.temperature, greedy=args.greedy,
                      max_new_tokens=args.max_new_tokens, seed=args.seed,
                      reward_fn=reward_fn)  # fmt: skip
    result.settings.update({"model": args.model, "data": args.data, "reward": args.reward})
    print(markdown_table(result))
    if args.out:
        for path in write_outputs(result, args.out):
            print(f"wrote {path}")
    return 0
