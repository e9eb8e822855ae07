"""Checks of a loaded config against this machine and its files, run before anything heavy.

The schema (`reasonrl.config`) already refused every value that cannot work anywhere; what is left
needs the filesystem or torch: the device exists, the model directories exist, the data files
exist, are non-empty and their first row parses. Each command calls its check right after
`load_config`, so a bad path or device exits 2 with one line naming the file, the key, the value
and the fix, before a model is loaded or a run directory written. They live here, in the command
layer, because they need `models` and `data`, which `config` (one layer down) may not import.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reasonrl.config import ConfigError, RLConfig, SFTConfig
from reasonrl.config.errors import nearest


def _fail(source: Path | str | None, key: str, value: Any, problem: str) -> ConfigError:
    prefix = f"{source}: " if source else ""
    return ConfigError(f"{prefix}{key}={value}: {problem}")


def check_device(device: str, key: str = "model.device", source: Path | str | None = None) -> None:
    """Refuse a torch device this machine does not have (torch is imported only for cuda/mps)."""
    if device == "cpu":
        return
    import torch

    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            why = (
                f"this torch ({torch.__version__}) is a CPU-only build"
                if torch.version.cuda is None
                else "no CUDA GPU is visible (CUDA_VISIBLE_DEVICES, driver)"
            )
            raise _fail(source, key, device, f"{why}; use {key}=cpu or a CUDA machine")
        index = int(device.partition(":")[2] or 0)
        count = torch.cuda.device_count()
        if index >= count:
            raise _fail(
                source, key, device, f"this machine has {count} GPU(s): cuda:0..{count - 1}"
            )
    elif device == "mps" and not torch.backends.mps.is_available():
        raise _fail(source, key, device, f"MPS (Apple GPU) is not available; use {key}=cpu")


def check_model_path(path: str, key: str, source: Path | str | None = None) -> None:
    """A local Hugging Face directory with config.json, or a known `builtin:NAME`."""
    from reasonrl.models.io import resolve_policy_path

    try:
        resolve_policy_path(path)
    except (OSError, ValueError) as exc:
        raise _fail(
            source, key, path, f"{exc}; give a local model directory or builtin:synth-micro"
        ) from None


def check_data_file(
    path: str,
    key: str,
    source: Path | str | None = None,
    *,
    fields: dict[str, str] | None = None,
    jsonl_only: bool = False,
) -> None:
    """The file exists, is readable, holds at least one row, and its first row parses (with the
    field mapping, for the generic loaders); only the first row is read."""
    from reasonrl.data.loaders import DataError, iter_jsonl, load_any

    p = Path(path).expanduser()
    if not p.exists():
        raise _fail(
            source,
            key,
            path,
            "no such file; check the path (relative paths are from "
            f"the current directory, {Path.cwd()})",
        )
    if p.is_dir() and jsonl_only:
        raise _fail(source, key, path, "is a directory, expected a .jsonl file")
    try:
        if jsonl_only:
            rows = [row for _, row in zip(range(1), iter_jsonl(p), strict=False)]
        else:
            rows = load_any(p, **({"fields": fields} if fields else {}), limit=1)
    except (DataError, OSError, ImportError) as exc:
        raise _fail(source, key, path, f"cannot be read: {exc}") from None
    if not rows:
        raise _fail(source, key, path, "the file holds no rows (it is empty)")


def check_benchmark(name: str, data_dir: str, key: str, source: Path | str | None) -> None:
    """A known benchmark name whose file is in data_dir and whose first row parses."""
    from reasonrl.data.benchmarks import BENCHMARKS, resolve_data_dir

    if name not in BENCHMARKS:
        guess = nearest(name, sorted(BENCHMARKS))
        hint = f"did you mean '{guess}'? " if guess else ""
        raise _fail(
            source, key, name, f"unknown benchmark; {hint}known: " + ", ".join(sorted(BENCHMARKS))
        )
    root = resolve_data_dir(data_dir)
    path = root / BENCHMARKS[name][0]
    if not path.exists():
        raise _fail(
            source,
            "data.data_dir",
            f"{data_dir} ({root})",
            f"has no {BENCHMARKS[name][0]} (for "
            f"{key}={name}); point data.data_dir at the shared data folder",
        )
    check_data_file(str(path), f"{key}={name}: file", source, jsonl_only=True)


def check_trackers(
    report_to: Sequence[str] | None,
    source: Path | str | None = None,
    key: str = "trainer.report_to",
) -> None:
    """Every tracker named in trainer.report_to has its package installed (found, not imported:
    wandb and mlflow take seconds to import)."""
    from reasonrl.runtime.trackers import TRACKER_PACKAGES, install_hint

    for name in report_to or ():
        module = TRACKER_PACKAGES.get(name, (None,))[0]
        if module is not None and importlib.util.find_spec(module) is None:
            raise _fail(
                source,
                key,
                f"[{', '.join(report_to or ())}]",
                f"{name} needs the {module} package, which is not installed; "
                f"{install_hint(name)}, or remove {name} from {key}",
            )


def check_import_path(spec: str, key: str, source: Path | str | None = None) -> None:
    """`module.path:function` imports and names a callable (the module's code runs now)."""
    from reasonrl.rl.plugins import load_import_path

    try:
        load_import_path(spec, key)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}" if source else str(exc)) from None


