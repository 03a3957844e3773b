"""Interface policy: each kind of change maps to the bump the README's table says."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from modreg.check.interface import Bump, compare, diff, version_bump
from modreg.errors import InterfaceMismatch
from modreg.spec.manifest import Manifest, dump_manifest
from modreg.spec.tolerance import parse_tolerance

from ._helpers import run_cli

GRAVITY: dict[str, Any] = yaml.safe_load(
    (Path(__file__).parent.parent / "modules" / "gravity" / "modreg.yaml").read_text()
)
Edit = Callable[[dict[str, Any]], None]


def manifest(edit: Edit | None = None, version: str = "1.0.0") -> Manifest:
    data = copy.deepcopy(GRAVITY)
    if edit is not None:
        edit(data)
    data["version"] = version
    return Manifest.model_validate(data)


def _unit_km(d: dict[str, Any]) -> None:
    d["inputs"]["r"]["unit"] = "km"
    d["inputs"]["r"]["range"] = [0.001, 0.005]
    d["constants"]["G"] = {"value": 6.674e-17, "unit": "m*km**2/(kg*s**2)"}


def _rename_r(d: dict[str, Any]) -> None:
    d["inputs"]["d"] = d["inputs"].pop("r")
    d["equation"]["F"] = "G * m1 * m2 / d**2"


def _drop_m2(d: dict[str, Any]) -> None:
    del d["inputs"]["m2"]
    d["equation"]["F"] = "G * m1 * m1 / r**2"


def _add_output(d: dict[str, Any]) -> None:
    d["outputs"]["U"] = {"unit": "J"}
    d["equation"]["U"] = "-G * m1 * m2 / r"


def _add_input(d: dict[str, Any]) -> None:
    d["inputs"]["k"] = {"range": [0.5, 2.0]}
    d["equation"]["F"] = "k * G * m1 * m2 / r**2"


def _set(path: str, value: Any) -> Edit:
    def edit(d: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for key in parents:
            d = d[key]
        d[last] = value

    return edit


POLICY = [
    # (edit, kind of change, bump it needs)
    (_unit_km, "unit-scale", Bump.MAJOR),
    (_set("inputs.r.unit", "meter"), "unit-spelling", Bump.PATCH),
    (_set("outputs.F.unit", "kg*m/s**2"), "unit-spelling", Bump.PATCH),
    (_rename_r, "input-renamed", Bump.MAJOR),
    (_drop_m2, "input-removed", Bump.MAJOR),
    (_add_input, "input-added", Bump.MAJOR),
    (_add_output, "output-added", Bump.MINOR),
    (_set("inputs.r.range", [0.5, 8.0]), "range-widened", Bump.MINOR),
    (_set("inputs.r.range", [2.0, 5.0]), "range-narrowed", Bump.MAJOR),
    (_set("inputs.r.range", [2.0, 8.0]), "range-shifted", Bump.MAJOR),
    (_set("inputs.r.range", None), "range-widened", Bump.MINOR),
    (_set("outputs.F.range", [0.0, 1.0]), "range-narrowed", Bump.MINOR),
    (_set("inputs.r.dtype", "float64"), "dtype", Bump.MAJOR),
    (_set("constants.G.value", 6.7e-11), "constant-value", Bump.MINOR),
    (_set("constants.G.trainable", True), "constant-trainable", Bump.MINOR),
    (_set("equation.F", "G * m1 * m2 * r**-2"), "equation-rewritten", Bump.PATCH),
    (_set("equation.F", "G * m1 * m2 / r**2 * 1.5"), "equation", Bump.MINOR),
    (_set("summary", "better words"), "metadata", Bump.PATCH),
]


@pytest.mark.parametrize(("edit", "kind", "bump"), POLICY)
def test_each_change_needs_its_bump(edit: Edit, kind: str, bump: Bump) -> None:
    changes = diff(manifest(), manifest(edit))
    assert kind in {c.kind for c in changes}
    assert max(c.bump for c in changes) == bump


def test_trainable_constant_frozen_or_shape_changed_is_major() -> None:
    old = manifest(_set("constants.G.trainable", True))
    assert max(c.bump for c in diff(old, manifest())) == Bump.MAJOR


def test_port_and_constant_vectors_compare_by_spec() -> None:
    assert diff(manifest(), manifest()) == []


def test_quantities_compare_across_units() -> None:
    """A range or constant restated in another unit is the same quantity, not a new one."""
    changes = diff(manifest(), manifest(_unit_km))
    assert {c.kind for c in changes} == {"unit-scale", "constant-unit"}
    assert next(c for c in changes if c.kind == "constant-unit").bump == Bump.PATCH


@pytest.mark.parametrize(
    ("edit", "new_version", "ok"),
    [
        (_unit_km, "1.1.0", False),  # m -> km with a minor bump
        (_unit_km, "2.0.0", True),
        (_drop_m2, "1.1.0", False),  # removed port with a minor bump
        (_set("inputs.r.range", [0.5, 8.0]), "1.1.0", True),  # widened range, minor bump
        (_set("inputs.r.range", [0.5, 8.0]), "1.0.1", False),
        (None, "1.0.1", True),
        (None, "1.0.0", False),  # not newer
        (None, "0.9.0", False),
    ],
)
def test_version_bump_against_policy(edit: Edit | None, new_version: str, ok: bool) -> None:
    report = compare(manifest(), manifest(edit, new_version))
    assert report.ok is ok, report.summary()


def test_summary_names_the_change_and_the_numbers() -> None:
    report = compare(manifest(), manifest(_unit_km, "1.1.0"))
    text = report.summary()
    assert "minor bump; major needed" in text
    assert "input 'r'" in text and "m -> km" in text


@pytest.mark.parametrize(
    ("old", "new", "bump"),
    [
        ("1.2.3", "1.2.4", Bump.PATCH),
        ("1.2.3", "1.3.0", Bump.MINOR),
        ("1.2.3", "2.0.0", Bump.MAJOR),
        ("0.1.0", "0.2.0", Bump.MAJOR),  # below 1.0 the minor part breaks
        ("0.1.0", "0.1.1", Bump.MINOR),
        ("0.1.0", "1.0.0", Bump.MAJOR),
        ("1.0.0", "1.0.0", None),
        ("1.0.0rc1", "1.0.0", Bump.PATCH),
    ],
)
def test_version_bump(old: str, new: str, bump: Bump | None) -> None:
    assert version_bump(old, new) == bump


def test_different_names_are_refused() -> None:
    other = manifest(_set("name", "physics/other"))
    with pytest.raises(InterfaceMismatch, match="different modules"):
        diff(manifest(), other)


@pytest.mark.parametrize(
    ("text", "value", "relative"),
    [("2%", 0.02, True), ("0.5 %", 0.005, True), ("0.01", 0.01, False), (0.1, 0.1, False)],
)
def test_tolerance_parses(text: str | float, value: float, relative: bool) -> None:
    tolerance = parse_tolerance(text)
    assert tolerance.value == pytest.approx(value)
    assert tolerance.relative is relative


@pytest.mark.parametrize("text", ["", "2 percent", "-1%", "%", "1e999", "nan", "two"])
def test_bad_tolerance_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="tolerance"):
        parse_tolerance(text)


# -- CLI ------------------------------------------------------------------------------------


run = run_cli


def write(directory: Path, m: Manifest) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "modreg.yaml").write_text(dump_manifest(m))
    return directory


def test_cli_interface_ref_vs_folder(
    tmp_path: Path, registry_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = ["--registry", str(registry_path)]
    assert run(["publish", str(write(tmp_path / "v1", manifest())), *reg], capsys)[0] == 0
    minor = write(tmp_path / "minor", manifest(_unit_km, "1.1.0"))
    code, out, _ = run(["check", "interface", "physics/gravity@1.0.0", str(minor), *reg], capsys)
    assert code == 1
    assert "FAIL physics/gravity@1.1.0 interface" in out
    assert "unit m -> km" in out and "-> major" in out
    major = write(tmp_path / "major", manifest(_unit_km, "2.0.0"))
    code, out, _ = run(["check", "interface", "physics/gravity@1.0.0", str(major), *reg], capsys)
    assert code == 0, out


def test_cli_interface_bad_input_is_one_line(
    tmp_path: Path, registry_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write(tmp_path / "a", manifest())
    b = write(tmp_path / "b", manifest(_set("name", "physics/other"), "1.1.0"))
    code, out, err = run(["check", "interface", str(a), str(b)], capsys)
    assert code == 1 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and "different modules" in err
    code, _, err = run(
        ["check", "interface", "physics/gravity@1.0.0", str(a), "-r", str(registry_path)],
        capsys,
    )
    assert code == 1 and err.startswith("error: no module named 'physics/gravity'")
