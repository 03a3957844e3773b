"""The modreg MLflow flavor: every kind round-trips through the Model Registry, verified."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import modreg
from modreg.errors import IntegrityError, InvalidModule
from modreg.registry import Registry
from tests._mlflow_helpers import (
    MLFLOW_WARNINGS,
    ball_hybrid,
    import_mlflow,
    library,
    reference,
    tracking,
)

pytest.importorskip("mlflow")
pd = pytest.importorskip("pandas")
mlflow = import_mlflow()
import modreg.mlflow  # noqa: E402

pytestmark = MLFLOW_WARNINGS

V = [[10.0, 0.0, 5.0], [-30.0, 20.0, 1.0]]
RHO = [1.2, 0.9]


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "registry")


@pytest.fixture(scope="module")
def uri(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One tracking store for the module (creating its tables is most of a test's time)."""
    root = tmp_path_factory.mktemp("tracking")
    with pytest.MonkeyPatch.context() as patch, tracking(root) as value:
        patch.chdir(root)  # nothing MLflow writes may land in the working tree
        yield value


@pytest.fixture
def modules(registry: Registry) -> dict[str, modreg.Module]:
    return library(registry)


def _hybrid_module(tmp_path: Path, registry: Registry, modules: dict[str, Any]) -> modreg.Module:
    net = ball_hybrid(registry, modules["drag"], modules["drag-mlp"])
    net.save(tmp_path / "ball")
    return registry.pull(registry.publish(tmp_path / "ball").ref)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["equation", "network", "hybrid"])
def test_every_kind_round_trips_through_the_model_registry(
    kind: str, tmp_path: Path, registry: Registry, modules: dict[str, Any], uri: str
) -> None:
    module = {"equation": modules["drag"], "network": modules["drag-mlp"]}.get(kind)
    module = module or _hybrid_module(tmp_path, registry, modules)
    info = modreg.mlflow.log_model(
        module, name=kind, registered_model_name=f"test-{kind}", registry=registry
    )
    assert info.registered_model_version == 1
    model = mlflow.pyfunc.load_model(f"models:/test-{kind}/1")
    inputs = {"v": V, "rho": RHO} if kind == "equation" else {"v": V}
    got = model.predict(inputs)
    want = reference(modreg.build(module, registry=registry), inputs)
    assert got.keys() == want.keys()
    for port in want:
        np.testing.assert_allclose(got[port], want[port], rtol=1e-6)
    version = mlflow.MlflowClient().get_model_version(f"test-{kind}", "1")
    assert version.description == f"modreg module {module.ref} ({module.digest})"
    tags = version.tags
    assert tags["modreg.ref"] == module.ref
    assert tags["modreg.digest"] == module.digest
    assert tags["modreg.kind"] == kind


def test_signature_comes_from_the_ports_and_units_ranges_from_the_flavor(
    tmp_path: Path, modules: dict[str, Any]
) -> None:
    modreg.mlflow.save_model(modules["drag"], tmp_path / "m")
    meta = mlflow.models.Model.load(str(tmp_path / "m" / "MLmodel"))
    # no input schema: the model checks requests itself, so mlflow serves every format
    assert meta.signature.inputs is None and not meta._is_signature_from_type_hint()
    [output] = meta.signature.outputs.inputs
    assert (output.name, output.shape, output.type) == ("F", (-1, 3), np.dtype("float32"))
    flavor = meta.flavors["modreg"]
    assert flavor["inputs"]["v"] == {
        "unit": "m/s", "shape": [3], "dtype": "float32", "range": [-60.0, 60.0]
    }  # fmt: skip
    assert flavor["digest"] == modules["drag"].digest
    assert meta.flavors["python_function"]["loader_module"] == "modreg.mlflow"


def test_the_model_holds_the_module_files_and_nothing_pickled(
    tmp_path: Path, registry: Registry, modules: dict[str, Any]
) -> None:
    module = _hybrid_module(tmp_path, registry, modules)
    modreg.mlflow.save_model(module, tmp_path / "m", registry=registry)
    data = tmp_path / "m" / "data"
    assert sorted(p.name for p in (data / "module").iterdir()) == sorted(
        e.path for e in module.files
    )
    parts = sorted(p.name for p in (data / "parts").iterdir())
    assert parts == ["examples+drag-mlp@0.1.0", "physics+drag@1.0.0"]
    suffixes = {p.suffix for p in (tmp_path / "m").rglob("*") if p.is_file()}
    assert suffixes <= {"", ".yaml", ".safetensors", ".lock", ".txt"}


def test_a_built_hybrid_is_saved_as_its_module(
    tmp_path: Path, registry: Registry, modules: dict[str, Any]
) -> None:
    net = ball_hybrid(registry, modules["drag"], modules["drag-mlp"])
    modreg.mlflow.save_model(net, tmp_path / "m", registry=registry)
    assert net.origin is None  # the caller's network is left as it was
    loaded = modreg.mlflow.load_model(str(tmp_path / "m"))
    assert loaded.ref == "test/ball@1.0.0"
    np.testing.assert_allclose(
        loaded.predict({"v": V})["a"], reference(net, {"v": V})["a"], rtol=1e-6
    )


