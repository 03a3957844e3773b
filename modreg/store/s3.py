"""A store on S3 or any server that speaks its API (MinIO, Ceph RGW, SeaweedFS, R2, ...).

``s3://BUCKET/PREFIX``: every key lives under ``PREFIX/`` in ``BUCKET``. The client is boto3
(botocore), loaded when the store is first used (without the ``s3`` extra, a ConfigError
says to install it), with credentials and endpoint from the standard AWS chain only
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, an instance role;
``AWS_ENDPOINT_URL`` for servers other than AWS). Nothing here ever prints, logs or stores
a credential.

- ``put_if_absent`` is ``PutObject`` with ``If-None-Match: *`` (412 when the key exists) and an
  ``x-amz-checksum-sha256`` the server checks against the bytes it received. Values over
  :data:`MULTIPART_THRESHOLD` go up as a multipart upload, parts in parallel, each with its
  own checksum, completed with ``If-None-Match: *``; a failed upload is aborted, so nothing is
  ever half-visible.
- ``read_into`` fetches ranges in parallel and reports the completed prefix in order, so the
  caller hashes the delivered bytes while the rest streams in.
- botocore's standard retry mode retries 5xx, throttling and dropped connections with
  backoff; ``409 ConditionalRequestConflict`` (a concurrent conditional write in flight) is
  retried here. Connect and read timeouts are bounded.
"""

from __future__ import annotations

import base64
import builtins
import concurrent.futures
import contextlib
import functools
import hashlib
import os
import random
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from modreg._extras import needs_extra
from modreg.errors import ConfigError, IntegrityError, StoreError
from modreg.store._base import AbstractStore, KeyInfo, pwrite_all

__all__ = ["S3Store"]

MULTIPART_THRESHOLD = 64 << 20
PART_SIZE = 32 << 20
RANGE_SIZE = 16 << 20
WORKERS = 8
CONFLICT_RETRIES = 6
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "Forbidden"}
_MISMATCH = {"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch", "InvalidChecksum"}
_MISSING = {"NoSuchKey", "404", "NotFound"}


def _b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


