"""Preference learning: reward-model training (`train`, `reasonrl rm`), DPO/IPO/cDPO (`dpo`,
`reasonrl dpo`), pairwise data (`data`) and pair builders from a model's own samples (`pairs`).

The reward-model module itself is `reasonrl.models.reward_model` (the learned reward of
`reasonrl.rewards.learned` loads it too); the losses are `reasonrl.algos.preference`.
See docs/preferences.md.
"""