def test_dataframes_in_give_dataframes_out_with_vector_columns(
    tmp_path: Path, modules: dict[str, Any]
) -> None:
    modreg.mlflow.save_model(modules["drag"], tmp_path / "m")
    model = mlflow.pyfunc.load_model(str(tmp_path / "m"))
    frame = pd.DataFrame({"v[0]": [10.0], "v[1]": [0.0], "v[2]": [5.0], "rho": [1.2]})
    out = model.predict(frame)
    assert list(out.columns) == ["F[0]", "F[1]", "F[2]"]
    want = model.predict({"v": [[10.0, 0.0, 5.0]], "rho": [1.2]})["F"][0]
    np.testing.assert_allclose(out.iloc[0].to_numpy(), want)


BAD = [
    ({"v": V}, "input port 'rho' is missing"),
    ({"v": [[10.0, 0.0]], "rho": [1.2]}, r"'v' has shape \[1, 2\], expected \(batch, 3\)"),
    ({"v": [[100.0, 0.0, 5.0]], "rho": [1.2]}, "'v' holds 100 m/s, outside its declared range"),
    ({"v": V, "rho": [1.2, -0.5]}, r"'rho' holds -0.5 kg/m\*\*3, outside"),
    ({"v": V, "rho": [1.2, float("nan")]}, "'rho' holds NaN"),
    ({"v": V, "rho": [1.2]}, "different batch sizes"),
    ({"v": [["a", "b", "c"]], "rho": [1.2]}, "'v' is not a numeric array"),
    (pd.DataFrame({"v[0]": [1.0], "rho": [1.2]}), r"no column 'v\[1\]', 'v\[2\]'"),
    ([1.0, 2.0], "must map port names to arrays"),
]


@pytest.mark.parametrize(("request_", "message"), BAD)
def test_bad_requests_are_invalid_parameter_errors_naming_the_port(
    request_: Any, message: str, tmp_path: Path, modules: dict[str, Any]
) -> None:
    modreg.mlflow.save_model(modules["drag"], tmp_path / "m")
    model = mlflow.pyfunc.load_model(str(tmp_path / "m"))
    with pytest.raises(mlflow.exceptions.MlflowException, match=message) as caught:
        model.predict(request_)
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"
    assert caught.value.get_http_status_code() == 400


V_COLUMNS = ["v[0]", "v[1]", "v[2]"]
REQUESTS = {  # the four bodies mlflow's scoring server takes, each for the same two rows
    "inputs": {"inputs": {"v": V, "rho": RHO}},
    "instances": {"instances": [{"v": v, "rho": rho} for v, rho in zip(V, RHO, strict=True)]},
    "dataframe_split": {
        "dataframe_split": {
            "columns": [*V_COLUMNS, "rho"],
            "data": [[*v, rho] for v, rho in zip(V, RHO, strict=True)],
        }
    },
    "dataframe_records": {
        "dataframe_records": [
            {**dict(zip(V_COLUMNS, v, strict=True)), "rho": rho}
            for v, rho in zip(V, RHO, strict=True)
        ]
    },
    "dataframe_records of vectors": {
        "dataframe_records": [{"v": v, "rho": rho} for v, rho in zip(V, RHO, strict=True)]
    },
}


def _invoke(model: Any, body: Any) -> Any:
    """What ``mlflow models serve`` does with a JSON body, in process (its own function)."""
    from mlflow.pyfunc import scoring_server

    schema = model.metadata.get_input_schema()
    answer = scoring_server.invocations(json.dumps(body), "application/json", model, schema)
    assert answer.status == 200, answer.response
    return json.loads(answer.response)["predictions"]


@pytest.mark.parametrize("form", REQUESTS)
def test_the_scoring_server_takes_every_request_format(
    form: str, tmp_path: Path, modules: dict[str, Any]
) -> None:
    modreg.mlflow.save_model(modules["drag"], tmp_path / "m")
    model = mlflow.pyfunc.load_model(str(tmp_path / "m"))
    want = model.predict({"v": V, "rho": RHO})["F"]
    found = _invoke(model, REQUESTS[form])
    if isinstance(found, dict):  # a mapping in, a mapping out
        got = np.asarray(found["F"])
    else:  # a DataFrame in, records of F[0], F[1], F[2] out
        got = np.asarray([[row[f"F[{i}]"] for i in range(3)] for row in found])
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_a_bad_request_in_any_format_names_the_port(
    tmp_path: Path, modules: dict[str, Any]
) -> None:
    from mlflow.pyfunc import scoring_server

    modreg.mlflow.save_model(modules["drag"], tmp_path / "m")
    model = mlflow.pyfunc.load_model(str(tmp_path / "m"))
    body = {"dataframe_records": [{"v": [100.0, 0.0, 5.0], "rho": 1.2}]}
    with pytest.raises(mlflow.exceptions.MlflowException, match="'v' holds 100 m/s") as caught:
        scoring_server.invocations(json.dumps(body), "application/json", model, None)
    assert caught.value.get_http_status_code() == 400


