"""Log-probabilities of chosen tokens and entropy from logits, in row chunks.

A full float32 log-softmax of (N, T, V) logits costs N*T*V*4 bytes (e.g. 8 x 1024 x 151k = 5 GB).
Here rows are processed `chunk_size` at a time: log p(y) = logit_y - logsumexp(logits), so only one
(chunk, V) float32 block exists at once in the forward pass. Both functions are differentiable
(autograd keeps what each chunk's backward needs) and compute in float32 even when the logits are
bf16 or produced under autocast.

Shapes: N sequences, T positions, V vocabulary.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor


def _rows(logits: Tensor) -> Tensor:
    if logits.dim() < 2:
        raise ValueError(f"logits must have a vocabulary dimension, got {tuple(logits.shape)}")
    return logits.reshape(-1, logits.shape[-1])


def _float_chunks(
    rows: Tensor, chunk_size: int, temperature: float
) -> Iterator[tuple[int, Tensor]]:
    """(start, rows[start:start+chunk] / temperature in float32) for each chunk of rows: the
    full-vocabulary float32 copy exists for one chunk at a time."""
    for start in range(0, rows.shape[0], chunk_size):
        z = rows[start : start + chunk_size].float()
        yield start, (z / temperature if temperature != 1.0 else z)


def selected_logprobs(
    logits: Tensor, tokens: Tensor, *, chunk_size: int = 4096, temperature: float = 1.0
) -> Tensor:
    """log softmax(logits / temperature)[token], without materialising the full log-softmax.

    log p(y_t) = z_{t, y_t} - logsumexp_v z_{t, v},  z = logits / temperature (float32).
    Pass the sampler's temperature so trainer log-probs match the rollout distribution.

    Args:
        logits: (N, T, V) (any float dtype).
        tokens: (N, T) chosen token ids.
        chunk_size: rows (positions) per chunk.
        temperature: sampling temperature (> 0).

    Returns:
        (N, T) float32 log-probabilities.
    """
    if tokens.shape != logits.shape[:-1]:
        raise ValueError(f"tokens {tuple(tokens.shape)} vs logits {tuple(logits.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    rows, ids = _rows(logits), tokens.reshape(-1, 1).long()
    out = []
    with torch.autocast(device_type=logits.device.type, enabled=False):
        for start, z in _float_chunks(rows, chunk_size, temperature):
            chosen = z.gather(-1, ids[start : start + chunk_size]).squeeze(-1)
            out.append(chosen - torch.logsumexp(z, dim=-1))
    flat = torch.cat(out) if out else rows.new_zeros((0,), dtype=torch.float32)
    return flat.reshape(tokens.shape)


def entropy_from_logits(
    logits: Tensor, *, chunk_size: int = 4096, temperature: float = 1.0
) -> Tensor:
    """Entropy of softmax(logits / temperature) per position, computed chunk by chunk.

    H = logsumexp(z) - sum_v softmax(z)_v z_v  (= -sum p log p), z in float32.

    Args:
        logits: (N, T, V).
        chunk_size: rows per chunk.
        temperature: sampling temperature (> 0).

    Returns:
        (N, T) float32 entropies (nats).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    rows = _rows(logits)
    out = []
    with torch.autocast(device_type=logits.device.type, enabled=False):
        for _, z in _float_chunks(rows, chunk_size, temperature):
            lse = torch.logsumexp(z, dim=-1, keepdim=True)
            p = torch.exp(z - lse)
            out.append(lse.squeeze(-1) - (p * z).sum(dim=-1))
    flat = torch.cat(out) if out else rows.new_zeros((0,), dtype=torch.float32)
    return flat.reshape(logits.shape[:-1])
