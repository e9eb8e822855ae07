"""LoRA adapters on a Hugging Face causal LM with PEFT, and the merged weights an engine needs.

LoRA (Hu et al., arXiv 2106.09685) freezes a linear layer's weight W (out x in) and learns a
rank-r update: the layer computes `x @ (W + scale * B @ A).T` with A (r x in), B (out x r),
`scale = alpha / r` (Section 4.1: "we then scale ΔWx by α/r"). PEFT initialises A
Kaiming-uniform and B to zero, so a fresh adapter leaves the model unchanged. rsLoRA's
`alpha / sqrt(r)` (Kalajdzievski, arXiv 2312.03732) is not used: `apply_lora` always builds
`LoraConfig(use_rslora=False)`.

The trainer holds the PEFT-wrapped model; a rollout engine holds a *plain* copy of the base model
(the decoder kernels read the plain parameter names). After each update the engine receives
`merged_named_parameters(model)`: every base parameter under its plain name, with the adapter
delta added out of place, so the engine samples from base + adapter exactly while the trainer's
model is never merged in place (an in-place merge would fold the delta into frozen weights and
double-count it on the next forward).

peft is an optional extra (`pip install 'reasonrl[peft]'`); it is imported inside the functions
that need it, so `import reasonrl.models.lora` costs nothing without it.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from reasonrl.models.io import load_policy, save_policy

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

# The attention and MLP projections of Llama/Qwen2/Mistral-style decoders (the QLoRA choice of
# adapting every linear layer, arXiv 2305.14314 Section 4, minus the output head).
DEFAULT_TARGET_MODULES: tuple[str, ...] = (
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
)

ADAPTER_WEIGHTS = "adapter_model.safetensors"  # peft's file name, as `save_adapter` writes it
ADAPTER_CONFIG = "adapter_config.json"
_BASE_LAYER = ".base_layer"  # peft keeps the wrapped layer as the child `base_layer`


def _peft() -> Any:
    try:
        import peft
    except ImportError as exc:  # the optional extra is missing
        raise ImportError("LoRA needs the peft package: pip install 'reasonrl[peft]'") from exc
    return peft


def is_lora(model: Any) -> bool:
    """Whether `model` is a PEFT-wrapped model (False when peft is not installed).

    A model can only be wrapped once peft is imported, so a run without LoRA never imports it."""
    peft = sys.modules.get("peft")
    return peft is not None and isinstance(model, peft.PeftModel)


def engine_weights(model: Any) -> Iterable[tuple[str, torch.Tensor]]:
    """What a rollout engine's `load_weights` receives after each update: the model's own
    parameters, or for a LoRA model the base weights with the adapter merged (plain HF names),
    so the engine samples from base + adapter exactly."""
    return merged_named_parameters(model) if is_lora(model) else model.named_parameters()


def base_model_of(model: Any) -> PreTrainedModel:
    """The Hugging Face model under a PEFT wrapper (LoRA layers injected); `model` if plain."""
    return model.get_base_model() if is_lora(model) else model


def _linear_types() -> tuple[type, ...]:
    # GPT-2-style models store linear layers as transformers' Conv1D (weight in x out); peft
    # adapts them with fan_in_fan_out=True, and get_delta_weight transposes the delta to match
    import torch
    from transformers.pytorch_utils import Conv1D

    return (torch.nn.Linear, Conv1D)


def _linears(model: torch.nn.Module) -> dict[str, Any]:
    types = _linear_types()
    return {n: m for n, m in model.named_modules() if isinstance(m, types)}


def linear_module_names(model: torch.nn.Module) -> list[str]:
    """Sorted distinct last name components of the model's linear layers (e.g. `q_proj`)."""
    return sorted({name.rpartition(".")[2] for name in _linears(model)})


def _matches(name: str, target: str) -> bool:
    """peft's rule for a listed target: the module's full name is it or ends with `.target`."""
    return name == target or name.endswith("." + target)


