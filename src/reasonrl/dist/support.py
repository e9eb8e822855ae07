"""What the data-parallel step supports, checked before anything loads.

Each refusal names the setting and why: these need statistics or state that the rank-local
pieces do not share yet, and a silently different run is worse than a refusal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TOKEN_LEVEL = ("reinforce_pp", "gae")  # whitened / critic-based token advantages


def refusals(settings: Mapping[str, Any], world_size: int) -> list[str]:
    """Reasons a resolved config (`RLConfig.model_dump()`) cannot run on `world_size` ranks."""
    algo, rollout = settings["algo"], settings["rollout"]
    out = []
    if algo.get("kind") == "es":
        out.append("algo.kind=es has no data-parallel path")
    if algo["advantage"] in TOKEN_LEVEL:
        out.append(f"algo.advantage={algo['advantage']}: token-level advantages (batch "
                   "whitening over tokens, a critic) are not reduced across ranks yet")  # fmt: skip
    if algo.get("kl_target") is not None:
        out.append("algo.kl_target (adaptive KL): the controller would see one rank's KL")
    if settings["trainer"].get("parallel") == "fsdp2" and settings["model"].get("lora"):
        out.append("trainer.parallel=fsdp2 with model.lora: the adapter is small; use ddp")
    if rollout["prompts_per_step"] < world_size:
        out.append(f"rollout.prompts_per_step={rollout['prompts_per_step']} < {world_size} "
                   "ranks: every rank needs at least one group")  # fmt: skip
    return out


def check_supported(settings: Mapping[str, Any], world_size: int) -> None:
    """Raise ValueError listing every refusal (none: return)."""
    reasons = refusals(settings, world_size)
    if reasons:
        raise ValueError(f"not supported on {world_size} ranks: " + "; ".join(reasons))
