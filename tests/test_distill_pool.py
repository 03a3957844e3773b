"""The search's worker pool: clean processes, one linear-algebra thread each."""

from __future__ import annotations

import os
import time

from modreg.distill._pool import Runner


def _threads_setting(_i: int) -> tuple[str | None, int]:
    import numpy as np

    np.linalg.qr(np.random.default_rng(0).random((300, 40)))  # starts BLAS's threads, if any
    return os.environ.get("OPENBLAS_NUM_THREADS"), len(os.listdir("/proc/self/task"))


def test_workers_run_one_blas_thread_and_the_caller_keeps_its_environment() -> None:
    """Rule: two workers on two cores are faster than one, not ten times slower (busy
    OpenBLAS threads of every worker fighting over the cores)."""
    before = os.environ.get("OPENBLAS_NUM_THREADS")
    with Runner(2, time.monotonic() + 60) as runner:
        got = runner.map(_threads_setting, [(0,), (1,)])
    assert [setting for setting, _ in got] == ["1", "1"]
    assert all(threads == 1 for _, threads in got)
    assert os.environ.get("OPENBLAS_NUM_THREADS") == before
