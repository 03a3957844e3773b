"""Team-registry benchmarks: modreg on S3 (a local SeaweedFS server) against its baselines.

What it measures (medians of ``--repeat`` runs; nothing is asserted):

1. Cold-process CLI publish and pull of the 101,508-parameter module to ``s3://``, against a
   bare boto3 put / get of the same two files in a cold process (target: <= 1.5x), and against
   MLflow's log_model + register_model / load_model through a real ``mlflow server`` whose
   artifact store is the same bucket (target: modreg >= 5x faster).
2. Pull of a big weights module (1 GB; ``--quick`` 200 MB) with every byte verified, against a
   parallel ranged GET of the same object with the same client settings into a file
   (target: >= 80 % of its throughput). The modreg pull fills the local cache and delivers
   from it; both runs start with a cold modreg cache.
3. Resolve of a range among 10,000 modules x 10 versions (``--quick`` 1,000): a cold
   process (target <= 250 ms), warm in-process, and an exact pin whose record is cached
   (target <= 20 ms); ``modreg --help`` (target <= 0.2 s: the client loads lazily).
4. ``benchmarks/race_remote.py`` holds the race and crash tallies.

Run from the repository root with the venv active::

    python benchmarks/bench_remote.py            # full run
    python benchmarks/bench_remote.py --quick    # smaller sizes
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_registry import (  # noqa: E402
    MLFLOW_LOAD,
    MLFLOW_LOG,
    SMALL_LAYOUT,
    SMALL_NAME,
    VERSIONS,
    fake_record,
    hidden_width_for,
    write_mlp_module,
)

from modreg.registry import Registry  # noqa: E402
from modreg.registry._keys import MARKER, object_key, record_key  # noqa: E402
from tests._s3 import BUCKET, WeedServer  # noqa: E402

console = Console(width=120)

BARE_PUT = """\
import sys, boto3
from botocore.config import Config
c = boto3.session.Session().client("s3", config=Config(retries={"mode": "standard"}))
for i, path in enumerate(sys.argv[3:]):
    c.put_object(Bucket=sys.argv[1], Key=f"{sys.argv[2]}/{i}", Body=open(path, "rb").read())
"""
BARE_GET = """\
import sys, boto3
from botocore.config import Config
c = boto3.session.Session().client("s3", config=Config(retries={"mode": "standard"}))
for i in range(int(sys.argv[3])):
    body = c.get_object(Bucket=sys.argv[1], Key=f"{sys.argv[2]}/{i}")["Body"].read()
    open(f"{sys.argv[4]}-{i}", "wb").write(body)
"""
FRESH_RESOLVE = """\
import sys, time
t0 = time.perf_counter()
from modreg.registry import Registry
record = Registry(sys.argv[1]).resolve(sys.argv[2])
print(time.perf_counter() - t0, record.version)
"""


def run(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd[:4])}...\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def median(repeat: int, call: Callable[[int], float]) -> float:
    return statistics.median(call(i) for i in range(repeat))


# -- 1. cold CLI publish / pull ----------------------------------------------------------------
def bench_cli(work: Path, env: dict[str, str], repeat: int) -> dict[str, float]:
    n_in, hidden, n_out = SMALL_LAYOUT
    module = work / "small"
    write_mlp_module(module, SMALL_NAME, n_in, hidden, n_out)
    files = [str(module / "modreg.yaml"), str(module / "weights.safetensors")]
    py, figures = sys.executable, {}
    registry = f"s3://{BUCKET}/bench-cli-{os.getpid()}"
    run([py, "-m", "modreg", "publish", str(module), "--registry", registry], env)  # warm-up

    def publish(i: int) -> float:
        text = (module / "modreg.yaml").read_text().replace("1.0.0", f"1.0.{i + 1}")
        copy = work / f"small-{i}"
        copy.mkdir()
        (copy / "modreg.yaml").write_text(text)
        (copy / "weights.safetensors").write_bytes((module / "weights.safetensors").read_bytes())
        return run([py, "-m", "modreg", "publish", str(copy), "--registry", registry], env)

    def pull(i: int) -> float:
        home = work / f"home-{i}"  # a cold cache each time: every byte crosses the network
        to = work / f"pulled-{i}"
        cmd = [py, "-m", "modreg", "pull", f"{SMALL_NAME}@1.0.0", "--to", str(to)]
        return run([*cmd, "--registry", registry], {**env, "MODREG_HOME": str(home)})

    figures["modreg publish"] = median(repeat, publish)
    figures["modreg pull"] = median(repeat, pull)
    figures["boto3 put"] = median(
        repeat, lambda i: run([py, "-c", BARE_PUT, BUCKET, f"bare/{i}", *files], env)
    )
    figures["boto3 get"] = median(
        repeat, lambda i: run([py, "-c", BARE_GET, BUCKET, f"bare/{i}", "2", str(work / "g")], env)
    )
    figures.update(bench_mlflow(work, env, module, repeat))
    return figures


def bench_mlflow(work: Path, env: dict[str, str], module: Path, repeat: int) -> dict[str, float]:
    """log + register / load through an ``mlflow server`` storing artifacts in the bucket."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server_env = {**env, "MLFLOW_S3_ENDPOINT_URL": env["AWS_ENDPOINT_URL"]}
    command = [
        sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", f"sqlite:///{work / 'mlflow.db'}",
        "--artifacts-destination", f"s3://{BUCKET}/mlflow-artifacts", "--workers", "1",
    ]  # fmt: skip
    log = open(work / "mlflow-server.log", "wb")  # noqa: SIM115 - the server owns it
    server = subprocess.Popen(command, env=server_env, stdout=log, stderr=subprocess.STDOUT)
    client_env = {**env, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}"}
    try:
        _wait_http(f"http://127.0.0.1:{port}/health", server)
        weights = str(module / "weights.safetensors")
        register = [sys.executable, "-c", MLFLOW_LOG, weights, "-", "bench-remote"]
        run(register, client_env)  # warm-up: creates the experiment and version 1
        log_s = median(repeat, lambda _: run(register, client_env))
        load = [sys.executable, "-c", MLFLOW_LOAD, "models:/bench-remote/1"]
        load_s = median(repeat, lambda _: run(load, client_env))
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    return {"mlflow log + register": log_s, "mlflow load": load_s}


