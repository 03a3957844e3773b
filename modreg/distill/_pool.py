"""Run search tasks in a fixed order under a wall-clock cap that is enforced, not hoped for.

Why processes from ``forkserver`` (``spawn`` where there is none) and not ``fork``: the
caller may hold threads (torch's pools, a progress bar), and a forked child inherits their
locks in whatever state they were in, so a child can deadlock before it runs a line. A
forkserver child is forked from a clean single-threaded server and holds no foreign locks.
The server preloads nothing (not even ``__main__``): starting a pool then waits for no
imports, and each worker imports the search modules itself, inside the cap, when its first
task arrives. Every task carries its arguments, so no module-level state is handed to a
worker.

The cap: results are collected in task order, and the wait for each one is bounded by the
time left. A worker that does not answer in time is killed with the whole pool and the
caller gets what was collected so far, flagged ``timed_out``. With ``workers=0`` tasks run in
this process and the cap is checked between tasks only (nothing can interrupt a running
task there); use it where processes cannot be started.
"""

from __future__ import annotations

import multiprocessing as mp
import sys
import time
from collections.abc import Callable, Sequence
from multiprocessing.pool import Pool
from typing import Any, TypeVar

__all__ = ["Runner"]

T = TypeVar("T")


def _context() -> Any:
    if sys.platform.startswith("linux") and "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload([])  # a pool start must not wait for imports (see above)
        return ctx
    return mp.get_context("spawn")


def _apply(job: tuple[Callable[..., Any], tuple[Any, ...]]) -> Any:
    fn, args = job
    return fn(*args)


class Runner:
    """Ordered task execution on ``workers`` clean processes, capped at ``deadline``."""

    def __init__(self, workers: int, deadline: float) -> None:
        self.workers = workers
        self.deadline = deadline  # time.monotonic() value
        self.timed_out = False
        self._pool: Pool | None = None

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop every worker (idempotent)."""
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def _expire(self) -> None:
        self.timed_out = True
        self.close()

    def map(
        self,
        fn: Callable[..., T],
        jobs: Sequence[tuple[Any, ...]],
        stop: Callable[[T], bool] = lambda _r: False,
    ) -> list[T]:
        """``fn(*job)`` for each job, in order, until ``stop(result)`` or the cap.

        Returns the results collected, in job order (a prefix of the jobs): the same prefix
        for the same inputs, whichever worker finished first.
        """
        results: list[T] = []
        if self.timed_out or not jobs:
            return results
        if self.workers <= 0:
            for job in jobs:
                if self.left() <= 0:
                    self._expire()
                    break
                results.append(fn(*job))
                if stop(results[-1]):
                    break
            return results
        if self._pool is None:
            self._pool = _context().Pool(self.workers)
        stream = self._pool.imap(_apply, [(fn, job) for job in jobs])
        for _ in jobs:
            try:
                result = stream.next(timeout=max(self.left(), 0.0))
            except mp.TimeoutError:
                self._expire()
                break
            results.append(result)
            if stop(result):
                break
        return results

    def call(self, fn: Callable[..., T], *args: Any) -> T | None:
        """One call under the cap; None when the cap cut it."""
        got = self.map(fn, [args])
        return got[0] if got else None
