"""Time and peak memory of refusing hostile input: unit towers, YAML keys, big files, wide CSV.

Each case runs in a fresh interpreter (so peak RSS is its own) under a wall-clock limit; a
baseline child that only imports modreg's parsers gives the start-up cost to compare with.
A case that is still running at the limit is reported as ``> LIMIT s`` (it hung).

    python benchmarks/bench_refusals.py [--limit 60] [--only units,yaml,manifest,csv]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path

_CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    from pathlib import Path
    import modreg.spec.manifest, modreg.spec.units, modreg._files, modreg.check._data
    tmp = Path(sys.argv[1])
    error = "-"
    start = time.perf_counter()
    try:
        exec(sys.argv[2])
    except Exception as exc:
        error = f"{type(exc).__name__}: {' '.join(str(exc).split())[:90]}"
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mib": peak, "error": error}))
    """
)

_PORTS = "from modreg.spec.manifest import Port; ports = {'x': Port(unit='m')}\n"


def _keys(tmp: Path) -> None:
    (tmp / "keys.yaml").write_text("".join(f"k{i}: 1\n" for i in range(80_000)))


def _deep(tmp: Path) -> None:
    (tmp / "deep.yaml").write_text("a: " + "[" * 10_000 + "]" * 10_000)


def _big_manifest(tmp: Path) -> None:
    (tmp / "big").mkdir(exist_ok=True)
    with open(tmp / "big" / "modreg.yaml", "wb") as handle:
        handle.truncate(3 << 30)  # sparse: 3 GB long, no disk used


def _wide_csv(tmp: Path) -> None:
    header = ",".join(f"c{i}" for i in range(10**6))
    (tmp / "wide.csv").write_text(header + "\n" + ",".join("1" for _ in range(10**6)) + "\n")


_UNIT = "modreg.spec.units.parse_unit({!r})"
# label: (group, setup run here before the child starts, code the child times)
CASES: dict[str, tuple[str, Callable[[Path], None] | None, str]] = {
    "baseline (imports only)": ("base", None, "pass"),
    "unit 'm*9**9**9'": ("units", None, _UNIT.format("m*9**9**9")),
    "unit '9**9**7'": ("units", None, _UNIT.format("9**9**7")),
    "unit 'm**99999999999999999999'": ("units", None, _UNIT.format("m**99999999999999999999")),
    "YAML, 80,000 keys (< 1 MiB)": (
        "yaml",
        _keys,
        "modreg.spec.manifest.parse_manifest((tmp / 'keys.yaml').read_bytes())",
    ),
    "  same text, yaml.safe_load alone": (
        "yaml",
        _keys,
        "import yaml; yaml.safe_load((tmp / 'keys.yaml').read_bytes())",
    ),
    "YAML, nesting 10,000 deep": (
        "yaml",
        _deep,
        "modreg.spec.manifest.parse_manifest((tmp / 'deep.yaml').read_bytes())",
    ),
    "3 GB manifest (sparse file)": (
        "manifest",
        _big_manifest,
        "modreg._files.scan_module(tmp / 'big')",
    ),
    "CSV of 10^6 columns": (
        "csv",
        _wide_csv,
        _PORTS + "modreg.check._data.load_reference(tmp / 'wide.csv', ports)",
    ),
}


def run_case(code: str, tmp: Path, limit: float) -> dict[str, object]:
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, str(tmp), code],
            capture_output=True,
            text=True,
            timeout=limit,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"seconds": None, "peak_mib": None, "error": f"still running after {limit:g} s"}
    lines = done.stdout.strip().splitlines()
    if not lines:
        return {"seconds": None, "peak_mib": None, "error": done.stderr.strip()[-90:]}
    result: dict[str, object] = json.loads(lines[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=float, default=60.0, help="seconds per case")
    parser.add_argument("--only", default="", help="comma-separated groups")
    args = parser.parse_args()
    groups = set(filter(None, args.only.split(","))) | {"base"}
    print(f"{'case':34} {'seconds':>9} {'peak MiB':>9}  outcome")
    with tempfile.TemporaryDirectory() as tmp:
        for label, (group, setup, code) in CASES.items():
            if args.only and group not in groups:
                continue
            if setup is not None:
                setup(Path(tmp))
            r = run_case(code, Path(tmp), args.limit)
            secs = f"{r['seconds']:.3f}" if r["seconds"] is not None else f">{args.limit:g}"
            peak = f"{r['peak_mib']:.0f}" if r["peak_mib"] is not None else "?"
            print(f"{label:34} {secs:>9} {peak:>9}  {r['error']}", flush=True)


if __name__ == "__main__":
    main()
