"""Registry benchmarks: cold-process CLI, publish/pull against MLflow, resolve at scale, big pulls.

What it measures (every timing is the median of ``--repeat`` runs; nothing is asserted):

1. ``modreg --help`` in a cold process, as ``python -m modreg`` and as the ``modreg`` console
   script (target <= 0.2 s), next to ``mlflow --help`` and a bare ``python -c pass``.
2. Publish (target <= 0.5 s) and pull (target <= 0.3 s) of a ~100k-parameter MLP module, each
   in a cold process, against MLflow's equivalent on a sqlite store in the same run:
   ``mlflow.pytorch.log_model`` + ``mlflow.register_model``, then
   ``mlflow.pytorch.load_model("models:/NAME/1")`` in another cold process.
3. Resolve of ``ns/mod-N@>=1.2,<2`` among 10,000 modules x 10 versions (target <= 50 ms):
   in-process median, and the first call of a fresh process (registry open included);
   ``Registry.list()`` over the same registry.
4. Pull of a ~1 GB weights module: throughput against ``shutil.copyfile`` of the same stored
   object on the same filesystem (goal >= 50 %), plus the one-off publish throughput; runs
   interleaved in a shuffled order, median and best reported.

Everything is written under a temp dir in /tmp that is removed at the end.

Run (from the repository root, with the venv active)::

    python benchmarks/bench_registry.py            # full run (~1 GB of weights, 100k records)
    python benchmarks/bench_registry.py --quick    # smoke run: 1,000 modules, 100 MB weights
    python benchmarks/bench_registry.py --repeat 3
    python benchmarks/bench_registry.py --only big --repeat 9
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import itertools
import json
import math
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import numpy as np
from rich.console import Console
from rich.table import Table

from modreg._content import FileEntry, hash_file, tree_digest
from modreg.registry import Registry, VersionRecord
from modreg.registry._index import IndexEntry, write_snapshot
from modreg.registry._keys import MARKER, record_key
from modreg.spec.archs import MLPSpec, expected_tensors
from modreg.store import LocalStore

MB = 1_000_000
SMALL_NAME = "bench/mlp-100k"
BIG_NAME = "bench/mlp-big"
MLFLOW_MODEL = "bench-mlp-100k"
SMALL_LAYOUT = (8, [256, 256, 128], 4)  # 101,508 parameters
RANGE_SPEC = ">=1.2,<2"
VERSIONS: tuple[str, ...] = ("0.9.0", "1.0.0", "1.1.0", "1.2.0", "1.2.1", "1.3.0", "1.4.0")
VERSIONS += ("1.5.2", "2.0.0", "2.1.0")  # RANGE_SPEC picks 1.5.2
PARTS = ("cli", "resolve", "big")
PULL = "pull (Registry.pull, in-process)"
COPY = "shutil.copyfile of the object (baseline)"
FILL_CHUNK = 1 << 24  # float32 values generated per step when writing weights

console = Console(width=120)


@dataclass(frozen=True)
class Sizes:
    """How big the scale benchmarks are."""

    modules: int
    weight_bytes: int


FULL = Sizes(modules=10_000, weight_bytes=1_000_000_000)
QUICK = Sizes(modules=1_000, weight_bytes=100_000_000)


# -- processes ---------------------------------------------------------------------------------
def child_env(tracking_uri: str | None = None) -> dict[str, str]:
    """The environment of every child: quiet, offline MLflow; no Python warnings."""
    env = dict(os.environ)
    env.update(
        PYTHONWARNINGS="ignore",
        MLFLOW_LOGGING_LEVEL="ERROR",
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
        MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
    )
    if tracking_uri:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    return env


def run_child(cmd: Sequence[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    """Run ``cmd`` to completion; its wall time in seconds and its stdout."""
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"command failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-3000:]}")
    return elapsed, done.stdout


def median_runs(repeat: int, run: Callable[[int], float]) -> float:
    """Median of ``run(i)`` for i in range(repeat)."""
    return statistics.median(run(i) for i in range(repeat))


def modreg_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "modreg", *args]


def script(name: str) -> str:
    """A console script installed next to the running interpreter."""
    return str(Path(sys.executable).with_name(name))


# -- module directories ------------------------------------------------------------------------
def mlp_params(n_in: int, hidden: Sequence[int], n_out: int) -> int:
    return sum(a * b + b for a, b in itertools.pairwise([n_in, *hidden, n_out]))


def hidden_width_for(weight_bytes: int) -> int:
    """Width h of a 1 -> [h, h] -> 1 MLP holding ``weight_bytes`` of float32 (h^2 + 4h + 1)."""
    params = weight_bytes / 4
    return round(-2 + math.sqrt(3 + params))


def write_safetensors(path: Path, shapes: dict[str, tuple[int, ...]], seed: int = 0) -> int:
    """Stream random float32 tensors into a safetensors file (never the whole file in memory)."""
    header: dict[str, object] = {}
    offset = 0
    for name, shape in shapes.items():
        nbytes = math.prod(shape) * 4
        span = [offset, offset + nbytes]
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": span}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the safetensors writer pads the header to 8 bytes
    rng = np.random.default_rng(seed)
    with open(path, "wb") as handle:
        handle.write(len(raw).to_bytes(8, "little") + raw)
        for shape in shapes.values():
            left = math.prod(shape)
            while left:
                count = min(left, FILL_CHUNK)
                handle.write((rng.standard_normal(count, dtype=np.float32) * 0.05).tobytes())
                left -= count
    return path.stat().st_size


def write_manifest(
    directory: Path, name: str, version: str, n_in: int, hidden: list[int], n_out: int
) -> None:
    manifest = f"""\
        name: {name}
        version: {version}
        kind: network
        summary: Benchmark MLP ({mlp_params(n_in, hidden, n_out):,} parameters)
        inputs:
          v: {{unit: m/s, shape: [{n_in}]}}
        outputs:
          F: {{unit: N, shape: [{n_out}]}}
        network: {{arch: mlp, hidden: {hidden}, activation: tanh}}
        weights: weights.safetensors
        """
    (directory / "modreg.yaml").write_text(textwrap.dedent(manifest))


def write_mlp_module(directory: Path, name: str, n_in: int, hidden: list[int], n_out: int) -> int:
    """Write a publishable mlp module at version 1.0.0; the weights' size in bytes."""
    directory.mkdir(parents=True, exist_ok=True)
    write_manifest(directory, name, "1.0.0", n_in, hidden, n_out)
    shapes = expected_tensors(MLPSpec(arch="mlp", hidden=hidden), n_in, n_out)
    return write_safetensors(directory / "weights.safetensors", shapes)