def _check_targets(model: torch.nn.Module, targets: Sequence[str]) -> None:
    """Every target matches a linear layer (`_matches`), and none of them is tied to another
    parameter (a tied output head shares its weight with the embedding, so its delta could not
    be merged into one tensor)."""
    linears = _linears(model)
    names = linear_module_names(model)
    missing = [t for t in targets if not any(_matches(n, t) for n in linears)]
    if missing:
        raise ValueError(
            f"LoRA target module(s) {missing} are not linear layers of "
            f"{type(model).__name__}; its linear modules are: {names}"
        )
    owners: dict[int, list[str]] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        owners.setdefault(p.data_ptr(), []).append(name)
    for n, m in linears.items():
        if any(_matches(n, t) for t in targets):
            tied = owners.get(m.weight.data_ptr(), [])
            if len(tied) > 1:
                raise ValueError(
                    f"LoRA target {n!r} has a weight tied to {tied}; adapt untied layers only "
                    f"(linear modules: {names})"
                )


def apply_lora(
    model: PreTrainedModel,
    *,
    r: int,
    alpha: float,
    dropout: float = 0.0,
    target_modules: Sequence[str] | Literal["all-linear"] = DEFAULT_TARGET_MODULES,
) -> Any:
    """Wrap a Hugging Face causal LM with a fresh LoRA adapter; only the adapter trains.

    Args:
        model: a plain `PreTrainedModel` (modified in place: peft injects its layers into it;
            deepcopy it first if the plain model is still needed).
        r: adapter rank (> 0).
        alpha: the LoRA alpha; the update is scaled by `alpha / r` (Hu et al. 2021), not rsLoRA.
        dropout: dropout on the adapter's input in train mode (the merged weights of
            `merged_named_parameters` are the eval-mode function, as for any dropout).
        target_modules: last name components of the linear layers to adapt (peft's suffix
            match), or `"all-linear"` (every linear layer except the output head, peft's rule).

    Returns:
        A `peft.PeftModelForCausalLM`: base weights frozen (`requires_grad=False`), the adapter
        tensors (`lora_A`, `lora_B`) trainable; give the optimizer
        `[p for p in model.parameters() if p.requires_grad]`.

    Raises:
        ValueError: a target that matches no linear layer (the message lists the model's linear
            module names), a tied target, a bad `r`/`alpha`/`dropout`, or an already-wrapped model.
        ImportError: peft is not installed.
    """
    import torch

    peft = _peft()
    if is_lora(model):
        raise ValueError("apply_lora: the model already has a peft adapter")
    if r <= 0 or alpha <= 0 or not 0.0 <= dropout < 1.0:
        raise ValueError(
            f"apply_lora: need r > 0, alpha > 0, 0 <= dropout < 1; got {r=}, {alpha=}, {dropout=}"
        )
    linears = _linears(model)
    if isinstance(target_modules, str):
        if target_modules != "all-linear":
            raise ValueError(
                f"target_modules must be a list of module names or 'all-linear', got "
                f"{target_modules!r}; the model's linear modules are: {linear_module_names(model)}"
            )
        head = model.get_output_embeddings()
        adapted = [m for m in linears.values() if m is not head]  # peft's all-linear rule
        if not adapted:
            raise ValueError(f"{type(model).__name__} has no linear layers to adapt")
        targets: str | list[str] = target_modules
    else:
        targets = list(target_modules)
        if not targets:
            raise ValueError("target_modules is empty")
        _check_targets(model, targets)
        adapted = [m for n, m in linears.items() if any(_matches(n, t) for t in targets)]
    # Conv1D layers store W transposed; peft would flip the flag per layer with a warning
    fan_in_fan_out = all(not isinstance(m, torch.nn.Linear) for m in adapted)
    config = peft.LoraConfig(
        task_type="CAUSAL_LM",
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=targets,
        bias="none",
        use_rslora=False,
        use_dora=False,
        fan_in_fan_out=fan_in_fan_out,
    )
    with warnings.catch_warnings():
        # peft (0.21) calls a transformers-5 deprecated alias while wrapping: library noise
        warnings.filterwarnings(
            "ignore", message=".*is_gradient_checkpointing", category=FutureWarning
        )
        # get_peft_model freezes every base parameter and leaves only the adapter trainable
        return peft.get_peft_model(model, config)


