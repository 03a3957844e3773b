"""The S3 backend against a real server: big files, kills, outages, bad set-ups, the cache,
offline mode and copies between registries. (The shared contract is in test_store_contract.)"""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

import modreg.store.s3 as s3
from modreg._content import hash_file
from modreg.errors import ConfigError, IntegrityError, OfflineError, VersionExists
from modreg.registry import Registry, _protocol
from modreg.registry._keys import object_key

from ._helpers import run_cli, write_network_module
from ._s3 import BUCKET, WeedServer


def _location() -> str:
    return f"s3://{BUCKET}/t-{uuid.uuid4().hex[:12]}"


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modreg", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
        check=False,
    )


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Multipart above 6 MiB in 5 MiB parts (S3's minimum), ranged reads of 1 MiB."""
    monkeypatch.setattr(s3, "MULTIPART_THRESHOLD", 6 << 20)
    monkeypatch.setattr(s3, "PART_SIZE", 5 << 20)
    monkeypatch.setattr(s3, "RANGE_SIZE", 1 << 20)


def _big_network(directory: Path) -> Path:
    """A valid two-layer MLP module of about 13.5 MB."""
    import numpy as np
    from safetensors.numpy import save_file

    from modreg.spec.archs import MLPSpec, expected_tensors

    from ._helpers import NETWORK_YAML

    directory.mkdir(parents=True)
    text = NETWORK_YAML.format(name="test/net", version="1.0.0", summary="big", hidden="1800, 1800")
    (directory / "modreg.yaml").write_text(text)
    rng = np.random.default_rng(0)
    shapes = expected_tensors(MLPSpec(arch="mlp", hidden=[1800, 1800]), 2, 1)
    tensors = {k: rng.standard_normal(v).astype(np.float32) for k, v in shapes.items()}
    save_file(tensors, str(directory / "weights.safetensors"))
    return directory


@pytest.mark.usefixtures("s3_env", "small_parts")
def test_large_file_multipart_and_ranged_pull(tmp_path: Path) -> None:
    location = _location()
    registry = Registry(location)
    src = _big_network(tmp_path / "src")  # 13.5 MB of weights
    result = registry.publish(src)  # multipart: three parts
    registry.pull(result.ref, to=tmp_path / "out")  # fourteen ranges, hashed as they land
    weights = src / "weights.safetensors"
    assert (tmp_path / "out" / "weights.safetensors").read_bytes() == weights.read_bytes()
    entry = hash_file(weights)
    damaged = bytearray(weights.read_bytes())
    damaged[9 << 20] ^= 1  # a byte in the tenth range
    key = f"{location.split('/', 3)[3]}/{object_key(entry.sha256)}"
    raw = registry.store.client  # type: ignore[attr-defined]
    raw.put_object(Bucket=BUCKET, Key=key, Body=bytes(damaged))
    shutil.rmtree(registry.settings.store_cache)  # else the verified cached copy is served
    with pytest.raises(IntegrityError, match="does not match its record"):
        registry.pull(result.ref, to=tmp_path / "again")
    assert not (tmp_path / "again").exists()


@pytest.mark.usefixtures("s3_env")
def test_server_checks_the_checksum(tmp_path: Path) -> None:
    registry = Registry(_location())
    registry.claim()
    with pytest.raises(IntegrityError, match="checksum mismatch"):
        registry.store.put_if_absent("objects/sha256/00/" + "0" * 62, b"bytes", sha256="0" * 64)
    assert registry.store.head("objects/sha256/00/" + "0" * 62) is None


# -- kill -9 of a publisher mid-upload -------------------------------------------------------
def _publish_until(location: str, source: str, stop_at: int, env: dict[str, str], out: Any) -> None:
    """Child: publish, halting before S3 request ``stop_at`` until the parent's kill -9."""
    os.environ.update(env)
    registry = Registry(location)
    count = 0

    def halt(**_: Any) -> None:
        nonlocal count
        if count == stop_at:
            out.put(("halted", count))
            threading.Event().wait()
        count += 1

    registry.store.client.meta.events.register("before-send.s3", halt)  # type: ignore[attr-defined]
    registry.publish(source)
    out.put(("done", count))


def test_kill_9_mid_upload_leaves_no_broken_version(s3_env: WeedServer, tmp_path: Path) -> None:
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["modreg.registry", "boto3"])
    source = str(write_network_module(tmp_path / "src", hidden=20_000))

    def run(location: str, stop_at: int) -> tuple[str, int]:
        out = ctx.Queue()
        child = ctx.Process(
            target=_publish_until, args=(location, source, stop_at, dict(s3_env.env), out)
        )
        child.start()
        outcome: tuple[str, int] = out.get(timeout=120)
        child.kill()
        child.join()
        return outcome

    done, requests = run(_location(), -1)
    assert done == "done" and requests >= 6
    trials = 0
    for stop in [i % requests for i in range(32)]:  # before every request, at least twice
        location = _location()
        assert run(location, stop) == ("halted", stop)
        registry = Registry(location)
        if registry.store.head("modreg-registry.json") is None:
            trials += 1  # killed before the registry existed: nothing to see
            continue
        for version in registry.versions("test/net"):
            registry.pull(f"test/net@{version}", to=tmp_path / f"out{trials}")
        assert registry.verify().ok
        assert registry.publish(source).ref == "test/net@1.0.0"  # a retry finishes the job
        trials += 1
    assert trials >= 30


