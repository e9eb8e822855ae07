"""`reasonrl export RUN OUT [--step N]`: a checkpoint's model as a clean Hugging Face directory.

RUN is a run directory (its newest complete checkpoint, or `--step N`) or one checkpoint
directory. OUT gets the weights, config, generation config and tokenizer files, without the
trainer's state (optimizer, scheduler, RNG, manifest), so `AutoModelForCausalLM.from_pretrained`
and `AutoTokenizer.from_pretrained` open it and it can be uploaded as is. A LoRA run's checkpoint
holds only the adapter; `export` writes the base model with the adapter merged, or with
`--adapter` the adapter alone (peft's format).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from reasonrl.cli import common
from reasonrl.models.lora import ADAPTER_CONFIG  # light: peft is imported only when used


def checkpoint_of(run: Path, step: int | None) -> Path:
    """The checkpoint directory named by RUN (and --step); ValueError (one line) otherwise."""
    from reasonrl.runtime.checkpoint import checkpoint_problem, latest_checkpoint

    if (run / "checkpoints").is_dir():
        if step is None:
            ckpt = latest_checkpoint(run)
            if ckpt is None:
                raise ValueError(f"{run}: no complete checkpoint under {run / 'checkpoints'}")
            return ckpt
        ckpt = run / "checkpoints" / f"step_{step:08d}"
    elif step is not None:
        raise ValueError(f"{run}: --step needs a run directory (one holding checkpoints/)")
    else:
        ckpt = run
    if not ckpt.is_dir():
        raise ValueError(f"{ckpt}: no such checkpoint")
    problem = checkpoint_problem(ckpt, deep=True)
    if problem is not None:
        raise ValueError(f"{ckpt}: not a usable checkpoint: {problem}")
    return ckpt


def export_checkpoint(ckpt: Path, out: Path, *, adapter_only: bool = False) -> list[Path]:
    """Write the model of checkpoint `ckpt` into `out` (created); returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    if (ckpt / ADAPTER_CONFIG).is_file() and not adapter_only:
        from reasonrl.models.lora import export_merged, load_adapter_checkpoint

        model, tokenizer = load_adapter_checkpoint(ckpt)
        export_merged(model, tokenizer, out)
        return sorted(p for p in out.iterdir() if p.is_file())
    if adapter_only and not (ckpt / ADAPTER_CONFIG).is_file():
        raise ValueError(f"{ckpt}: --adapter needs a LoRA run's checkpoint (no {ADAPTER_CONFIG})")
    from reasonrl.runtime.checkpoint import MARKER, STATE_FILES  # imports torch: not for --help

    trainer_files = {*STATE_FILES, MARKER}  # what a checkpoint holds for resuming only
    written = []
    for src in sorted(ckpt.iterdir()):
        if src.is_file() and src.name not in trainer_files:
            shutil.copy2(src, out / src.name)
            written.append(out / src.name)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """`reasonrl export RUN OUT [--step N] [--adapter] [--force]`."""
    p = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="reasonrl export",
        description=__doc__.split("\n\n")[0].split(": ", 1)[1],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=common.HelpFormatter,
    )
    p.add_argument("run", type=Path, help="run directory, or one checkpoint directory")
    p.add_argument("out", type=Path, help="output directory (a Hugging Face model directory)")
    p.add_argument("--step", type=int, default=None, help="checkpoint step (default: newest)")
    p.add_argument("--adapter", action="store_true", help="LoRA runs: the adapter alone")
    p.add_argument("--force", action="store_true", help="write into a non-empty OUT")
    args = p.parse_args(list(argv) if argv is not None else None)
    try:
        ckpt = checkpoint_of(args.run, args.step)
        if args.out.exists() and any(args.out.iterdir()) and not args.force:
            raise ValueError(f"{args.out} exists and is not empty (use --force to write into it)")
        if args.out.resolve() == ckpt.resolve():
            raise ValueError("OUT is the checkpoint itself")
    except ValueError as exc:
        print(f"reasonrl export: error: {exc}", file=sys.stderr)
        return common.EXIT_USAGE
    files = export_checkpoint(ckpt, args.out, adapter_only=args.adapter)
    print(f"exported {ckpt} -> {args.out} ({len(files)} files)")
    return common.EXIT_OK
