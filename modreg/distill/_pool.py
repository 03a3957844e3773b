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

import contextlib
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any, TypeVar

__all__ = ["Runner"]

T = TypeVar("T")


def _context() -> Any:
    if sys.platform.startswith("linux") and "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload([])  # a pool start must not wait for imports (see above)
        return ctx
    return mp.get_context("spawn")


_ONE_THREAD = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def _single_threaded_children() -> Iterator[None]:
    """Start processes whose linear algebra runs on one thread each.

    The workers are the parallelism. A worker imports numpy before its first job (the
    start method re-imports the caller's ``__main__``), so the thread count must be in the
    environment it starts with: OpenBLAS's busy-waiting threads, one per core in each of
    ``workers`` processes, made two workers ten times slower than one on small matrices.
    The caller's own environment is restored at once.
    """
    saved = {name: os.environ.get(name) for name in _ONE_THREAD}
    os.environ.update(dict.fromkeys(_ONE_THREAD, "1"))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _serve(conn: Connection) -> None:
    """A worker's loop: one job in, its result (or its exception) out, until told to stop."""
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        fn, args = job
        try:
            reply: tuple[bool, Any] = (True, fn(*args))
        except Exception as exc:  # handed to the caller, who raises it
            reply = (False, exc)
        conn.send(reply)


class _Worker:
    """One worker process and its pipe; ``job`` is the index it works on (None: idle),
    ``stale`` whether that result belongs to a map that has already returned."""

    def __init__(self, ctx: Any) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child,), daemon=True)
        self.process.start()
        child.close()
        self.job: int | None = None
        self.stale = False

    def kill(self) -> None:
        self.process.kill()
        self.process.join()
        self.conn.close()


class Runner:
    """Ordered task execution on ``workers`` clean processes, capped at ``deadline``.

    The workers are plain processes, each with its own pipe, driven from the caller's
    thread: no queue-feeding thread can block on a full pipe, so stopping at the cap is a
    kill that always returns (``multiprocessing.Pool.terminate`` can hang there, waiting on
    a task thread stuck writing a large task to workers that are gone).
    """

    def __init__(self, workers: int, deadline: float) -> None:
        self.workers = workers
        self.deadline = deadline  # time.monotonic() value
        self.timed_out = False
        self._pool: list[_Worker] | None = None

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop every worker (idempotent)."""
        if self._pool is not None:
            for worker in self._pool:
                worker.kill()
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
        for the same inputs, whichever worker finished first. Jobs still running when
        ``stop`` ends the map finish in the background; their results are discarded.
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
            ctx = _context()
            with _single_threaded_children():  # the forkserver, too, starts here
                self._pool = [_Worker(ctx) for _ in range(self.workers)]
        pool = self._pool
        done: dict[int, T] = {}
        sent = 0
        while len(results) < len(jobs):
            for worker in pool:
                if worker.job is None and sent < len(jobs):
                    worker.conn.send((fn, jobs[sent]))
                    worker.job, worker.stale, sent = sent, False, sent + 1
            busy = [w for w in pool if w.job is not None]
            ready = wait([w.conn for w in busy], timeout=max(self.left(), 0.0))
            if not ready:
                self._expire()
                return results
            for worker in busy:
                if worker.conn not in ready:
                    continue
                try:
                    ok, value = worker.conn.recv()
                except EOFError:  # the worker died (out of memory, killed)
                    self._expire()
                    return results
                index, stale = worker.job, worker.stale
                worker.job = None
                if stale:
                    continue
                if not ok:
                    raise value
                assert index is not None
                done[index] = value
            while len(results) in done:
                results.append(done.pop(len(results)))
                if stop(results[-1]):
                    for worker in pool:
                        worker.stale = worker.job is not None
                    return results
        return results

    def call(self, fn: Callable[..., T], *args: Any) -> T | None:
        """One call under the cap; None when the cap cut it."""
        got = self.map(fn, [args])
        return got[0] if got else None
