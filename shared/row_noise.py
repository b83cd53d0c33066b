"""Per-item noise streams: one torch.Generator per row of a batch, seeded from a key per item.

A link that micro-batches frames as they arrive puts each image into a batch whose size and
neighbours depend on timing. With one generator per batch, an image's noise then depends on its
neighbours, and no run repeats. :class:`RowNoise` gives each row its own stream, seeded from the
item's key (a seed and, e.g., a frame id), so an image's noise is the same whatever batch it is
in. The diffusion math (:mod:`shared.diffusion`) takes it wherever it takes a ``generator``.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch


def stream_seed(*key: object) -> int:
    """A 63-bit seed from ``key`` (ints and strings), stable across processes and Python versions."""
    digest = hashlib.sha256(repr(key).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


class RowNoise:
    """One CPU generator per row; ``rows`` of a batch [B, ...] draw from ``generators[i]`` each."""

    def __init__(self, generators: Sequence[torch.Generator]):
        self.generators = list(generators)

    @classmethod
    def for_keys(cls, keys: Sequence[tuple]) -> RowNoise:
        """Generators seeded with :func:`stream_seed` of each row's key tuple."""
        return cls([torch.Generator().manual_seed(stream_seed(*key)) for key in keys])

    def __len__(self) -> int:
        return len(self.generators)

    def subset(self, rows: torch.Tensor | Sequence[int]) -> RowNoise:
        """The streams of ``rows`` (indices), in that order (they keep drawing where they are)."""
        return RowNoise([self.generators[int(i)] for i in rows])

    def randn_like(self, like: torch.Tensor, active: torch.Tensor | None = None) -> torch.Tensor:
        """Standard normal noise shaped like ``like`` [B, ...], row i from stream i; rows where ``active``
        [B] is False get zeros and leave their stream untouched."""
        if len(self.generators) != like.shape[0]:
            raise ValueError(f"{len(self.generators)} noise streams for a batch of {like.shape[0]}")
        rows = []
        for i, generator in enumerate(self.generators):
            if active is None or bool(active[i]):
                rows.append(torch.randn(like.shape[1:], generator=generator, dtype=like.dtype))
            else:
                rows.append(torch.zeros(like.shape[1:], dtype=like.dtype))
        return torch.stack(rows).to(like.device)
