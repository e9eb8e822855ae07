"""Which schema a recipe is for, read from its header's Launch line (one rule for every test)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def recipe_schema(path: Path) -> Any:
    """RLConfig, unless the header launches `reasonrl sft|rm|dpo|irl RECIPE` (first such word)."""
    from reasonrl.config import RLConfig, SFTConfig
    from reasonrl.config.rm import DPOConfig, IRLConfig, RMConfig

    header = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    text = "\n".join(header)
    schemas = {"sft": SFTConfig, "rm": RMConfig, "dpo": DPOConfig, "irl": IRLConfig}
    found = [(text.find(f"reasonrl {cmd} "), s) for cmd, s in schemas.items()]
    found = [(i, s) for i, s in found if i >= 0]
    launch = text.find("# Launch:")
    if launch >= 0:  # the command the Launch line runs with THIS recipe wins
        own = [(i, s) for i, s in found if f"recipes/{path.name}" in text[i : text.find("\n", i)]]
        found = own or found
    return min(found, key=lambda f: f[0])[1] if found else RLConfig
