"""Hostile and careless input, one table per defect: refused by name, cheaply, registry intact.

Each table row is an attack a user could meet (a published summary, a unit string, a YAML
file, a data file, a hybrid's files); the test builds it, runs the command a user would run
and checks the output line and the registry's state.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modreg.errors import InvalidUnit
from modreg.registry import Registry
from modreg.spec.units import parse_unit

from ._check_data import ROOT
from ._helpers import run_cli

GRAVITY = (ROOT / "modules" / "gravity" / "modreg.yaml").read_text()
GRAVITY_SUMMARY = "summary: Newtonian gravitational force between two point masses"


def gravity_with(directory: Path, old: str, new: str) -> Path:
    """The gravity module with one line of its manifest replaced."""
    assert old in GRAVITY
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "modreg.yaml").write_text(GRAVITY.replace(old, new))
    return directory


# -- defect 3: module text printed as plain text -------------------------------------------

HOSTILE_SUMMARIES = {
    "closing tag": ("[/bold]", "[/bold]"),
    "link markup": ("[link=file:///etc/passwd]click[/link]", "[link=file:///etc/passwd]click"),
    "style markup": ("[blink red]alarm[/]", "[blink red]alarm[/]"),
    "clear screen": ("before\x1b[2Jafter", "before\\x1b[2Jafter"),
    "window title": ("\x1b]0;owned\x07", "\\x1b]0;owned\\x07"),
    "C1 control": ("csi\x9b31m", "csi\\x9b31m"),
    "bidi override": ("abc\u202edcba", "abc\\u202edcba"),
    "backspace": ("safe\x08\x08\x08\x08evil", "safe\\x08\\x08\\x08\\x08evil"),
}


@pytest.mark.parametrize(("summary", "shown"), HOSTILE_SUMMARIES.values(), ids=HOSTILE_SUMMARIES)
@pytest.mark.parametrize("command", ["list", "show"])
def test_module_text_is_printed_as_plain_text(
    tmp_path: Path,
    registry_path: Path,
    capsys: pytest.CaptureFixture[str],
    summary: str,
    shown: str,
    command: str,
) -> None:
    source = gravity_with(tmp_path / "m", GRAVITY_SUMMARY, f"summary: {json.dumps(summary)}")
    Registry(registry_path).publish(source)
    args = [command, *(["physics/gravity"] if command == "show" else []), "-r", registry_path]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    assert shown in out.replace("\n", "").replace(" ", "") or shown in out
    assert not any((ord(c) < 32 and c != "\n") or 0x7F <= ord(c) < 0xA0 for c in out)
    assert "\u202e" not in out
    # The registry is not broken for good: the JSON form still carries the exact text.
    code, out, _ = run_cli(["list", "--json", "-r", registry_path], capsys)
    assert code == 0 and json.loads(out)[0]["summary"] == summary


@pytest.mark.parametrize("folder", ["[/x]", "[link=file:///etc/passwd]m", "[bold"])
def test_ci_table_prints_markup_in_folder_names_literally(
    tmp_path: Path, registry_path: Path, capsys: pytest.CaptureFixture[str], folder: str
) -> None:
    repo = tmp_path / "repo"
    gravity_with(repo / folder, "version: 1.0.0", "version: 1.0.0")
    (repo / "broken").mkdir()
    (repo / "broken" / "modreg.yaml").write_text("name: [\x1b[2J\n")
    code, out, err = run_cli(["check", repo, "-r", registry_path, "--no-latency"], capsys)
    assert "unexpected" not in err and "MarkupError" not in out + err
    assert code == 1  # the broken folder fails; the markup-named one is reported, not fatal
    assert f"{repo / 'broken'}" in out and "\x1b" not in out + err
    assert "physics/gravity@1.0.0" in out


def test_junit_stays_valid_xml_with_control_characters_in_module_text() -> None:
    import xml.etree.ElementTree as ET

    from modreg.check.report import CheckReport, CheckResult

    report = CheckReport()
    report.add(CheckResult("repo/\x1b[2Jm", "manifest", "fail", "bad \x07 unit", ("x\x00y",)))
    root = ET.fromstring(report.to_junit())  # raises on invalid XML
    case = next(root.iter("testcase"))
    assert case.get("classname") == "repo/\\x1b[2Jm"
    failure = case.find("failure")
    assert failure is not None and failure.text == "bad \\x07 unit\nx\\x00y"


def test_error_lines_escape_control_characters(
    tmp_path: Path, registry_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(["show", "physics/x\x1b]0;t\x07", "-r", registry_path], capsys)
    assert code == 1 and err.startswith("error: ") and err.count("\n") == 1
    assert "\x1b" not in err and "\x07" not in err and "\\x1b]0;t\\x07" in err


# -- defect 5: unit strings are bounded before pint evaluates them --------------------------

UNIT_ATTACKS = {
    "tower": ("m*9**9**9", "raises an exponent to a power"),
    "number tower": ("9**9**7", "raises an exponent to a power"),
    "division by zero": ("m/0", "divides by zero"),
    "division by 0.0": ("kg/0.0", "divides by zero"),
    "exponent notation": ("m**1e400", "is not an exponent"),
    "huge exponent": ("m**99999999999999999999", "beyond ±64"),
    "nested powers": ("((((9**64)**64)**64)**64)", "power of 4096"),
    "expression as exponent": ("m**(9**9)", "must be a plain number"),
    "name as exponent": ("m**s", "must be a plain number"),
    "deep nesting": ("(" * 8 + "m" + ")" * 8, "deeper than 4 levels"),
    "too long": ("m*" * 60 + "m", "more than 80"),
    "too many tokens": ("m*" * 25 + "m", "more than 40"),
    "unbalanced": ("(m/s", "unclosed"),
    "long number": ("1234567890123456789012345/s", "is not an exponent"),
}


@pytest.mark.timeout(20)
@pytest.mark.parametrize(("text", "message"), UNIT_ATTACKS.values(), ids=UNIT_ATTACKS)
def test_hostile_unit_is_refused_by_name(text: str, message: str) -> None:
    with pytest.raises(InvalidUnit, match=re.escape(message)):
        parse_unit(text)
    from modreg.spec.units import check_unit_text  # the gate every entry point shares

    with pytest.raises(InvalidUnit, match=re.escape(message)):
        check_unit_text(text)


@pytest.mark.parametrize(
    "text", ["m/s**2", "kg*m**2/s**3", "m**3/(kg*s**2)", "1/s", "(m/s)**-2", "m^2", "m**0.5"]
)
def test_ordinary_units_still_parse(text: str) -> None:
    from modreg.spec.units import check_unit_text

    assert check_unit_text(text) == text
    parse_unit(text)


_UNIT_ATOMS = st.sampled_from(
    ["m", "s", "kg", "N", "9", "99", "0", "1e9", "0.5", "**", "^", "*", "/", "(", ")", "-", " "]
)


@pytest.mark.timeout(120)
@settings(max_examples=300, deadline=None)
@given(st.lists(_UNIT_ATOMS, max_size=30).map("".join))
def test_any_unit_text_parses_or_is_refused_by_name(text: str) -> None:
    """The rule: whatever the text, parsing ends soon in a unit or an InvalidUnit."""
    with contextlib.suppress(InvalidUnit):
        parse_unit(text)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("text", ["m*9**9**9", "9**9**7", "m/0", "m**1e400"])
def test_every_entry_point_refuses_hostile_units(
    tmp_path: Path, registry_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    # A manifest: publish refuses it, nothing is stored.
    source = gravity_with(tmp_path / "m", "r:  {unit: m,", f"r:  {{unit: {json.dumps(text)},")
    code, _, err = run_cli(["publish", source, "-r", registry_path], capsys)
    assert code == 1 and err.startswith("error: ") and err.count("\n") == 1
    assert "unexpected" not in err and text in err
    assert Registry(registry_path).list() == []
    # distill --units: the units file.
    data, units = tmp_path / "d.csv", tmp_path / "u.yaml"
    data.write_text("x,y\n" + "".join(f"{i},{2 * i}\n" for i in range(1, 50)))
    units.write_text(f"x: {json.dumps(text)}\ny: m\n")
    args = ["distill", "--data", data, "--target", "y", "--units", units, "--out", tmp_path / "o"]
    code, _, err = run_cli(args, capsys)
    assert code == 1 and "unexpected" not in err and text in err
    # check replace --unit.
    args = ["check", "replace", "--model", ROOT / "modules" / "gravity", "--data", data]
    code, _, err = run_cli([*args, "--unit", f"r={text}", "-r", registry_path], capsys)
    assert code == 1 and "unexpected" not in err and text in err


@pytest.mark.timeout(30)
def test_parquet_unit_metadata_is_bounded(tmp_path: Path, registry_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    from modreg.check._data import load_reference
    from modreg.spec.manifest import Port

    field = pa.field("x", pa.float64(), metadata={"unit": "m*9**9**9"})
    table = pa.Table.from_arrays([pa.array([1.0, 2.0])], schema=pa.schema([field]))
    pq.write_table(table, tmp_path / "t.parquet")
    with pytest.raises(InvalidUnit, match="raises an exponent"):
        load_reference(tmp_path / "t.parquet", {"x": Port(unit="m")})


# -- defect 10: YAML loading is linear, nesting is a named error -----------------------------


@pytest.mark.timeout(60)  # quadratic: > 120 s; linear: well under a second
def test_many_yaml_keys_are_checked_in_linear_time() -> None:
    from modreg.errors import InvalidManifest
    from modreg.spec.manifest import MAX_MANIFEST_BYTES, parse_manifest

    text = "".join(f"k{i}: 1\n" for i in range(80_000))
    assert len(text) < MAX_MANIFEST_BYTES
    with pytest.raises(InvalidManifest, match=r"\(\+80003 more\)"):  # validated, not hung
        parse_manifest(text)
    with pytest.raises(InvalidManifest, match=r"duplicate key\(s\) \['k7'\]"):
        parse_manifest(text + "k7: 2\n")


NESTED = {
    "flow sequences": "name: " + "[" * 5000 + "]" * 5000,
    "flow mappings": "name: " + "{a: " * 5000 + "1" + "}" * 5000,
    "block sequences": "name:\n" + "".join(" " * i + "-\n" for i in range(1200)),
}


@pytest.mark.parametrize("text", NESTED.values(), ids=NESTED)
def test_deep_yaml_is_a_named_error(
    tmp_path: Path, registry_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "modreg.yaml").write_text(text)
    code, _, err = run_cli(["publish", tmp_path / "m", "-r", registry_path], capsys)
    assert code == 1 and err.count("\n") == 1
    assert "unexpected" not in err and "modreg.yaml" in err
    assert not registry_path.exists() or Registry(registry_path).list() == []


def test_deep_units_file_is_a_named_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, units = tmp_path / "d.csv", tmp_path / "u.yaml"
    data.write_text("x,y\n" + "".join(f"{i},{2 * i}\n" for i in range(1, 50)))
    units.write_text(NESTED["flow sequences"])
    args = ["distill", "--data", data, "--target", "y", "--units", units, "--out", tmp_path / "o"]
    code, _, err = run_cli(args, capsys)
    assert code == 1 and err.count("\n") == 1
    assert "unexpected" not in err and "is not valid YAML" in err


def test_deep_json_in_a_weights_header_is_a_named_error(tmp_path: Path) -> None:
    import struct

    from modreg._files import read_safetensors_header
    from modreg.errors import InvalidWeights

    header = b"[" * 100_000 + b"]" * 100_000
    path = tmp_path / "weights.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(InvalidWeights, match="not a safetensors file"):
        read_safetensors_header(path)


# -- defect 11: file sizes are checked before the file is read -------------------------------


def _sparse(path: Path, size: int, head: bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(head)
        handle.truncate(size)
    return path


def _refusal(call: Callable[[], object]) -> tuple[Exception | None, int]:
    """The error ``call()`` raises, and the peak Python allocation until it did."""
    import tracemalloc

    error = None
    tracemalloc.start()
    try:
        call()
    except Exception as exc:
        error = exc
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return error, peak


OVERSIZED = {
    "manifest": ("modreg.yaml", 300 << 20, "more than the 1,048,576"),
    "README": ("README.md", 300 << 20, "README.md' is 314,572,800 bytes"),
}


@pytest.mark.parametrize(("file", "size", "message"), OVERSIZED.values(), ids=OVERSIZED)
def test_oversized_files_are_refused_before_they_are_read(
    tmp_path: Path, registry_path: Path, file: str, size: int, message: str
) -> None:
    from modreg._files import scan_module
    from modreg.errors import InvalidModule

    source = gravity_with(tmp_path / "m", "version: 1.0.0", "version: 1.0.0")
    _sparse(source / file, size, (source / file).read_bytes() if file == "modreg.yaml" else b"")
    error, peak = _refusal(lambda: scan_module(source))
    assert isinstance(error, InvalidModule) and message in str(error)
    assert peak < 8 << 20, f"refusing a {size:,}-byte file allocated {peak:,} bytes"
    with pytest.raises(InvalidModule):
        Registry(registry_path).publish(source)
    assert not registry_path.exists() or Registry(registry_path).list() == []


def test_oversized_lock_is_refused(tmp_path: Path) -> None:
    from modreg._files import check_hybrid
    from modreg.errors import InvalidModule
    from modreg.spec.manifest import parse_manifest

    source = _hybrid(tmp_path / "h", "sha256:" + "0" * 64)
    _sparse(source / "modreg.lock", 50 << 20, b"{")
    manifest = parse_manifest((source / "modreg.yaml").read_text())
    error, peak = _refusal(lambda: check_hybrid(source, manifest))
    assert isinstance(error, InvalidModule)
    assert peak < 8 << 20


# -- defect 7: hybrids are checked at publish and by CI as the builder checks them -----------

HYBRID = """\
name: test/braked
version: 1.0.0
kind: hybrid
inputs:
  v: {unit: m/s, shape: [3]}
