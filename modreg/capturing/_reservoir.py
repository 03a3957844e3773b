"""A seeded reservoir of rows (Algorithm R, vectorised): a uniform sample of every row seen.

Rows arrive in chunks (one per call of the captured part); row ``i`` of the stream (from 0)
is kept with probability ``capacity / (i + 1)``, replacing a uniformly chosen slot, so after
any number of rows the reservoir is a uniform sample of them, and the same stream and seed
keep the same rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["Reservoir"]

Array = np.ndarray[Any, Any]


class Reservoir:
    """At most ``capacity`` rows of aligned arrays (one per port), uniformly sampled."""

    def __init__(self, capacity: int, seed: int) -> None:
        self.capacity = capacity
        self.seen = 0
        self._rng = np.random.default_rng(seed)
        self._slots: dict[str, Array] = {}
        self._filled = 0

    def add(self, chunk: Mapping[str, Array]) -> None:
        """Offer ``len(chunk[*])`` rows, the same count for every array."""
        count = len(next(iter(chunk.values())))
        if not self._slots:
            self._slots = {
                n: np.empty((self.capacity, *a.shape[1:]), dtype=a.dtype) for n, a in chunk.items()
            }
        fill = min(count, self.capacity - self._filled)
        for name, values in chunk.items():
            self._slots[name][self._filled : self._filled + fill] = values[:fill]
        self._filled += fill
        rest = np.arange(self.seen + fill, self.seen + count)
        self.seen += count
        if rest.size == 0:
            return
        slots = self._rng.integers(0, rest + 1)
        kept = np.flatnonzero(slots < self.capacity)
        # A later row wins a slot drawn twice in one chunk, as the sequential algorithm has it.
        last = len(kept) - 1 - np.unique(slots[kept][::-1], return_index=True)[1]
        rows, targets = kept[last] + fill, slots[kept[last]]
        for name, values in chunk.items():
            self._slots[name][targets] = values[rows]

    def arrays(self) -> dict[str, Array]:
        """Copies of the rows kept, in slot order."""
        return {n: a[: self._filled].copy() for n, a in self._slots.items()}