class S3Store(AbstractStore):
    """Keys under ``PREFIX/`` of an S3 bucket (see the module docstring)."""

    def __init__(self, bucket: str, prefix: str = "", *, client: Any = None) -> None:
        if not _BUCKET.fullmatch(bucket):
            raise ConfigError(
                f"s3://{bucket}: {bucket!r} is not a valid bucket name (3-63 characters of "
                "a-z, 0-9, '.' and '-'): give s3://BUCKET/PREFIX"
            )
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._root = f"{self.prefix}/" if self.prefix else ""
        self.location = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        if client is not None:
            vars(self)["client"] = client

    @classmethod
    def from_uri(cls, rest: str) -> S3Store:
        """A store for the part of ``s3://BUCKET/PREFIX`` after the scheme."""
        bucket, _, prefix = rest.partition("/")
        return cls(bucket, prefix)

    def __repr__(self) -> str:
        return f"S3Store({self.location!r})"

    @functools.cached_property
    def client(self) -> Any:
        with needs_extra("s3", f"the registry {self.location}"):
            import boto3
            from botocore.config import Config

        # AWS_MAX_ATTEMPTS (the standard variable) overrides modreg's default of 8 attempts.
        text = os.environ.get("AWS_MAX_ATTEMPTS", "").strip()
        if text and not text.isdigit():
            raise ConfigError(f"AWS_MAX_ATTEMPTS={text!r} is not a count: set it to e.g. 5")
        attempts = int(text) if text else 8
        config = Config(
            retries={"max_attempts": attempts, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
            max_pool_connections=4 * WORKERS,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        return boto3.session.Session().client("s3", config=config)

    def _errors(self) -> Any:
        """``botocore.exceptions``; without the s3 extra, the ConfigError that names it.

        Every method imports it before its first call, so it, not :attr:`client`, is what a
        missing boto3 meets first.
        """
        with needs_extra("s3", f"the registry {self.location}"):
            import botocore.exceptions as bex
        return bex

    @property
    def endpoint(self) -> str:
        return str(self.client.meta.endpoint_url)

    @property
    def address(self) -> str:
        """The endpoint, bucket and prefix: ``s3://reg/team`` on two servers is two stores."""
        return f"s3 {self.endpoint} {self.bucket}/{self.prefix}"

    # -- error translation -------------------------------------------------------------------
    def _call(self, operation: str, key: str, **kwargs: Any) -> Any:
        """One client call, its failures turned into one-line modreg errors."""
        bex = self._errors()

        try:
            return getattr(self.client, operation)(Bucket=self.bucket, **kwargs)
        except bex.ClientError:
            raise
        except (bex.NoCredentialsError, bex.PartialCredentialsError) as exc:
            raise StoreError(
                f"no AWS credentials for {self.location}: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with an instance role"
            ) from exc
        except (bex.EndpointConnectionError, bex.ConnectTimeoutError) as exc:
            raise StoreError(
                f"cannot reach the S3 endpoint {self.endpoint} for {self.location}: check "
                "AWS_ENDPOINT_URL and that the server is up"
            ) from exc
        except (bex.ReadTimeoutError, bex.ConnectionClosedError, bex.ResponseStreamingError) as exc:
            raise StoreError(
                f"the S3 endpoint {self.endpoint} dropped the {operation} of {key}: "
                "retry the command"
            ) from exc
        except bex.BotoCoreError as exc:
            raise StoreError(f"S3 {operation} of {key} in {self.location} failed: {exc}") from exc

    def _failure(self, exc: Any, operation: str, key: str) -> StoreError:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        if code in _DENIED:
            return StoreError(
                f"access to {self.location} was denied ({code}): check the credentials "
                "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE) and the bucket policy"
            )
        if code == "NoSuchBucket":
            return StoreError(
                f"bucket {self.bucket!r} does not exist at {self.endpoint}: create it first "
                f"(e.g. 'aws s3 mb s3://{self.bucket}') or fix the registry URI"
            )
        return StoreError(
            f"S3 {operation} of {key} in {self.location} failed: {code} "
            f"{error.get('Message', '')}".rstrip()
        )

    def _code(self, exc: Any) -> str:
        return str(exc.response.get("Error", {}).get("Code", ""))

    def _retrying(self, operation: str, key: str, call: Callable[[], Any]) -> Any:
        """Run ``call``, retrying 409 ConditionalRequestConflict with jittered backoff."""
        bex = self._errors()

        for attempt in range(CONFLICT_RETRIES):
            try:
                return call()
            except bex.ClientError as exc:
                if (
                    self._code(exc) != "ConditionalRequestConflict"
                    or attempt == CONFLICT_RETRIES - 1
                ):
                    raise
            time.sleep(0.05 * 2**attempt * (1 + random.random()))
        raise AssertionError("unreachable")

    # -- writes ------------------------------------------------------------------------------
    def put_if_absent(self, key: str, source: bytes | Path, *, sha256: str | None = None) -> bool:
        bex = self._errors()

        size = source.stat().st_size if isinstance(source, Path) else len(source)
        try:
            if size > MULTIPART_THRESHOLD and isinstance(source, Path):
                return self._put_multipart(key, source, size)
            data = source.read_bytes() if isinstance(source, Path) else bytes(source)
            checksum = _b64(sha256 or hashlib.sha256(data).hexdigest())
            self._retrying(
                "PutObject",
                key,
                lambda: self._call(
                    "put_object",
                    key,
                    Key=self._root + key,
                    Body=data,
                    IfNoneMatch="*",
                    ChecksumSHA256=checksum,
                ),
            )
            return True
        except bex.ClientError as exc:
            code = self._code(exc)
            if code in {"PreconditionFailed", "412"}:
                return False
            if code in _MISMATCH:
                raise IntegrityError(
                    f"{self.location} received other bytes than sent for {key} (checksum "
                    "mismatch): nothing was stored, publish again"
                ) from exc
            raise self._failure(exc, "PutObject", key) from exc

    def _put_multipart(self, key: str, source: Path, size: int) -> bool:
        bex = self._errors()

        if self.head(key) is not None:
            return False
        full = self._root + key
        upload = self._call("create_multipart_upload", key, Key=full, ChecksumAlgorithm="SHA256")
        upload_id = upload["UploadId"]
        try:
            parts = self._upload_parts(key, full, upload_id, source, size)
            try:
                self._retrying(
                    "CompleteMultipartUpload",
                    key,
                    lambda: self._call(
                        "complete_multipart_upload",
                        key,
                        Key=full,
                        UploadId=upload_id,
                        MultipartUpload={"Parts": parts},
                        IfNoneMatch="*",
                    ),
                )
            except bex.ClientError as exc:
                if self._code(exc) in {"PreconditionFailed", "412"}:
                    self._abort(key, full, upload_id)
                    return False
                raise
            return True
        except BaseException:
            self._abort(key, full, upload_id)
            raise

    def _upload_parts(
        self, key: str, full: str, upload_id: str, source: Path, size: int
    ) -> list[dict[str, Any]]:
        spans = [(start, min(PART_SIZE, size - start)) for start in range(0, size, PART_SIZE)]
        fd = os.open(source, os.O_RDONLY)
        try:

            def one(number: int, start: int, length: int) -> dict[str, Any]:
                data = os.pread(fd, length, start)
                checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
                reply = self._call(
                    "upload_part",
                    key,
                    Key=full,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=data,
                    ChecksumSHA256=checksum,
                )
                return {"ETag": reply["ETag"], "PartNumber": number, "ChecksumSHA256": checksum}

            with concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS) as pool:
                futures = [pool.submit(one, i + 1, *span) for i, span in enumerate(spans)]
                return [f.result() for f in futures]
        finally:
            os.close(fd)

    def _abort(self, key: str, full: str, upload_id: str) -> None:
        with contextlib.suppress(Exception):  # best effort: gc aborts what is left
            self._call("abort_multipart_upload", key, Key=full, UploadId=upload_id)

    def delete(self, key: str) -> None:
        bex = self._errors()

        try:
            self._call("delete_object", key, Key=self._root + key)
        except bex.ClientError as exc:
            if self._code(exc) not in _MISSING:
                raise self._failure(exc, "DeleteObject", key) from exc

    # -- reads -------------------------------------------------------------------------------
    def get(
        self, key: str, *, start: int = 0, length: int | None = None, limit: int | None = None
    ) -> bytes | None:
        bex = self._errors()

        extra: dict[str, str] = {}
        if start or length is not None:
            if length == 0:
                return b""
            end = "" if length is None else str(start + length - 1)
            extra["Range"] = f"bytes={start}-{end}"
        try:
            reply = self._call("get_object", key, Key=self._root + key, **extra)
        except bex.ClientError as exc:
            code = self._code(exc)
            if code in _MISSING:
                return None
            if code == "InvalidRange":
                return b""
            raise self._failure(exc, "GetObject", key) from exc
        body = reply["Body"]
        if limit is not None and int(reply.get("ContentLength", 0)) > limit:
            body.close()
            raise IntegrityError(
                f"{key} in {self.location} is {reply['ContentLength']} bytes, over the limit "
                f"of {limit}"
            )
        try:
            return bytes(body.read())
        except bex.BotoCoreError as exc:
            raise StoreError(f"reading {key} from {self.location} failed: {exc}") from exc

    def head(self, key: str) -> KeyInfo | None:
        bex = self._errors()

        try:
            reply = self._call("head_object", key, Key=self._root + key)
        except bex.ClientError as exc:
            if self._code(exc) in _MISSING:
                return None
            raise self._failure(exc, "HeadObject", key) from exc
        return KeyInfo(int(reply["ContentLength"]), reply["LastModified"].timestamp())

    def list(self, prefix: str, *, start_after: str = "") -> Iterator[str]:
        bex = self._errors()

        arguments: dict[str, str] = {"Bucket": self.bucket, "Prefix": self._root + prefix}
        if start_after:
            arguments["StartAfter"] = self._root + start_after
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(**arguments):
                for item in page.get("Contents", []):
                    yield item["Key"][len(self._root) :]
        except bex.ClientError as exc:
            raise self._failure(exc, "ListObjectsV2", prefix or "/") from exc
        except bex.BotoCoreError:
            self._call("head_bucket", prefix)  # translate the transport error
            raise

    def read_into(self, key: str, fd: int, size: int) -> Iterator[int]:
        """Ranged GETs in parallel; yields the completed prefix in order."""
        if size == 0:
            yield 0
            return
        spans = [(start, min(RANGE_SIZE, size - start)) for start in range(0, size, RANGE_SIZE)]
        with concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS) as pool:
            futures = [pool.submit(self._fetch_span, key, fd, *span) for span in spans]
            try:
                for (start, length), future in zip(spans, futures, strict=True):
                    future.result()
                    yield start + length
            finally:
                for future in futures:
                    future.cancel()

    def _fetch_span(self, key: str, fd: int, start: int, length: int) -> None:
        bex = self._errors()

        try:
            reply = self._call(
                "get_object", key, Key=self._root + key, Range=f"bytes={start}-{start + length - 1}"
            )
        except bex.ClientError as exc:
            if self._code(exc) in _MISSING:
                missing = f"{key} is missing from {self.location}: run 'modreg verify'"
                raise IntegrityError(missing) from exc
            raise self._failure(exc, "GetObject", key) from exc
        offset, end = start, start + length
        try:
            for chunk in reply["Body"].iter_chunks(1 << 20):
                pwrite_all(fd, chunk, offset)
                offset += len(chunk)
        except bex.BotoCoreError as exc:
            raise StoreError(f"reading {key} from {self.location} failed: {exc}") from exc
        if offset != end:
            raise IntegrityError(
                f"{key} in {self.location} delivered {offset - start} of {length} bytes of a "
                "range: run 'modreg verify'"
            )

    def iter_bytes(self, key: str) -> Iterator[bytes]:
        bex = self._errors()

        try:
            reply = self._call("get_object", key, Key=self._root + key)
        except bex.ClientError as exc:
            if self._code(exc) in _MISSING:
                return
            raise self._failure(exc, "GetObject", key) from exc
        yield from reply["Body"].iter_chunks(1 << 23)

    # -- maintenance -------------------------------------------------------------------------
    def clean_temporaries(self, *, min_age: float) -> tuple[int, builtins.list[str]]:
        """Abort multipart uploads older than ``min_age`` (left by publishes that died)."""
        bex = self._errors()

        try:
            reply = self._call("list_multipart_uploads", "uploads", Prefix=self._root)
        except bex.ClientError as exc:
            raise self._failure(exc, "ListMultipartUploads", "uploads") from exc
        removed = 0
        for upload in reply.get("Uploads", []):
            if time.time() - upload["Initiated"].timestamp() >= min_age:
                self._abort(upload["Key"], upload["Key"], upload["UploadId"])
                removed += 1
        return removed, []