outputs:
  F: {unit: N, shape: [3]}
requires:
  physics/drag: ">=1.0.0,<2"
graph:
  parts:
    drag: {module: physics/drag}
  wires:
    drag.v: v
    drag.rho: "1.2"
  outputs:
    F: drag.F
"""


def _hybrid(
    directory: Path, digest: str, *, manifest: str = HYBRID, lock: str | None = None
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "modreg.yaml").write_text(manifest)
    pins = {"physics/drag": {"version": "1.0.0", "digest": digest}}
    text = json.dumps({"lock_version": 1, "modules": pins}) if lock is None else lock
    (directory / "modreg.lock").write_text(text)
    return directory


def _pickle_weights(directory: Path) -> None:
    import pickle

    (directory / "modreg.yaml").write_text(HYBRID + "weights: weights.safetensors\n")
    (directory / "weights.safetensors").write_bytes(pickle.dumps({"parts.drag.const_C_d": 1.0}))


HYBRID_ATTACKS: dict[str, tuple[object, str]] = {
    "pickle named weights.safetensors": (_pickle_weights, "not a safetensors file"),
    "lock not JSON": ({"lock": "modules: {physics/drag: 1.0.0}"}, "Invalid JSON"),
    "lock pins another module": (
        {
            "lock": json.dumps(
                {
                    "modules": {
                        "physics/gravity": {"version": "1.0.0", "digest": "sha256:" + "0" * 64}
                    }
                }
            )
        },
        "but requires lists ['physics/drag']",
    ),
    "lock outside requires": (
        {"manifest": HYBRID.replace('">=1.0.0,<2"', '">=2.0.0,<3"')},
        "outside requires '>=2.0.0,<3'",
    ),
    "ghost part": (
        {"manifest": HYBRID.replace("F: drag.F", "F: brake.F")},
        "names no part 'brake'",
    ),
    "import in a wire": (
        {"manifest": HYBRID.replace("drag.v: v", "drag.v: __import__('os').system('id')")},
        "wire into 'drag.v'",
    ),
    "attribute call in a wire": (
        {"manifest": HYBRID.replace("drag.v: v", "drag.v: v.__class__")},
        "wire into 'drag.v'",
    ),
    "cycle": (
        {
            "manifest": HYBRID.replace(
                "    drag: {module: physics/drag}",
                "    drag: {module: physics/drag}\n    back: {module: physics/drag}",
            ).replace("drag.v: v", "drag.v: back.F\n    back.v: drag.F\n    back.rho: '1.2'")
        },
        "cycle among parts ['back', 'drag']",
    ),
    "missing output expression": (
        {"manifest": HYBRID.replace("  outputs:\n    F: drag.F", "  outputs:\n    G: drag.F")},
        "missing ['F']",
    ),
    "missing input port": (
        {"manifest": HYBRID.replace("drag.v: v", "drag.w: v")},
        "no input port 'w'",
    ),
    "unconnected input": ({"manifest": HYBRID.replace('    drag.rho: "1.2"\n', "")}, "input 'rho'"),
    "missing output port": (
        {"manifest": HYBRID.replace("F: drag.F", "F: drag.G")},
        "no output port 'G'",
    ),
    "unit mismatch at a joint": (
        {"manifest": HYBRID.replace("v: {unit: m/s, shape: [3]}", "v: {unit: kg, shape: [3]}")},
        "cannot wire 'v' into drag.v (m/s)",
    ),
    "lying lock digest": ({"digest": "sha256:" + "1" * 64}, "but the registry holds"),
}


@pytest.mark.parametrize(("attack", "message"), HYBRID_ATTACKS.values(), ids=HYBRID_ATTACKS)
def test_broken_hybrid_is_refused_at_publish_and_in_ci(
    tmp_path: Path,
    registry_path: Path,
    capsys: pytest.CaptureFixture[str],
    attack: object,
    message: str,
) -> None:
    registry = Registry(registry_path)
    drag = registry.publish(ROOT / "modules" / "drag")
    edits = attack if isinstance(attack, dict) else {}
    source = _hybrid(
        tmp_path / "repo" / "braked",
        edits.get("digest", drag.digest),
        manifest=edits.get("manifest", HYBRID),
        lock=edits.get("lock"),
    )
    if callable(attack):
        attack(source)
    code, _, err = run_cli(["publish", source, "-r", registry_path], capsys)
    assert code == 1 and err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err and "unexpected" not in err
    assert [row.name for row in registry.list()] == ["physics/drag"]
    code, out, err = run_cli(["check", tmp_path / "repo", "-r", registry_path, "--json"], capsys)
    manifest_check = json.loads(out)["results"][0]
    assert code == 1 and manifest_check["check"] == "manifest"
    assert manifest_check["status"] == "fail" and message in manifest_check["message"]


def test_a_sound_hybrid_still_publishes(tmp_path: Path, registry_path: Path) -> None:
    registry = Registry(registry_path)
    drag = registry.publish(ROOT / "modules" / "drag")
    source = _hybrid(tmp_path / "braked", drag.digest)
    assert registry.publish(source).created


# -- defect 15: data files are bounded before they are parsed; CSV needs no pandas -----------


def _csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


ROWS = "".join(f"{i},{2 * i}\n" for i in range(1, 40))
DATA_ATTACKS = {
    "10^5 columns": (
        lambda p: _csv(p, ",".join(f"c{i}" for i in range(10**5)) + "\n"),
        "100,000 columns, more than 4096",
    ),
    "a 2 MB line": (lambda p: _csv(p, "x,y\n" + "1" * (2 << 20) + ",1\n"), "line 2 is longer than"),
    "a 1 KB cell": (
        lambda p: _csv(p, "x,y\n" + "1" * 1000 + ",1\n"),
        "line 2, column 'x' holds '11111111111111111111...'",
    ),
    "text": (
        lambda p: _csv(p, "x,y\n1,2\nabc,3\n"),
        "line 3, column 'x' holds 'abc', not a number",
    ),
    "short row": (lambda p: _csv(p, "x,y\n1,2\n3\n"), "line 3 has 1 cells for 2 columns"),
    "no rows": (lambda p: _csv(p, "x,y\n"), "has no rows"),
    "duplicate header": (lambda p: _csv(p, "x,x\n1,2\n"), "distinct, non-empty column names"),
    "2 GiB (sparse)": (
        lambda p: _sparse(p, 2 << 30, b"x,y\n1,2\n"),
        "2,147,483,648 bytes, more than",
    ),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("make", "message"), DATA_ATTACKS.values(), ids=DATA_ATTACKS)
@pytest.mark.parametrize("reader", ["check", "distill"])
def test_hostile_data_file_is_refused_cheaply(
    tmp_path: Path, make: object, message: str, reader: str
) -> None:
    from modreg.check._data import load_reference
    from modreg.distill._dataset import read_table
    from modreg.errors import DistillError, InputError
    from modreg.spec.manifest import Port

    path = make(tmp_path / "data.csv")  # type: ignore[operator]
    if reader == "check":
        error, peak = _refusal(lambda: load_reference(path, {"x": Port(unit="m")}))
        expected: type[Exception] = InputError
    else:
        error, peak = _refusal(lambda: read_table(path))
        expected = DistillError
    assert isinstance(error, expected) and message in str(error), error
    assert peak < 64 << 20, f"refusing it allocated {peak:,} bytes"


def test_missing_and_nan_cells_name_their_line_and_column(tmp_path: Path) -> None:
    from modreg.check._data import load_reference
    from modreg.errors import InputError
    from modreg.spec.manifest import Port

    path = _csv(tmp_path / "d.csv", "x,v[0],v[1]\n1,2,3\n4,5,\n6,nan,7\n")
    ports = {"x": Port(unit="m"), "v": Port(unit="m/s", shape=(2,))}
    with pytest.raises(
        InputError,
        match=r"'v' holds NaN or Inf in 2 row\(s\) \(first at row 1, line 3, column 'v\[1\]'\)",
    ):
        load_reference(path, ports)


def test_csv_reference_data_needs_no_pandas(tmp_path: Path) -> None:
    """`check replace --data x.csv` on a plain install: pandas and pyarrow absent."""
    import subprocess
    import sys

    path = _csv(tmp_path / "d.csv", "x\n" + ROWS.replace(",", "\n").replace("\n\n", "\n"))
    (tmp_path / "t.parquet").write_bytes(b"PAR1")
    code = f"""
