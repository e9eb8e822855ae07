"""Pure RL maths: advantages, policy losses, aggregation, KL, importance correction, shaping.

Tensors in, tensors out; no config objects, no `.item()`, no I/O. Import the submodules
(`reasonrl.algos.advantages`, `.policy_loss`, ...) directly: this package file stays free of
torch so that `import reasonrl.algos` is cheap.
"""
