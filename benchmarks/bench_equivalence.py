"""Equation equivalence in the interface policy: the budgeted check vs unbounded simplify.

``modreg check interface`` used to call ``sympy.simplify(old - new)`` with no bound. This
script times, in the same run, that baseline (in a subprocess killed at ``--cap`` seconds)
and the policy's budgeted check (:mod:`modreg.check._equivalence`) on two trigonometric
pairs of about 100 characters: a changed law and a rewrite of the same law.

Run: python benchmarks/bench_equivalence.py [--cap 120]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from modreg.check._equivalence import equivalence

PAIRS = {
    "changed law": (
        "sin(x)**2*cos(x+y) + cos(x)**3*tan(x+y) + sin(y-z)**3*cos(x+y)",
        "tan(y+z)**3*tan(x+z) + cos(x+z)**3*sin(y+z)",
    ),
    "rewrite": (
        "sin(x)**2*cos(x+y) + cos(x)**3*tan(x+y) + sin(y-z)**3*cos(x+y)",
        "(1-cos(x)**2)*cos(x+y) + cos(x)*(1-sin(x)**2)*sin(x+y)/cos(x+y) + sin(y-z)**3*cos(x+y)",
    ),
}
NAMES = ["x", "y", "z"]
_BASELINE = (
    "import sys, sympy\n"
    "from modreg.spec.expr import parse_expression\n"
    "a, b = (parse_expression(t, ['x', 'y', 'z']) for t in sys.argv[1:3])\n"
    "print(sympy.simplify(a - b) == 0)\n"
)


def baseline(old: str, new: str, cap: float) -> tuple[float, str]:
    """Seconds and answer of unbounded ``simplify`` (``killed`` past ``cap``)."""
    start = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-c", _BASELINE, old, new],
            capture_output=True,
            text=True,
            timeout=cap,
            check=True,
        )
    except subprocess.TimeoutExpired:
        return time.perf_counter() - start, f"killed at {cap:g} s"
    answer = "equal" if done.stdout.strip() == "True" else "not proved"
    return time.perf_counter() - start, answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cap", type=float, default=120.0, help="baseline limit (s)")
    args = parser.parse_args()
    for label, (old, new) in PAIRS.items():
        start = time.perf_counter()
        verdict = equivalence(old, new, NAMES, ranges={}, shapes={})
        budgeted = time.perf_counter() - start
        unbounded, answer = baseline(old, new, args.cap)
        print(
            f"{label} ({len(old)} + {len(new)} chars): budgeted {budgeted:.2f} s "
            f"-> {verdict.outcome} ({verdict.how}); unbounded simplify {unbounded:.1f} s "
            f"-> {answer}; ratio {unbounded / budgeted:.0f}x"
            + (" (at least)" if answer.startswith("killed") else "")
        )


if __name__ == "__main__":
    main()