# -- 1. help -----------------------------------------------------------------------------------
def bench_help(work: Path, repeat: int) -> list[tuple[str, float, float | None, str]]:
    env = child_env()

    def timed(cmd: list[str]) -> float:
        return median_runs(repeat, lambda _: run_child(cmd, env, work)[0])

    mlflow_help = timed([script("mlflow"), "--help"])
    return [
        ("python -c pass (interpreter floor)", timed([sys.executable, "-c", "pass"]), None, ""),
        ("help: python -m modreg --help", timed(modreg_cmd("--help")), mlflow_help, "<= 0.2 s"),
        (
            "help: modreg --help (script)",
            timed([script("modreg"), "--help"]),
            mlflow_help,
            "<= 0.2 s",
        ),
    ]


# -- 2. publish / pull vs MLflow ---------------------------------------------------------------
# Both MLflow children silence warnings and logging themselves (MLflow installs its own
# handlers on import). log_model gets explicit pip_requirements=["torch"]: otherwise MLflow
# infers the environment by importing and inspecting packages (slow, and it may go online).
# serialization_format="pickle" (torch.save of the nn.Module): MLflow 3's default "pt2" needs
# an input_example and a torch.export trace, which is slower still; pickle is its cheap path.
MLFLOW_LOG = """\
import logging, sys, warnings
warnings.filterwarnings("ignore")
import mlflow, mlflow.pytorch, torch
from pathlib import Path
from safetensors.torch import load_file
logging.disable(logging.CRITICAL)
weights, artifacts, name = sys.argv[1:4]
state = load_file(weights)
n = sum(k.endswith(".weight") for k in state)
layers = []
for i in range(n):
    out_f, in_f = state[f"layers.{i}.weight"].shape
    layers += [torch.nn.Linear(in_f, out_f)] + ([torch.nn.Tanh()] if i < n - 1 else [])
model = torch.nn.Sequential(*layers)
renamed = {f"{2 * int(k.split('.')[1])}.{k.split('.')[2]}": v for k, v in state.items()}
model.load_state_dict(renamed)
if mlflow.get_experiment_by_name("bench") is None:  # "-": the tracking server's artifact store
    location = None if artifacts == "-" else Path(artifacts).as_uri()
    mlflow.create_experiment("bench", artifact_location=location)
mlflow.set_experiment("bench")
with mlflow.start_run():
    info = mlflow.pytorch.log_model(
        model, name="model", pip_requirements=["torch"], serialization_format="pickle"
    )
mlflow.register_model(info.model_uri, name)
"""
MLFLOW_LOAD = """\
import logging, sys, warnings
warnings.filterwarnings("ignore")
import mlflow, mlflow.pytorch
logging.disable(logging.CRITICAL)
model = mlflow.pytorch.load_model(sys.argv[1])
print(sum(p.numel() for p in model.parameters()))
"""