# -- outages and bad set-ups -----------------------------------------------------------------
def test_server_killed_mid_publish_then_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server = WeedServer(tmp_path / "server")
    server.start()
    try:
        for name, value in server.env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
        location = _location()
        src = write_network_module(tmp_path / "src")
        real = _protocol.put_object

        def put_then_crash(store: Any, source: Path, entry: Any) -> bool:
            written = real(store, source, entry)
            server.stop()
            return written

        monkeypatch.setattr(_protocol, "put_object", put_then_crash)
        code, out, err = run_cli(["publish", str(src), "--registry", location], capsys)
        assert code == 1 and out == ""
        assert err.startswith("error: cannot reach the S3 endpoint") and err.count("\n") == 1
        monkeypatch.setattr(_protocol, "put_object", real)
        server.start()
        code, out, err = run_cli(["publish", str(src), "--registry", location], capsys)
        assert code == 0 and out.startswith("published test/net@1.0.0")
        assert Registry(location).verify().ok
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"AWS_SECRET_ACCESS_KEY": "wrong"}, "was denied"),
        ({"AWS_ACCESS_KEY_ID": "nobody"}, "was denied"),
        ({"REGISTRY": "s3://no-such-bucket/x"}, "bucket 'no-such-bucket' does not exist"),
        ({"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}, "cannot reach the S3 endpoint"),
    ],
    ids=["secret", "key", "bucket", "endpoint"],
)
def test_bad_setups_give_one_line(
    s3_env: WeedServer, tmp_path: Path, change: dict[str, str], message: str
) -> None:
    env = {**s3_env.env, "AWS_MAX_ATTEMPTS": "1", **change}
    location = env.pop("REGISTRY", _location())
    src = write_network_module(tmp_path / "src")
    for args in (["publish", str(src)], ["pull", "test/net@1.0.0"], ["list"]):
        done = _cli([*args, "--registry", location], env)
        assert done.returncode == 1, done
        assert done.stdout == "" and done.stderr.count("\n") == 1, done.stderr
        assert done.stderr.startswith("error: ") and message in done.stderr
        assert s3_env.env["AWS_SECRET_ACCESS_KEY"] not in done.stderr  # never a credential


# -- the local cache and offline mode --------------------------------------------------------
@pytest.mark.usefixtures("s3_env")
def test_second_pull_asks_only_for_the_marker_and_offline_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    location = _location()
    Registry(location).publish(write_network_module(tmp_path / "src"))
    first = Registry(location)
    first.pull("test/net@1.0.0", to=tmp_path / "a")
    registry = Registry(location)
    sent: list[str] = []
    registry.store.client.meta.events.register(  # type: ignore[attr-defined]
        "before-send.s3", lambda request, **_: sent.append(request.url)
    )
    registry.pull("test/net@1.0.0", to=tmp_path / "b")
    assert [url.rsplit("/", 1)[-1] for url in sent] == ["modreg-registry.json"]  # who it is
    offline = Registry(location, offline=True)
    assert offline.pull("test/net@1.0.0", to=tmp_path / "c").version == "1.0.0"
    with pytest.raises(OfflineError, match="needs the network"):
        offline.pull("test/net@>=1", to=tmp_path / "d")
    with pytest.raises(OfflineError, match="needs the network"):
        offline.publish(tmp_path / "src")
    monkeypatch.setenv("MODREG_OFFLINE", "1")
    assert Registry(location).pull("test/net@1.0.0", to=tmp_path / "e").version == "1.0.0"