def _lora_layers(base: torch.nn.Module) -> dict[str, Any]:
    from peft.tuners.lora import LoraLayer

    return {n: m for n, m in base.named_modules() if isinstance(m, LoraLayer)}


def _delta(layer: Any, name: str) -> torch.Tensor | None:
    """The sum of the active, unmerged adapters' deltas of one LoRA layer (None when none apply),
    exactly as the layer's forward adds them (peft's `get_delta_weight`: scale * B @ A,
    transposed for fan_in_fan_out layers)."""
    if layer.merged:
        raise ValueError(
            f"{name}: the adapter is merged into the base weight in place; call "
            "model.unmerge_adapter() first"
        )
    if layer.disable_adapters:
        return None
    delta = None
    for adapter in layer.active_adapters:
        if adapter not in layer.lora_A:
            continue
        if adapter in layer.lora_variant:  # DoRA & co. do not merge to W + B @ A
            raise NotImplementedError(f"{name}: LoRA variant {adapter!r} is not plain LoRA")
        d = layer.get_delta_weight(adapter)
        delta = d if delta is None else delta + d
    return delta


def _plain_named(model: Any, *, buffers: bool = False) -> list[tuple[str, torch.Tensor]]:
    """(plain name, tensor) of every base parameter (or buffer), merged; adapter tensors omitted."""
    import torch

    base = base_model_of(model)
    if not is_lora(model):
        items = base.named_buffers() if buffers else base.named_parameters()
        return [(n, t.detach()) for n, t in items]
    layers = _lora_layers(base)
    out = []
    with torch.no_grad():
        items = base.named_buffers() if buffers else base.named_parameters()
        for name, tensor in items:
            owner, _, leaf = name.rpartition(".")
            if owner.endswith(_BASE_LAYER) and owner[: -len(_BASE_LAYER)] in layers:
                prefix = owner[: -len(_BASE_LAYER)]
                value = tensor.detach()
                if leaf == "weight" and not buffers:
                    delta = _delta(layers[prefix], prefix)
                    if delta is not None:
                        value = value + delta.to(value.dtype)  # out of place: W is untouched
                out.append((f"{prefix}.{leaf}", value))
                continue
            parts = owner.split(".")
            if any(".".join(parts[:k]) in layers for k in range(1, len(parts) + 1)):
                continue  # an adapter tensor (lora_A/lora_B/...) of a LoRA layer
            out.append((name, tensor.detach()))
    return out


def merged_named_parameters(model: Any) -> list[tuple[str, torch.Tensor]]:
    """Every base parameter under its plain Hugging Face name, with the LoRA delta merged.

    For an adapted linear layer the value is `W + (alpha / r) * B @ A` (transposed for
    `fan_in_fan_out` layers), summed over the active adapters, computed out of place; every other
    parameter (norms, embeddings, unadapted layers) is the model's own tensor, detached, not
    copied: treat the list as read-only. Names and order are those of the plain model's
    `named_parameters()` (tied weights once), e.g. `model.layers.0.self_attn.q_proj.weight`;
    adapter tensors are left out. This is what `engine.load_weights(...)` of an engine holding a
    plain copy of the base model takes after each update. A plain (non-peft) model gives its own
    `named_parameters()`, detached, so callers need not branch.
    """
    return _plain_named(model)


def plain_copy(model: Any) -> PreTrainedModel:
    """A plain model of the base's class (no peft) holding the merged weights, for an engine copy
    or export. Parameters and buffers are fresh tensors of the base's dtype and device; ties
    (e.g. tied embeddings) are those of a model built from the config; the generation config and
    train/eval mode are copied. Built by the class's constructor, so it pays one random init."""
    import copy

    base = base_model_of(model)
    plain = type(base)(copy.deepcopy(base.config))
    plain.generation_config = copy.deepcopy(base.generation_config)
    for kind, source in (
        ("parameter", _plain_named(model)),
        ("buffer", _plain_named(model, buffers=True)),
    ):
        target = dict(plain.named_parameters() if kind == "parameter" else plain.named_buffers())
        names = [n for n, _ in source]
        if sorted(names) != sorted(target):
            missing, extra = sorted(set(target) - set(names)), sorted(set(names) - set(target))
            raise RuntimeError(
                f"plain_copy: {type(base).__name__} {kind}s differ from the base model's: "
                f"{missing=}, {extra=}"
            )
        for name, value in source:
            # `.data =` keeps the Parameter object, so weights tied in `plain` stay tied
            target[name].data = value.detach().clone()
    plain.train(base.training)
    return plain