def check_fused_engine(path: str, device: str, source: Path | str | None = None) -> None:
    """rollout.engine=fused supports the model at `path` on `device` (read from config.json)."""
    from reasonrl.models.io import model_skeleton
    from reasonrl.rollout.registry import fused_unsupported_reason

    reason = fused_unsupported_reason(model_skeleton(path), device)
    if reason is not None:
        raise _fail(source, "rollout.engine", "fused", f"{reason}; use rollout.engine=auto or hf")


def check_rl(cfg: RLConfig, source: Path | str | None = None) -> None:
    """Everything `reasonrl train` / `quickstart` reads from disk or the machine, before the model
    loads: model.device, the trackers of trainer.report_to installed, model.path, critic.model
    (gae), the extras of rollout.engine=vllm / trainer.backend=ray / model.lora installed, the
    training and held-out data."""
    check_device(cfg.model.device, "model.device", source)
    check_trackers(cfg.trainer.report_to, source)
    if cfg.rollout.engine == "vllm" and importlib.util.find_spec("vllm") is None:
        raise _fail(
            source,
            "rollout.engine",
            "vllm",
            "the vllm package is not installed; use rollout.engine=hf or install vllm",
        )
    if cfg.trainer.backend == "ray" and importlib.util.find_spec("ray") is None:
        raise _fail(
            source, "trainer.backend", "ray", "needs the ray package: pip install 'reasonrl[ray]'"
        )
    check_model_path(cfg.model.path, "model.path", source)
    if cfg.model.lora is not None and importlib.util.find_spec("peft") is None:
        raise _fail(
            source, "model.lora", "{...}", "needs the peft package: pip install 'reasonrl[peft]'"
        )
    if cfg.rollout.engine == "fused":
        check_fused_engine(cfg.model.path, cfg.model.device, source)
    if cfg.algo.advantage == "gae" and cfg.critic.model is not None:
        check_model_path(cfg.critic.model, "critic.model", source)
    problem = cfg.reward_problem()
    if problem is not None:
        raise ConfigError(f"{source}: {problem}" if source else problem)
    r = cfg.reward
    paths = [("reward.kind", r.kind), ("data.source", cfg.data.source)]
    paths += [(f"reward.components[{i}].kind", c.kind) for i, c in enumerate(r.components)]
    for key, spec in paths:
        if spec is not None and ":" in spec:  # rewards and sources named by import path
            check_import_path(spec, key, source)
    d = cfg.data
    fields = dict(d.fields) or None
    if d.task == "jsonl" and d.train_file:
        check_data_file(d.train_file, "data.train_file", source, fields=fields)
    if d.task == "benchmark" and d.benchmark:
        check_benchmark(d.benchmark, d.data_dir, "data.benchmark", source)
        if cfg.trainer.eval_every and not d.eval_file:
            from reasonrl.rl.evaluation import HELDOUT_SPLITS

            test = HELDOUT_SPLITS.get(d.benchmark)
            if test is not None:  # its held-out split is scored during training
                check_benchmark(
                    test,
                    d.data_dir,
                    f"held-out split of data.benchmark={d.benchmark} (trainer.eval_every)",
                    source,
                )
    if d.eval_file:
        check_data_file(d.eval_file, "data.eval_file", source, fields=fields)


def check_sft(cfg: SFTConfig, source: Path | str | None = None) -> None:
    """What `reasonrl sft` reads from disk, before a model is built: model.init (a size name or a
    model directory), model.tokenizer, data.train_file, data.eval_file."""
    from reasonrl.models.factory import MODEL_SIZES

    m = cfg.model
    check_device(m.device, "model.device", source)
    if m.init not in MODEL_SIZES:
        if not m.init.startswith("builtin:") and not Path(m.init).expanduser().exists():
            guess = nearest(m.init, sorted(MODEL_SIZES))
            sizes = ", ".join(sorted(MODEL_SIZES))
            hint = f"did you mean '{guess}'? " if guess else ""
            raise _fail(
                source,
                "model.init",
                m.init,
                f"neither a model size ({sizes}) nor an existing model directory; {hint}",
            )
        check_model_path(m.init, "model.init", source)
        if m.tokenizer is not None:
            raise _fail(
                source,
                "model.tokenizer",
                m.tokenizer,
                "only valid with a fresh model "
                "size (a checkpoint brings its own tokenizer); remove it",
            )
    elif m.tokenizer not in (None, "synth"):
        check_model_path(m.tokenizer, "model.tokenizer", source)
    d = cfg.data
    if d.train_file and not d.synth_ops:
        check_data_file(d.train_file, "data.train_file", source, jsonl_only=True)
    if d.eval_file:
        check_data_file(d.eval_file, "data.eval_file", source, jsonl_only=True)
