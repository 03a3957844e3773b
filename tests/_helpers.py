"""Builders of small module directories for tests, and the in-process CLI runner."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save_file

from modreg.spec.archs import MLPSpec, expected_tensors

NETWORK_YAML = """\
name: {name}
version: {version}
kind: network
summary: {summary}
inputs:
  x: {{unit: m, shape: [2], range: [0.0, 1.0]}}
outputs:
  y: {{unit: s}}
network: {{arch: mlp, hidden: [{hidden}], activation: tanh}}
weights: weights.safetensors
"""


def write_network_module(
    directory: Path,
    *,
    name: str = "test/net",
    version: str = "1.0.0",
    summary: str = "a test network",
    hidden: int = 4,
    seed: int = 0,
) -> Path:
    """Write a valid ``mlp`` network module (2 inputs -> ``hidden`` -> 1 output)."""
    directory.mkdir(parents=True, exist_ok=True)
    text = NETWORK_YAML.format(name=name, version=version, summary=summary, hidden=hidden)
    (directory / "modreg.yaml").write_text(text)
    rng = np.random.default_rng(seed)
    spec = MLPSpec(arch="mlp", hidden=[hidden])
    tensors = {
        key: rng.standard_normal(shape).astype(np.float32)
        for key, shape in expected_tensors(spec, 2, 1).items()
    }
    save_file(tensors, str(directory / "weights.safetensors"))
    return directory


def publish_worker(
    registry: str,
    sources: list[str],
    ready: object,
    results: object,
    env: dict[str, str] | None = None,
) -> None:
    """Child-process body: signal readiness, then publish each source, reporting outcomes.

    ``ready`` is a multiprocessing Event-like object (or Barrier) and ``results`` a Queue;
    ``env`` is set first (a forkserver child inherits the server's environment, not ours).
    """
    import os

    from modreg.errors import VersionExists
    from modreg.registry import Registry

    os.environ.update(env or {})
    reg = Registry(registry)
    wait = getattr(ready, "wait", None)
    if wait is not None and not hasattr(ready, "set"):
        wait()  # a Barrier: start together
    else:
        ready.set()  # type: ignore[attr-defined]
    for source in sources:
        try:
            outcome = "created" if reg.publish(source).created else "identical"
        except VersionExists:
            outcome = "refused"
        results.put((source, outcome))  # type: ignore[attr-defined]


def race(ctx: Any, registry: str, sources: list[str], env: dict[str, str]) -> Counter[str]:
    """Start one process per source, all publishing at once (a barrier); tally the outcomes."""
    barrier, results = ctx.Barrier(len(sources)), ctx.Queue()
    children = [
        ctx.Process(target=publish_worker, args=(registry, [s], barrier, results, env))
        for s in sources
    ]
    for child in children:
        child.start()
    outcomes = Counter(results.get(timeout=300)[1] for _ in children)
    for child in children:
        child.join()
        if child.exitcode != 0:
            raise RuntimeError(f"a publisher exited with {child.exitcode}")
    return outcomes


def write_keypair(directory: Path, name: str = "team") -> tuple[Path, Path]:
    """A fresh EC P-256 signing key (PKCS#8 PEM) and its public key: ``NAME.key``, ``NAME.pub``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private, public = directory / f"{name}.key", directory / f"{name}.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def run_cli(args: list[str], capsys: Any) -> tuple[int, str, str]:
    """Run ``modreg`` in-process through the console script's ``main``: (exit code, out, err)."""
    from modreg.cli import main

    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err
