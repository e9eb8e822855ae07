"""Load and save policies as plain Hugging Face directories.

A saved policy is `config.json` + `model.safetensors` + tokenizer files,
so `AutoModelForCausalLM.from_pretrained(dir)` and `AutoTokenizer.from_pretrained(dir)` open it
with no reasonrl code. `load_policy` opens any such local directory, and the special path
`builtin:synth-micro` resolves to the base checkpoint shipped inside the package.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

BUILTIN_PREFIX = "builtin:"
ASSETS_DIR = Path(__file__).resolve().parents[1] / "assets"
BUILTIN_MODELS: dict[str, Path] = {"synth-micro": ASSETS_DIR / "synth-micro"}

DTYPES = {
    "fp32": "float32",
    "float32": "float32",
    "bf16": "bfloat16",
    "bfloat16": "bfloat16",
    "fp16": "float16",
    "float16": "float16",
}


# "org/name" as the Hugging Face hub spells repository ids (one slash, no path prefix)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


def resolve_policy_path(path: str | Path) -> Path:
    """The local directory behind `path`.

    In order: `builtin:NAME` (a checkpoint shipped in the package); a local model directory (with
    `config.json`, e.g. any RL checkpoint `RUN/checkpoints/step_N`); a run directory (its newest
    complete checkpoint); a hub id `org/name` (the snapshot in the Hugging Face cache, downloaded
    first unless `HF_HUB_OFFLINE=1`).

    Raises:
        FileNotFoundError: one line naming the path and why nothing was found.
        ValueError: for an unknown `builtin:` name.
    """
    text = str(path)
    if text.startswith(BUILTIN_PREFIX):
        name = text[len(BUILTIN_PREFIX) :]
        if name not in BUILTIN_MODELS:
            raise ValueError(
                f"unknown builtin model {text!r}; available: "
                + ", ".join(BUILTIN_PREFIX + n for n in sorted(BUILTIN_MODELS))
            )
        local = BUILTIN_MODELS[name]
    else:
        local = Path(text).expanduser()
        if not local.is_dir() and _HUB_ID.match(text):
            return hub_snapshot(text)
    if not local.is_dir():
        raise FileNotFoundError(f"model directory not found: {local} (from {text!r})")
    if not (local / "config.json").is_file() and (local / "checkpoints").is_dir():
        from reasonrl.runtime.checkpoint import latest_checkpoint

        newest = latest_checkpoint(local)
        if newest is None:
            raise FileNotFoundError(f"{local} is a run directory without a complete checkpoint")
        local = newest
    if not (local / "config.json").is_file():
        raise FileNotFoundError(f"{local} has no config.json: not a Hugging Face model directory")
    return local


# what a policy needs from a hub repository (weights, config, tokenizer), not other formats
HUB_FILES = ("*.json", "*.safetensors", "*.model", "*.txt", "*.py", "*.tiktoken")


def hub_snapshot(repo_id: str) -> Path:
    """The local snapshot of hub model `repo_id`: from the cache, else downloaded (only the files
    in HUB_FILES) unless HF_HUB_OFFLINE=1. FileNotFoundError (one line) when neither works."""
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except LocalEntryNotFoundError:
        pass
    where = f"not a local directory and not in the Hugging Face cache ({constants.HF_HUB_CACHE})"
    if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0"):
        raise FileNotFoundError(
            f"model {repo_id!r}: {where}, and HF_HUB_OFFLINE=1 forbids downloading it; "
            "download it on a machine with network or give a local directory"
        ) from None
    try:
        return Path(snapshot_download(repo_id, allow_patterns=list(HUB_FILES)))
    except Exception as exc:  # offline, unknown repo, gated model: one line, not a traceback
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FileNotFoundError(
            f"model {repo_id!r}: {where}, and downloading it failed ({reason[:200]})"
        ) from None


def torch_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """`"bf16"`/`"fp32"`/`"fp16"` (or a torch.dtype) -> torch.dtype."""
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of {sorted(DTYPES)}")
    return getattr(torch, DTYPES[dtype])


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerBase:
    """The tokenizer saved in a local model directory (no network)."""
    from transformers import AutoTokenizer

    local = resolve_policy_path(path)
    tokenizer = AutoTokenizer.from_pretrained(str(local), local_files_only=True)
    if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


@contextmanager
def quiet_progress_bars() -> Iterator[None]:
    """transformers' "Loading weights" / "Writing model shards" bars off while loading or saving
    (they are noise in a run's log), restored afterwards; global state is left as found."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def load_policy(
    path: str | Path,
    *,
    dtype: str | torch.dtype = "fp32",
    device: str | torch.device = "cpu",
    trust_remote_code: bool = False,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer from a local Hugging Face directory.

    Args:
        path: a directory with `config.json` + weights + tokenizer files, or `builtin:synth-micro`.
        dtype: weight dtype (`fp32` for training on CPU; `bf16` halves memory).
        device: where to put the weights.
        trust_remote_code: forwarded to `from_pretrained` for custom architectures.

    Returns:
        (model in eval mode, tokenizer with a pad token).
    """
    from transformers import AutoModelForCausalLM

    local = resolve_policy_path(path)
    tokenizer = load_tokenizer(local)
    with quiet_progress_bars():
        model = AutoModelForCausalLM.from_pretrained(
            str(local),
            dtype=torch_dtype(dtype),
            local_files_only=True,
            trust_remote_code=trust_remote_code,
        )
    model.to(device)
    model.eval()
    return model, tokenizer


def model_skeleton(path: str | Path, *, trust_remote_code: bool = False) -> PreTrainedModel:
    """The model of `path` built on the meta device from its config.json alone: its modules and
    shapes, no weights, no memory (for checks that must not load the model)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    local = resolve_policy_path(path)
    config = AutoConfig.from_pretrained(
        str(local), local_files_only=True, trust_remote_code=trust_remote_code
    )
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)