def adapter_state_dict(model: Any) -> dict[str, torch.Tensor]:
    """The adapter tensors only, under peft's names (those of `adapter_model.safetensors`, e.g.
    `base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`), cloned and detached."""
    peft = _peft()
    _require_lora(model, "adapter_state_dict")
    sd = peft.get_peft_model_state_dict(model)
    return {k: v.detach().clone() for k, v in sd.items()}


def load_adapter_state_dict(model: Any, state_dict: dict[str, torch.Tensor]) -> None:
    """Load adapter tensors saved by `adapter_state_dict`, strictly.

    Raises:
        KeyError: naming the missing and unexpected keys when they differ from the model's.
        ValueError: naming a key whose shape differs.
    """
    peft = _peft()
    _require_lora(model, "load_adapter_state_dict")
    want = peft.get_peft_model_state_dict(model)
    missing = sorted(set(want) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(want))
    if missing or unexpected:
        raise KeyError(f"adapter state dict does not match the model: {missing=}, {unexpected=}")
    for key, value in state_dict.items():
        if tuple(value.shape) != tuple(want[key].shape):
            raise ValueError(
                f"adapter tensor {key!r} has shape {tuple(value.shape)}, "
                f"expected {tuple(want[key].shape)}"
            )
    result = peft.set_peft_model_state_dict(model, state_dict)
    # peft reports the adapter keys it did not fill (our pre-check makes this a safety net)
    left = [k for k in result.missing_keys if "lora_" in k]
    if result.unexpected_keys or left:
        raise KeyError(
            f"peft did not load the adapter exactly: missing={left}, "
            f"unexpected={list(result.unexpected_keys)}"
        )


def save_adapter(model: Any, out_dir: str | Path) -> Path:
    """Write the adapter in peft's format (`adapter_config.json` + `adapter_model.safetensors`),
    which `PeftModel.from_pretrained(base, out_dir)` loads onto a plain base model."""
    _peft()
    _require_lora(model, "save_adapter")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out), safe_serialization=True)
    return out


def export_merged(
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
    out_dir: str | Path,
    *,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write base + adapter merged as a plain Hugging Face directory (`save_policy`), which
    `AutoModelForCausalLM.from_pretrained(out_dir)` opens without peft."""
    return save_policy(plain_copy(model), tokenizer, out_dir, extra=extra)


def load_adapter_checkpoint(path: str | Path) -> tuple[Any, PreTrainedTokenizerBase]:
    """A LoRA checkpoint (`save_adapter` output + tokenizer files) as (peft model, tokenizer):
    the base from `adapter_config.json`'s `base_model_name_or_path`, the adapter loaded strictly."""
    import json

    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    _peft()
    path = Path(path)
    config = json.loads((path / ADAPTER_CONFIG).read_text())
    base_path = config.get("base_model_name_or_path")
    if not base_path:
        raise ValueError(f"{path / ADAPTER_CONFIG}: no base_model_name_or_path")
    base, _ = load_policy(base_path)
    model = apply_lora(base, r=int(config["r"]), alpha=float(config["lora_alpha"]),
                       dropout=float(config.get("lora_dropout", 0.0)),
                       target_modules=_targets(config["target_modules"]))  # fmt: skip
    load_adapter_state_dict(model, load_file(str(path / ADAPTER_WEIGHTS)))
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    return model, tokenizer


def _targets(saved: Any) -> Sequence[str] | Literal["all-linear"]:
    # peft saves target_modules as a list (or a regex string; "all-linear" is expanded on save)
    return saved if isinstance(saved, str) and saved == "all-linear" else tuple(saved)


def _require_lora(model: Any, what: str) -> None:
    if not is_lora(model):
        raise TypeError(f"{what}: {type(model).__name__} is not a peft model (see apply_lora)")
