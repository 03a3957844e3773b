"""CI mode over a folder of modules, its reports (table, JSON, JUnit) and its exit status."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from modreg.check.ci import check_repository
from modreg.registry import Registry

from ._check_data import ROOT, write_csv, write_drag
from ._helpers import run_cli

GRAVITY = (ROOT / "modules" / "gravity" / "modreg.yaml").read_text()


def gravity_km(version: str) -> str:
    """Gravity with r in km: a breaking change (unit scale)."""
    return (
        GRAVITY.replace("version: 1.0.0", f"version: {version}")
        .replace("r:  {unit: m,  range: [1.0, 5.0]}", "r:  {unit: km, range: [0.001, 0.005]}")
        .replace("6.674e-11, unit: m**3/(kg*s**2)", "6.674e-17, unit: m*km**2/(kg*s**2)")
    )


@pytest.fixture
def repo(tmp_path: Path, registry_path: Path) -> Path:
    """modules/: a good new drag module and a gravity 1.1.0 that breaks 1.0.0 (published)."""
    Registry(registry_path).publish(ROOT / "modules" / "gravity")
    modules = tmp_path / "repo" / "modules"
    write_drag(modules / "drag", version="1.0.0")
    (modules / "gravity").mkdir()
    (modules / "gravity" / "modreg.yaml").write_text(gravity_km("1.1.0"))
    return modules


def test_project_modules_pass_against_a_temp_registry(
    registry_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(["check", str(ROOT / "modules"), "-r", str(registry_path)], capsys)
    assert code == 0, out + err
    assert "failed" in out and "0 failed" in out


def test_project_modules_pass_as_ci_runs_it(tmp_path: Path) -> None:
    """The real thing: a subprocess, `modreg check modules/` from the repository root."""
    env = os.environ | {"MODREG_REGISTRY": str(tmp_path / "registry")}
    done = subprocess.run(
        [sys.executable, "-m", "modreg", "check", "modules/"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_reports_exactly_the_bad_module(
    repo: Path, registry_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(["check", str(repo), "-r", str(registry_path)], capsys)
    assert code == 1
    failures = [line for line in out.splitlines() if line.startswith("FAIL ")]
    assert len(failures) == 1
    assert failures[0].startswith("FAIL physics/gravity@1.1.0 interface: ")
    assert "minor bump; major needed because input 'r': unit m -> km" in failures[0]


def test_bare_form_equals_ci_subcommand(
    repo: Path, registry_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = ["-r", str(registry_path), "--json"]
    code_a, bare, _ = run_cli(["check", str(repo), *reg], capsys)
    code_b, sub, _ = run_cli(["check", "ci", *reg, str(repo)], capsys)
    code_c, opts_first, _ = run_cli(["check", *reg, str(repo)], capsys)
    strip = [{k: r[k] for k in ("module", "check", "status")} for r in json.loads(bare)["results"]]
    assert code_a == code_b == code_c == 1
    for other in (sub, opts_first):
        results = json.loads(other)["results"]
        assert [{k: r[k] for k in ("module", "check", "status")} for r in results] == strip
    code, out, _ = run_cli(["check", "--help"], capsys)
    assert code == 0 and "interface" in out and "replace" in out


def test_junit_has_one_testcase_per_check(
    repo: Path, registry_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junit = tmp_path / "report.xml"
    code, out, err = run_cli(
        ["check", str(repo), "-r", str(registry_path), "--json", "--junit", str(junit)], capsys
    )
    results = json.loads(out)["results"]
    root = ET.parse(junit).getroot()
    cases = root.findall("./testsuite/testcase")
    assert code == 1 and root.tag == "testsuites"
    assert len(cases) == len(results) == 6  # manifest, digest, interface for each module
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        (r["module"], r["check"]) for r in results
    ]
    failed = [c for c in cases if c.find("failure") is not None]
    assert [(c.get("classname"), c.get("name")) for c in failed] == [
        ("physics/gravity@1.1.0", "interface")
    ]
    assert root.get("tests") == "6" and root.get("failures") == "1"
    assert err.startswith("FAIL physics/gravity@1.1.0 interface")  # JSON keeps stdout clean


def test_invalid_manifest_fails_that_module_only(repo: Path, registry_path: Path) -> None:
    bad = repo / "zz-bad"
    bad.mkdir()
    (bad / "modreg.yaml").write_text(GRAVITY.replace("F:  {unit: N}", "F:  {unit: kg}"))
    report = check_repository(repo, Registry(registry_path))
    failing = [(r.module, r.check) for r in report.failures]
    assert (str(bad), "manifest") in failing
    assert not any(r.module == str(bad) and r.check != "manifest" for r in report.results)
    message = next(r.message for r in report.failures if r.check == "manifest")
    assert "equation for output 'F'" in message


def test_published_version_must_match_folder_digest(tmp_path: Path, registry_path: Path) -> None:
    Registry(registry_path).publish(ROOT / "modules" / "gravity")
    same = tmp_path / "same" / "gravity"
    shutil.copytree(ROOT / "modules" / "gravity", same)
    assert check_repository(same, Registry(registry_path)).ok
    (same / "modreg.yaml").write_text(GRAVITY.replace("point masses", "point masses (edited)"))
    report = check_repository(same, Registry(registry_path))
    assert [(r.check, r.status) for r in report.failures] == [("digest", "fail")]
    assert "versions are immutable, bump the version" in report.failures[0].message


def _with_checks(directory: Path, checks: str) -> Path:
    manifest = directory / "modreg.yaml"
    manifest.write_text(manifest.read_text() + checks)
    return directory


def test_declared_checks_run(tmp_path: Path, registry_path: Path) -> None:
    registry = Registry(registry_path)
    registry.publish(ROOT / "modules" / "drag")
    repo = tmp_path / "repo"
    write_csv(repo / "data" / "drag.csv")
    spec = (
        "checks:\n"
        "  - {data: data/drag.csv, replaces: physics/drag@1.0.0, tolerance: 1%, samples: 300}\n"
        "  - {data: data/drag.csv, metric: max_rel, tolerance: 1%, samples: 300}\n"
    )
    _with_checks(write_drag(repo / "modules" / "good", "good"), spec)
    _with_checks(write_drag(repo / "modules" / "off", "off", version="1.1.0"), spec)
    report = check_repository(repo / "modules", registry, data_root=repo, latency=False)
    failing = {(r.module, r.check) for r in report.failures}
    assert failing == {
        ("physics/drag@1.1.0", "accuracy[0]"),
        ("physics/drag@1.1.0", "accuracy[1]"),
        ("physics/drag@1.1.0", "accuracy[0]:range"),
    }


def test_missing_reference_data_fails_or_is_skipped(tmp_path: Path, registry_path: Path) -> None:
    module = _with_checks(
        write_drag(tmp_path / "drag", version="1.0.0"), "checks:\n  - {data: data/absent.csv}\n"
    )
    registry = Registry(registry_path)
    failed = check_repository(module, registry, data_root=tmp_path)
    assert [(r.check, r.status) for r in failed.failures] == [("accuracy[0]", "fail")]
    assert "run 'dvc pull'" in failed.failures[0].message
    skipped = check_repository(module, registry, data_root=tmp_path, allow_missing_data=True)
    assert skipped.ok and skipped.counts()["skip"] == 1


@pytest.mark.parametrize(
    ("check", "error"),
    [
        ("{data: d.csv, tolerance: 2 percent}", "does not parse"),
        ("{data: d.csv, metric: mse}", "checks.0.metric"),
        ("{data: d.csv, part: drag}", "names both 'model'"),
        ("{data: d.csv, colour: red}", "unknown field"),
    ],
)
def test_bad_checks_entry_is_an_invalid_manifest(
    tmp_path: Path, registry_path: Path, check: str, error: str
) -> None:
    module = _with_checks(write_drag(tmp_path / "drag"), f"checks:\n  - {check}\n")
    report = check_repository(module, Registry(registry_path))
    assert [r.check for r in report.failures] == ["manifest"]
    assert error in report.failures[0].message


def test_no_module_folder_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["check", str(tmp_path)], capsys)
    assert code == 1 and err.startswith("error: no module folder")
