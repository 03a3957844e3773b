"""Serving for real: ``mlflow models serve`` and ``mlflow server`` as processes on 127.0.0.1.

Each server is started once per module on a free port, waited for (``/ping`` or
``/health``), and always stopped (terminate, wait, kill) whatever the tests did.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import modreg
from modreg.registry import Registry
from tests._mlflow_helpers import MLFLOW_WARNINGS, import_mlflow, library, reference

pytest.importorskip("mlflow")
mlflow = import_mlflow()
import modreg.mlflow  # noqa: E402

pytestmark = [*MLFLOW_WARNINGS, pytest.mark.slow]
MLFLOW = str(Path(sys.executable).with_name("mlflow"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
    pytest.fail(f"no answer from {url} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server's whole process group (uvicorn runs under the mlflow CLI)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)
    except ProcessLookupError:
        pass


def _serve(args: list[str], env: dict[str, str], log: Path, health: str) -> Iterator[str]:
    port = _free_port()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [MLFLOW, *args, "--host", "127.0.0.1", "--port", str(port)],
            env={**os.environ, **env},
            cwd=log.parent,  # whatever the server writes stays in the test's folder
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait(url + health, process, log)
        yield url
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A tracking server (``mlflow server``) on sqlite, artifacts proxied to a temp folder."""
    root = tmp_path_factory.mktemp("server")
    args = [
        "server",
        "--backend-store-uri", f"sqlite:///{root / 'server.db'}",
        "--artifacts-destination", str(root / "artifacts"),
        "--workers", "1",
    ]  # fmt: skip
    yield from ((url, root) for url in _serve(args, {}, root / "server.log", "/health"))


@pytest.fixture(scope="module")
def registered(server: tuple[str, Path]) -> Iterator[tuple[str, Path, Any, list[Any]]]:
    """``physics/drag`` registered on the server the way the showcase's publish stage does."""
    from pipelines._mlflow_models import register

    url, root = server
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    with pytest.MonkeyPatch.context() as patch:
        # Module fixtures run before the autouse MODREG_HOME one: pulls must not reach ~.
        patch.setenv("MODREG_HOME", str(root / "home"))
        registry = Registry(root / "registry")
        drag = library(registry)["drag"]
        try:
            with modreg.Tracker("showcase", "publish", uri=url):
                runs = [register([drag], registry), register([drag], registry)]
            yield url, root, drag, runs
        finally:
            mlflow.set_tracking_uri(previous)


@pytest.fixture(scope="module")
def served(registered: tuple[str, Path, Any, list[Any]]) -> Iterator[tuple[str, Any]]:
    """``models:/physics-drag/1`` served by ``mlflow models serve`` from the tracking server."""
    url, root, drag, _ = registered
    env = {"MLFLOW_TRACKING_URI": url, "MODREG_HOME": str(root / "home")}
    args = ["models", "serve", "-m", "models:/physics-drag/1", "--env-manager", "local"]
    yield from ((served, drag) for served in _serve(args, env, root / "serve.log", "/ping"))


def _post(url: str, body: Any) -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        url + "/invocations", data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_served_predictions_match_the_built_module(served: tuple[str, Any]) -> None:
    url, drag = served
    rng = np.random.default_rng(0)
    inputs = {"v": rng.uniform(-60, 60, (64, 3)).tolist(), "rho": rng.uniform(0, 1.5, 64).tolist()}
    status, body = _post(url, {"inputs": inputs})
    assert status == 200, body
    want = reference(modreg.build(drag), inputs)["F"]
    np.testing.assert_allclose(np.array(body["predictions"]["F"]), want, rtol=1e-6)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"v": [[10.0, 0.0, 5.0]]}, "input port 'rho' is missing"),
        ({"v": [[10.0, 0.0]], "rho": [1.2]}, "'v' has shape [1, 2], expected (batch, 3)"),
        ({"v": [[10.0, 0.0, 5.0]], "rho": [7.5]}, "'rho' holds 7.5 kg/m**3, outside its declared"),
    ],
)
def test_bad_requests_get_400_with_the_reason(
    inputs: dict[str, Any], message: str, served: tuple[str, Any]
) -> None:
    status, body = _post(served[0], {"inputs": inputs})
    assert status == 400
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert message in body["message"]
    assert "Traceback" not in body["message"]


def test_dataframe_and_instances_requests_are_served(served: tuple[str, Any]) -> None:
    url, drag = served
    v, rho = [[10.0, 0.0, 5.0], [-30.0, 20.0, 1.0]], [1.2, 0.9]
    want = reference(modreg.build(drag), {"v": v, "rho": rho})["F"]
    split = {"columns": ["v[0]", "v[1]", "v[2]", "rho"], "data": [[*v[0], rho[0]], [*v[1], rho[1]]]}
    status, body = _post(url, {"dataframe_split": split})
    assert status == 200, body
    rows = [[row[f"F[{i}]"] for i in range(3)] for row in body["predictions"]]
    np.testing.assert_allclose(np.array(rows), want, rtol=1e-6)
    instances = [{"v": v[0], "rho": rho[0]}, {"v": v[1], "rho": rho[1]}]
    status, body = _post(url, {"instances": instances})
    assert status == 200, body
    np.testing.assert_allclose(np.array(body["predictions"]["F"]), want, rtol=1e-6)


def test_a_body_that_is_not_json_gets_4xx(served: tuple[str, Any]) -> None:
    status, _ = _post(served[0], b"{not json")
    assert 400 <= status < 500


def test_the_showcase_registers_its_equations_on_an_mlflow_server(
    registered: tuple[str, Path, Any, list[Any]],
) -> None:
    url, _, drag, (first, again) = registered
    assert [(r.model, r.version, r.created) for r in first] == [("physics-drag", 1, True)]
    assert [(r.version, r.created) for r in again] == [(1, False)]  # no duplicate version
    client = mlflow.MlflowClient(tracking_uri=url, registry_uri=url)
    tags = client.get_model_version("physics-drag", "1").tags
    assert tags["modreg.ref"] == "physics/drag@1.0.0"
    assert tags["modreg.digest"] == drag.digest
