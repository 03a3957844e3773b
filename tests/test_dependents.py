"""``modreg check dependents``: every hybrid admitting a new version, rebuilt and re-checked."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from tests._deps_helpers import drag_versions, snapshot, write_force_data, write_hybrid
from tests._helpers import run_cli

CHECK = {"data": "data/force.csv", "metric": "rmse", "tolerance": "1%", "samples": 200}


@pytest.fixture
def world(tmp_path: Path, registry_path: Path) -> Any:
    """drag 1.0.0, 1.0.1 (same law), 1.1.0 (1.5 % off); hybrids pinned to 1.0.0."""
    from modreg.registry import Registry

    registry = Registry(registry_path)
    drag_versions(tmp_path, registry, ("1.0.0", None))
    src = tmp_path / "hybrids"
    wires = {"drag.v": "v", "drag.rho": "1.2"}
    for name, requires, checks in (
        ("test/ball", ">=1.0.0,<2", [CHECK]),
        ("test/plain", ">=1.0.0,<2", []),
        ("test/narrow", ">=1.0.0,<1.1", [CHECK]),
    ):
        folder = write_hybrid(
            src / name.partition("/")[2],
            registry,
            name,
            {"drag": "physics/drag"},
            requires={"physics/drag": requires},
            wires=wires,
            checks=checks,
        )
        registry.publish(folder)
    drag_versions(tmp_path, registry, ("1.0.1", "good"), ("1.1.0", "off"))
    write_force_data(tmp_path / "data" / "force.csv")
    return registry


def _statuses(report: Any) -> dict[str, str]:
    return {r.dependent.ref: r.status for r in report.results}


def test_same_law_passes_and_no_checks_is_skipped(world: Any, tmp_path: Path) -> None:
    from modreg.deps.dependents import check_dependents

    report = check_dependents(world, "physics/drag@1.0.1", data_root=tmp_path)
    assert _statuses(report) == {
        "test/ball@1.0.0": "pass",
        "test/narrow@1.0.0": "pass",
        "test/plain@1.0.0": "skip",
    }
    assert report.ok
    ball = next(r for r in report.results if r.dependent.ref == "test/ball@1.0.0")
    assert "rmse F" in ball.figures
    assert "physics/drag@1.0.1" in ball.report.results[0].message  # built with the new one


def test_a_law_off_by_more_than_the_tolerance_fails_and_ranges_filter(
    world: Any, tmp_path: Path
) -> None:
    from modreg.deps.dependents import check_dependents

    report = check_dependents(world, "physics/drag@1.1.0", data_root=tmp_path)
    # test/narrow requires <1.1: 1.1.0 is not its concern
    assert _statuses(report) == {"test/ball@1.0.0": "fail", "test/plain@1.0.0": "skip"}
    assert not report.ok
    ball = report.results[0]
    assert re.match(r"accuracy\[0\] rmse F \+1\.\d% \(", ball.figures), ball.figures
    assert "tol 1%" in ball.figures


def test_absent_data_is_skipped_not_failed(world: Any, tmp_path: Path) -> None:
    from modreg.deps.dependents import check_dependents

    report = check_dependents(world, "physics/drag@1.1.0", data_root=tmp_path / "elsewhere")
    assert _statuses(report)["test/ball@1.0.0"] == "skip"
    assert "no data" in report.results[0].figures


def test_folder_sources_stand_for_their_published_version(world: Any, tmp_path: Path) -> None:
    from modreg.deps.dependents import check_dependents

    src = tmp_path / "repo"
    folder = write_hybrid(
        src / "ball",
        world,
        "test/ball",
        {"drag": "physics/drag"},
        requires={"physics/drag": ">=1.0.0,<2"},
        wires={"drag.v": "v", "drag.rho": "1.2"},
        checks=[CHECK | {"tolerance": "3%"}],  # the source widened its tolerance
    )
    report = check_dependents(world, "physics/drag@1.1.0", sources=src, data_root=tmp_path)
    ball = [r for r in report.results if r.dependent.ref == "test/ball@1.0.0"]
    assert [(r.dependent.folder, r.status) for r in ball] == [(folder, "pass")]


def test_a_cycle_in_requires_is_one_clear_line(world: Any, tmp_path: Path) -> None:
    from modreg.deps.dependents import check_dependents

    wires = {"drag.v": "v", "drag.rho": "1.2"}
    a1 = write_hybrid(tmp_path / "a1", world, "test/a", {"drag": "physics/drag"}, wires=wires,
                      pins={"physics/drag": "1.0.0"})  # fmt: skip
    world.publish(a1)
    world.publish(write_hybrid(tmp_path / "b", world, "test/b", {"a": "test/a"}))
    a2 = write_hybrid(
        tmp_path / "a2", world, "test/a", {"drag": "physics/drag", "b": "test/b"},
        version="1.1.0", wires=wires | {"b.v": "v"}, pins={"physics/drag": "1.0.0"},
    )  # fmt: skip
    world.publish(a2)
    report = check_dependents(world, "physics/drag@1.0.1", data_root=tmp_path)
    row = next(r for r in report.results if r.dependent.ref == "test/a@1.1.0")
    assert row.status == "fail"
    assert "cycle in requires: test/a -> test/b -> test/a" in row.figures
    assert "\n" not in row.figures


def test_cli_table_json_junit_and_exit_code(
    world: Any, tmp_path: Path, registry_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(registry_path)
    args = ["check", "dependents", "physics/drag@1.1.0", "-r", registry_path]
    args += ["--data-root", tmp_path]
    code, out, err = run_cli([*args, "--junit", tmp_path / "deps.xml"], capsys)
    assert code == 1
    assert re.search(r"^test/ball@1\.0\.0 +requires physics/drag>=1\.0\.0,<2 ", out, re.M)
    assert out.splitlines()[0].endswith("FAIL")
    assert "FAIL test/ball@1.0.0 accuracy[0]" in err
    suites = ET.parse(tmp_path / "deps.xml").getroot()
    assert {s.get("name") for s in suites} == {"test/ball@1.0.0", "test/plain@1.0.0"}
    code, out, _ = run_cli([*args, "--json"], capsys)
    data = json.loads(out)
    assert (code, data["ok"], data["counts"]) == (1, False, {"pass": 0, "fail": 1, "skip": 1})
    code, out, _ = run_cli(["check", "dependents", "physics/drag@1.0.1", "-r", registry_path,
                            "--data-root", tmp_path], capsys)  # fmt: skip
    assert code == 0
    assert "3 dependent(s) of physics/drag@1.0.1: 2 passed, 0 failed, 1 skipped: ok" in out
    assert snapshot(registry_path) == before  # nothing published, locked or cached there


def test_unknown_version_is_one_error_line(
    world: Any, registry_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(["check", "dependents", "physics/drag@9.0.0", "-r", registry_path],
                           capsys)  # fmt: skip
    assert code == 1
    assert err.startswith("error: no version of physics/drag matches")
    assert err.count("\n") == 1


def test_an_unmet_requirement_of_a_dependent_is_reported(world: Any, tmp_path: Path) -> None:
    from modreg.deps.dependents import check_dependents

    folder = tmp_path / "repo" / "lost"
    requires = {"physics/drag": ">=1.0.0,<2", "test/gone": ">=1"}  # test/gone never published
    wires = {"drag.v": "v", "drag.rho": "1.2"}
    write_hybrid(folder, world, "test/lost", {"drag": "physics/drag"}, requires=requires,
                 wires=wires)  # fmt: skip
    report = check_dependents(
        world, "physics/drag@1.0.1", sources=folder.parent, data_root=tmp_path
    )
    row = next(r for r in report.results if r.dependent.ref == "test/lost@1.0.0")
    assert row.status == "fail"
    assert "requires test/gone '>=1', which cannot be met" in row.figures


def test_yanked_dependents_are_not_checked(world: Any, tmp_path: Path) -> None:
    from modreg.deps.dependents import find_dependents

    world.yank("test/plain@1.0.0")
    _, found = find_dependents(world, "physics/drag@1.0.1")
    assert [d.ref for d in found] == ["test/ball@1.0.0", "test/narrow@1.0.0"]