def _wait_http(url: str, process: subprocess.Popen[bytes]) -> None:
    import urllib.request

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit("mlflow server exited early: see mlflow-server.log")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    sys.exit(f"{url} did not answer")


# -- 2. big pull -------------------------------------------------------------------------------
def bench_big(work: Path, size: int, repeat: int) -> dict[str, float]:
    import modreg.store.s3 as s3

    module = work / "big"
    width = hidden_width_for(size)
    write_mlp_module(module, "bench/mlp-big", 8, [width, width], 4)
    registry = Registry(f"s3://{BUCKET}/bench-big-{os.getpid()}")
    start = time.perf_counter()
    record = registry.resolve(registry.publish(module).ref)
    publish_s = time.perf_counter() - start
    weights = next(e for e in record.files if e.path == "weights.safetensors")
    store = registry.store
    key = object_key(weights.sha256)
    figures: dict[str, list[float]] = {"modreg pull": [], "ranged GET": []}

    def pull(i: int) -> float:
        subprocess.run(["rm", "-rf", str(registry.settings.store_cache)], check=True)
        target = work / f"pull-{i}"
        start = time.perf_counter()
        Registry(registry.location).pull(record.ref, to=target)
        elapsed = time.perf_counter() - start
        subprocess.run(["rm", "-rf", str(target)], check=True)
        return elapsed

    def ranged_get(i: int) -> float:
        out = work / f"get-{i}.bin"
        start = time.perf_counter()
        fd = os.open(out, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        os.ftruncate(fd, weights.size)  # as a pull does
        spans = [
            (s, min(s3.RANGE_SIZE, weights.size - s)) for s in range(0, weights.size, s3.RANGE_SIZE)
        ]
        fetch = store._fetch_span  # type: ignore[attr-defined]
        with concurrent.futures.ThreadPoolExecutor(max_workers=s3.WORKERS) as pool:
            list(pool.map(fetch, [key] * len(spans), [fd] * len(spans), *zip(*spans, strict=True)))
        os.close(fd)
        elapsed = time.perf_counter() - start
        os.unlink(out)
        return elapsed

    for i in range(repeat):  # interleaved, the order alternating: neither always goes first
        order = [("modreg pull", pull), ("ranged GET", ranged_get)]
        for name, call in order if i % 2 == 0 else order[::-1]:
            figures[name].append(call(i))
    return {
        "size MB": weights.size / 1e6,
        "publish s": publish_s,
        "modreg pull s": statistics.median(figures["modreg pull"]),
        "ranged GET s": statistics.median(figures["ranged GET"]),
    }


# -- 3. resolve at scale -----------------------------------------------------------------------
def bench_resolve(work: Path, env: dict[str, str], modules: int, repeat: int) -> dict[str, float]:
    location = f"s3://{BUCKET}/bench-resolve-{os.getpid()}"
    registry = Registry(location)
    registry.claim()
    store = registry.store
    start = time.perf_counter()
    jobs = [(f"ns/mod-{i}", v) for i in range(modules) for v in VERSIONS]
    with concurrent.futures.ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(lambda nv: store.put_if_absent(record_key(*nv), fake_record(*nv)[0]), jobs))
    filled = time.perf_counter() - start
    assert store.head(MARKER) is not None
    ref = f"ns/mod-{modules // 2}@>=1.2,<2"
    cold = [
        float(subprocess.run(
            [sys.executable, "-c", FRESH_RESOLVE, location, ref],
            env=env, capture_output=True, text=True, check=True,
        ).stdout.split()[0])
        for _ in range(repeat)
    ]  # fmt: skip
    warm = Registry(location)
    warm.resolve(ref)
    in_process = []
    for _ in range(repeat):
        start = time.perf_counter()
        warm.resolve(ref)
        in_process.append(time.perf_counter() - start)
    pin = f"ns/mod-{modules // 2}@1.5.2"
    warm.resolve(pin)  # caches the record
    cached = []
    for _ in range(repeat):
        start = time.perf_counter()
        Registry(location).resolve(pin)
        cached.append(time.perf_counter() - start)
    help_s = statistics.median(
        run([sys.executable, "-m", "modreg", "--help"], env) for _ in range(repeat)
    )
    return {
        "versions": len(jobs),
        "fill s": filled,
        "cold process s": statistics.median(cold),
        "warm in-process s": statistics.median(in_process),
        "cached pin s": statistics.median(cached),
        "modreg --help s": help_s,
    }


