"""Which of a step's groups each rank owns: pure index arithmetic, no communication.

A draw of n prompts is split into M contiguous blocks, rank r owning
[floor(r n / M), floor((r + 1) n / M)): concatenating the blocks in rank order gives back the
draw order, so a tensor all-gathered in rank order is the single-process tensor row for row.
"""

from __future__ import annotations


def shard_range(n: int, rank: int, world_size: int) -> range:
    """The rows of n that `rank` of `world_size` owns (sizes differ by at most one)."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in a world of {world_size}")
    return range(rank * n // world_size, (rank + 1) * n // world_size)


def shard_sizes(n: int, world_size: int) -> list[int]:
    """len(shard_range(n, r, world_size)) for every rank r."""
    return [len(shard_range(n, r, world_size)) for r in range(world_size)]
