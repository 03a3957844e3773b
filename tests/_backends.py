"""Every store backend behind one test interface, so one contract suite holds them all.

Each backend gives a fresh registry and raw access *around* the protocol (``put_raw`` writes
over a key unconditionally, as a failing disk or an attacker with bucket access would), so
the suite can damage a registry and check that modreg notices.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from modreg.registry import Registry
from modreg.store import LocalStore, MemoryStore

from ._s3 import BUCKET, WeedServer

BACKENDS = ["local", "memory", "s3"]


class Backend:
    """A registry on one backend, plus raw access to its keys."""

    name: str
    location: str

    def registry(self, **kwargs: Any) -> Registry:
        return Registry(self.location, **kwargs)

    def put_raw(self, key: str, data: bytes) -> None:
        raise NotImplementedError

    def delete_raw(self, key: str) -> None:
        raise NotImplementedError

    def stored_keys(self) -> list[str]:
        return sorted(self.registry().store.list(""))


class LocalBackend(Backend):
    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = str(root)

    def put_raw(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            os.chmod(path, 0o644)
            path.unlink()
        path.write_bytes(data)

    def delete_raw(self, key: str) -> None:
        (self.root / key).unlink()


class MemoryBackend(Backend):
    name = "memory"

    def __init__(self) -> None:
        self.location = f"memory://{uuid.uuid4().hex}"
        self.store = MemoryStore.shared(self.location.removeprefix("memory://"))

    def put_raw(self, key: str, data: bytes) -> None:
        self.store.overwrite(key, data)

    def delete_raw(self, key: str) -> None:
        self.store.delete(key)


class S3Backend(Backend):
    name = "s3"

    def __init__(self, server: WeedServer) -> None:
        self.server = server
        self.prefix = f"r-{uuid.uuid4().hex[:12]}"
        self.location = f"s3://{BUCKET}/{self.prefix}"
        self.client = server.client()

    def put_raw(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=BUCKET, Key=f"{self.prefix}/{key}", Body=data)

    def delete_raw(self, key: str) -> None:
        self.client.delete_object(Bucket=BUCKET, Key=f"{self.prefix}/{key}")


def make_backend(name: str, tmp_path: Path, server: WeedServer | None) -> Backend:
    if name == "local":
        return LocalBackend(tmp_path / "registry")
    if name == "memory":
        return MemoryBackend()
    assert server is not None
    return S3Backend(server)


__all__ = ["BACKENDS", "Backend", "LocalStore", "make_backend"]
