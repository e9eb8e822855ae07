"""`reasonrl eval MODEL --data FILE.jsonl | --benchmark NAME`: sample, score, print the table,
write the outputs.

    reasonrl eval builtin:synth-micro --data heldout.jsonl
    reasonrl eval Qwen2.5-0.5B-Instruct --benchmark gsm8k --template chat --instruction boxed
    reasonrl eval MODEL --data my.jsonl --field prompt=question --field answer=answer --reward math
    reasonrl eval --eft LARGE_BASE SMALL_FT SMALL_BASE --data heldout.jsonl [--eft-beta 1.0]

--eft samples from the large base up-scaled by the small pair's fine-tuning delta at decode time
(EFT, arXiv 2310.12962: log p_L + beta (log p_ft - log p_base), renormalised; `rollout.eft`),
with no model trained; the three must share one tokenizer (the large base's is used).

--benchmark reads a file of the shared data folder (`reasonrl.data.benchmarks.BENCHMARKS`, short
names in BENCHMARK_NAMES) and scores it with its reward (`eval.evaluate.BENCHMARK_REWARDS`) unless
--reward says otherwise. --template/--system-prompt/--instruction format the prompts exactly as
the RL and SFT keys data.template/system_prompt/instruction do (`data.templates.PromptFormat`).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from reasonrl.cli import common
from reasonrl.data.benchmarks import DEFAULT_DATA_DIR  # light: json/gzip, no torch

# Short names of --benchmark -> a key of reasonrl.data.benchmarks.BENCHMARKS (the test split
# the literature reports: GSM8K test, MATH500, AIME 2024); the full keys are accepted too.
BENCHMARK_NAMES = {
    "gsm8k": "gsm8k_test", "math": "math500", "aime": "aime24",
    "humaneval": "humaneval", "countdown": "countdown",
}  # fmt: skip
FIELD_KEYS = ("prompt", "answer", "id")
_MODEL_ROLES = ("LARGE_BASE", "SMALL_FT", "SMALL_BASE")  # the three models of --eft


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


def _field(text: str) -> tuple[str, str]:
    key, sep, column = text.partition("=")
    if not sep or key not in FIELD_KEYS or not column:
        raise argparse.ArgumentTypeError(
            f"expected NAME=COLUMN with NAME one of {', '.join(FIELD_KEYS)}, got {text!r}"
        )
    return key, column


def benchmark_file(name: str, data_dir: str) -> Path:
    """The file of benchmark `name` (a short name or a BENCHMARKS key) under `data_dir`,
    resolved; ConfigError (one line: the flag, the path, the fix) when it is not there. The
    default data_dir is looked for from the current directory, then next to this checkout."""
    from reasonrl.config import ConfigError
    from reasonrl.data.benchmarks import BENCHMARKS, resolve_data_dir

    rel = BENCHMARKS[BENCHMARK_NAMES.get(name, name)][0]
    root = resolve_data_dir(data_dir)
    path = root / rel
    if not path.is_file():
        what = "has no " + rel if root.is_dir() else "is not a directory"
        raise ConfigError(
            f"--data-dir={data_dir} ({root}) {what} (for --benchmark {name}); point --data-dir "
            "at the shared data folder"
        )
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """`reasonrl eval MODEL --data FILE | --benchmark NAME ...`: print the table, write
    JSON/markdown/plot."""
    from reasonrl.data.templates import TEMPLATE_NAMES

    p = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="reasonrl eval",
        description=__doc__.split("\n\n")[0],
        formatter_class=common.HelpFormatter,
    )
    benchmarks = [*BENCHMARK_NAMES, *(b for b in _benchmark_keys() if b not in BENCHMARK_NAMES)]
    p.add_argument("model", nargs="?", default=None,
                   help="HF model directory or builtin:synth-micro (omit with --eft)")  # fmt: skip
    p.add_argument("--eft", nargs=3, default=None, metavar=_MODEL_ROLES,
                   help="decode-time EFT up-scaling of LARGE_BASE by SMALL_FT - SMALL_BASE "
                   "(arXiv 2310.12962) instead of MODEL")  # fmt: skip
    p.add_argument("--eft-beta", type=float, default=1.0,
                   help="--eft: weight of the small pair's delta (1 = up-scaling, 0 = the "
                   "large base)")  # fmt: skip
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--data", help="JSONL of problems (e.g. reasonrl data synth); with --field: "
                      "any JSONL/Parquet/HF-datasets directory")  # fmt: skip
    what.add_argument("--benchmark", choices=benchmarks, metavar="NAME",
                      help=f"a benchmark of --data-dir: {', '.join(benchmarks)}")  # fmt: skip
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR,
                   help="folder of the benchmark files (--benchmark)")  # fmt: skip
    p.add_argument("--field", type=_field, action="append", default=None, metavar="NAME=COLUMN",
                   help="map prompt/answer/id to a column of --data (repeatable), e.g. "
                   "--field prompt=question --field answer=answer")  # fmt: skip
    p.add_argument("--template", default="none",
                   help=f"prompt template: {', '.join(TEMPLATE_NAMES)}, or a format string "
                   "with {question}")  # fmt: skip
    p.add_argument("--system-prompt", default=None, help="system turn (--template chat only)")
    p.add_argument("--instruction", default=None,
                   help="appended to the question ('boxed' = the step-by-step \\boxed{} "
                   "instruction)")  # fmt: skip
    p.add_argument("--limit", type=_positive_int, default=None, help="first N problems")
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
    p.add_argument("--reward", default=None,
                   help="synth or a reasonrl.rewards name (default: the benchmark's reward "
                   "for --benchmark, synth for --data)")  # fmt: skip
    p.add_argument("--reward-timeout-s", type=_timeout, default=30.0,
                   help="seconds one reward call may take before it counts as failed "
                   "(default 30; 'none' = no limit)")  # fmt: skip
    p.add_argument("--out", default=None, help="write eval.json, eval.md and passk_by_op.png")
    args = p.parse_args(list(argv) if argv is not None else None)
    from reasonrl.cli.checks import check_data_file, check_model_path
    from reasonrl.config import ConfigError
    from reasonrl.data.templates import PromptFormat
    from reasonrl.eval.evaluate import BENCHMARK_REWARDS

    fields = dict(args.field or [])
    name = BENCHMARK_NAMES.get(args.benchmark, args.benchmark)
    reward = args.reward or (BENCHMARK_REWARDS[name] if args.benchmark else "synth")
    try:  # before torch and the model: a bad path or flag costs nothing
        if (args.model is None) == (args.eft is None):
            raise ConfigError("give MODEL or --eft LARGE_BASE SMALL_FT SMALL_BASE (one of the two)")
        if not (math.isfinite(args.eft_beta) and args.eft_beta >= 0):
            raise ConfigError(f"--eft-beta must be a finite number >= 0, got {args.eft_beta}")
        for path, what in zip(args.eft or [args.model], _MODEL_ROLES if args.eft else ["MODEL"]):
            check_model_path(path, what)
        if args.benchmark:
            if fields:
                raise ConfigError("--field maps the columns of --data; a --benchmark has its own")
            data = str(benchmark_file(args.benchmark, args.data_dir))
            check_data_file(data, f"--benchmark {args.benchmark}: file", jsonl_only=True)
        else:
            data = args.data
            check_data_file(data, "--data", fields=fields or None, jsonl_only=not fields)
        fmt = PromptFormat(args.template, args.system_prompt, args.instruction)
    except (ConfigError, ValueError) as exc:
        print(f"reasonrl eval: error: {exc}", file=sys.stderr)
        return 2
    import torch

    from reasonrl.data.templates import prompt_token_ids
    from reasonrl.eval.evaluate import evaluate, reward_by_name
    from reasonrl.eval.tables import markdown_table, write_outputs
    from reasonrl.models.io import load_policy

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        samples = _load(args, name, data, fields)
        reward_fn = reward_by_name(reward)
        model, tokenizer = load_policy(args.eft[0] if args.eft else args.model, dtype=args.dtype)
        engine = _eft_engine(model, tokenizer, args) if args.eft else None
        prompt_token_ids(tokenizer, samples[0], fmt)  # a chat template the tokenizer lacks, ...
    except (OSError, ValueError) as exc:
        print(f"reasonrl eval: error: {exc}", file=sys.stderr)
        return 2
    result = evaluate(model, tokenizer, samples, samples_per_problem=args.samples,
                      temperature=args.temperature, greedy=args.greedy,
                      max_new_tokens=args.max_new_tokens, seed=args.seed,
                      reward_fn=reward_fn, reward_timeout_s=args.reward_timeout_s,
                      prompt_format=fmt, engine=engine)  # fmt: skip
    result.settings.update({"model": args.model, "data": data, "reward": reward})
    if args.eft:
        result.settings |= {"eft": dict(zip(_MODEL_ROLES, args.eft)), "eft_beta": args.eft_beta}
    if args.benchmark:
        result.settings["benchmark"] = name
    print(markdown_table(result))
    if args.out:
        for path in write_outputs(result, args.out):
            print(f"wrote {path}")
    return 0


def _eft_engine(large: object, tokenizer: object, args: argparse.Namespace) -> object:
    """`rollout.eft.EFTEngine` over the loaded large base and the two small models of --eft
    (fp32 engine compute: the delta is a difference of log-probs, bf16 would blur it)."""
    from reasonrl.models.io import load_policy
    from reasonrl.rollout.eft import EFTEngine

    small_ft, tok_ft = load_policy(args.eft[1], dtype=args.dtype)
    small_base, tok_base = load_policy(args.eft[2], dtype=args.dtype)
    vocab = getattr(tokenizer, "get_vocab", dict)()
    for path, tok in zip(args.eft[1:], (tok_ft, tok_base)):
        if getattr(tok, "get_vocab", dict)() != vocab:
            raise ValueError(f"--eft: {path} has another tokenizer than {args.eft[0]}")
    return EFTEngine(large, small_ft, small_base, tokenizer, beta=args.eft_beta, dtype="fp32")


def _benchmark_keys() -> list[str]:
    from reasonrl.data.benchmarks import BENCHMARKS

    return list(BENCHMARKS)


def _load(args: argparse.Namespace, name: str | None, data: str, fields: dict[str, str]) -> list:
    """The problems of --benchmark (its loader) or --data (with --field: any format, mapped
    columns), the first --limit-per-op of each op, then the first --limit."""
    from reasonrl.eval.evaluate import load_samples
    from reasonrl.rl.evaluation import limit_per_group

    if name is None and not fields:
        return load_samples(data, limit_per_op=args.limit_per_op)[: args.limit]
    if name is not None:
        from reasonrl.data.benchmarks import BENCHMARKS

        samples = BENCHMARKS[name][1](Path(data))
    else:
        from reasonrl.data.loaders import load_any

        samples = load_any(data, fields)
    if args.limit_per_op is not None:
        samples = limit_per_group(samples, args.limit_per_op)
    return samples[: args.limit]
