"""Dependents, signatures and trust policies: what they cost (figures printed, nothing asserted).

What it measures (medians of ``--repeat`` runs, baselines measured in the same run):

1. Finding the dependents of ``physics/drag@1.0.1`` in a registry of ``--hybrids`` hybrids
   (default 1,000), 20 of which require drag (target <= 50 ms): ``Registry.dependents``
   alone, and :func:`modreg.deps.find_dependents` (reverse index + the 20 manifests
   read to filter ranges), against a scan of every version's manifest, what it would cost
   without the index.
2. ``modreg sign`` (pull, hash, sign, store) and signature verification (hash the pulled
   folder, check the signature) of a ~100k-parameter MLP module (target <= 0.2 s each);
   the one-off import of ``model_signing`` is reported on its own line.
3. A pull under a trust policy against the same pull without one, each into a fresh
   folder, interleaved (target <= 1.3x).

Run (from the repository root, with the venv active)::

    python benchmarks/bench_dependents.py
    python benchmarks/bench_dependents.py --hybrids 200 --repeat 5   # a quick run
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml
from rich.console import Console
from rich.progress import track
from safetensors.numpy import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository's tests/

from modreg.registry import Registry, VersionRecord
from modreg.spec.archs import MLPSpec, expected_tensors
from modreg.spec.graph import LockedModule, LockFile, dump_lock
from tests._helpers import write_keypair

ROOT = Path(__file__).resolve().parent.parent
DEPENDING = 20
console = Console()


def _median(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _hybrid(folder: Path, name: str, module: str, record: VersionRecord, spec: str) -> Path:
    """A small hybrid manifest ``F = part.F`` over one module, with its lock."""
    folder.mkdir(parents=True)
    if module == "physics/drag":
        inputs: dict[str, object] = {"v": {"unit": "m/s", "shape": [3]}}
        wires, out = {"p.v": "v", "p.rho": "1.2"}, {"unit": "N", "shape": [3]}
    else:  # physics/gravity
        inputs = {"m1": {"unit": "kg"}, "m2": {"unit": "kg"}, "r": {"unit": "m"}}
        wires, out = {f"p.{port}": port for port in inputs}, {"unit": "N"}
    manifest = {
        "name": name,
        "version": "1.0.0",
        "kind": "hybrid",
        "inputs": inputs,
        "outputs": {"F": out},
        "requires": {module: spec},
        "graph": {
            "parts": {"p": {"module": module}},
            "wires": wires,
            "outputs": {"F": "p.F"},
        },
    }
    (folder / "modreg.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    pin = LockedModule(version=record.version, digest=record.digest)
    (folder / "modreg.lock").write_text(dump_lock(LockFile(modules={module: pin})))
    return folder


def _drag_101(tmp: Path) -> Path:
    text = (ROOT / "modules" / "drag" / "modreg.yaml").read_text()
    folder = tmp / "drag-1.0.1"
    folder.mkdir()
    (folder / "modreg.yaml").write_text(text.replace("version: 1.0.0", "version: 1.0.1"))
    return folder


def bench_dependents(tmp: Path, hybrids: int, repeat: int) -> list[tuple[str, str, str]]:
    from modreg.deps.dependents import find_dependents

    registry = Registry(tmp / "registry")
    drag = registry.resolve(registry.publish(ROOT / "modules" / "drag").ref)
    gravity = registry.resolve(registry.publish(ROOT / "modules" / "gravity").ref)
    registry.publish(_drag_101(tmp))
    for i in track(range(hybrids), description="publishing hybrids", console=console):
        on_drag = i % (hybrids // DEPENDING) == 0 and i // (hybrids // DEPENDING) < DEPENDING
        module, record = ("physics/drag", drag) if on_drag else ("physics/gravity", gravity)
        spec = ">=1.0.0,<2" if i % 2 else "~=1.0"
        registry.publish(
            _hybrid(tmp / "src" / f"h{i:05d}", f"bench/h-{i:05d}", module, record, spec)
        )
    _, found = find_dependents(registry, "physics/drag@1.0.1")
    assert len(found) == DEPENDING, len(found)  # the figure below is about finding these

    def scan() -> list[str]:
        hits = []
        for row in registry.list():
            for version in row.versions:
                _, manifest = registry.manifest(f"{row.name}@{version}")
                if "physics/drag" in (manifest.requires or {}):
                    hits.append(manifest.ref)
        return hits

    index = _median(lambda: registry.dependents("physics/drag"), repeat)
    finding = _median(lambda: find_dependents(registry, "physics/drag@1.0.1"), repeat)
    scanning = _median(scan, max(1, repeat // 5))
    total = hybrids + 3
    return [
        (f"dependents listing ({DEPENDING} of {total} versions)", f"{index * 1e3:.2f} ms", "—"),
        (
            "find_dependents (index + ranges)",
            f"{finding * 1e3:.1f} ms (scan of every manifest: {scanning * 1e3:.0f} ms, "
            f"{scanning / finding:.0f}×)",
            "≤ 50 ms",
        ),
    ]


def _network(folder: Path) -> Path:
    """A ~100k-parameter MLP module (2 -> 316 -> 316 -> 1)."""
    folder.mkdir(parents=True)
    spec = MLPSpec(arch="mlp", hidden=[316, 316])
    shapes = expected_tensors(spec, 2, 1)
    rng = np.random.default_rng(0)
    save_file(
        {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()},
        str(folder / "weights.safetensors"),
    )
    manifest = {
        "name": "bench/net",
        "version": "1.0.0",
        "kind": "network",
        "inputs": {"x": {"unit": "m", "shape": [2]}},
        "outputs": {"y": {"unit": "s"}},
        "network": {"arch": "mlp", "hidden": [316, 316], "activation": "tanh"},
        "weights": "weights.safetensors",
    }
    (folder / "modreg.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return folder


def bench_signing(tmp: Path, repeat: int) -> list[tuple[str, str, str]]:
    from modreg import signing

    registry = Registry(tmp / "signing-registry")
    ref = registry.publish(_network(tmp / "net")).ref
    params = sum(
        int(np.prod(s))
        for s in expected_tensors(MLPSpec(arch="mlp", hidden=[316, 316]), 2, 1).values()
    )
    private, public = write_keypair(tmp)
    start = time.perf_counter()
    import model_signing.signing  # noqa: F401  (the one-off cost, reported on its own)

    imported = time.perf_counter() - start
    keys = signing.load_trusted_keys([public])
    registries = [Registry(tmp / f"sign-{i}") for i in range(repeat)]
    for other in registries:
        other.publish(tmp / "net")
    times = []
    for other in registries:  # each sign is a first signature (a re-sign is a no-op)
        begin = time.perf_counter()
        signing.sign(other, ref, private)
        times.append(time.perf_counter() - begin)
    sign_time = statistics.median(times)
    signing.sign(registry, ref, private)
    record = registry.resolve(ref)
    folder = registry.pull(ref, to=tmp / "pulled").path
    verify = _median(lambda: signing.enforce_trust(registry, record, folder, keys), repeat)
    fast = Registry(tmp / "blake3-registry")  # the same module signed with a blake3 statement
    fast.publish(tmp / "net")
    signing.sign(fast, ref, private, algorithm="blake3")

    pulls: dict[str, Callable[[Path], object]] = {
        "plain": lambda to: registry.pull(ref, to=to),
        "sha256": lambda to: signing.trusted_pull(registry, ref, to=to, keys=keys),
        "blake3": lambda to: signing.trusted_pull(fast, ref, to=to, keys=keys),
    }
    runs: dict[str, list[float]] = {label: [] for label in pulls}
    for i in range(repeat * 4):  # interleaved, each into a fresh folder
        for label, pull in pulls.items():
            begin = time.perf_counter()
            pull(tmp / "pulls" / f"{label}-{i}")
            runs[label].append(time.perf_counter() - begin)
    plain, sha, b3 = (statistics.median(runs[k]) for k in ("plain", "sha256", "blake3"))
    cold_plain, cold_trusted = _cold_pulls(tmp, registry, ref, public, repeat)
    return [
        (
            f"sign, {params:,}-parameter MLP",
            f"{sign_time:.3f} s (+{imported:.2f} s first import of model_signing)",
            "≤ 0.2 s",
        ),
        ("verify its signature (hash + ECDSA)", f"{verify * 1e3:.1f} ms", "≤ 0.2 s"),
        (
            "pull with trust policy vs without (sha256 statement)",
            f"{sha * 1e3:.1f} ms vs {plain * 1e3:.1f} ms ({sha / plain:.2f}×)",
            "≤ 1.3×",
        ),
        (
            "same, blake3 statement (sign --hash blake3)",
            f"{b3 * 1e3:.1f} ms vs {plain * 1e3:.1f} ms ({b3 / plain:.2f}×)",
            "≤ 1.3×",
        ),
        (
            "same, cold `modreg pull` (sha256 statement)",
            f"{cold_trusted:.3f} s vs {cold_plain:.3f} s ({cold_trusted / cold_plain:.2f}×)",
            "≤ 1.3×",
        ),
    ]


def _cold_pulls(
    tmp: Path, registry: Registry, ref: str, public: Path, repeat: int
) -> tuple[float, float]:
    """``modreg pull`` in a fresh process, without and with MODREG_TRUSTED_KEYS, interleaved."""
    import os
    import subprocess

    location = registry.store.location
    env = {k: v for k, v in os.environ.items() if k != "MODREG_TRUSTED_KEYS"}
    runs: dict[str, list[float]] = {"plain": [], "trusted": []}
    for i in range(repeat):
        for label, extra in (("plain", {}), ("trusted", {"MODREG_TRUSTED_KEYS": str(public)})):
            command = [sys.executable, "-m", "modreg", "pull", ref, "-r", location]
            command += ["--to", str(tmp / "cold" / f"{label}-{i}")]
            begin = time.perf_counter()
            subprocess.run(command, env=env | extra, check=True, capture_output=True)
            runs[label].append(time.perf_counter() - begin)
    return statistics.median(runs["plain"]), statistics.median(runs["trusted"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hybrids", type=int, default=1000, help="hybrids in the registry")
    parser.add_argument("--repeat", type=int, default=9, help="runs per timing (median)")
    args = parser.parse_args(argv)
    if args.hybrids < DEPENDING:
        parser.error(f"--hybrids must be at least {DEPENDING}")
    tmp = Path(tempfile.mkdtemp(prefix="modreg-bench-deps-"))
    try:
        rows = bench_dependents(tmp, args.hybrids, args.repeat) + bench_signing(tmp, args.repeat)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    from rich.table import Table

    table = Table("benchmark", "figure", "target", box=None, header_style="bold")
    for row in rows:
        table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    main()