@pytest.mark.parametrize("target", ["module", "part"])
def test_a_changed_file_is_refused_on_load(
    target: str, tmp_path: Path, registry: Registry, modules: dict[str, Any]
) -> None:
    module = _hybrid_module(tmp_path, registry, modules)
    modreg.mlflow.save_model(module, tmp_path / "m", registry=registry)
    data = tmp_path / "m" / "data"
    manifest = data / ("module" if target == "module" else "parts/physics+drag@1.0.0")
    text = (manifest / "modreg.yaml").read_text()
    (manifest / "modreg.yaml").write_text(text + "# edited after logging\n")
    with pytest.raises(IntegrityError, match="files were changed after logging"):
        mlflow.pyfunc.load_model(str(tmp_path / "m"))


def test_saving_refuses_an_existing_folder_and_a_fresh_block(
    tmp_path: Path, modules: dict[str, Any]
) -> None:
    (tmp_path / "m").mkdir()
    with pytest.raises(InvalidModule, match="already exists"):
        modreg.mlflow.save_model(modules["drag"], tmp_path / "m")
    block = modreg.Block.mlp({"x": {"unit": "m"}}, {"y": {"unit": "s"}}, hidden=[4])
    with pytest.raises(InvalidModule, match="fresh block"):
        modreg.mlflow.save_model(block, tmp_path / "b")
    with pytest.raises(InvalidModule, match="cannot save a str"):
        modreg.mlflow.save_model("physics/drag", tmp_path / "c")


def test_importing_the_flavor_loads_neither_mlflow_nor_torch() -> None:
    code = "import sys, modreg.mlflow; print(sorted({'mlflow', 'torch'} & set(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


def test_the_showcase_registers_one_version_per_digest_on_sqlite(
    tmp_path: Path, registry: Registry, modules: dict[str, Any], uri: str
) -> None:
    from pipelines._mlflow_models import register

    drag = modules["drag"]
    first = register([drag], registry)
    again = register([drag], registry)
    edited = tmp_path / "drag-1.1"
    edited.mkdir()
    text = (drag.path / "modreg.yaml").read_text().replace("version: 1.0.0", "version: 1.1.0")
    (edited / "modreg.yaml").write_text(text)
    newer = registry.pull(registry.publish(edited).ref)
    third = register([newer], registry)
    assert [(r.model, r.version, r.created) for r in first] == [("physics-drag", 1, True)]
    assert [(r.version, r.created) for r in again] == [(1, False)]
    assert [(r.version, r.ref, r.uri) for r in third] == [
        (2, "physics/drag@1.1.0", "models:/physics-drag/2")
    ]
    version = mlflow.MlflowClient().get_model_version("physics-drag", "2")
    assert version.tags["modreg.digest"] == newer.digest


def test_a_hybrid_whose_parts_are_not_found_leaves_no_model(
    tmp_path: Path, registry: Registry, modules: dict[str, Any]
) -> None:
    module = _hybrid_module(tmp_path, registry, modules)
    with pytest.raises(modreg.ModuleNotFound, match=r"physics/drag|examples/drag-mlp"):
        modreg.mlflow.save_model(module, tmp_path / "m", registry=Registry(tmp_path / "empty"))
    assert not (tmp_path / "m").exists()


def _edit_flavor(model: Path, edit: Any) -> None:
    import yaml

    path = model / "MLmodel"
    meta = yaml.safe_load(path.read_text())
    edit(meta["flavors"]["modreg"])
    path.write_text(yaml.safe_dump(meta))


def test_ranges_come_from_the_verified_manifest_not_the_mlmodel(
    tmp_path: Path, modules: dict[str, Any]
) -> None:
    """No digest covers MLmodel: widening a range there must not widen what is served."""
    modreg.mlflow.save_model(modules["drag"], tmp_path / "m")

    def widen(flavor: dict[str, Any]) -> None:
        flavor["inputs"]["v"]["range"] = [-1e9, 1e9]
        flavor["inputs"]["rho"]["range"] = [-1e9, 1e9]

    _edit_flavor(tmp_path / "m", widen)
    model = mlflow.pyfunc.load_model(str(tmp_path / "m"))
    with pytest.raises(mlflow.exceptions.MlflowException, match="outside its declared range"):
        model.predict({"v": [[100.0, 0.0, 5.0]], "rho": [1.2]})


def test_part_folders_are_not_taken_from_the_mlmodel(
    tmp_path: Path, registry: Registry, modules: dict[str, Any]
) -> None:
    module = _hybrid_module(tmp_path, registry, modules)
    modreg.mlflow.save_model(module, tmp_path / "m", registry=registry)
    outside = tmp_path / "outside"
    outside.mkdir()

    def redirect(flavor: dict[str, Any]) -> None:
        for entry in flavor["parts"].values():
            entry["path"] = "../../outside"

    _edit_flavor(tmp_path / "m", redirect)
    loaded = mlflow.pyfunc.load_model(str(tmp_path / "m"))  # the real part folders are used
    assert loaded.predict({"v": V, "rho": RHO})["a"].shape == (2, 3)
