"""reasonrl: reinforcement-learning post-training of language models for verifiable reasoning.

The Python API (docs/python-api.md):

    from reasonrl import load_config, train, evaluate, RewardResult
    cfg = load_config("recipes/grpo.yaml", ["trainer.steps=20"])
    state = train(cfg, reward_fn=my_reward, callbacks=[MyCallback()])

`import reasonrl` is deliberately light: it imports only the typed data structures. `load_config`
(`reasonrl.config`), `train` (`reasonrl.rl.run`), `evaluate` (`reasonrl.eval.evaluate`),
`Callback` (`reasonrl.rl.callbacks`) and `RewardFn` (`reasonrl.rewards.api`) are imported on
first use (PEP 562), and only they pull in pydantic, torch and transformers.
"""

from __future__ import annotations

from reasonrl.exports import lazy_exports
from reasonrl.types import Batch, Completion, RewardResult, Rollout, Sample

__version__ = "0.1.0"

# name -> module that defines it, imported on first access. Plain strings, not imports: the
# layering rule lets the root package import only `types` (tests/test_layering.py), and these
# modules sit in the top layers.
_LAZY = {
    "load_config": "reasonrl.config",
    "train": "reasonrl.rl.run",
    "evaluate": "reasonrl.eval.evaluate",
    "Callback": "reasonrl.rl.callbacks",
    "RewardFn": "reasonrl.rewards.api",
}


__getattr__, __dir__ = lazy_exports(globals(), _LAZY)

__all__ = [
    "Batch",
    "Callback",
    "Completion",
    "RewardFn",
    "RewardResult",
    "Rollout",
    "Sample",
    "__version__",
    "evaluate",
    "load_config",
    "train",
]
