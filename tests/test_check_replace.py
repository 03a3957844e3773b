"""Replacement accuracy: right laws pass, subtly wrong ones fail with the numbers that show it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from modreg.check._metrics import score
from modreg.check.replace import check_replacement
from modreg.errors import ConfigError, GraphError, InputError, InterfaceMismatch
from modreg.module import Module
from modreg.registry import Registry

from ._check_data import ROOT, drag_frame, write_csv, write_drag
from ._helpers import run_cli
from ._runtime_helpers import published_ball

DRAG = ROOT / "modules" / "drag"
FAST = ["--samples", "500", "--no-latency"]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "ref.csv")


def check(
    replacement: Path, data: Path, registry: Path, tolerance: str = "1%"
) -> dict[str, tuple[str, str]]:
    report = check_replacement(
        Module.from_dir(DRAG),
        Module.from_dir(replacement),
        data=data,
        registry=Registry(registry),
        tolerance=tolerance,
        samples=500,
        latency=False,
    )
    return {r.check: (r.status, r.message) for r in report.results}


def test_correct_replacement_passes(tmp_path: Path, data: Path, registry_path: Path) -> None:
    results = check(write_drag(tmp_path / "good", "good"), data, registry_path)
    assert results["replace"][0] == "pass"
    assert results["replace:range"][0] == "pass"


def test_constant_factor_off_by_one_and_a_half_percent_fails(
    tmp_path: Path, data: Path, registry_path: Path
) -> None:
    results = check(write_drag(tmp_path / "off", "off"), data, registry_path)
    status, message = results["replace"]
    assert status == "fail"
    assert message.startswith("rmse F: ") and "degraded beyond tolerance 1%" in message
    assert "limit" in message and "= 1% of" in message


def test_law_right_on_data_wrong_at_range_edge_fails_outside_data(
    tmp_path: Path, data: Path, registry_path: Path
) -> None:
    results = check(write_drag(tmp_path / "edge", "edge"), data, registry_path)
    assert results["replace"][0] == "pass"  # indistinguishable on the data's |v| <= 35 m/s
    status, message = results["replace:range"]
    assert status == "fail"
    assert "over 500 draws of the declared ranges" in message
    assert "worst F off by" in message and "v=[" in message


@pytest.mark.parametrize(
    ("metric", "ok"), [("rmse", False), ("mae", False), ("max_rel", False), ("r2", True)]
)
def test_every_metric_gates(
    tmp_path: Path, data: Path, registry_path: Path, metric: str, ok: bool
) -> None:
    report = check_replacement(
        Module.from_dir(DRAG),
        Module.from_dir(write_drag(tmp_path / "off", "off")),
        data=data,
        registry=Registry(registry_path),
        metric=metric,  # type: ignore[arg-type]
        tolerance="1%",
        samples=0,
        latency=False,
    )
    assert [r.check for r in report.results] == ["replace"]
    assert report.ok is ok  # R² barely moves for a 1.5 % scale error: 1 - R² ~ 2e-4


def test_metrics_on_known_values() -> None:
    reference = np.array([1.0, -2.0, 3.0, -4.0])
    assert score("rmse", reference, reference) == 0.0
    assert score("mae", reference + 0.5, reference) == pytest.approx(0.5)
    assert score("max_rel", reference * 1.02, reference) == pytest.approx(0.02, rel=1e-2)
    assert score("r2", reference, reference) == 1.0


def test_data_units_are_converted(tmp_path: Path, registry_path: Path) -> None:
    frame = drag_frame()
    for i in range(3):
        frame[f"v[{i}]"] = frame[f"v[{i}]"] * 3.6  # the data holds km/h
    data = write_csv(tmp_path / "kmh.csv", frame)
    report = check_replacement(
        Module.from_dir(DRAG),
        Module.from_dir(write_drag(tmp_path / "good", "good")),
        data=data,
        registry=Registry(registry_path),
        units={"v": "km/h"},
        samples=0,
        latency=False,
    )
    assert report.ok
    assert report.results[0].data["ports"][0]["original"] < 1e-6


def test_parquet_list_column_and_unit_metadata(tmp_path: Path, registry_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = drag_frame()
    v = frame[["v[0]", "v[1]", "v[2]"]].to_numpy() * 1000.0  # in mm/s
    force = frame[["F[0]", "F[1]", "F[2]"]].to_numpy()
    table = pa.table({"v": list(v), "rho": frame["rho"], "F": list(force)})
    schema = table.schema.set(0, table.schema.field("v").with_metadata({"unit": "mm/s"}))
    pq.write_table(table.cast(schema), tmp_path / "ref.parquet")
    report = check_replacement(
        Module.from_dir(DRAG),
        Module.from_dir(write_drag(tmp_path / "good", "good")),
        data=tmp_path / "ref.parquet",
        registry=Registry(registry_path),
        samples=0,
        latency=False,
    )
    assert report.ok, report.results[0].message


def test_hybrid_part_replacement(
    tmp_path: Path, registry_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = Registry(registry_path)
    registry.publish(ROOT / "modules" / "drag")
    published_ball(tmp_path / "ball", registry)
    frame = drag_frame(speed=30.0)
    frame["rho"] = 1.2
    for i in range(3):
        frame[f"a[{i}]"] = frame.pop(f"F[{i}]") * (1.2 / frame["rho"]) / 0.145
    data = write_csv(tmp_path / "ball.csv", frame)
    args = ["check", "replace", "--model", "test/ball@1.0.0", "--part", "drag", "--with"]
    args += [str(DRAG), "--data", str(data), "--wire", "rho=1.2", "-r", str(registry_path)]
    code, out, err = run_cli([*args, *FAST, "--tolerance", "5%", "--json"], capsys)
    report = json.loads(out)
    assert code == 0, out + err
    first = report["results"][0]
    assert first["module"] == "physics/drag@1.0.0 as test/ball@1.0.0:drag"
    cost = first["data"]["cost"]
    assert cost["original"]["parameters"] > 1000 > cost["replaced"]["parameters"]
    # The distilled law beats the network it replaces on the data.
    assert first["data"]["ports"][0]["degradation"] < 0

    code, _, err = run_cli([*args[:5], "brake", *args[6:], *FAST], capsys)
    assert code == 1 and err.startswith("error: ") and err.count("\n") == 1
    assert "no part 'brake'" in err


@pytest.mark.parametrize(
    ("edit", "extra", "error", "exit_code"),
    [
        (lambda f: f.drop(columns=["v[2]"]), [], "no column for port 'v'", 1),
        (lambda f: f.assign(rho=f["rho"].where(f.index != 7)), [], "NaN or Inf in 1 row(s)", 1),
        (lambda f: f, ["--unit", "F=kg"], "declared in kg but the port is in N", 1),
        (lambda f: f, ["--tolerance", "2 percent"], "tolerance '2 percent' does not parse", 1),
        (lambda f: f, ["--metric", "mse"], "unknown metric 'mse'", 2),  # usage errors
        (lambda f: f, ["--unit", "F"], "--unit 'F' must be PORT=VALUE", 2),
    ],
)
def test_bad_input_is_one_line_error(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    edit: object,
    extra: list[str],
    error: str,
    exit_code: int,
) -> None:
    data = write_csv(tmp_path / "bad.csv", edit(drag_frame()))  # type: ignore[operator]
    replacement = write_drag(tmp_path / "good", "good")
    args = ["check", "replace", "--model", str(DRAG), "--with", str(replacement)]
    code, out, err = run_cli([*args, "--data", str(data), *FAST, *extra], capsys)
    assert code == exit_code and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1
    assert error in err


def test_library_errors_are_modreg_errors(tmp_path: Path, registry_path: Path) -> None:
    model, registry = Module.from_dir(DRAG), Registry(registry_path)
    data = write_csv(tmp_path / "ref.csv")
    with pytest.raises(ConfigError):
        check_replacement(model, model, data=data, registry=registry, tolerance="x")
    with pytest.raises(ConfigError, match="does not exist"):
        check_replacement(model, model, data=tmp_path / "nope.csv", registry=registry)
    with pytest.raises(GraphError, match="needs a hybrid model"):
        check_replacement(model, model, data=data, registry=registry, part="drag")
    gravity = Module.from_dir(ROOT / "modules" / "gravity")
    with pytest.raises(InterfaceMismatch, match="cannot stand in"):
        check_replacement(model, gravity, data=data, registry=registry)
    frame = drag_frame()
    frame.loc[3, "F[0]"] = np.inf
    inf = write_csv(tmp_path / "inf.csv", frame)
    with pytest.raises(InputError, match="row 3"):
        check_replacement(model, model, data=inf, registry=registry)


def test_model_alone_is_held_to_tolerance(tmp_path: Path, registry_path: Path) -> None:
    data = write_csv(tmp_path / "ref.csv")
    report = check_replacement(
        Module.from_dir(write_drag(tmp_path / "off", "off")),
        None,
        data=data,
        registry=Registry(registry_path),
        tolerance="1%",
        samples=200,
        latency=False,
    )
    assert [(r.check, r.status) for r in report.results] == [
        ("replace", "fail"),
        ("replace:range", "pass"),
    ]
