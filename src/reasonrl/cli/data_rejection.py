"""`reasonrl data rejection MODEL --ops 2,3 --per-op N --out F.jsonl`: shortest-rejection SFT data.

Samples `--samples` completions of each synthetic problem with MODEL, keeps the SHORTEST one
that the strict process-verified reward accepts (Kimi k1.5's shortest rejection sampling, arXiv
2501.12599 §2.4) and writes prompt/completion rows for `reasonrl sft data.train_file=F.jsonl`.
Problems without a strict-correct sample are skipped (counted in the summary line).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from reasonrl.cli import common
from reasonrl.cli.data_synth import parse_ops


def main(argv: Sequence[str] | None = None) -> int:
    """`reasonrl data rejection MODEL --ops OPS --per-op N --out F [...]`."""
    p = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="reasonrl data rejection",
        description=__doc__.split("\n\n")[0].split(": ", 1)[1],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=common.HelpFormatter,
    )
    p.add_argument("model", help="model directory, run directory, builtin:NAME or hub id")
    p.add_argument("--ops", type=parse_ops, required=True, help="op counts, e.g. 2-4")
    p.add_argument("--per-op", type=int, required=True, help="problems per op")
    p.add_argument("--samples", type=int, default=8, help="completions sampled per problem")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature")
    p.add_argument("--max-new-tokens", type=int, default=128, help="completion length cap")
    p.add_argument("--split", choices=("train", "heldout"), default="train", help="problem split")
    p.add_argument("--seed", type=int, default=0, help="problem and sampling seed")
    p.add_argument("--out", type=Path, required=True, help="output .jsonl path")
    args = p.parse_args(list(argv) if argv is not None else None)
    if args.per_op < 1 or args.samples < 1:
        print("reasonrl data rejection: error: --per-op and --samples must be >= 1",
              file=sys.stderr)  # fmt: skip
        return common.EXIT_USAGE
    from reasonrl.models.io import load_policy, resolve_policy_path
    from reasonrl.rm.pairs import sample_labelled, shortest_rejection_rows, synth_samples

    try:
        path = resolve_policy_path(args.model)
    except (ValueError, FileNotFoundError) as exc:
        print(f"reasonrl data rejection: error: {exc}", file=sys.stderr)
        return common.EXIT_USAGE
    model, tokenizer = load_policy(path)
    problems = synth_samples(args.ops, args.per_op, split=args.split, seed=args.seed)
    labelled = sample_labelled(model, tokenizer, problems, n=args.samples,
                               temperature=args.temperature, max_new_tokens=args.max_new_tokens,
                               seed=args.seed)  # fmt: skip
    rows = shortest_rejection_rows(labelled, eos_text=tokenizer.eos_token)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(args.out)
    correct = sum(sum(flags) for *_, flags in labelled)
    total = sum(len(flags) for *_, flags in labelled)
    mean_len = sum(r["tokens"] for r in rows) / max(1, len(rows))
    print(f"{len(rows)} of {len(problems)} problems kept (strict-correct samples "
          f"{correct}/{total}), mean kept length {mean_len:.1f} tokens -> {args.out}")  # fmt: skip
    return common.EXIT_OK
