"""reasonrl: reinforcement-learning post-training of language models for verifiable reasoning.

`import reasonrl` is deliberately light: it imports only the typed data structures. Models,
engines, rewards and trainers live in subpackages and pull in torch/transformers when used.
"""

from reasonrl.types import Batch, Completion, RewardResult, Rollout, Sample

__version__ = "0.1.0"
__all__ = ["Batch", "Completion", "RewardResult", "Rollout", "Sample", "__version__"]