import sys
sys.modules["pandas"] = None
sys.modules["pyarrow"] = None
from pathlib import Path
from modreg.check._data import load_reference
from modreg.errors import ConfigError
from modreg.spec.manifest import Port
values = load_reference(Path({str(path)!r}), {{"x": Port(unit="m")}})["x"]
assert values.shape == (78,) and values.dtype.name == "float64", values
try:
    load_reference(Path({str(tmp_path / "t.parquet")!r}), {{"x": Port(unit="m")}})
except ConfigError as exc:
    print(exc)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "pip install 'modreg[pipeline]'" in done.stdout


# -- the smaller ones: named errors instead of "unexpected X" --------------------------------


def test_absurd_sample_counts_are_refused_by_value(
    tmp_path: Path, registry_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _csv(tmp_path / "d.csv", "x,y\n" + ROWS)
    units = _csv(tmp_path / "u.yaml", "x: m\ny: m\n")
    code, _, err = run_cli(
        ["distill", "physics/x", "--samples", "100000000000", "-r", registry_path], capsys
    )
    assert code == 2 and "--samples 100000000000 is more than 10,000,000" in err
    assert err.count("\n") == 1
    args = ["distill", "--data", data, "--target", "y", "--units", units, "--time-budget", "nan"]
    code, _, err = run_cli(args, capsys)
    assert code == 2 and "--time-budget nan" in err
    args = ["check", "replace", "--model", ROOT / "modules" / "gravity", "--data", data]
    code, _, err = run_cli([*args, "--samples", "100000000000", "-r", registry_path], capsys)
    assert code == 2 and "--samples 100000000000 is more than 1,000,000" in err


def test_unit_for_an_unknown_port_is_refused(
    tmp_path: Path, registry_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _csv(tmp_path / "d.csv", "m1,m2,r,F\n1,1,1,1\n")
    args = ["check", "replace", "--model", ROOT / "modules" / "gravity", "--data", data]
    code, _, err = run_cli([*args, "--unit", "radius=km", "-r", registry_path], capsys)
    assert code == 1 and err.count("\n") == 1
    assert "'radius', which is not a port" in err and "['m1', 'm2', 'r', 'F']" in err
