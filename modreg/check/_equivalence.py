"""Are two equations the same law? Numbers first, then a bounded symbolic proof, else undecided.

``sympy.simplify`` has no bound: a 100-character trigonometric rewrite can run for minutes,
and the interface policy runs on every ``modreg check`` in CI. So equivalence is decided in
three steps, each cheaper than the next is expensive:

1. **Numbers.** Both equations are evaluated (numpy, float64) at :data:`POINTS` seeded
   points: inputs drawn over OLD's declared ranges where it declares them, elsewhere at
   magnitudes from 0.1 to 10 of either sign; constants drawn the same way (their values are
   compared on their own by the policy). One point where both are finite and differ proves
   them different. Too few finite points leaves the question open.
2. **Proof, within a budget.** Numbers that agree are not a proof. The difference is tried
   for zero by sympy's canonical form (instant), then, when it has at most
   :data:`MAX_PROOF_OPS` operations, by ``sympy.simplify`` in a worker interpreter killed
   after :data:`PROOF_SECONDS` (start-up included).
3. **Undecided.** Agreeing numbers without a proof in budget are reported as such; the
   policy treats them as a changed equation (minor bump), the conservative reading.

Equations are re-parsed from their text by modreg's own parser in the worker too; nothing is
evaluated but the parsed tree.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import sympy as sp

from modreg.spec._finite import _eval
from modreg.spec.expr import parse_expression

__all__ = ["MAX_PROOF_OPS", "POINTS", "PROOF_SECONDS", "Verdict", "equivalence", "prove_main"]

POINTS = 64
MIN_FINITE = 16
MAX_PROOF_OPS = 120
PROOF_SECONDS = 10.0
_RTOL = 1e-7

Outcome = Literal["equal", "different", "undecided"]
Array = np.ndarray[Any, Any]


@dataclass(frozen=True)
class Verdict:
    """The answer and how it was reached (for the policy's message)."""

    outcome: Outcome
    how: str


def _draws(
    names: Sequence[str],
    ranges: Mapping[str, tuple[float, float] | None],
    shapes: Mapping[str, tuple[int, ...]],
) -> dict[str, Array]:
    """Independent seeded values per name (a shared value would hide ``x - y``)."""
    rng = np.random.default_rng(0)
    values: dict[str, Array] = {}
    for name in names:
        shape = (POINTS, *shapes.get(name, ()))
        bounds = ranges.get(name)
        if bounds is not None:
            values[name] = rng.uniform(bounds[0], bounds[1], size=shape)
            continue
        magnitude = 10.0 ** rng.uniform(-1.0, 1.0, size=shape)
        values[name] = magnitude * np.where(rng.random(size=shape) < 0.25, -1.0, 1.0)
    return values


def _evaluate(expr: Any, env: Mapping[str, Array]) -> Array:
    with np.errstate(all="ignore"):
        value = np.asarray(_eval(expr, env), dtype=float)
    return np.broadcast_to(value.reshape(value.shape or (1,)), (POINTS, *value.shape[1:]))


def _numbers(a: Any, b: Any, env: Mapping[str, Array]) -> Verdict:
    left = _evaluate(a, env).reshape(POINTS, -1)
    right = _evaluate(b, env).reshape(POINTS, -1)
    if left.shape != right.shape:
        return Verdict("different", "the two have different shapes")
    finite_left, finite_right = np.isfinite(left).all(axis=1), np.isfinite(right).all(axis=1)
    both = finite_left & finite_right
    scale = np.maximum(np.abs(left), np.abs(right))
    off = both & (np.abs(left - right) > _RTOL * scale + 1e-300).any(axis=1)
    one_sided = finite_left != finite_right
    if off.any() or one_sided.any():
        count = int(off.sum() + one_sided.sum())
        return Verdict("different", f"they differ at {count} of {POINTS} sample points")
    if both.sum() < MIN_FINITE:
        return Verdict("undecided", f"finite at only {int(both.sum())} of {POINTS} points")
    return Verdict("equal", f"equal at {int(both.sum())} sample points")


def prove_main() -> None:
    """Worker entry: ``{"texts": [a, b], "names": [...]}`` on stdin; prints whether a == b.

    Runs in a fresh interpreter (``python -c``), so the caller can kill it at the deadline
    and nothing of the caller's program is re-run.
    """
    request = json.loads(sys.stdin.read())
    a, b = (parse_expression(text, request["names"]) for text in request["texts"])
    print("equal" if sp.simplify(a - b) == 0 else "unproved")


def _proof(texts: tuple[str, str], names: list[str], seconds: float) -> bool | None:
    """True: proved equal; False: simplify could not (or the worker failed); None: no time."""
    request = json.dumps({"texts": list(texts), "names": names})
    command = [
        sys.executable,
        "-c",
        "from modreg.check._equivalence import prove_main; prove_main()",
    ]
    try:
        done = subprocess.run(
            command, input=request, capture_output=True, text=True, timeout=seconds, check=False
        )
    except subprocess.TimeoutExpired:  # subprocess.run has killed the worker
        return None
    return done.returncode == 0 and done.stdout.strip() == "equal"


def equivalence(
    old_text: str,
    new_text: str,
    names: Sequence[str],
    *,
    ranges: Mapping[str, tuple[float, float] | None],
    shapes: Mapping[str, tuple[int, ...]],
    seconds: float = PROOF_SECONDS,
) -> Verdict:
    """Whether two equation texts over ``names`` compute the same values (module docstring).

    Args:
        old_text, new_text: the two equations, in the grammar.
        names: the symbols they may use (input ports, then constants).
        ranges: declared ranges to draw inputs from (None or absent: unranged).
        shapes: per-sample shapes of vector names (absent: scalar).
        seconds: the wall-clock budget of the symbolic proof.

    Raises:
        InvalidExpression: a text does not parse.
    """
    a, b = (parse_expression(text, list(names)) for text in (old_text, new_text))
    if a - b == 0:  # sympy's automatic canonical form already cancels
        return Verdict("equal", "identical after canonical ordering")
    used = sorted({s.name for s in (a.free_symbols | b.free_symbols)})
    numbers = _numbers(a, b, _draws(used, ranges, shapes))
    if numbers.outcome != "equal":
        return numbers
    ops = int(sp.count_ops(a - b))
    if ops > MAX_PROOF_OPS:
        return Verdict("undecided", f"{numbers.how}; {ops} operations, too large to prove")
    proved = _proof((old_text, new_text), list(names), seconds)
    if proved:
        return Verdict("equal", f"{numbers.how}, proved by simplification")
    why = f"no proof within {seconds:g} s" if proved is None else "simplification found no proof"
    return Verdict("undecided", f"{numbers.how}; {why}")