def save_policy(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    path: str | Path,
    *,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write `model` and `tokenizer` as a plain HF directory that `AutoTokenizer` reloads unchanged.

    transformers 5 builds the tokenizer class registered for `config.json`'s model type (for
    `qwen2`: byte-level BPE, rebuilt from our word-level vocab, so ids change; pinned by
    tests/tasks/synth/test_tokenizer.py) even when `tokenizer_config.json` names another class.
    For a generic fast tokenizer we therefore also write an `auto_map` (the one hook that takes
    `AutoTokenizer` off that path) to a two-line subclass saved beside it; a probe sentence is
    re-encoded after saving and any id mismatch raises.

    Args:
        model: any `PreTrainedModel`.
        tokenizer: its tokenizer.
        path: output directory (created; existing files overwritten).
        extra: optional JSON-able metadata written to `reasonrl.json` (e.g. training summary).

    Returns:
        The directory.
    """
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    with quiet_progress_bars():
        model.save_pretrained(str(out), safe_serialization=True)
    save_tokenizer(tokenizer, out)
    if extra is not None:
        (out / "reasonrl.json").write_text(json.dumps(extra, indent=2, sort_keys=True) + "\n")
    return out


def save_tokenizer(tokenizer: PreTrainedTokenizerBase, out: str | Path) -> None:
    """Write `tokenizer` into `out` so that `AutoTokenizer.from_pretrained(out)` gives the same
    ids (see `save_policy`); raises RuntimeError when the reloaded tokenizer differs."""
    out = Path(out)
    tokenizer.save_pretrained(str(out))
    _pin_tokenizer_class(out, tokenizer)
    _check_tokenizer_reload(out, tokenizer)


def save_model_metadata(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, out: str | Path
) -> None:
    """Everything of a Hugging Face model directory but the weights: `config.json`,
    `generation_config.json` and the tokenizer files. Beside weights saved under HF names
    (`model.safetensors`), `AutoModelForCausalLM.from_pretrained(out)` opens the directory."""
    out = Path(out)
    model.config.save_pretrained(str(out))
    generation = getattr(model, "generation_config", None)
    if generation is not None:
        generation.save_pretrained(str(out))
    save_tokenizer(tokenizer, out)


GENERIC_FAST_TOKENIZERS = ("TokenizersBackend", "PreTrainedTokenizerFast")
_TOKENIZER_MODULE = "tokenization_reasonrl"
_TOKENIZER_MODULE_SOURCE = '''"""reasonrl: a plain fast tokenizer, tokenizer.json loaded as is."""

from transformers import PreTrainedTokenizerFast


class ReasonrlTokenizer(PreTrainedTokenizerFast):
    pass
'''


def _pin_tokenizer_class(out: Path, tokenizer: PreTrainedTokenizerBase) -> None:
    # With no remote code allowed, AutoTokenizer skips the auto_map and loads `tokenizer_class`
    # (a plain fast tokenizer); with trust_remote_code=True it loads the two-line subclass written
    # beside it. Either way tokenizer.json is used unchanged.
    config_file = out / "tokenizer_config.json"
    tok_config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    if type(tokenizer).__name__ in GENERIC_FAST_TOKENIZERS:
        tok_config["tokenizer_class"] = "PreTrainedTokenizerFast"
        tok_config["auto_map"] = {"AutoTokenizer": [None, f"{_TOKENIZER_MODULE}.ReasonrlTokenizer"]}
        (out / f"{_TOKENIZER_MODULE}.py").write_text(_TOKENIZER_MODULE_SOURCE)
    tok_config.setdefault("clean_up_tokenization_spaces", False)
    config_file.write_text(json.dumps(tok_config, indent=2, ensure_ascii=False) + "\n")


def _check_tokenizer_reload(out: Path, tokenizer: PreTrainedTokenizerBase) -> None:
    from transformers import AutoTokenizer

    probe = " ".join(tokenizer.convert_ids_to_tokens(list(range(min(len(tokenizer), 64)))))
    reloaded = AutoTokenizer.from_pretrained(str(out), local_files_only=True)
    want, got = tokenizer(probe)["input_ids"], reloaded(probe)["input_ids"]
    if want != got:
        raise RuntimeError(
            f"AutoTokenizer.from_pretrained({out}) gives different ids than the saved tokenizer "
            f"({type(reloaded).__name__} vs {type(tokenizer).__name__}); fix tokenizer_config.json"
        )
