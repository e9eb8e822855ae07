"""`reasonrl eval MODEL --data FILE.jsonl`: sample, score, print the table, write the outputs."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence

from reasonrl.cli import common


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _temperature(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0 (0 = greedy), got {text}")
    return value


def _timeout(text: str) -> float | None:
    if text.lower() == "none":
        return None
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be > 0 seconds or 'none', got {text}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """`reasonrl eval MODEL --data FILE.jsonl ...`: print the table, write JSON/markdown/plot."""
    p = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="reasonrl eval",
        description=__doc__.splitlines()[0],
        formatter_class=common.HelpFormatter,
    )
    p.add_argument("model", help="HF model directory or builtin:synth-micro")
    p.add_argument("--data", required=True, help="JSONL of problems (e.g. reasonrl data synth)")
    p.add_argument("--samples", type=_positive_int, default=8, help="completions per problem (n)")
    p.add_argument("--temperature", type=_temperature, default=1.0, help="0 = greedy (n = 1)")
    p.add_argument("--greedy", action="store_true", help="argmax decoding, n = 1")
    p.add_argument("--max-new-tokens", type=_positive_int, default=256,
                   help="longest completion in tokens")  # fmt: skip
    p.add_argument("--limit-per-op", type=_positive_int, default=None,
                   help="first N problems per op")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--threads", type=_positive_int, default=None, help="torch CPU threads")
    p.add_argument("--dtype", default="fp32", choices=("fp32", "bf16"), help="weights dtype")
    p.add_argument("--reward", default="synth", help="synth (default) or a reasonrl.rewards name")
    p.add_argument("--reward-timeout-s", type=_timeout, default=30.0,
                   help="seconds one reward call may take before it counts as failed "
                   "(default 30; 'none' = no limit)")  # fmt: skip
    p.add_argument("--out", default=None, help="write eval.json, eval.md and passk_by_op.png")
    args = p.parse_args(list(argv) if argv is not None else None)
    from reasonrl.cli.checks import check_data_file, check_model_path
    from reasonrl.config import ConfigError

    try:  # before torch and the model: a bad path costs nothing
        check_model_path(args.model, "MODEL")
        check_data_file(args.data, "--data", jsonl_only=True)
    except ConfigError as exc:
        print(f"reasonrl eval: error: {exc}", file=sys.stderr)
        return 2
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
        print(f"reasonrl eval: error: {exc}", file=sys.stderr)
        return 2
    result = evaluate(model, tokenizer, samples, samples_per_problem=args.samples,
                      temperature=args.temperature, greedy=args.greedy,
                      max_new_tokens=args.max_new_tokens, seed=args.seed,
                      reward_fn=reward_fn, reward_timeout_s=args.reward_timeout_s)  # fmt: skip
    result.settings.update({"model": args.model, "data": args.data, "reward": args.reward})
    print(markdown_table(result))
    if args.out:
        for path in write_outputs(result, args.out):
            print(f"wrote {path}")
    return 0
