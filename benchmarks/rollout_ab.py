"""A/B of the rollout engine against an earlier commit's, on the quickstart's generation.

    nice .venv/bin/python benchmarks/rollout_ab.py [--base HEAD] [--repeats 7] [--dtype auto]

The quickstart's rollout: `builtin:synth-micro`, 16 synthetic prompts (ops 1-4, 4 each) x 8
samples, T=1, up to 128 new tokens. `--base`'s versions of `rollout/{hf_engine,active,decoder}.py`
are read with `git show` (read-only) into a temporary package, so both engines run in one
process on the same weights and prompts, interleaved repeat by repeat with a new seed each
repeat: load from other jobs hits both alike. Reports median wall and CPU seconds (process time:
leaves out the waits for a core on a shared machine), tokens/s, the per-repeat CPU-time speed-up,
and whether both engines gave the same tokens at every seed.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHANGED = ("hf_engine", "active", "decoder")  # the modules whose old versions are loaded


def base_engine(commit: str, where: Path) -> type:
    """`HFEngine` of `commit`, imported from a copy of its modules in `where`/abroll."""
    pkg = where / "abroll"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for name in CHANGED:
        src = subprocess.run(
            ["git", "show", f"{commit}:src/reasonrl/rollout/{name}.py"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        for other in CHANGED:
            src = src.replace(f"reasonrl.rollout.{other}", f"abroll.{other}")
        (pkg / f"{name}.py").write_text(src)
    sys.path.insert(0, str(where))
    return importlib.import_module("abroll.hf_engine").HFEngine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="HEAD", help="the commit to compare against")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dtype", default="auto")
    args = parser.parse_args()

    import torch

    from reasonrl.data.templates import prompt_token_ids
    from reasonrl.models.io import load_policy
    from reasonrl.rollout import HFEngine, SamplingParams
    from reasonrl.tasks.synth.dataset import make_dataset, row_to_sample

    torch.set_num_threads(args.threads)
    model, tok = load_policy("builtin:synth-micro")
    prompts = [
        prompt_token_ids(tok, row_to_sample(r)) for r in make_dataset([1, 2, 3, 4], 4, seed=0)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        old_cls = base_engine(args.base, Path(tmp))
        engines = {
            args.base: old_cls(model, tok, dtype=args.dtype),
            "working tree": HFEngine(model, tok, dtype=args.dtype),
        }
        load = os.getloadavg()[0]
        runs: dict[str, list[tuple[float, float, int]]] = {name: [] for name in engines}
        same = True
        for rep in range(args.repeats + 1):  # repeat 0 packs the weights: a warm-up
            params = SamplingParams(n=8, max_new_tokens=128, seed=rep, temperature=1.0)
            digests = set()
            for name, engine in engines.items():
                wall, cpu = time.perf_counter(), time.process_time()
                out = engine.generate(prompts, params)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                tokens = [[c.token_ids for c in group] for group in out]
                digests.add(hashlib.sha1(repr(tokens).encode()).hexdigest())
                if rep:
                    runs[name].append((wall, cpu, sum(len(t) for g in tokens for t in g)))
            same &= len(digests) == 1
    med = statistics.median
    print(
        f"dtype {args.dtype}, {args.threads} thread(s), load average {load:.1f} before / "
        f"{os.getloadavg()[0]:.1f} after, {args.repeats} repeats"
    )
    for name, res in runs.items():
        print(
            f"{name:>14}: wall {med(w for w, _, _ in res):.3f} s, "
            f"CPU {med(c for _, c, _ in res):.3f} s, {med(t / w for w, _, t in res):,.0f} tok/s, "
            f"{med(t / c for _, c, t in res):,.0f}"
            f" tok/CPU-s, {med(t for _, _, t in res) / 128:.1f} tokens per completion"
        )
    old, new = runs.values()
    cpu_ups = [o[1] / n[1] for o, n in zip(old, new)]
    wall_ups = [o[0] / n[0] for o, n in zip(old, new)]
    print(
        f"speed-up (CPU): median {med(cpu_ups):.2f}x ({min(cpu_ups):.2f}-{max(cpu_ups):.2f}); "
        f"(wall): median {med(wall_ups):.2f}x; same tokens at every seed: {same}"
    )


if __name__ == "__main__":
    main()