def table(title: str, rows: list[tuple[str, str, str]]) -> None:
    out = Table(title=title)
    for column in ("what", "figure", "target"):
        out.add_column(column)
    for row in rows:
        out.add_row(*row)
    console.print(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", choices=["cli", "big", "resolve"], action="append")
    args = parser.parse_args(argv)
    parts = args.only or ["cli", "big", "resolve"]
    with tempfile.TemporaryDirectory(prefix="modreg-bench-remote-") as tmp:
        work = Path(tmp)
        server = WeedServer(work / "s3")
        server.start()
        env = {**os.environ, **server.env, "MODREG_HOME": str(work / "home")}
        os.environ.update(env)
        try:
            if "cli" in parts:
                f = bench_cli(work, env, args.repeat)
                table("cold CLI, 101,508-parameter module (s3://, local SeaweedFS)", [
                    ("modreg publish", f"{f['modreg publish']:.3f} s", ""),
                    ("boto3 put (cold process)", f"{f['boto3 put']:.3f} s", ""),
                    ("ratio", f"{f['modreg publish'] / f['boto3 put']:.2f}x", "<= 1.5x"),
                    ("mlflow log + register", f"{f['mlflow log + register']:.3f} s", ""),
                    ("mlflow / modreg", f"{f['mlflow log + register'] / f['modreg publish']:.1f}x", ">= 5x"),  # noqa: E501
                    ("modreg pull (cold cache)", f"{f['modreg pull']:.3f} s", ""),
                    ("boto3 get (cold process)", f"{f['boto3 get']:.3f} s", ""),
                    ("ratio", f"{f['modreg pull'] / f['boto3 get']:.2f}x", "<= 1.5x"),
                    ("mlflow load", f"{f['mlflow load']:.3f} s", ""),
                    ("mlflow / modreg", f"{f['mlflow load'] / f['modreg pull']:.1f}x", ">= 5x"),
                ])  # fmt: skip
            if "big" in parts:
                size = (200 if args.quick else 1000) * 1_000_000
                b = bench_big(work, size, max(3, args.repeat // 2))
                table(f"pull of {b['size MB']:.0f} MB weights, every byte verified", [
                    ("publish (multipart)", f"{b['size MB'] / b['publish s']:.0f} MB/s", ""),
                    ("modreg pull", f"{b['size MB'] / b['modreg pull s']:.0f} MB/s", ""),
                    ("parallel ranged GET", f"{b['size MB'] / b['ranged GET s']:.0f} MB/s", ""),
                    ("share", f"{b['ranged GET s'] / b['modreg pull s']:.0%}", ">= 80 %"),
                ])  # fmt: skip
            if "resolve" in parts:
                count = 1000 if args.quick else 10_000
                r = bench_resolve(work, env, count, args.repeat)
                table(f"resolve among {r['versions']:,.0f} versions on s3://", [
                    ("fill (32 threads)", f"{r['fill s']:.1f} s", ""),
                    ("cold process (import + open + LIST + GET)", f"{r['cold process s'] * 1e3:.0f} ms", "<= 250 ms"),  # noqa: E501
                    ("warm, in process", f"{r['warm in-process s'] * 1e3:.1f} ms", ""),
                    ("exact pin, record cached", f"{r['cached pin s'] * 1e3:.2f} ms", "<= 20 ms"),
                    ("modreg --help", f"{r['modreg --help s']:.3f} s", "<= 0.2 s"),
                ])  # fmt: skip
        finally:
            server.stop()


if __name__ == "__main__":
    main()