def bench_modreg_small(work: Path, repeat: int) -> tuple[float, float]:
    """Cold-process publish and pull medians of the ~100k-parameter module."""
    n_in, hidden, n_out = SMALL_LAYOUT
    module, registry, env = work / "small-module", work / "small-registry", child_env()
    write_mlp_module(module, SMALL_NAME, n_in, hidden, n_out)
    run_child(modreg_cmd("publish", str(module), "--registry", str(registry)), env, work)  # warm-up

    def publish(i: int) -> float:
        write_manifest(module, SMALL_NAME, f"1.0.{i + 1}", n_in, hidden, n_out)
        return run_child(
            modreg_cmd("publish", str(module), "--registry", str(registry)), env, work
        )[0]

    def pull(i: int) -> float:
        to = work / "small-pulls" / str(i)
        cmd = modreg_cmd(
            "pull", f"{SMALL_NAME}@1.0.0", "--to", str(to), "--registry", str(registry)
        )
        return run_child(cmd, env, work)[0]

    return median_runs(repeat, publish), median_runs(repeat, pull)


def bench_mlflow_small(work: Path, repeat: int) -> tuple[float, float]:
    """Cold-process log_model + register_model, and load_model, medians (sqlite store)."""
    root = work / "mlflow"
    root.mkdir()
    env = child_env(f"sqlite:///{root / 'mlflow.db'}")
    weights = work / "small-module" / "weights.safetensors"
    log = [sys.executable, "-c", MLFLOW_LOG, str(weights), str(root / "artifacts"), MLFLOW_MODEL]
    run_child(log, env, root)  # warm-up: creates the database (migrations) and version 1
    log_s = median_runs(repeat, lambda _: run_child(log, env, root)[0])
    load = [sys.executable, "-c", MLFLOW_LOAD, f"models:/{MLFLOW_MODEL}/1"]
    load_s = median_runs(repeat, lambda _: run_child(load, env, root)[0])
    return log_s, load_s


# -- 3. resolve / list at scale ----------------------------------------------------------------
def fake_record(name: str, version: str) -> tuple[bytes, IndexEntry]:
    """A minimal valid version record (digest consistent with its one file) and index line."""
    key = f"{name}@{version}".encode()
    sha, fast = hashlib.sha256(key).hexdigest(), hashlib.sha256(key[::-1]).hexdigest()
    entries = [FileEntry("modreg.yaml", sha, 200, fast)]
    digest = tree_digest(entries)
    record = VersionRecord(
        name=name,
        version=version,
        digest=digest,
        kind="equation",
        summary="benchmark filler",
        files=tuple(entries),
        published="2025-01-01T00:00:00+00:00",
    )
    return record.to_json(), IndexEntry(name, version, digest, "equation", "benchmark filler")


def build_big_registry(root: Path, modules: int) -> float:
    """Create ``modules`` x 10 version records through the store API; seconds taken.

    fsync is stubbed out while building: this is set-up, and 2-3 fsyncs per record would take
    minutes. The store's layout and code paths are otherwise the real ones.
    """
    store = LocalStore(root)
    index: list[IndexEntry] = []
    start = time.perf_counter()
    with mock.patch("os.fsync", return_value=None):
        store.put_if_absent(MARKER, b"{}")
        for i in range(modules):
            name = f"ns/mod-{i}"
            for version in VERSIONS:
                data, entry = fake_record(name, version)
                store.put_if_absent(record_key(name, version), data)
                index.append(entry)
        write_snapshot(store, index, through="", sequence=1)
    return time.perf_counter() - start


