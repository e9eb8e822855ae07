"""Putting one population member's perturbation on a model, and taking it off again.

Which weights: the 2-D weights of the model's `nn.Linear` modules that no other module shares.
A tied LM head (its weight is the input embedding) is left out: a hook on its output could not
perturb the embedding side of the same tensor, so neither application mode touches it, and the
two modes perturb exactly the same function. Every other parameter (norms, biases, embeddings)
stays frozen, as EGGROLL's `freeze_nonlora=True` default does (arXiv 2511.16652; techniques.md
section 18).

Two ways to apply member i (`es.apply`):
- "hook": a forward hook on each target adds x B_i (s_i sigma/sqrt(r) A_i)^T to the layer's output,
  so the perturbed model exists only as rank-r factors (no m x n matrix, no weight copy). It needs
  an engine that runs the model's own modules (`rollout.engine=hf`, TransformersEngine).
- "inplace": W += E_i densely before generating and restored from one saved copy of the base
  weights afterwards (exact: no float drift from add-then-subtract). It works with any engine
  that reads the model's tensors, e.g. the fused engine, which repacks changed weights itself.

`MemberNoise.nbytes` is what one member's perturbation holds at once (the benchmark's memory
column): (m + n) r floats per weight for low rank, m n for full-rank ES.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from reasonrl.algos.es import (
    Noise,
    antithetic,
    full_noise,
    low_rank_factors,
    low_rank_forward_delta,
    low_rank_scale,
    noise_seed,
)


@dataclass(frozen=True)
class Target:
    """One perturbed weight: its parameter name, module and index (part of its noise seed)."""

    index: int
    name: str
    module: nn.Linear

    @property
    def shape(self) -> tuple[int, int]:
        m, n = self.module.weight.shape
        return int(m), int(n)


def es_targets(model: nn.Module) -> list[Target]:
    """The `nn.Linear` weights of `model` that ES perturbs (module docstring), in module order."""
    uses: dict[int, int] = {}
    for _, p in model.named_parameters(remove_duplicate=False):
        uses[id(p)] = uses.get(id(p), 0) + 1
    out: list[Target] = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and uses.get(id(module.weight), 0) == 1:
            out.append(Target(len(out), f"{name}.weight", module))
    if not out:
        raise ValueError(f"{type(model).__name__} has no untied nn.Linear weight to perturb")
    return out


@dataclass(frozen=True)
class NoiseSpec:
    """Everything that fixes the noise of a generation: seeds are derived from these alone."""

    seed: int  # the run's seed
    generation: int  # the ES generation (= the RL step counter)
    rank: int
    sigma: float
    noise: Noise = "low_rank"


class MemberNoise:
    """Member `member`'s noise on every target, regenerated from seeds (never stored between
    calls). Antithetic: members 2p and 2p + 1 draw the same tensors and differ in `sign`."""

    def __init__(self, targets: Sequence[Target], spec: NoiseSpec, member: int) -> None:
        self.spec, self.member = spec, member
        self.pair, self.sign = antithetic(member)
        self.tensors: list[tuple[Tensor, ...]] = []
        for t in targets:
            m, n = t.shape
            seed = noise_seed(spec.seed, spec.generation, self.pair, t.index)
            dev = t.module.weight.device
            if spec.noise == "low_rank":
                self.tensors.append(low_rank_factors(m, n, spec.rank, seed, device=dev))
            else:
                self.tensors.append((full_noise(m, n, seed, device=dev),))

    @property
    def nbytes(self) -> int:
        """Bytes of noise this member holds (measured on the tensors themselves)."""
        return sum(x.nbytes for ts in self.tensors for x in ts)

    def dense(self, i: int) -> Tensor:
        """E of target i as a dense (m, n) matrix (sign and sigma included)."""
        s = self.spec
        if s.noise == "low_rank":
            a, b = self.tensors[i]
            return low_rank_scale(s.sigma, s.rank, self.sign) * (a @ b.T)
        return self.sign * s.sigma * self.tensors[i][0]

    def output_delta(self, i: int, x: Tensor) -> Tensor:
        """x E_i^T for target i, without forming E_i in the low-rank case."""
        s = self.spec
        if s.noise == "low_rank":
            a, b = self.tensors[i]
            return low_rank_forward_delta(x, a, b, scale=low_rank_scale(s.sigma, s.rank, self.sign))
        return nn.functional.linear(x, (self.sign * s.sigma) * self.tensors[i][0].to(x.dtype))


@contextmanager
def hooked(targets: Sequence[Target], noise: MemberNoise) -> Iterator[None]:
    """Forward hooks adding x E^T to every target's output while inside."""
    handles = []
    for i, t in enumerate(targets):

        def hook(_m: nn.Module, inputs: tuple[Tensor, ...], out: Tensor, i: int = i) -> Tensor:
            return out + noise.output_delta(i, inputs[0]).to(out.dtype)

        handles.append(t.module.register_forward_hook(hook))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def base_copy(targets: Sequence[Target]) -> list[Tensor]:
    """The base weights, saved once per generation for the in-place mode's exact restore."""
    return [t.module.weight.detach().clone() for t in targets]


@contextmanager
def in_place(
    targets: Sequence[Target], noise: MemberNoise, base: Sequence[Tensor]
) -> Iterator[None]:
    """W = base + E while inside; W = base (bit-exact) after."""
    with torch.no_grad():
        for i, t in enumerate(targets):
            t.module.weight.add_(noise.dense(i).to(t.module.weight.dtype))
    try:
        yield
    finally:
        with torch.no_grad():
            for t, w in zip(targets, base, strict=True):
                t.module.weight.copy_(w)
