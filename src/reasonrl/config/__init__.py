"""Typed, validated configuration: one YAML recipe plus dotted command-line overrides.

    from reasonrl.config import load_config
    cfg = load_config("recipes/grpo.yaml", ["algo.clip_high=0.28"])      # an RLConfig
    cfg = load_config("recipes/pretrain_synth_micro.yaml", schema=SFTConfig)

`base` holds the strict field types and `ConfigModel`; `rl` and `sft` the two run schemas; `load`
reads recipes and writes resolved configs; `errors` and `yaml_io` turn every mistake into one line
that names the file and the key.
"""

from reasonrl.config.base import Bool, ConfigModel, Float, Int, NonNegInt, PosInt
from reasonrl.config.errors import ConfigError
from reasonrl.config.load import load_config, save_resolved
from reasonrl.config.rl import (
    AlgoConfig,
    CriticConfig,
    DataConfig,
    EvalConfig,
    ModelConfig,
    OptimConfig,
    RewardConfig,
    RLConfig,
    RolloutConfig,
    TrainerConfig,
)
from reasonrl.config.sft import SFTConfig
from reasonrl.config.yaml_io import parse_override

__all__ = [
    "AlgoConfig",
    "Bool",
    "ConfigError",
    "ConfigModel",
    "CriticConfig",
    "DataConfig",
    "EvalConfig",
    "Float",
    "Int",
    "ModelConfig",
    "NonNegInt",
    "OptimConfig",
    "PosInt",
    "RLConfig",
    "RewardConfig",
    "RolloutConfig",
    "SFTConfig",
    "TrainerConfig",
    "load_config",
    "parse_override",
    "save_resolved",
]
