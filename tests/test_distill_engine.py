"""Fast tests of the distillation engine: exact recovery, dimensional analysis, determinism,
and input validation."""

from __future__ import annotations

import threading
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
import sympy

from modreg.distill import dimensional_variants, distill_arrays
from modreg.distill._problem import Candidate, Problem, Workspace
from modreg.distill._stages import STAGES, Family, Stage
from modreg.errors import DistillError

M, S, KG = "m", "s", "kg"

# The search is bounded by its work, so results do not depend on this cap; it only keeps a
# loaded machine from cutting a search short (pytest-timeout guards against hangs).
CAP = 120.0


def _rows(n: int, k: int, lo: float = 1.0, hi: float = 5.0, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(lo, hi, size=(n, k))


def _same(expr: sympy.Expr, truth: sympy.Expr) -> bool:
    """Symbolic equality for positive inputs (sqrt(L/g) == sqrt(L)/sqrt(g))."""

    def pos(e: sympy.Expr) -> sympy.Expr:
        return e.xreplace({s: sympy.Symbol(s.name, positive=True) for s in e.free_symbols})

    return sympy.simplify(pos(expr) - pos(truth)) == 0


def test_gravity_recovered_exactly() -> None:
    x = _rows(2000, 4)
    g, m1, m2, r = x.T
    res = distill_arrays(
        x,
        g * m1 * m2 / r**2,
        ["G", "m1", "m2", "r"],
        units=[{M: 3, S: -2, KG: -1}, {KG: 1}, {KG: 1}, {M: 1}],
        target_unit={M: 1, S: -2, KG: 1},
        time_budget=CAP,
    )
    G, m1s, m2s, rs = sympy.symbols("G m1 m2 r")
    assert res.exact
    assert _same(res.sympy_expr, G * m1s * m2s / rs**2)
    assert res.max_rel_error < 1e-9
    assert res.pareto and res.pareto[-1].complexity >= res.pareto[0].complexity


def test_pendulum_period_with_units() -> None:
    x = _rows(1000, 3)
    length, g, _mass = x.T
    res = distill_arrays(
        x,
        2 * np.pi * np.sqrt(length / g),
        ["L", "g", "m"],
        units=[{M: 1}, {M: 1, S: -2}, {KG: 1}],
        target_unit={S: 1},
        time_budget=CAP,
    )
    L, g_ = sympy.symbols("L g")
    assert res.exact
    assert _same(res.sympy_expr, 2 * sympy.pi * sympy.sqrt(L / g_))
    assert "pi" in res.expression


def test_drag_force_without_units() -> None:
    x = _rows(1500, 4, 0.5, 3.0, seed=1)
    rho, cd, area, v = x.T
    res = distill_arrays(x, 0.5 * rho * cd * area * v**2, ["rho", "Cd", "A", "v"], time_budget=CAP)
    rho_s, cd_s, a_s, v_s = sympy.symbols("rho Cd A v")
    assert res.exact
    assert _same(res.sympy_expr, rho_s * cd_s * a_s * v_s**2 / 2)


def test_sum_with_trig_term() -> None:
    x = _rows(1500, 3, seed=2)
    q, e, th = x.T
    res = distill_arrays(x, q * (e + np.cos(th)), ["q", "E", "theta"], time_budget=CAP)
    assert res.exact
    assert res.r2 > 1 - 1e-12


def test_pi_groups_match_hand_computation() -> None:
    # Drag: F = f(rho, v, A, mu). Repeating rho, v, A: prefactor rho*v**2*A, one group.
    units = [{KG: 1, M: -3}, {M: 1, S: -1}, {M: 2}, {KG: 1, M: -1, S: -1}]
    variants = dimensional_variants(units, {KG: 1, M: 1, S: -2})
    f = Fraction
    hand_pref = (f(1), f(2), f(1), f(0))
    hand_group = (
        f(-1),
        f(-1),
        f(-1, 2),
        f(1),
    )  # mu / (rho v sqrt(A)): the Reynolds number's inverse
    assert any(v.prefactor == hand_pref and v.groups == (hand_group,) for v in variants)
    for var in variants:
        assert len(var.groups) == 1  # 4 variables, rank 3


def test_pendulum_pi_groups() -> None:
    variants = dimensional_variants([{M: 1}, {M: 1, S: -2}, {KG: 1}], {S: 1})
    assert variants[0].prefactor == (Fraction(1, 2), Fraction(-1, 2), Fraction(0))
    assert variants[0].groups == ()


def test_inconsistent_units_fall_back_to_raw_variables() -> None:
    x = _rows(1000, 2)
    # Wrong unit on purpose: the output is a*b but the declared units cannot build it.
    res = distill_arrays(
        x,
        x[:, 0] * x[:, 1],
        ["a", "b"],
        units=[{M: 1}, {M: 1}],
        target_unit={S: 1},
        time_budget=CAP,
    )
    assert res.exact
    assert res.expression in ("a*b", "b*a")


def test_deterministic_for_a_seed() -> None:
    x = _rows(1000, 3, seed=3)
    y = x[:, 0] / (1 + x[:, 1] * x[:, 2])
    a = distill_arrays(x, y, ["a", "b", "c"], time_budget=CAP, seed=7)
    b = distill_arrays(x, y, ["a", "b", "c"], time_budget=CAP, seed=7)
    assert a.expression == b.expression
    assert [p.expression for p in a.pareto] == [p.expression for p in b.pareto]


def test_noise_is_not_exact() -> None:
    rng = np.random.default_rng(4)
    x = rng.uniform(1, 2, size=(500, 3))
    y = rng.normal(size=500)  # noise: nothing exact exists
    res = distill_arrays(x, y, ["a", "b", "c"], effort=0.02, stages=STAGES[:3])
    assert not res.exact
    assert not res.timed_out  # the work ran out, not the clock


def test_same_equation_whatever_the_cap() -> None:
    """Rule: work, not time, bounds the search: a tight cap and a huge one agree."""
    rng = np.random.default_rng(8)
    x = rng.uniform(1, 2, size=(600, 3))
    y = x[:, 0] ** x[:, 1] + np.sin(x[:, 2] * x[:, 0])  # no stage finds it exactly
    stages = (STAGES[0], STAGES[-1])  # cheap power laws, then work-bounded tree search
    kwargs: dict[str, Any] = {"names": ["a", "b", "c"], "seed": 3, "effort": 0.05}
    kwargs["stages"] = stages
    tight = distill_arrays(x, y, time_budget=60, **kwargs)
    huge = distill_arrays(x, y, time_budget=1e6, **kwargs)
    assert not tight.timed_out and not huge.timed_out
    assert tight.expression == huge.expression
    assert [p.expression for p in tight.pareto] == [p.expression for p in huge.pareto]
    serial = distill_arrays(x, y, time_budget=1e6, workers=0, **kwargs)
    assert serial.expression == huge.expression


def _hang(_ws: Workspace, _problem: Problem, _work: int) -> list[Candidate]:
    threading.Event().wait()  # a worker that never answers
    return []


@pytest.mark.timeout(60)
def test_cap_kills_a_worker_that_hangs() -> None:
    """Rule: the wall-clock cap is enforced; the best point found before it is returned."""
    x = _rows(400, 2, seed=6)
    y = x[:, 0] * x[:, 1] ** 2 + np.sin(x[:, 0])
    stages = (STAGES[0], Stage("a hanging family", (Family("hang", _hang),)))
    res = distill_arrays(x, y, ["a", "b"], time_budget=3, workers=1, stages=stages)
    assert res.timed_out and not res.exact
    assert res.source != "mean"  # the power-law stage's best point survived the kill
    assert res.pareto


def test_stage_table_runs_in_order_and_stops_at_exact() -> None:
    seen: list[str] = []
    x = _rows(300, 2, seed=7)
    distill_arrays(x, x[:, 0] / x[:, 1], ["a", "b"], progress=lambda s, _f: seen.append(s))
    labels = [s.label for s in STAGES]
    assert seen[0] == labels[0] and seen[-1] == "done"
    assert labels.index(seen[-2]) < labels.index("shifted power laws")


@pytest.mark.parametrize(
    ("x", "y", "names", "match"),
    [
        (np.ones((50, 2)), np.full(50, np.nan), ["a", "b"], "not finite"),
        (np.full((50, 2), np.inf), np.arange(50.0), ["a", "b"], "not finite"),
        (_rows(5, 2), np.arange(5.0), ["a", "b"], "at least"),
        (_rows(50, 2), np.ones(50), ["a", "b"], "constant"),
        (_rows(50, 2), np.arange(49.0), ["a", "b"], "rows"),
        (_rows(50, 2), np.arange(50.0), ["a"], "names"),
        (_rows(50, 2), np.arange(50.0), ["a", "2b"], "identifier"),
        (_rows(50, 2), np.arange(50.0), ["a", "a"], "duplicate"),
    ],
)
def test_bad_input_raises(x: np.ndarray, y: np.ndarray, names: list[str], match: str) -> None:
    with pytest.raises(DistillError, match=match):
        distill_arrays(x, y, names, time_budget=5)


def test_units_length_mismatch_raises() -> None:
    with pytest.raises(DistillError, match="unit entries"):
        distill_arrays(
            _rows(50, 2), np.arange(50.0), ["a", "b"], units=[{M: 1}], target_unit={M: 1}
        )


def test_oracle_symmetries_are_found() -> None:
    from modreg.distill._structure import find_symmetries, reduce_columns

    x = _rows(500, 3)

    def oracle(q: np.ndarray) -> np.ndarray:
        return np.asarray((q[:, 0] - q[:, 1]) ** 2 + np.log(q[:, 2]), dtype=np.float64)

    syms = find_symmetries(x, oracle, seed=0, tol=1e-6)
    assert [(s.kind, s.i, s.j) for s in syms] == [("diff", 0, 1)]
    recipes, values = reduce_columns(x, syms)
    assert recipes == [("var", 2, -1), ("diff", 0, 1)]
    assert np.allclose(values[:, 1], x[:, 0] - x[:, 1])


def test_progress_is_reported() -> None:
    seen: list[tuple[str, float]] = []
    x = _rows(300, 2, seed=5)
    distill_arrays(
        x, x[:, 0] / x[:, 1], ["a", "b"], time_budget=CAP, progress=lambda s, f: seen.append((s, f))
    )
    assert seen[-1] == ("done", 1.0)
    assert all(0.0 <= f <= 1.0 for _, f in seen)


def test_tree_search_finds_nested_function() -> None:
    x = _rows(1000, 2, hi=3.0)
    a, b = x.T
    res = distill_arrays(x, np.cos(a * np.sqrt(b)), ["a", "b"], time_budget=CAP)
    assert res.exact and res.source.endswith(":trees")
    assert _same(res.sympy_expr, sympy.cos(sympy.Symbol("a") * sympy.sqrt(sympy.Symbol("b"))))


def test_tree_search_fits_outer_constants() -> None:
    x = _rows(1000, 2, hi=3.0, seed=1)
    a, b = x.T
    res = distill_arrays(x, 2 * np.log(a + np.cos(b)), ["a", "b"], time_budget=CAP)
    sa, sb = sympy.symbols("a b")
    assert res.exact and res.source.endswith(":trees")
    assert _same(res.sympy_expr, 2 * sympy.log(sa + sympy.cos(sb)))


def test_tree_search_leaves_library_laws_alone() -> None:
    x = _rows(500, 2, seed=2)
    res = distill_arrays(x, x[:, 0] * x[:, 1] ** 2, ["a", "b"], time_budget=CAP)
    assert res.exact and not res.source.endswith(":trees")


def test_the_law_with_numbers_shows_exact_unit_constants_exactly() -> None:
    """A constant that carries a unit is written as a float under ``constants:``; the law
    shown with its numbers says 8/3 and 1 where the value is that to float precision."""
    from modreg.distill._constants import UnitConstant, inline

    g, x, c1, c2, c3, c4 = sympy.symbols("g x c1 c2 c3 c4", real=True)
    constants = {
        "c1": UnitConstant(8 / 3, "m"),
        "c2": UnitConstant(1.0, "s"),
        "c3": UnitConstant(6.674e-11, "m"),
        "c4": UnitConstant(0.25, "m"),  # a short decimal stays one
    }
    shown = inline(c1 * g + c2 * x + c3 + c4 * g * x, constants)
    expected = sympy.Rational(8, 3) * g + x + sympy.Float(6.674e-11) + sympy.Float(0.25) * g * x
    assert shown == expected


def test_a_fitted_power_gives_its_constant_a_decimal_unit() -> None:
    """c * m1**0.904 for an output in kg: the constant's unit is kg**0.096, which binary
    arithmetic makes kg**0.09600000000000009; it is written, not refused."""
    from modreg.distill._constants import attach_units

    m1 = sympy.Symbol("m1", real=True)
    expr, constants = attach_units(sympy.Float(1.5) * m1 ** sympy.Float(0.904), {"m1": "kg"}, "kg")
    assert [c.unit for c in constants.values()] == ["kg**0.096"]
    assert expr == sympy.Symbol("c1", real=True) * m1 ** sympy.Float(0.904)


def _table(path: Any, columns: dict[str, np.ndarray], units: dict[str, str]) -> tuple[Any, Any]:
    names = list(columns)
    rows = np.stack([columns[n] for n in names], axis=1)
    np.savetxt(path, rows, delimiter=",", header=",".join(names), comments="")
    units_path = path.with_suffix(".units.yaml")
    units_path.write_text("".join(f"{k}: {v}\n" for k, v in units.items()))
    return path, units_path


def test_a_rational_power_gives_its_constant_an_exact_fraction_unit() -> None:
    """c * r**(4/3) for a force: the constant is in N*m**(-4/3), which pint prints as
    1.33333 and which the unit grammar now reads exactly."""
    from modreg.distill._constants import attach_units
    from modreg.spec.units import parse_unit

    r = sympy.Symbol("r", real=True)
    expr, constants = attach_units(2.5 * r ** sympy.Rational(4, 3), {"r": "m"}, "N")
    assert expr == sympy.Symbol("c1", real=True) * r ** sympy.Rational(4, 3)
    assert [c.unit for c in constants.values()] == ["N*m**(-4/3)"]
    assert parse_unit("N*m**(-4/3)") == parse_unit("N") / parse_unit("m") ** (4 / 3)


def test_a_power_no_unit_string_writes_is_taken_of_a_unit_base() -> None:
    """r**1.000234567 (pint writes m**1.00023, another unit): the base is measured in a unit
    constant of value 1, so the law gets its units instead of a refusal."""
    from modreg.distill._constants import attach_units
    from modreg.spec.equations import expression_unit
    from modreg.spec.units import same_dimension

    r = sympy.Symbol("r", real=True)
    law = 3.0 / r ** sympy.Float(1.000234567)
    expr, constants = attach_units(law, {"r": "m"}, "N/m")
    assert {n: (c.value, c.unit) for n, c in constants.items()} == {
        "c1": (1.0, "m"),
        "c2": (3.0, "N/m"),
    }
    c1, c2 = sympy.symbols("c1 c2", real=True)
    assert expr == c2 / (r / c1) ** sympy.Float(1.000234567)
    units = {"r": "m", "c1": "m", "c2": "N/m"}
    assert same_dimension(expression_unit(expr, units), "N/m")


def test_a_law_with_a_four_thirds_power_is_written_from_data(tmp_path: Any) -> None:
    """It used to end with 'cannot write the unit ... meter ** 1.33333 of a fitted constant'."""
    from modreg.distill import distill_module

    rng = np.random.default_rng(0)
    r, m = rng.uniform(1, 5, 300), rng.uniform(1, 3, 300)
    data, units = _table(
        tmp_path / "t.csv",
        {"r": r, "m": m, "F": 2.5 * m * r ** (4 / 3)},
        {"r": "m", "m": "kg", "F": "N"},
    )
    report = distill_module(
        out=tmp_path / "out", data=data, target="F", units=units, time_budget=30, workers=1
    ).to_json()
    assert report["exact"] and report["expression"] == "2.5*m*r**(4/3)"
    assert [c["unit"] for c in report["constants"].values()] == ["N*kg**-1*m**(-4/3)"]