@pytest.mark.usefixtures("s3_env")
def test_damaged_cache_is_dropped_and_refetched(tmp_path: Path) -> None:
    location = _location()
    registry = Registry(location)
    record = registry.resolve(registry.publish(write_network_module(tmp_path / "src")).ref)
    registry.pull(record.ref, to=tmp_path / "a")
    weights = next(e for e in record.files if e.path == "weights.safetensors")
    cached = registry.settings.store_cache / object_key(weights.sha256)
    cached.write_bytes(b"junk")
    registry.pull(record.ref, to=tmp_path / "b")
    assert hash_file(tmp_path / "b" / "weights.safetensors").sha256 == weights.sha256
    assert hash_file(cached).sha256 == weights.sha256


# -- copies between registries ---------------------------------------------------------------
@pytest.mark.usefixtures("s3_env")
def test_copy_local_to_s3_and_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local = Registry(tmp_path / "local")
    first = local.publish(write_network_module(tmp_path / "v1"))
    local.publish(write_network_module(tmp_path / "v2", version="1.1.0"))
    local.yank("test/net@1.1.0", "bad")
    team = Registry(_location())
    real = Registry.deliver
    calls = 0

    def interrupted(self: Registry, entry: Any, target: Path) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise KeyboardInterrupt
        real(self, entry, target)

    monkeypatch.setattr(Registry, "deliver", interrupted)
    with pytest.raises(KeyboardInterrupt):
        local.copy("test/net@1.0.0", team)
    assert team.versions("test/net") == {}  # the record goes last: nothing half-visible
    monkeypatch.setattr(Registry, "deliver", real)
    for ref in local.refs():
        local.copy(ref, team)
    assert team.resolve("test/net@1.0.0").digest == first.digest
    assert team.versions("test/net") == {"1.0.0": False, "1.1.0": True}
    assert not local.copy("test/net@1.0.0", team).created  # re-running is a no-op
    back = Registry(tmp_path / "back")
    team.copy("test/net@1.0.0", back)
    assert back.resolve("test/net@1.0.0").published == local.resolve("test/net@1.0.0").published
    other = Registry(tmp_path / "other")
    other.publish(write_network_module(tmp_path / "v1b", seed=3))
    with pytest.raises(VersionExists):
        team.copy("test/net@1.0.0", other)
    assert team.verify().ok


def test_copy_cli_requires_a_target(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["copy", "test/net@1.0.0"], capsys)
    assert code == 2 and "--to REGISTRY" in err  # a usage error


def test_bad_bucket_name_and_attempts_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(Exception, match="not a valid bucket name"):
        Registry("s3://x/registry")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "many")
    with pytest.raises(ConfigError, match="AWS_MAX_ATTEMPTS"):
        _ = Registry("s3://some-bucket/r").store.client  # type: ignore[attr-defined]


@pytest.mark.usefixtures("s3_env")
def test_ci_check_against_a_team_registry(
    tmp_path: Path, module_copy: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    location = _location()
    gravity = module_copy("gravity")
    Registry(location).publish(gravity)
    report = tmp_path / "report.xml"
    args = ["check", str(gravity.parent), "--registry", location, "--junit", str(report)]
    code, out, _ = run_cli(args, capsys)
    assert code == 0 and "as published" in out and report.exists()
    text = (gravity / "modreg.yaml").read_text()
    (gravity / "modreg.yaml").write_text(text.replace("summary: ", "summary: edited "))
    code, out, _ = run_cli(args, capsys)
    assert code == 1 and "published versions are immutable" in out


def test_conflicting_conditional_writes_are_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    """409 ConditionalRequestConflict (another conditional write in flight) is retried; 412
    means the key exists. A stubbed client stands beside the real server here: no server can
    be made to answer 409 on demand."""
    import boto3
    from botocore.stub import Stubber

    monkeypatch.setattr(s3.time, "sleep", lambda _: None)
    client = boto3.session.Session().client(
        "s3", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    )
    store = s3.S3Store("some-bucket", "reg", client=client)
    with Stubber(client) as stub:
        for _ in range(2):
            stub.add_client_error("put_object", "ConditionalRequestConflict", http_status_code=409)
        stub.add_response("put_object", {})
        stub.add_client_error("put_object", "PreconditionFailed", http_status_code=412)
        assert store.put_if_absent("k", b"v") is True
        assert store.put_if_absent("k", b"v") is False
        stub.assert_no_pending_responses()
