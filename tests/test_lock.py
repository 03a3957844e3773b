"""``modreg lock``: a hybrid's lock written, refreshed, and upgraded only by passing checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modreg.errors import DependencyError, InvalidModule
from tests._deps_helpers import drag_versions, snapshot, write_force_data, write_hybrid
from tests._helpers import run_cli

CHECK = {"data": "data/force.csv", "metric": "rmse", "tolerance": "1%", "samples": 100}
WIRES = {"drag.v": "v", "drag.rho": "1.2"}


@pytest.fixture
def registry(tmp_path: Path, registry_path: Path) -> Any:
    from modreg.registry import Registry

    registry = Registry(registry_path)
    drag_versions(tmp_path, registry, ("1.0.0", None))
    write_force_data(tmp_path / "data" / "force.csv")
    return registry


@pytest.fixture
def ball(tmp_path: Path, registry: Any) -> Path:
    return write_hybrid(tmp_path / "ball", registry, "test/ball", {"drag": "physics/drag"},
                        wires=WIRES, checks=[CHECK])  # fmt: skip


def _pins(folder: Path) -> dict[str, str]:
    lock = json.loads((folder / "modreg.lock").read_text())
    return {name: pin["version"] for name, pin in lock["modules"].items()}


def test_a_missing_lock_is_written_at_the_newest_versions(
    ball: Path, registry: Any, tmp_path: Path
) -> None:
    from modreg.deps.lock import write_lock

    drag_versions(tmp_path, registry, ("1.0.1", "good"))
    (ball / "modreg.lock").unlink()
    result = write_lock(ball, registry)
    assert result.written
    assert [c.line()[:24] for c in result.changes] == ["+ physics/drag 1.0.1 (sh"]
    assert _pins(ball) == {"physics/drag": "1.0.1"}


def test_a_valid_lock_is_left_alone(ball: Path, registry: Any, tmp_path: Path) -> None:
    from modreg.deps.lock import write_lock

    drag_versions(tmp_path, registry, ("1.0.1", "good"))
    before = (ball / "modreg.lock").read_bytes()
    result = write_lock(ball, registry)
    assert (result.written, result.changes) == (False, [])
    assert (ball / "modreg.lock").read_bytes() == before


def test_a_pin_outside_a_narrowed_range_is_refreshed(ball: Path, registry: Any, tmp_path: Path):
    from modreg.deps.lock import write_lock

    drag_versions(tmp_path, registry, ("1.0.1", "good"))
    text = (ball / "modreg.yaml").read_text().replace(">=1.0.0,<2", ">=1.0.1,<2")
    (ball / "modreg.yaml").write_text(text)
    result = write_lock(ball, registry)
    assert [c.line().split(" (")[0] for c in result.changes] == ["~ physics/drag 1.0.0 -> 1.0.1"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"version": "1.0.7"}, r"pins physics/drag@1\.0\.7, which the registry does not have"),
        ({"digest": "sha256:" + "ab" * 32}, "that digest is not in the registry"),
    ],
)
def test_a_lock_naming_bytes_the_registry_lacks_is_refused(
    ball: Path, registry: Any, edit: dict[str, str], message: str
) -> None:
    from modreg.deps.lock import write_lock

    lock = json.loads((ball / "modreg.lock").read_text())
    lock["modules"]["physics/drag"] |= edit
    (ball / "modreg.lock").write_text(json.dumps(lock))
    before = (ball / "modreg.lock").read_bytes()
    with pytest.raises(DependencyError, match=message):
        write_lock(ball, registry)
    assert (ball / "modreg.lock").read_bytes() == before


def test_upgrade_skips_a_version_whose_checks_fail(ball: Path, registry: Any, tmp_path: Path):
    from modreg.deps.lock import upgrade_lock

    drag_versions(tmp_path, registry, ("1.0.1", "good"), ("1.1.0", "off"))
    result = upgrade_lock(ball, registry, data_root=tmp_path)
    assert result.tried[0].startswith("physics/drag 1.1.0: fail: FAIL test/ball@1.0.0 accuracy[0]")
    assert result.tried[1] == "physics/drag 1.0.1: pass"
    assert _pins(ball) == {"physics/drag": "1.0.1"}
    assert [c.line().split(" (")[0] for c in result.changes] == ["~ physics/drag 1.0.0 -> 1.0.1"]


def test_upgrade_leaves_the_lock_alone_when_nothing_passes(
    ball: Path, registry: Any, tmp_path: Path, registry_path: Path
) -> None:
    from modreg.deps.lock import upgrade_lock

    drag_versions(tmp_path, registry, ("1.1.0", "off"))
    before, stored = (ball / "modreg.lock").read_bytes(), snapshot(registry_path)
    result = upgrade_lock(ball, registry, data_root=tmp_path)
    assert (result.written, result.changes, len(result.tried)) == (False, [], 1)
    assert (ball / "modreg.lock").read_bytes() == before
    assert snapshot(registry_path) == stored


def test_upgrade_of_a_module_not_required_is_refused(ball: Path, registry: Any) -> None:
    from modreg.deps.lock import upgrade_lock

    with pytest.raises(DependencyError, match=r"does not require 'physics/gravity'"):
        upgrade_lock(ball, registry, name="physics/gravity")


def test_only_hybrids_have_locks(tmp_path: Path, registry: Any) -> None:
    from modreg.deps.lock import write_lock

    with pytest.raises(InvalidModule, match="only hybrids"):
        write_lock(tmp_path / "drag-1.0.0", registry)


def test_cli_upgrade_prints_the_diff_and_exit_codes(
    ball: Path,
    registry: Any,
    registry_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    drag_versions(tmp_path, registry, ("1.1.0", "off"))
    args = ["lock", ball, "--upgrade", "-r", registry_path, "--data-root", tmp_path]
    code, out, err = run_cli(args, capsys)
    assert code == 1
    assert "no newer version passes the checks: lock unchanged" in out
    assert "tried physics/drag 1.1.0: fail" in err
    drag_versions(tmp_path, registry, ("1.0.1", "good"))
    code, out, _ = run_cli([*args[:3], "physics/drag", *args[3:]], capsys)
    assert code == 0
    assert out.splitlines()[0].startswith("~ physics/drag 1.0.0 -> 1.0.1")
    code, out, _ = run_cli(["lock", ball, "-r", registry_path], capsys)
    assert (code, out) == (0, "lock up to date: unchanged\n")
    code, _, err = run_cli(["lock", ball, "physics/drag", "-r", registry_path], capsys)
    assert code == 2  # a usage error
    assert err == "error: NAME 'physics/drag' is only used with --upgrade: add --upgrade\n"
