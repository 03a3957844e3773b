"""``modreg distill``: laws recovered from data and from networks, and every bad input.

Budgets are small and samples few so the whole file runs in well under a minute; the
engine stops at the first exact equation, so exact data costs far less than its budget.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sympy as sp
import torch

import modreg
from modreg.registry import Registry
from modreg.spec.expr import parse_expression

from ._helpers import run_cli
from ._runtime_helpers import published_ball

K_DRAG = 0.5 * 1.2 * 0.35 * 0.004185  # 1/2 rho C_d A of a baseball at sea level
FAST = ["--time-budget", "10", "--workers", "1"]
Run = Callable[..., tuple[int, str, str]]
Args = list[str | Path]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    """Run the CLI in-process (through the console script's ``main``)."""

    def invoke(*args: str | Path) -> tuple[int, str, str]:
        return run_cli([str(a) for a in args], capsys)

    return invoke


def write_table(path: Path, columns: dict[str, Any], units: dict[str, str]) -> tuple[Path, Path]:
    """A CSV of the columns and its units YAML beside it."""
    names = list(columns)
    rows = np.stack([np.asarray(columns[n], dtype=np.float64) for n in names], axis=1)
    np.savetxt(path, rows, delimiter=",", header=",".join(names), comments="")
    units_path = path.with_suffix(".units.yaml")
    units_path.write_text("".join(f"{k}: {v}\n" for k, v in units.items()))
    return path, units_path


@pytest.fixture
def gravity_csv(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    m1, m2, r = rng.uniform(1, 10, 300), rng.uniform(1, 10, 300), rng.uniform(1, 5, 300)
    columns = {"m1": m1, "m2": m2, "r": r, "F": 6.674e-11 * m1 * m2 / r**2}
    return write_table(
        tmp_path / "gravity.csv", columns, {"m1": "kg", "m2": "kg", "r": "m", "F": "N"}
    )


@pytest.fixture
def pendulum_csv(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(1)
    length, g, amplitude = (
        rng.uniform(0.1, 2, 300),
        rng.uniform(9, 10, 300),
        rng.uniform(0, 0.1, 300),
    )
    columns = {"L": length, "g": g, "theta0": amplitude, "T": 2 * np.pi * np.sqrt(length / g)}
    units = {"L": "m", "g": "m/s**2", "theta0": "dimensionless", "T": "s"}
    return write_table(tmp_path / "pendulum.csv", columns, units)


def same_law(text: str, truth: str, names: list[str], rel: float = 1e-6) -> bool:
    """Whether two expressions agree numerically at random positive points."""
    found, expected = parse_expression(text, names), parse_expression(truth, names)
    rng = np.random.default_rng(0)
    for _ in range(5):
        point = {sp.Symbol(n, real=True): float(rng.uniform(1, 3)) for n in names}
        a, b = float(found.subs(point)), float(expected.subs(point))
        if abs(a - b) > rel * abs(b):
            return False
    return True


def distill_json(run: Run, *args: str | Path) -> dict[str, Any]:
    code, out, err = run("distill", *args, *FAST, "--json")
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)
    return result


# --- laws from data ---------------------------------------------------------------------


def test_gravity_recovered_from_csv(
    run: Run, gravity_csv: tuple[Path, Path], tmp_path: Path, registry_path: Path
) -> None:
    data, units = gravity_csv
    out = tmp_path / "distilled" / "gravity"
    result = distill_json(run, "--data", data, "--target", "F", "--units", units, "--out", out)
    assert result["exact"] is True
    assert same_law(result["expression"], "6.674e-11*m1*m2/r**2", ["m1", "m2", "r"])
    assert result["complexity"] == 7
    assert result["module"] == str(out)
    assert result["max_rel_error"] < 1e-5  # the built float32 module, on the data
    code, published, err = run("publish", out, "-r", registry_path)
    assert code == 0, err
    assert published.startswith("published distilled/f@0.1.0 sha256:")
    manifest = modreg.Module.from_dir(out).manifest
    assert str(manifest.provenance["dataset_sha256"]).startswith("sha256:")
    (constant,) = manifest.constants.values()  # G carries N*m**2/kg**2
    assert constant.value == pytest.approx(6.674e-11, rel=1e-9)


def test_pendulum_recovered_and_unused_input_kept(
    run: Run, pendulum_csv: tuple[Path, Path], tmp_path: Path
) -> None:
    data, units = pendulum_csv
    out = tmp_path / "pendulum"
    result = distill_json(run, "--data", data, "--target", "T", "--units", units, "--out", out)
    assert result["exact"] is True
    assert same_law(result["expression"], "2*pi*sqrt(L/g)", ["L", "g"])
    manifest = modreg.Module.from_dir(out).manifest
    assert list(manifest.inputs) == ["L", "g", "theta0"]  # unused, still a port
    assert manifest.inputs["L"].range == pytest.approx((0.1, 2.0), abs=0.02)
    assert manifest.metrics["data_max_rel_T"] < 1e-5


def test_same_seed_gives_same_expression(
    run: Run, pendulum_csv: tuple[Path, Path], tmp_path: Path
) -> None:
    data, units = pendulum_csv
    common: Args = ["--data", data, "--target", "T", "--units", units, "--seed", "3"]
    first = distill_json(run, *common, "--out", tmp_path / "a")
    second = distill_json(run, *common, "--out", tmp_path / "b")
    assert first["expression"] == second["expression"]
    assert first["pareto"] == second["pareto"]


def test_parquet_with_a_vector_list_column(run: Run, tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    rng = np.random.default_rng(2)
    v = rng.uniform(-10, 10, (300, 3))
    m = rng.uniform(1, 2, 300)
    energy = 0.5 * m * np.sum(v**2, axis=1)
    pd.DataFrame({"m": m, "v": list(v), "KE": energy}).to_parquet(tmp_path / "ke.parquet")
    (tmp_path / "ke.yaml").write_text("m: kg\nv: m/s\nKE: J\n")
    args: Args = [
        "--data",
        tmp_path / "ke.parquet",
        "--target",
        "KE",
        "--units",
        tmp_path / "ke.yaml",
    ]
    result = distill_json(run, *args, "--out", tmp_path / "ke")
    assert result["exact"] is True
    assert "norm(v)" in result["expression"]
    assert modreg.Module.from_dir(tmp_path / "ke").manifest.inputs["v"].shape == (3,)


@pytest.mark.parametrize(
    ("offset", "law", "form", "expression"),
    [
        ((0.0, 0.0, 0.0), lambda v: -0.3 * v, "parallel", "-0.3*v"),
        ((0.0, 0.0, -1.5), lambda v: -0.25 * np.linalg.norm(v, axis=1)[:, None] * v, "affine",
         "F0 - 0.25*v*norm(v)"),
    ],
)  # fmt: skip
def test_vector_target_from_csv_columns(
    run: Run,
    tmp_path: Path,
    offset: tuple[float, ...],
    law: Callable[[Any], Any],
    form: str,
    expression: str,
) -> None:
    v = np.random.default_rng(3).uniform(-5, 5, (300, 3))
    force = np.asarray(offset) + law(v)
    columns = {f"v[{i}]": v[:, i] for i in range(3)} | {f"F[{i}]": force[:, i] for i in range(3)}
    data, units = write_table(tmp_path / "f.csv", columns, {"v": "m/s", "F": "N"})
    args: Args = ["--data", data, "--target", "F", "--units", units, "--out", tmp_path / "f"]
    result = distill_json(run, *args)
    assert (result["form"], result["expression"], result["exact"]) == (form, expression, True)
    if form == "affine":
        assert result["constants"]["F0"]["value"] == list(offset)
        assert result["constants"]["F0"]["unit"] == "N"


# --- laws from networks -----------------------------------------------------------------


def train_drag_net(directory: Path) -> modreg.Module:
    """A tiny MLP fitted to F = -k |v| v (seeded, a second or two of CPU)."""
    torch.manual_seed(0)
    v_port = {"unit": "m/s", "shape": [3], "range": [-60.0, 60.0]}
    block = modreg.Block.mlp(
        {"v": v_port}, {"F": {"unit": "N", "shape": [3]}}, hidden=(32, 32), normalize=True
    )
    block.check_inputs = False
    v = torch.rand(1024, 3) * 120 - 60
    force = -K_DRAG * v.norm(dim=1, keepdim=True) * v
    block.fit_normalization({"v": v}, {"F": force})
    optimizer = torch.optim.Adam(block.parameters(), lr=1e-2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only contend (30x slower on 2 cores)
    try:
        for _ in range(300):
            loss = ((block({"v": v})["F"] - force) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return block.save(directory, name="baseball/drag-net", version="0.1.0")


def constant_gravity_net(directory: Path) -> modreg.Module:
    """A network whose output is the constant (0, 0, -9.81) whatever its input."""
    torch.manual_seed(0)
    x_port = {"unit": "m", "shape": [3], "range": [-100.0, 100.0]}
    block = modreg.Block.mlp({"x": x_port}, {"g": {"unit": "m/s**2", "shape": [3]}}, hidden=(8,))
    with torch.no_grad():
        block.state_dict()["layers.1.weight"].zero_()
        block.state_dict()["layers.1.bias"].copy_(torch.tensor([0.0, 0.0, -9.81]))
    return block.save(directory, name="baseball/gravity-net", version="0.1.0")


@pytest.fixture(scope="module")
def teachers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry holding the drag and gravity networks (trained once for the module)."""
    root = tmp_path_factory.mktemp("teachers")
    registry = Registry(root / "registry")
    registry.publish(train_drag_net(root / "drag-net").path)
    registry.publish(constant_gravity_net(root / "gravity-net").path)
    return root / "registry"


def teacher_ports(registry: Path) -> Any:
    return Registry(registry).pull("baseball/drag-net@0.1.0").interface


def fidelity_rmse(teacher: modreg.Module, student: modreg.Module, seed: int) -> float:
    """RMSE of the student against the teacher on fresh draws (what check replace does)."""
    from modreg.check._data import sample_ranges
    from modreg.distill._teacher import evaluate

    inputs, _ = sample_ranges(teacher.manifest.inputs, 3000, seed=seed)
    (port,) = teacher.manifest.outputs
    want = evaluate(modreg.build(teacher), teacher.manifest.inputs, inputs)[port]
    got = evaluate(modreg.build(student), student.manifest.inputs, inputs)[port]
    return float(np.sqrt(np.mean((want - got) ** 2)))


def test_drag_law_from_a_trained_network(
    run: Run, teachers: Path, tmp_path: Path, registry_path: Path
) -> None:
    out = tmp_path / "distilled" / "drag"
    args: Args = ["baseball/drag-net@0.1.0", "-r", teachers, "--samples", "3000", "--out", out]
    result = distill_json(run, *args)
    assert result["form"] == "parallel"
    assert result["outputs"]["F"]["equation"].count("v") >= 1
    assert result["cost"]["cost_ratio"] > 10  # a tiny teacher: the law is still far cheaper
    student = modreg.Module.from_dir(out)
    assert student.manifest.provenance["distilled_from"] == "baseball/drag-net@0.1.0"
    assert student.interface.inputs == teacher_ports(teachers).inputs
    code, _, err = run("publish", out, "-r", registry_path)
    assert code == 0, err
    teacher = Registry(teachers).pull("baseball/drag-net@0.1.0")
    rmse = fidelity_rmse(teacher, student, seed=123)
    assert rmse == pytest.approx(result["rmse"], rel=0.1)
    assert rmse == pytest.approx(student.manifest.metrics["teacher_rmse_F"], rel=0.1)
    assert "norm(v)" in result["expression"], result["expression"]
    coefficient = float(student.manifest.constants["c1"].value)  # type: ignore[arg-type]
    assert coefficient == pytest.approx(-K_DRAG, rel=0.05)


def test_gravity_constant_from_a_network(run: Run, teachers: Path, tmp_path: Path) -> None:
    out = tmp_path / "gravity"
    args: Args = ["baseball/gravity-net@0.1.0", "-r", teachers, "--samples", "500", "--out", out]
    result = distill_json(run, *args)
    assert result["form"] == "constant"
    assert result["expression"] == "g0"
    assert result["constants"]["g0"]["value"] == [0.0, 0.0, -9.81]
    assert result["constants"]["g0"]["unit"] == "m/s**2"
    assert result["rmse"] < 1e-5
    assert modreg.Module.from_dir(out).manifest.equation == {"g": "g0"}


def test_network_queried_on_given_data(run: Run, teachers: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(-5, 5, (200, 3))
    columns = {f"x[{i}]": x[:, i] for i in range(3)} | {"g[2]": np.full(200, -9.81)}
    data, _ = write_table(tmp_path / "points.csv", columns, {})
    args: Args = [
        "baseball/gravity-net@0.1.0",
        "-r",
        teachers,
        "--data",
        data,
        "--out",
        tmp_path / "g",
    ]
    result = distill_json(run, *args)
    assert result["form"] == "constant"
    assert "teacher" in result["fidelity"]
    manifest = modreg.Module.from_dir(tmp_path / "g").manifest
    assert str(manifest.provenance["dataset_sha256"]).startswith("sha256:")


def test_outputs_beside_the_module_and_human_summary(
    run: Run, teachers: Path, tmp_path: Path
) -> None:
    out = tmp_path / "gravity"
    code, stdout, err = run(
        "distill",
        "baseball/gravity-net@0.1.0",
        "-r",
        teachers,
        "--samples",
        "500",
        "--out",
        out,
        *FAST,
    )
    assert code == 0, err
    assert stdout.splitlines()[0] == "g = g0"
    assert f"publish with: modreg publish {out}" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["modreg.yaml"]
    front = json.loads((tmp_path / "gravity.pareto.json").read_text())
    assert front["outputs"]["g"]["points"][front["outputs"]["g"]["chosen"]]["expression"] == "g0"
    assert (tmp_path / "gravity.pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_budget_that_runs_out_keeps_the_best_point(
    run: Run, teachers: Path, tmp_path: Path
) -> None:
    args: Args = ["baseball/drag-net@0.1.0", "-r", teachers, "--samples", "3000"]
    code, out, err = run(
        "distill",
        *args,
        "--out",
        tmp_path / "d",
        "--time-budget",
        "0.1",
        "--workers",
        "1",
        "--json",
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["exact"] is False  # the best point so far, flagged as not exact
    assert result["pareto"]
    if result["timed_out"]:  # a fast machine may finish the cheap stages within the cap
        assert "warning: the time cap cut the search for output 'F'" in err
    else:
        assert "time cap" not in err


# --- bad input --------------------------------------------------------------------------


def bad_tables(tmp_path: Path) -> dict[str, tuple[list[str | Path], str]]:
    """Each bad data-mode invocation and a phrase its one-line error must hold."""
    rng = np.random.default_rng(0)
    x = rng.uniform(1, 2, 100)
    good, units = write_table(tmp_path / "good.csv", {"x": x, "y": 3 * x}, {"x": "m", "y": "s"})
    text = tmp_path / "text.csv"
    text.write_text("x,y\n1,2\nabc,3\n")
    nan = tmp_path / "nan.csv"
    nan.write_text("x,y\n" + "".join(f"{i},{i}\n" for i in range(1, 60)) + "nan,1\n")
    small, _ = write_table(tmp_path / "small.csv", {"x": x[:8], "y": 3 * x[:8]}, {})
    const, _ = write_table(tmp_path / "const.csv", {"x": x, "y": np.ones(100)}, {})
    vec, vec_units = write_table(
        tmp_path / "vec.csv",
        {"v[0]": x, "v[1]": x, "y": x},
        {"v[0]": "m/s", "v[1]": "kg", "y": "m"},
    )
    no_unit = tmp_path / "no-unit.yaml"
    no_unit.write_text("x: m\n")
    garbled = tmp_path / "garbled.yaml"
    garbled.write_text("x: [m\n")
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("x: furlongz\ny: s\n")
    d = ["--data"]
    return {
        "missing target": ([*d, good, "--target", "z", "--units", units], "no target column 'z'"),
        "no --target": ([*d, good, "--units", units], "--data needs --target"),
        "no --units": ([*d, good, "--target", "y"], "--data needs --units"),
        "column without unit": ([*d, good, "--target", "y", "--units", no_unit], "has no unit"),
        "non-numeric": ([*d, text, "--target", "y", "--units", units], "not a number"),
        "non-finite": ([*d, nan, "--target", "y", "--units", units], "NaN"),
        "unparseable units": ([*d, good, "--target", "y", "--units", garbled], "not valid YAML"),
        "unknown unit": ([*d, good, "--target", "y", "--units", unknown], "furlongz"),
        "inconsistent units": (
            [*d, vec, "--target", "y", "--units", vec_units],
            "cannot be made consistent",
        ),
        "too few samples": ([*d, small, "--target", "y", "--units", units], "at least"),
        "constant target": ([*d, const, "--target", "y", "--units", units], "is constant"),
        "missing data file": (
            [*d, tmp_path / "nope.csv", "--target", "y", "--units", units],
            "does not exist",
        ),
        "nothing given": ([], "nothing to distill"),
    }


BAD_TABLE_CASES = [
    "missing target",
    "no --target",
    "no --units",
    "column without unit",
    "non-numeric",
    "non-finite",
    "unparseable units",
    "unknown unit",
    "inconsistent units",
    "too few samples",
    "constant target",
    "missing data file",
    "nothing given",
]


@pytest.mark.parametrize("case", BAD_TABLE_CASES)
def test_bad_data_is_one_line(run: Run, tmp_path: Path, case: str) -> None:
    args, phrase = bad_tables(tmp_path)[case]
    code, out, err = run("distill", *args, "--out", tmp_path / "out", *FAST)
    assert code == 1
    assert out == ""
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert phrase in err
    assert not (tmp_path / "out").exists()


def test_teacher_that_is_not_a_network(run: Run, tmp_path: Path, registry_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    Registry(registry_path).publish(root / "modules" / "gravity")
    code, _, err = run(
        "distill", "physics/gravity@1.0.0", "-r", registry_path, "--out", tmp_path / "o", *FAST
    )
    assert code == 1
    assert "already an equation module" in err


def test_hybrid_teacher_points_at_its_parts(run: Run, tmp_path: Path, registry_path: Path) -> None:
    published_ball(tmp_path / "ball", Registry(registry_path))
    code, _, err = run("distill", "test/ball@1.0.0", "-r", registry_path, "--out", tmp_path / "o")
    assert code == 1
    assert "test/ball@1.0.0 is a hybrid module, not a network: distill one of its network" in err


def test_network_without_range(run: Run, tmp_path: Path, registry_path: Path) -> None:
    block = modreg.Block.mlp({"x": "m"}, {"y": "s"}, hidden=(4,))
    registry = Registry(registry_path)
    registry.publish(block.save(tmp_path / "net", name="test/net").path)
    code, _, err = run("distill", "test/net@0.1.0", "-r", registry_path, "--out", tmp_path / "o")
    assert code == 1
    assert "input 'x' of test/net@0.1.0 declares no range" in err
    assert "add range: to the port or pass --data" in err


def test_too_few_samples_from_a_network(run: Run, teachers: Path, tmp_path: Path) -> None:
    args: Args = [
        "baseball/drag-net@0.1.0",
        "-r",
        teachers,
        "--samples",
        "5",
        "--out",
        tmp_path / "o",
    ]
    code, _, err = run("distill", *args)
    assert code == 1
    assert "--samples 5 is too few" in err


def test_unknown_teacher(run: Run, teachers: Path, tmp_path: Path) -> None:
    code, _, err = run("distill", "baseball/nope@1.0.0", "-r", teachers, "--out", tmp_path / "o")
    assert code == 1
    assert err.startswith("error: ")


def test_out_that_exists_and_is_not_empty(
    run: Run, gravity_csv: tuple[Path, Path], tmp_path: Path
) -> None:
    data, units = gravity_csv
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, _, err = run(
        "distill", "--data", data, "--target", "F", "--units", units, "--out", out, *FAST
    )
    assert code == 1
    assert "already exists and is not empty" in err
    assert (out / "keep.txt").read_text() == "mine"
