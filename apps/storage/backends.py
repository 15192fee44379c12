"""Object storage behind one interface: S3 (boto3) or a local folder.

One module over 500 lines on purpose: the two stores implement one protocol side by side, so a
change to one is seen next to the other.

No other module imports boto3. Objects are immutable once written; writes are atomic (S3 by
nature, the filesystem by write-to-temp then rename).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO, Protocol

from django.conf import settings
from django.core import signing

from apps.core.errors import DependencyUnavailable, DomainError
from apps.storage.keys import UnsafeObjectKey, object_key, validate_full_key

CHUNK_SIZE = 1024 * 1024
MULTIPART_THRESHOLD = 8 * 1024 * 1024
FILESYSTEM_URL_SALT = "imaging-cloud.storage.presigned"


class ObjectNotFound(DomainError):
    code = "object_not_found"
    status = 404


class StorageUnavailable(DependencyUnavailable):
    code = "storage_unavailable"


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    sha256: str


@dataclass(frozen=True)
class ListedObject:
    """One object of a listing: its key, size and when it was last written."""

    key: str
    size: int
    modified_at: datetime


class ObjectStore(Protocol):
    # sync=False: the object may not be on disk yet when this returns; call sync([key]) before relying on it.
    def put_stream(self, key: str, stream: BinaryIO, *, content_type: str = ..., sync: bool = ...) -> StoredObject: ...

    def put_bytes(self, key: str, data: bytes, *, content_type: str = ..., sync: bool = ...) -> StoredObject: ...

    def sync(self, keys: Iterable[str]) -> None: ...

    def get_stream(self, key: str, *, chunk_size: int = ...) -> Iterator[bytes]: ...

    def get_bytes(self, key: str) -> bytes: ...

    def get_range(self, key: str, start: int, end_inclusive: int) -> bytes: ...

    def size(self, key: str) -> int: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def delete_prefix(self, prefix: str) -> int: ...

    def list_keys(self, prefix: str) -> Iterator[str]: ...

    def list_objects(self, prefix: str) -> Iterator[ListedObject]: ...

    def presigned_get_url(self, key: str, *, expires_in: int = ..., owner: str) -> str: ...

    def ensure_container(self) -> None: ...

    def drop_container(self) -> None: ...

    def check(self) -> None: ...


class _HashingReader:
    """Wraps a stream so the bytes read through it are counted and hashed on the way."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.size = 0
        self._digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            data = self._stream.read()
        else:
            # Fill the request unless the stream ends: s3transfer takes a short first read for the
            # whole object (one PUT holding everything in memory) and short later reads for parts
            # (which S3 refuses under 5 MiB). Sockets and request bodies do return short reads.
            pieces: list[bytes] = []
            remaining = size
            while remaining > 0:
                piece = self._stream.read(remaining)
                if not piece:
                    break
                pieces.append(piece)
                remaining -= len(piece)
            data = b"".join(pieces)
        self.size += len(data)
        self._digest.update(data)
        return data

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class FilesystemObjectStore:
    """Objects as files under <root>/<bucket>/<key>; presigned URLs are signed Django URLs.

    With `durable` (the default, STORAGE_FSYNC) a put returns only once the file and its name are
    on disk (fsync of the file, then of its folder after the rename): the archive indexes an object
    right after, and an index row must never outlive its object in a power cut (docs/architecture.md
    "Data path of a request"). Orthanc
    does the same by default (SyncStorageArea)."""

    def __init__(self, *, root: str | Path, bucket: str, durable: bool = True) -> None:
        # A bucket is one folder under the root, by the same safe-part rule as a key's parts.
        object_key(bucket)
        self.root = Path(root)
        self.bucket = bucket
        self.base = self.root / bucket
        self.durable = durable

    def _path(self, key: str) -> Path:
        return self.base / validate_full_key(key)

    def put_stream(
        self, key: str, stream: BinaryIO, *, content_type: str = "application/octet-stream", sync: bool = True
    ) -> StoredObject:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        reader = _HashingReader(stream)
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                shutil.copyfileobj(reader, handle, CHUNK_SIZE)  # type: ignore[misc]
                if self.durable and sync:
                    handle.flush()
                    os.fsync(handle.fileno())
            os.replace(temporary, target)
            if self.durable and sync:
                _fsync_directory(target.parent)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return StoredObject(key=key, size=reader.size, sha256=reader.sha256)

    def put_bytes(
        self, key: str, data: bytes, *, content_type: str = "application/octet-stream", sync: bool = True
    ) -> StoredObject:
        import io

        return self.put_stream(key, io.BytesIO(data), content_type=content_type, sync=sync)

    def sync(self, keys: Iterable[str]) -> None:
        """Put objects written with sync=False, and their names, on disk (no-op unless durable)."""
        if not self.durable:
            return
        folders: set[Path] = set()
        for key in keys:
            path = self._path(key)
            descriptor = os.open(path, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            folders.add(path.parent)
        for folder in folders:
            _fsync_directory(folder)

    def get_stream(self, key: str, *, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        path = self._path(key)
        try:
            handle = path.open("rb")
        except FileNotFoundError as error:
            raise ObjectNotFound(f"No object {key}") from error

        def chunks() -> Iterator[bytes]:
            with handle:
                while chunk := handle.read(chunk_size):
                    yield chunk

        return chunks()

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as error:
            raise ObjectNotFound(f"No object {key}") from error

    def get_range(self, key: str, start: int, end_inclusive: int) -> bytes:
        try:
            with self._path(key).open("rb") as handle:
                handle.seek(start)
                return handle.read(end_inclusive - start + 1)
        except FileNotFoundError as error:
            raise ObjectNotFound(f"No object {key}") from error

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError as error:
            raise ObjectNotFound(f"No object {key}") from error

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> int:
        removed = 0
        for key in list(self.list_keys(prefix)):
            self.delete(key)
            removed += 1
        return removed

    def list_keys(self, prefix: str) -> Iterator[str]:
        for listed in self.list_objects(prefix):
            yield listed.key

    def list_objects(self, prefix: str) -> Iterator[ListedObject]:
        """Objects in key order; a write still in progress (its temporary file) is never listed."""
        # Walk only the deepest folder the prefix names, not the whole bucket.
        folder = self.base / prefix.rsplit("/", 1)[0] if "/" in prefix else self.base
        if not folder.is_dir():
            return
        # Sorted by the key's text, as S3 lists them ('a/1.bin' before 'a/1/0.bin').
        for path in sorted(folder.rglob("*"), key=lambda found: found.relative_to(self.base).as_posix()):
            if path.name.startswith(".upload-"):
                continue
            key = path.relative_to(self.base).as_posix()
            if not key.startswith(prefix):
                continue
            try:
                status = path.stat()
            except FileNotFoundError:  # removed since the walk saw it
                continue
            if path.is_file():
                yield ListedObject(key=key, size=status.st_size,
                                   modified_at=datetime.fromtimestamp(status.st_mtime, tz=UTC))

    def presigned_get_url(self, key: str, *, expires_in: int = 3600, owner: str) -> str:
        """A link to /storage/objects/<token> on the owner's domain (apps.storage.views).

        The token names the owner (the tenant's schema) and the key, never the bucket: the server
        finds the bucket from the owner's deployment policy, so a token cannot point elsewhere."""
        validate_full_key(key)
        payload = {"owner": owner, "key": key, "expires_at": int(time.time()) + capped_lifetime(expires_in)}
        return f"/storage/objects/{signing.dumps(payload, salt=FILESYSTEM_URL_SALT, compress=True)}"

    def ensure_container(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)

    def drop_container(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)

    def check(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if not os.access(self.root, os.W_OK):
            raise StorageUnavailable(f"Storage folder {self.root} is not writable")


def filesystem_presigned_key(token: str) -> tuple[str, str]:
    """Resolve a filesystem presigned token back to (owner, key), enforcing its expiry.

    Raises signing.BadSignature (tampered or malformed) or signing.SignatureExpired."""
    payload = signing.loads(token, salt=FILESYSTEM_URL_SALT)
    if not isinstance(payload, dict) or not {"owner", "key", "expires_at"} <= payload.keys():
        raise signing.BadSignature("Not a storage link")
    if not isinstance(payload["expires_at"], int) or time.time() > payload["expires_at"]:
        raise signing.SignatureExpired("Storage link expired")
    try:
        return str(payload["owner"]), validate_full_key(str(payload["key"]))
    except UnsafeObjectKey as error:
        raise signing.BadSignature("Unsafe key in a storage link") from error


def capped_lifetime(expires_in: int) -> int:
    """A presigned URL lives at most STORAGE_PRESIGNED_URL_MAX_SECONDS, whatever its caller asks."""
    if expires_in <= 0:
        raise ValueError(f"A presigned URL needs a positive lifetime, not {expires_in}")
    return min(expires_in, settings.STORAGE_PRESIGNED_URL_MAX_SECONDS)


@lru_cache(maxsize=32)
def _s3_client(endpoint_url: str | None, access_key: str | None, secret_key: str | None, region: str):  # type: ignore[no-untyped-def]
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=region,
        config=Config(
            retries={"max_attempts": 5, "mode": "standard"},
            # SigV4 everywhere: without it botocore presigns with SigV2, which S3 refuses for buckets
            # created since mid-2020 and in every newer region.
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            max_pool_connections=32,
            connect_timeout=5,
            read_timeout=60,
        ),
    )


class S3ObjectStore:
    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str = "us-east-1",
        kms_key_id: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.kms_key_id = kms_key_id
        self.region = region
        self.client = _s3_client(endpoint_url, access_key, secret_key, region)

    def _errors(self):  # type: ignore[no-untyped-def]
        from botocore.exceptions import ClientError

        return ClientError

    def _extra_args(self, content_type: str) -> dict[str, str]:
        extra = {"ContentType": content_type}
        if self.kms_key_id:
            extra.update({"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key_id})
        return extra

    def put_stream(
        self, key: str, stream: BinaryIO, *, content_type: str = "application/octet-stream", sync: bool = True
    ) -> StoredObject:
        from boto3.s3.transfer import TransferConfig

        validate_full_key(key)
        reader = _HashingReader(stream)
        config = TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=MULTIPART_THRESHOLD, use_threads=False
        )
        self.client.upload_fileobj(
            reader, self.bucket, key, ExtraArgs=self._extra_args(content_type), Config=config
        )
        return StoredObject(key=key, size=reader.size, sha256=reader.sha256)

    def put_bytes(
        self, key: str, data: bytes, *, content_type: str = "application/octet-stream", sync: bool = True
    ) -> StoredObject:
        validate_full_key(key)
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, **self._extra_args(content_type))
        return StoredObject(key=key, size=len(data), sha256=hashlib.sha256(data).hexdigest())

    def sync(self, keys: Iterable[str]) -> None:
        """Nothing to do: S3 has stored an object durably when its PUT returns."""

    def _get_object(self, key: str, **kwargs: str):  # type: ignore[no-untyped-def]
        validate_full_key(key)
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key, **kwargs)
        except self._errors() as error:
            if error.response["Error"]["Code"] in {"NoSuchKey", "404"}:
                raise ObjectNotFound(f"No object {key}") from error
            raise

    def get_stream(self, key: str, *, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        body = self._get_object(key)["Body"]

        def chunks() -> Iterator[bytes]:
            try:
                yield from body.iter_chunks(chunk_size)
            finally:
                body.close()

        return chunks()

    def get_bytes(self, key: str) -> bytes:
        return self._get_object(key)["Body"].read()

    def get_range(self, key: str, start: int, end_inclusive: int) -> bytes:
        return self._get_object(key, Range=f"bytes={start}-{end_inclusive}")["Body"].read()

    def size(self, key: str) -> int:
        validate_full_key(key)
        try:
            return int(self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"])
        except self._errors() as error:
            raise ObjectNotFound(f"No object {key}") from error

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except ObjectNotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        validate_full_key(key)
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def list_keys(self, prefix: str) -> Iterator[str]:
        for listed in self.list_objects(prefix):
            yield listed.key

    def list_objects(self, prefix: str) -> Iterator[ListedObject]:
        """Objects in key order (S3 lists keys in UTF-8 binary order); an upload in progress is
        listed only once it completed."""
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield ListedObject(key=item["Key"], size=int(item["Size"]), modified_at=item["LastModified"])

    def delete_prefix(self, prefix: str) -> int:
        removed = 0
        batch: list[dict[str, str]] = []
        for key in self.list_keys(prefix):
            batch.append({"Key": key})
            if len(batch) == 1000:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
                removed += len(batch)
                batch = []
        if batch:
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            removed += len(batch)
        return removed

    def presigned_get_url(self, key: str, *, expires_in: int = 3600, owner: str) -> str:
        """S3 signs the bucket and key itself; `owner` only matters to the filesystem backend."""
        validate_full_key(key)
        return str(
            self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=capped_lifetime(expires_in)
            )
        )

    def ensure_container(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except self._errors():
            if self.region == "us-east-1":
                self.client.create_bucket(Bucket=self.bucket)
            else:
                self.client.create_bucket(
                    Bucket=self.bucket, CreateBucketConfiguration={"LocationConstraint": self.region}
                )

    def drop_container(self) -> None:
        self.delete_prefix("")
        try:
            self.client.delete_bucket(Bucket=self.bucket)
        except self._errors() as error:
            if error.response["Error"]["Code"] not in {"NoSuchBucket", "404"}:
                raise

    def check(self) -> None:
        from botocore.exceptions import BotoCoreError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (self._errors(), BotoCoreError) as error:
            raise StorageUnavailable(f"S3 bucket {self.bucket} is not reachable: {error}") from error


def store_for_bucket(*, bucket: str, endpoint_url: str | None = None, kms_key_id: str | None = None) -> ObjectStore:
    """The configured backend (STORAGE_BACKEND) for one bucket."""
    if settings.STORAGE_BACKEND == "s3":
        return S3ObjectStore(
            bucket=bucket,
            endpoint_url=endpoint_url or settings.S3_ENDPOINT_URL,
            access_key=settings.S3_ACCESS_KEY_ID,
            secret_key=settings.S3_SECRET_ACCESS_KEY,
            region=settings.S3_REGION,
            kms_key_id=kms_key_id,
        )
    if settings.STORAGE_BACKEND == "filesystem":
        return FilesystemObjectStore(root=settings.STORAGE_ROOT, bucket=bucket, durable=settings.STORAGE_FSYNC)
    raise ValueError(f"Unknown STORAGE_BACKEND {settings.STORAGE_BACKEND!r}: use 's3' or 'filesystem'")