FRESH_RESOLVE = """\
import sys, time
t0 = time.perf_counter()
from modreg.registry import Registry
t1 = time.perf_counter()
record = Registry(sys.argv[1]).resolve(sys.argv[2])
t2 = time.perf_counter()
print(t1 - t0, t2 - t1, record.version)
"""


def bench_resolve(work: Path, sizes: Sizes, repeat: int) -> list[tuple[str, float, str]]:
    root = work / "big-registry"
    built = build_big_registry(root, sizes.modules)
    ref = f"ns/mod-{sizes.modules // 2}@{RANGE_SPEC}"
    registry = Registry(root)
    assert registry.resolve(ref).version == "1.5.2"
    calls = [_timed(lambda: registry.resolve(ref)) for _ in range(200)]
    fresh = [
        run_child([sys.executable, "-c", FRESH_RESOLVE, str(root), ref], child_env(), work)
        for _ in range(repeat)
    ]
    imports = statistics.median(float(out.split()[0]) for _, out in fresh)
    first = statistics.median(float(out.split()[1]) for _, out in fresh)
    listing = [_timed(registry.list) for _ in range(max(3, repeat))]
    count = len(registry.list())
    label = f"{sizes.modules:,} modules x {len(VERSIONS)} versions"
    return [
        (f"build registry ({label}, fsync off)", built, "< 120 s"),
        (f"resolve {ref} (in-process median of 200)", statistics.median(calls), "<= 50 ms"),
        ("resolve, first call in a fresh process (open + resolve)", first, "<= 50 ms"),
        ("  fresh process: import modreg.registry", imports, ""),
        ("  fresh process: whole child (wall)", statistics.median(w for w, _ in fresh), ""),
        (f"Registry.list() -> {count:,} rows (in-process median)", statistics.median(listing), ""),
    ]


def _timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


# -- 4. big pull vs file copy ------------------------------------------------------------------
def object_path(registry: Path, sha256: str) -> Path:
    """Where a LocalStore keeps an object (layout documented in modreg/store/local.py)."""
    return registry / "objects" / "sha256" / sha256[:2] / sha256[2:]


def copy_then(source: Path, target: Path, *, fsync: bool) -> float:
    start = time.perf_counter()
    shutil.copyfile(source, target)
    if fsync:
        with open(target, "rb+") as handle:
            os.fsync(handle.fileno())
    return time.perf_counter() - start


def drop(path: Path) -> None:
    """Remove a pulled copy and flush dirty pages so the next run starts even."""
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    os.sync()
    time.sleep(0.2)


Runs = dict[str, list[float]]


def bench_big_pull(work: Path, sizes: Sizes, repeat: int) -> tuple[int, Runs]:
    """Time a big pull and its baselines, each ``repeat`` times, in a shuffled order.

    On a small VM an occasional write of 1 GB stalls for seconds whatever writes it (plain
    copies included), so the operations are interleaved in a random order, every run starts
    from a flushed page cache, and both the median and the best run are reported.
    """
    module, registry, env = work / "big-module", work / "big-registry-w", child_env()
    width = hidden_width_for(sizes.weight_bytes)
    size = write_mlp_module(module, BIG_NAME, 1, [width, width], 1)
    os.sync()
    publish_s, _ = run_child(
        modreg_cmd("publish", str(module), "--registry", str(registry)), env, work
    )
    shutil.rmtree(module)  # disk space: the registry holds the bytes now
    ref = f"{BIG_NAME}@1.0.0"
    weights = next(
        e for e in Registry(registry).resolve(ref).files if e.path.endswith(".safetensors")
    )
    obj = object_path(registry, weights.sha256)
    pulled, copied = work / "big-pull", work / "big-copy.bin"
    cli = modreg_cmd("pull", ref, "--to", str(pulled), "--registry", str(registry))
    operations: dict[str, Callable[[], float]] = {
        PULL: lambda: _timed(lambda: Registry(registry).pull(ref, to=pulled)),
        "pull (cold CLI: python -m modreg pull)": lambda: run_child(cli, env, work)[0],
        COPY: lambda: copy_then(obj, copied, fsync=False),
        "shutil.copyfile + fsync of the object": lambda: copy_then(obj, copied, fsync=True),
        "sha256 + BLAKE3 of the object (hash_file, as publish)": lambda: _timed(
            lambda: hash_file(obj)
        ),
    }
    runs: Runs = {"publish (cold CLI, once)": [publish_s]} | {label: [] for label in operations}
    order = list(operations) * repeat
    random.Random(0).shuffle(order)
    for label in order:
        drop(pulled)
        drop(copied)
        runs[label].append(operations[label]())
    return size, runs


