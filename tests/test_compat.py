"""The one compatibility rule: how ports differ, and what stops NEW standing in for OLD."""

from __future__ import annotations

from typing import Any

import pytest

from modreg.spec.compat import BLOCKING, port_differences, range_in_unit, stand_in_problems
from modreg.spec.interface import Interface
from modreg.spec.manifest import Port


def port(**fields: Any) -> Port:
    return Port(**{"unit": "m", **fields})


def interface(inputs: dict[str, Port], outputs: dict[str, Port]) -> Interface:
    return Interface(inputs, outputs)


PORT_TABLE = [
    # (old, new, the kinds of difference, in order)
    (port(), port(), []),
    (port(), port(unit="meter"), ["unit-spelling"]),
    (port(), port(unit="km"), ["unit-scale"]),
    (port(), port(unit="s"), ["unit-dimension"]),
    (port(), port(shape=[3]), ["shape"]),
    (port(), port(dtype="float64"), ["dtype"]),
    (port(range=[0, 1]), port(range=[0, 2]), ["range-widened"]),
    (port(range=[0, 2]), port(range=[0, 1]), ["range-narrowed"]),
    (port(range=[0, 2]), port(range=[1, 3]), ["range-shifted"]),
    (port(range=[0, 1]), port(), ["range-widened"]),
    (port(), port(range=[0, 1]), ["range-narrowed"]),
    # 1000 m is 1 km: the range is compared in OLD's unit, so only the scale differs.
    (port(range=[0, 1000]), port(unit="km", range=[0, 1]), ["unit-scale"]),
    (port(range=[0, 1000]), port(unit="km", range=[0, 2]), ["unit-scale", "range-widened"]),
    (port(), port(unit="km", shape=[3], dtype="float64"), ["unit-scale", "shape", "dtype"]),
]


@pytest.mark.parametrize(("old", "new", "kinds"), PORT_TABLE)
def test_port_differences(old: Port, new: Port, kinds: list[str]) -> None:
    assert [d.kind for d in port_differences("input", "x", old, new)] == kinds


def test_difference_details_carry_the_values() -> None:
    (scale,) = port_differences("output", "F", port(unit="N"), port(unit="kN"))
    assert str(scale) == "output 'F': unit N -> kN (1 N = 0.001 kN)"
    (narrowed,) = port_differences("input", "r", port(range=[0, 2]), port(range=[0, 1]))
    assert narrowed.detail == "range [0, 2] -> [0, 1]"


def test_range_in_unit_converts_and_defaults_to_unbounded() -> None:
    assert range_in_unit(port(range=[0, 1000]), "km") == (0.0, 1.0)
    assert range_in_unit(port(), "m") == (float("-inf"), float("inf"))
    assert range_in_unit(port(range=[0, 5]), "s") == (0.0, 5.0)  # another dimension: as is


OLD = interface({"v": port(unit="m/s", shape=[3])}, {"F": port(unit="N", shape=[3])})

STAND_IN_TABLE = [
    # (new inputs, new outputs, keyword arguments, the blocking kinds)
    ({"v": port(unit="m/s", shape=[3])}, {"F": port(unit="N", shape=[3])}, {}, []),
    ({"v": port(unit="km/h", shape=[3])}, {"F": port(unit="kN", shape=[3])}, {}, []),
    ({"v": port(unit="m/s", shape=[3])}, {}, {}, ["missing"]),
    ({"v": port(unit="m/s", shape=[3])}, {}, {"used_outputs": set()}, []),
    (
        {"v": port(unit="m/s", shape=[3]), "rho": port(unit="kg/m**3")},
        {"F": port(unit="N", shape=[3])},
        {},
        ["unfed"],
    ),
    (
        {"v": port(unit="m/s", shape=[3]), "rho": port(unit="kg/m**3")},
        {"F": port(unit="N", shape=[3])},
        {"supplied_inputs": {"rho"}},
        [],
    ),
    ({"v": port(unit="m/s", shape=[3])}, {"F": port(unit="N")}, {}, ["shape"]),
    ({"v": port(unit="m", shape=[3])}, {"F": port(unit="N", shape=[3])}, {}, ["unit-dimension"]),
    (
        {"v": port(unit="m/s", shape=[3], dtype="float64")},
        {"F": port(unit="N", shape=[3])},
        {},
        ["dtype"],
    ),
    (
        {"v": port(unit="m/s", shape=[3], dtype="float64")},
        {"F": port(unit="N", shape=[3])},
        {"casts_dtype": True},
        [],
    ),
    # Ranges are promises about validity, never a reason to refuse standing in.
    (
        {"v": port(unit="m/s", shape=[3], range=[0, 1])},
        {"F": port(unit="N", shape=[3], range=[0, 1])},
        {},
        [],
    ),
    # An extra output of NEW is harmless; an input NEW no longer needs is not fed at all.
    ({}, {"F": port(unit="N", shape=[3]), "P": port(unit="W")}, {}, []),
]


@pytest.mark.parametrize(("inputs", "outputs", "options", "kinds"), STAND_IN_TABLE)
def test_stand_in_problems(
    inputs: dict[str, Port], outputs: dict[str, Port], options: dict[str, Any], kinds: list[str]
) -> None:
    problems = stand_in_problems(OLD, interface(inputs, outputs), **options)
    assert [p.kind for p in problems] == kinds
    assert all(p.kind in BLOCKING for p in problems)
