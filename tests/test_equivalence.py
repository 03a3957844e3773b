"""Equation equivalence within a budget: numbers first, a capped proof, undecided said so.

``sympy.simplify`` on a 100-character trigonometric pair used to run for minutes inside
``modreg check interface`` (and CI mode). These tests hold such pairs to an answer; the
per-test timeout of the suite is the guard, no test measures time.
"""

from __future__ import annotations

from typing import Any

import pytest

from modreg.check._equivalence import equivalence
from modreg.check.interface import Bump, diff
from modreg.spec.manifest import Manifest

XYZ = ["x", "y", "z"]
# simplify() on this pair ran past 60 s; they differ, and one sample point shows it.
SLOW_CHANGE = (
    "sin(x)**2*cos(x+y) + cos(x)**3*tan(x+y) + sin(y-z)**3*cos(x+y)",
    "tan(y+z)**3*tan(x+z) + cos(x+z)**3*sin(y+z)",
)
# The same law spelt another way (tan as sin/cos, cos**2 as 1 - sin**2).
REWRITE = (
    "sin(x)**2*cos(x+y) + cos(x)**3*tan(x+y) + sin(y-z)**3*cos(x+y)",
    "(1-cos(x)**2)*cos(x+y) + cos(x)*(1-sin(x)**2)*sin(x+y)/cos(x+y) + sin(y-z)**3*cos(x+y)",
)

TABLE: list[tuple[str, str, dict[str, Any], str, str]] = [
    # (old, new, ranges, outcome, words in the reason)
    ("x*y", "y*x", {}, "equal", "canonical"),
    ("sin(x+y)", "sin(x)*cos(y) + cos(x)*sin(y)", {}, "equal", "proved"),
    ("sin(x+y)", "sin(x)*cos(y) + cos(x)*sin(y) + 0.001", {}, "different", "differ"),
    (*SLOW_CHANGE, {}, "different", "differ"),
    # Unranged inputs are drawn with either sign: sqrt(x**2) is not x for x < 0 ...
    ("sqrt(x**2)", "x", {}, "different", "differ"),
    # ... but over a declared positive range the numbers agree, and no proof exists for
    # every x: said to be undecided, not equal.
    ("sqrt(x**2)", "x", {"x": (1.0, 2.0)}, "undecided", "no proof"),
    # Finite nowhere the inputs are drawn: no evidence either way.
    ("log(-abs(x) - 1)", "log(-abs(x) - 2)", {}, "undecided", "finite at only 0"),
]


@pytest.mark.parametrize(("old", "new", "ranges", "outcome", "why"), TABLE)
def test_equivalence(old: str, new: str, ranges: dict[str, Any], outcome: str, why: str) -> None:
    verdict = equivalence(old, new, XYZ, ranges=ranges, shapes={})
    assert (verdict.outcome, why in verdict.how) == (outcome, True), verdict


def test_vectors_are_evaluated_with_their_shape() -> None:
    shapes = {"v": (3,)}
    same = equivalence("norm(v)**2", "dot(v, v)", ["v"], ranges={}, shapes=shapes)
    assert same.outcome in ("equal", "undecided")  # equal at every point; the proof may fail
    assert equivalence("norm(v)", "dot(v, v)", ["v"], ranges={}, shapes=shapes).outcome == (
        "different"
    )


def test_a_proof_out_of_time_is_undecided() -> None:
    verdict = equivalence(*REWRITE, XYZ, ranges={}, shapes={}, seconds=0.01)
    assert verdict.outcome == "undecided"
    assert verdict.how == "equal at 64 sample points; no proof within 0.01 s"


def _trig_module(equation: str) -> Manifest:
    port = {"unit": "dimensionless", "range": [-1.0, 1.0]}
    return Manifest.model_validate(
        {
            "name": "test/trig",
            "version": "1.0.0",
            "kind": "equation",
            "inputs": {"x": port, "y": port, "z": port},
            "outputs": {"f": {"unit": "dimensionless"}},
            "equation": {"f": equation},
        }
    )


@pytest.mark.parametrize(
    ("pair", "kinds"),
    [
        (SLOW_CHANGE, {"equation"}),
        (REWRITE, {"equation-rewritten", "equation-undecided"}),
    ],
)
def test_interface_policy_answers_trigonometric_pairs(
    pair: tuple[str, str], kinds: set[str]
) -> None:
    (change,) = diff(_trig_module(pair[0]), _trig_module(pair[1]))
    assert change.kind in kinds
    # Rewritten is a patch; changed or undecided is the conservative minor.
    assert change.bump == (Bump.PATCH if change.kind == "equation-rewritten" else Bump.MINOR)
