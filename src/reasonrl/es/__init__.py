"""Evolution strategies trainer: EGGROLL low-rank ES (arXiv 2511.16652) on the RL run machinery.

`reasonrl train RECIPE` with `algo.kind: es` runs `run.train`: the RL loop of `reasonrl.rl.run`
(checkpoints, resume, metrics.jsonl, held-out evaluation, signals, report) with `step.es_step`
in place of the policy-gradient step. The maths is `reasonrl.algos.es`; applying a member's
perturbation to a model (forward hooks or in place) is `perturb`; the update is `update`.
"""
