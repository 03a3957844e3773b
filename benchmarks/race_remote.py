"""Races on a real S3 server: 16 processes publish one name@version with other bytes, N times.

Every race must end with exactly one ``created`` and fifteen ``refused``, one visible version
and a clean ``verify``. The tally is printed; nothing is asserted, so a bad round shows up in
the figures instead of stopping the run.

Run from the repository root with the venv active::

    python benchmarks/race_remote.py               # 100 races
    python benchmarks/race_remote.py --races 10
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.progress import track

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from modreg.registry import Registry  # noqa: E402
from tests._helpers import race, write_network_module  # noqa: E402
from tests._s3 import BUCKET, WeedServer  # noqa: E402

PUBLISHERS = 16


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--races", type=int, default=100)
    args = parser.parse_args(argv)
    console = Console()
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["modreg.registry", "tests._helpers", "boto3"])
    with tempfile.TemporaryDirectory(prefix="modreg-race-") as tmp:
        work = Path(tmp)
        server = WeedServer(work / "s3")
        server.start()
        env = {**server.env, "MODREG_HOME": str(work / "home")}  # a cache of its own
        os.environ.update(env)
        tally: Counter[str] = Counter()
        start = time.perf_counter()
        try:
            for i in track(range(args.races), description="races", console=console):
                sources = [
                    str(write_network_module(work / f"r{i}" / f"m{j}", hidden=64, seed=j))
                    for j in range(PUBLISHERS)
                ]
                location = f"s3://{BUCKET}/race-{i}"
                outcomes = race(ctx, location, sources, env)
                registry = Registry(location)
                good = (
                    outcomes == Counter(created=1, refused=PUBLISHERS - 1)
                    and list(registry.versions("test/net")) == ["1.0.0"]
                    and registry.verify().ok
                )
                tally["one winner, verify clean" if good else "BAD"] += 1
                tally.update({f"publishes {k}": v for k, v in outcomes.items()})
        finally:
            server.stop()
    elapsed = time.perf_counter() - start
    console.print(f"{args.races} races of {PUBLISHERS} processes in {elapsed:.0f} s")
    for key, value in sorted(tally.items()):
        console.print(f"  {key}: {value}")


if __name__ == "__main__":
    main()
