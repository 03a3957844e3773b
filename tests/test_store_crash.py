"""Crash safety and concurrency of publishing: ``kill -9`` mid-publish, racing publishers."""

from __future__ import annotations

import multiprocessing as mp
import shutil
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from modreg.registry import Registry

from ._helpers import race, write_network_module

# Kill points, spread evenly over every durable step of publishing eight modules (each child
# pays about a second of start-up: pint's registry is built per process).
KILL_POINTS = 24


@pytest.fixture(scope="module")
def ctx() -> Any:
    """A forkserver with modreg preloaded: children start in milliseconds, as real processes."""
    context = mp.get_context("forkserver")
    context.set_forkserver_preload(["modreg.registry", "tests._helpers", "boto3", __name__])
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
    versions = registry.versions("test/net")
    for version in versions:
        registry.pull(f"test/net@{version}", to=out / version)
    assert registry.verify().ok
    return len(versions)


# The filesystem calls that move a publish from one durable state to the next.
_STEPS = ("fsync", "link", "replace")


def _publish_until(registry: str, sources: list[str], stop_at: int, results: Any) -> None:
    """Child-process body: publish *sources*, halting before filesystem step *stop_at*.

    The parent kills the halted child with ``kill -9``, so each trial dies at a known point of
    the publish (no sleeps, no timing). ``stop_at=-1`` runs to the end and reports the step count.
    """
    import os

    count = 0

    def halting(real: Any) -> Any:
        def step(*args: Any, **kwargs: Any) -> Any:
            nonlocal count
            if count == stop_at:
                results.put(("halted", count))
                threading.Event().wait()  # until the parent's kill -9
            count += 1
            return real(*args, **kwargs)

        return step

    for name in _STEPS:
        setattr(os, name, halting(getattr(os, name)))
    registry_ = Registry(registry)
    for source in sources:
        registry_.publish(source)
    results.put(("done", count))


def _run_child(ctx: Any, registry: str, sources: list[str], stop_at: int) -> tuple[str, int]:
    results = ctx.Queue()
    child = ctx.Process(target=_publish_until, args=(registry, sources, stop_at, results))
    child.start()
    outcome: tuple[str, int] = results.get(timeout=120)
    child.kill()
    child.join()
    return outcome


def test_kill_9_during_publish_never_leaves_a_broken_version(ctx: Any, tmp_path: Path) -> None:
    sources = _sources(tmp_path / "src", 8, hidden=20_000)  # ~0.5 MB of weights each
    done, steps = _run_child(ctx, str(tmp_path / "whole"), sources, stop_at=-1)
    assert done == "done" and steps >= 3 * len(sources), f"publish made {steps} durable steps"
    # Kill points spread evenly from the first filesystem step of the first publish to the last
    # step of the last one; every trial dies mid-run at its own point.
    stops = sorted({round(i * (steps - 1) / (KILL_POINTS - 1)) for i in range(KILL_POINTS)})
    assert stops[0] == 0 and stops[-1] == steps - 1 and len(stops) == min(steps, KILL_POINTS)
    for trial, stop in enumerate(stops):
        registry_dir = tmp_path / f"registry{trial}"
        assert _run_child(ctx, str(registry_dir), sources, stop) == ("halted", stop)
        if not (registry_dir / "modreg-registry.json").exists():
            assert Registry(registry_dir).versions("test/net") == {}  # killed before it existed
        elif trial % 10 == 9:  # a full consistency check every 10 kills (pulls are the slow part)
            _assert_consistent(Registry(registry_dir), tmp_path / f"out{trial}")
        else:
            assert Registry(registry_dir).verify().ok
        if stop != stops[-1]:
            shutil.rmtree(registry_dir)
    # The survivors can always finish the job (on the registry killed at the very last step).
    registry = Registry(registry_dir)
    for source in sources:
        registry.publish(source)
    assert _assert_consistent(registry, tmp_path / "final") == len(sources)


@pytest.fixture(params=["local", "s3"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, str]]:
    """A fresh registry location on each real backend, and the environment that reaches it."""
    if request.param == "local":
        return str(tmp_path / "registry"), {}
    server = request.getfixturevalue("s3_env")
    return f"s3://modreg-test/race-{uuid.uuid4().hex[:12]}", dict(server.env)


def test_16_publishers_of_one_version_exactly_one_wins(
    ctx: Any, tmp_path: Path, location: tuple[str, dict[str, str]]
) -> None:
    """Races of 16 processes, each publishing other bytes as one name@version (ten on S3)."""
    where, env = location
    for round_ in range(10 if "://" in where else 2):
        sources = _sources(tmp_path / f"src{round_}", 16, hidden=500 + round_, same_version=True)
        registry_location = f"{where}-{round_}" if "://" in where else f"{where}{round_}"
        outcomes = race(ctx, registry_location, sources, env)
        assert outcomes == Counter(created=1, refused=15)
        registry = Registry(registry_location)
        assert list(registry.versions("test/net")) == ["1.0.0"]
        assert registry.verify().ok


def test_16_publishers_of_identical_bytes_all_succeed(
    ctx: Any, tmp_path: Path, location: tuple[str, dict[str, str]]
) -> None:
    source = _sources(tmp_path / "src", 1, hidden=2000)[0]
    outcomes = race(ctx, location[0], [source] * 16, location[1])
    assert outcomes == Counter(created=1, identical=15)


def test_16_publishers_of_distinct_versions_all_land(
    ctx: Any, tmp_path: Path, location: tuple[str, dict[str, str]]
) -> None:
    sources = _sources(tmp_path / "src", 16, hidden=2000)
    outcomes = race(ctx, location[0], sources, location[1])
    assert outcomes == Counter(created=16)
    registry = Registry(location[0])
    assert len(registry.list()[0].versions) == 16
    assert _assert_consistent(registry, tmp_path / "out") == 16
