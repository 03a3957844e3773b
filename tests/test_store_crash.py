"""Crash safety and concurrency of publishing: ``kill -9`` mid-publish, racing publishers."""

from __future__ import annotations

import multiprocessing as mp
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from modreg.registry import Registry

from ._helpers import publish_worker, write_network_module

TRIALS = 100


@pytest.fixture(scope="module")
def ctx() -> Any:
    """A forkserver with modreg preloaded: children start in milliseconds, as real processes."""
    context = mp.get_context("forkserver")
    context.set_forkserver_preload(["modreg.registry", "tests._helpers"])
    return context


def _sources(root: Path, count: int, *, hidden: int, same_version: bool = False) -> list[str]:
    return [
        str(
            write_network_module(
                root / f"m{i}",
                version="1.0.0" if same_version else f"1.0.{i}",
                summary=f"variant {i}",
                hidden=hidden,
                seed=i,
            )
        )
        for i in range(count)
    ]


def _assert_consistent(registry: Registry, out: Path) -> int:
    """Every visible version pulls verified; verify finds nothing damaged."""
    versions = registry.store.versions("test/net")
    for version in versions:
        registry.pull(f"test/net@{version}", to=out / version)
    assert registry.verify().ok
    return len(versions)


def test_kill_9_during_publish_never_leaves_a_broken_version(ctx: Any, tmp_path: Path) -> None:
    sources = _sources(tmp_path / "src", 8, hidden=20_000)  # ~0.5 MB of weights each
    registry_dir = str(tmp_path / "registry")
    rng = random.Random(1234)
    killed_mid_run = 0
    for trial in range(TRIALS):
        ready, results = ctx.Event(), ctx.Queue()
        child = ctx.Process(target=publish_worker, args=(registry_dir, sources, ready, results))
        child.start()
        assert ready.wait(30)
        time.sleep(rng.uniform(0.0, 0.03))
        child.kill()
        child.join()
        killed_mid_run += child.exitcode == -9
        if trial % 10 == 9:  # a full consistency check every 10 kills (pulls are the slow part)
            _assert_consistent(Registry(registry_dir), tmp_path / f"out{trial}")
        else:
            assert Registry(registry_dir).verify().ok
    assert killed_mid_run >= TRIALS // 2, "most kills must land while publishing"
    # The survivors can always finish the job.
    registry = Registry(registry_dir)
    for source in sources:
        registry.publish(source)
    assert _assert_consistent(registry, tmp_path / "final") == len(sources)


def _race(ctx: Any, registry_dir: str, sources: list[str]) -> Counter[str]:
    barrier, results = ctx.Barrier(len(sources)), ctx.Queue()
    children = [
        ctx.Process(target=publish_worker, args=(registry_dir, [s], barrier, results))
        for s in sources
    ]
    for child in children:
        child.start()
    outcomes = Counter(results.get(timeout=60)[1] for _ in children)
    for child in children:
        child.join()
        assert child.exitcode == 0
    return outcomes


def test_16_publishers_of_one_version_exactly_one_wins(ctx: Any, tmp_path: Path) -> None:
    sources = _sources(tmp_path / "src", 16, hidden=2000, same_version=True)
    outcomes = _race(ctx, str(tmp_path / "registry"), sources)
    assert outcomes == Counter(created=1, refused=15)
    registry = Registry(tmp_path / "registry")
    assert list(registry.store.versions("test/net")) == ["1.0.0"]
    assert registry.verify().ok


def test_16_publishers_of_identical_bytes_all_succeed(ctx: Any, tmp_path: Path) -> None:
    source = _sources(tmp_path / "src", 1, hidden=2000)[0]
    outcomes = _race(ctx, str(tmp_path / "registry"), [source] * 16)
    assert outcomes == Counter(created=1, identical=15)


def test_16_publishers_of_distinct_versions_all_land(ctx: Any, tmp_path: Path) -> None:
    sources = _sources(tmp_path / "src", 16, hidden=2000)
    outcomes = _race(ctx, str(tmp_path / "registry"), sources)
    assert outcomes == Counter(created=16)
    registry = Registry(tmp_path / "registry")
    assert len(registry.list()[0].versions) == 16
    assert _assert_consistent(registry, tmp_path / "out") == 16
