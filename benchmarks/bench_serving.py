"""Serving benchmarks: a served equation against the served network it replaces, ONNX, energy.

Run: ``python benchmarks/bench_serving.py`` (one run; every ratio is measured in it).

1. ``physics/drag`` (the equation) and ``examples/drag-mlp`` (the network it replaces) are
   registered in a throw-away MLflow (sqlite) and each served by its own
   ``mlflow models serve --env-manager local`` on 127.0.0.1. One client posts
   ``{"inputs": ...}`` requests one after another, to each server in turn, at batch 1 and
   batch 1,024: requests per second, p50 and p99 latency, and the ratio.
2. ONNX Runtime against torch (eager, input checks off: ONNX has none) for the drag
   equation and the drag MLP at batch 65,536, time per call.
3. Energy per million predictions (``modreg.cost(..., energy=True)``, codecarbon offline):
   equation against network at batch 65,536, with the method codecarbon used.

Everything runs on one thread (torch, onnxruntime and the servers' torch: ``OMP_NUM_THREADS=1``):
on a shared 2-core machine torch's two-thread pool is 100x slower on small ops when the other
core is busy, which would measure the neighbours, not the module. Nothing is written outside
a temporary directory; the servers are always stopped.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import modreg  # noqa: E402
from modreg.registry import Registry  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_builder import per_call  # noqa: E402

MLFLOW = str(Path(sys.executable).with_name("mlflow"))
REQUESTS = {1: 400, 1024: 100}
BIG = 65_536


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serve(model_uri: str, env: dict[str, str], log: Path) -> Iterator[str]:
    """``mlflow models serve`` on a free port until the block ends (always stopped)."""
    port = _free_port()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [MLFLOW, "models", "serve", "-m", model_uri, "--env-manager", "local",
             "--host", "127.0.0.1", "--port", str(port)],
            env={**os.environ, **env}, cwd=log.parent, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{model_uri} did not start:\n{log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(url + "/ping", timeout=2):
                    break
            except OSError:
                time.sleep(0.3)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def latencies(targets: dict[str, tuple[str, bytes]], count: int) -> dict[str, list[float]]:
    """Seconds per request to each ``(url, body)``, the targets taking turns (after warm-up).

    Alternating request by request puts both servers under the same background load.
    """
    requests = {
        label: urllib.request.Request(
            url + "/invocations", data=body, headers={"Content-Type": "application/json"}
        )
        for label, (url, body) in targets.items()
    }
    times: dict[str, list[float]] = {label: [] for label in targets}
    for index in range(count + 10):
        for label, request in requests.items():
            start = time.perf_counter()
            with urllib.request.urlopen(request, timeout=60) as answer:
                answer.read()
            if index >= 10:
                times[label].append(time.perf_counter() - start)
    return times


def _summary(times: list[float]) -> tuple[float, float, float]:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return len(times) / sum(times), statistics.median(times), p99


def _body(batch: int, with_rho: bool) -> bytes:
    rng = np.random.default_rng(batch)
    inputs: dict[str, Any] = {"v": rng.uniform(-60, 60, (batch, 3)).round(3).tolist()}
    if with_rho:
        inputs["rho"] = [1.2] * batch
    return json.dumps({"inputs": inputs}).encode()


def bench_serving(root: Path, modules: dict[str, modreg.Module]) -> None:
    import modreg.mlflow

    uri = f"sqlite:///{root / 'mlflow.db'}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("bench")
    for name, module in modules.items():
        modreg.mlflow.log_model(module, name=name, registered_model_name=name)
    env = {"MLFLOW_TRACKING_URI": uri, "MODREG_HOME": str(root / "home"), "OMP_NUM_THREADS": "1"}
    print("\n1. served equation vs served network (mlflow models serve, 1 client, sequential)")
    print(f"{'batch':>6} {'model':<18} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    results: dict[tuple[int, str], tuple[float, float, float]] = {}
    with (
        serve("models:/physics-drag/1", env, root / "equation.log") as equation,
        serve("models:/examples-drag-mlp/1", env, root / "network.log") as network,
    ):
        for batch, count in REQUESTS.items():
            targets = {
                "equation": (equation, _body(batch, with_rho=True)),
                "network": (network, _body(batch, with_rho=False)),
            }
            for label, times in latencies(targets, count).items():
                results[batch, label] = rate, p50, p99 = _summary(times)
                print(f"{batch:>6} {label:<18} {rate:>8.0f} {p50 * 1e3:>8.2f} {p99 * 1e3:>8.2f}")
            eq, net = results[batch, "equation"], results[batch, "network"]
            print(
                f"{batch:>6} {'ratio eq/net':<18} {eq[0] / net[0]:>7.2f}x "
                f"{net[1] / eq[1]:>7.2f}x {net[2] / eq[2]:>7.2f}x  (>1: equation better)"
            )


def bench_onnx(root: Path, nets: dict[str, Any]) -> None:
    from modreg.runtime._export import example_inputs
    from modreg.runtime._onnx import OnnxRunner

    print(f"\n2. ONNX Runtime vs torch eager at batch {BIG:,} (input checks off, CPU)")
    print(f"{'module':<18} {'torch ms':>9} {'onnxrt ms':>10} {'torch/onnxrt':>13} {'max diff':>9}")
    for name, net in nets.items():
        net.check_inputs = False
        path = modreg.export(net, root / f"{name}.onnx", format="onnx")
        runner = OnnxRunner(path, threads=1)
        inputs = example_inputs(net.interface.inputs, BIG, seed=1)
        arrays = {k: v.numpy() for k, v in inputs.items()}
        torch_s = per_call(partial(net, inputs), calls=10, repeats=5)
        onnx_s = per_call(partial(runner.run_numpy, arrays), calls=10, repeats=5)
        with torch.no_grad():
            want = net(inputs)
        got = runner.run_numpy(arrays)
        diff = max(float(np.abs(got[k] - want[k].numpy()).max()) for k in want)
        print(
            f"{name:<18} {torch_s * 1e3:>9.3f} {onnx_s * 1e3:>10.3f} "
            f"{torch_s / onnx_s:>12.2f}x {diff:>9.1e}"
        )


def bench_energy(nets: dict[str, Any]) -> None:
    print(f"\n3. energy per million predictions at batch {BIG:,} (modreg.cost, energy=True)")
    costs = {}
    for name, net in nets.items():
        net.check_inputs = False
        costs[name] = modreg.cost(net, batch=BIG, latency=False, energy=True, energy_s=3.0)
        found = costs[name]
        print(
            f"{name:<18} {found.energy or float('nan'):>10.4g} J  "
            f"{found.co2 or float('nan'):>10.4g} g CO2eq"
        )
    eq, net = costs["physics/drag"], costs["examples/drag-mlp"]
    if eq.energy is None or net.energy is None:
        print("codecarbon is not installed: no energy figures (pip install 'modreg[energy]')")
        return
    print(f"ratio network/equation: {net.energy / eq.energy:.1f}x")
    print(f"method: {eq.energy_method}")


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as scratch:
        root = Path(scratch)
        os.environ["MODREG_HOME"] = str(root / "home")
        registry = Registry(root / "registry")
        modules = {
            "physics-drag": registry.pull(registry.publish(ROOT / "modules/drag").ref),
            "examples-drag-mlp": registry.pull(registry.publish(ROOT / "modules/drag-mlp").ref),
        }
        bench_serving(root, modules)
        nets = {m.name: modreg.build(m) for m in modules.values()}
        bench_onnx(root, nets)
        bench_energy(nets)


if __name__ == "__main__":
    main()