# -- output ------------------------------------------------------------------------------------
def seconds(value: float) -> str:
    return f"{value:.3f}"


def print_versus(rows: list[tuple[str, float, float | None, str]]) -> None:
    table = Table(title="1-2. Cold processes: modreg vs MLflow (median)")
    for column in ("operation", "modreg s", "mlflow s", "ratio mlflow/modreg", "target"):
        table.add_column(column, justify="left" if column == "operation" else "right")
    for label, ours, theirs, target in rows:
        ratio = f"{theirs / ours:.1f}x" if theirs is not None else "-"
        other = seconds(theirs) if theirs is not None else "-"
        table.add_row(label, seconds(ours), other, ratio, target)
    console.print(table)


def print_resolve(rows: list[tuple[str, float, str]]) -> None:
    table = Table(title="3. Resolve and list at scale (median)")
    for column in ("operation", "time", "target"):
        table.add_column(column, justify="left" if column == "operation" else "right")
    for label, value, target in rows:
        shown = f"{value:.1f} s" if value >= 1 else f"{value * 1e3:.2f} ms"
        table.add_row(label, shown, target)
    console.print(table)


def print_big(size: int, runs: Runs) -> None:
    table = Table(title=f"4. Big module: {size / MB:,.0f} MB of weights")
    columns = (
        "operation",
        "median s",
        "best s",
        "stalls",
        "MB/s (best)",
        "of copyfile: median",
        "best",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "operation" else "right")
    median_copy, best_copy = statistics.median(runs[COPY]), min(runs[COPY])
    for label, values in runs.items():
        median, best = statistics.median(values), min(values)
        once = label.startswith("publish")
        table.add_row(
            label,
            seconds(median),
            seconds(best),
            f"{sum(v > 2 * best for v in values)}/{len(values)}",
            f"{size / MB / best:,.0f}",
            "-" if once else f"{median_copy / median:.0%}",
            "-" if once else f"{best_copy / best:.0%}",
        )
    console.print(table)
    console.print("stalls: runs slower than twice the best run of the same operation")
    console.print("goal: Registry.pull >= 50 % of shutil.copyfile throughput")


def print_header(sizes: Sizes, repeat: int) -> None:
    versions = {p: importlib.metadata.version(p) for p in ("modreg", "mlflow", "torch")}
    shown = ", ".join(f"{k} {v}" for k, v in versions.items())
    console.print(
        f"python {platform.python_version()}, {shown}, {os.cpu_count()} CPUs; "
        f"repeat={repeat}, modules={sizes.modules:,}, weights={sizes.weight_bytes / MB:,.0f} MB; "
        f"load average {os.getloadavg()[0]:.1f} (other work on the host inflates every figure)"
    )


# -- main --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 modules and 100 MB weights")
    parser.add_argument("--repeat", type=int, default=5, help="runs per timing (median)")
    parser.add_argument(
        "--only",
        choices=PARTS,
        action="append",
        help="run only these parts (repeatable): cli (1-2), resolve (3), big (4)",
    )
    args = parser.parse_args(argv)
    sizes, repeat, parts = (QUICK if args.quick else FULL), max(1, args.repeat), args.only or PARTS
    print_header(sizes, repeat)
    work = Path(tempfile.mkdtemp(prefix="modreg-bench-", dir="/tmp"))
    try:
        if "cli" in parts:
            versus = bench_help(work, repeat)
            publish_s, pull_s = bench_modreg_small(work, repeat)
            log_s, load_s = bench_mlflow_small(work, repeat)
            params = mlp_params(*SMALL_LAYOUT)
            versus += [
                (f"publish {params:,}-param mlp (log+register)", publish_s, log_s, "<= 0.5 s"),
                (f"pull {params:,}-param mlp (load_model)", pull_s, load_s, "<= 0.3 s"),
            ]
            print_versus(versus)
        if "resolve" in parts:
            print_resolve(bench_resolve(work, sizes, repeat))
            shutil.rmtree(work / "big-registry")
        if "big" in parts:
            print_big(*bench_big_pull(work, sizes, repeat))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
