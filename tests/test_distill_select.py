"""The selection rule and teacher-aware settling: noise-level laws, snapped constants."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from modreg.distill._expr import evaluate
from modreg.distill._noise import recorded_noise, settle
from modreg.distill._select import SELECTION_RULE, description_length, select

README = Path(__file__).resolve().parents[1] / "README.md"


@dataclass(frozen=True)
class P:
    complexity: int
    rmse: float


def test_simplest_point_within_the_teacher_error_wins() -> None:
    """A 60-node curve modelling the network's own error loses to the law at its level."""
    front = [P(3, 0.5), P(10, 1.5e-3), P(60, 2e-4)]
    assert select(front, sigma=1e-3) == 1


def test_a_simpler_wrong_form_loses_to_the_true_one() -> None:
    """m0/cos(v/c) at 3x the teacher's error loses to m0/sqrt(1 - v**2/c**2) at its level."""
    wrong, true = P(7, 3e-3 * 3), P(12, 1.1e-3)
    assert select([wrong, true], sigma=1e-3) == 1


def test_unknown_noise_uses_description_length() -> None:
    front = [P(3, 0.2), P(11, 1e-3), P(70, 4e-4)]
    assert select(front, sigma=0.0) == 1
    assert description_length(1e-3, 11, 4e-4) < description_length(4e-4, 70, 4e-4)


def test_rule_text_is_in_the_readme() -> None:
    """The README states the rule the code applies, word for word."""
    text = " ".join(README.read_text().split())
    assert SELECTION_RULE in text


X = np.random.default_rng(0).uniform(1, 3, size=(2000, 2))
a, b = sp.symbols("a b")
ENV = {"a": X[:, 0], "b": X[:, 1]}


def _score(truth: np.ndarray):  # type: ignore[no-untyped-def]
    def score(expr: sp.Expr) -> float:
        return float(np.sqrt(np.mean((evaluate(expr, ENV, len(truth)) - truth) ** 2)))

    return score


def test_settle_snaps_constants_and_drops_offsets_below_the_noise() -> None:
    rng = np.random.default_rng(1)
    truth = X[:, 0] / (4 * np.pi * X[:, 1])
    teacher = truth * (1 + 1e-3 * np.sin(3 * X[:, 0]))  # a smooth, systematic 0.1 % error
    fitted = sp.Float(0.0795765315067) * a / b * sp.Float(1.00003147762) + sp.Float(5.8e-5)
    sigma = float(np.sqrt(np.mean((teacher - truth) ** 2)))
    settled = settle(fitted, _score(teacher), 2 * sigma, float(np.sqrt(np.mean(teacher**2))))
    assert sp.simplify(settled - a / (4 * sp.pi * b)) == 0
    del rng


def test_settle_rounds_to_supported_digits_when_nothing_exact_fits() -> None:
    truth = 9.8123456 * X[:, 0]
    teacher = truth * (1 + 1e-4 * np.cos(X[:, 1]))
    sigma = float(np.sqrt(np.mean((teacher - truth) ** 2)))
    settled = settle(sp.Float(9.81234561234) * a, _score(teacher), 2 * sigma, 20.0)
    (number,) = settled.atoms(sp.Float)
    assert len(repr(float(number))) < len("9.81234561234")
    assert abs(float(number) - 9.8123456) < 3e-3


def test_settle_keeps_what_the_data_supports() -> None:
    truth = 2.4137 * X[:, 0] + 0.3181 * X[:, 1]
    expr = sp.Float(2.4137) * a + sp.Float(0.3181) * b
    assert settle(expr, _score(truth), 1e-12, 5.0) == expr


@pytest.mark.parametrize(
    ("metrics", "single", "expected"),
    [
        ({"rmse_F": 0.01}, False, 0.01),
        ({"val_rmse_F": 0.02, "rmse": 0.5}, False, 0.02),
        ({"rmse": 0.5}, True, 0.5),
        ({"rmse": 0.5}, False, None),
        ({"rmse_F": float("nan")}, True, None),
        ({}, True, None),
    ],
)
def test_recorded_noise(metrics: dict[str, float], single: bool, expected: float | None) -> None:
    assert recorded_noise(metrics, "F", single) == expected
