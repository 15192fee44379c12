"""One contract, two backends: every test here runs against S3 (moto's server over HTTP) and against
the filesystem backend (a temporary folder)."""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from django.test import override_settings

from apps.storage.backends import FilesystemObjectStore, ObjectNotFound, S3ObjectStore, StoredObject
from apps.storage.keys import UnsafeObjectKey
from tests.support.platform import unique_suffix

PAYLOAD = bytes(range(256)) * 40  # 10,240 bytes, every byte value, so ranges are easy to check

UNSAFE_KEYS = [
    "../x", "a/../../b", "a/..", "..", "", "/absolute/key", "trailing/", "a//b", "a/./b", ".hidden",
    "line\nbreak", "nul\x00byte", "tab\there", "back\\slash", "white space", "ümlaut",
]


@pytest.fixture(params=["s3", "filesystem"])
def store(request, platform, tmp_path) -> Iterator[S3ObjectStore | FilesystemObjectStore]:
    if request.param == "s3":
        s3 = S3ObjectStore(
            bucket=f"contract-{unique_suffix()}", endpoint_url=platform.s3_endpoint, access_key="testing",
            secret_key="testing",
        )
        s3.ensure_container()
        yield s3
        s3.drop_container()
    else:
        filesystem = FilesystemObjectStore(root=tmp_path, bucket="contract")
        filesystem.ensure_container()
        yield filesystem


def test_put_stream_reports_the_size_and_sha256_of_what_it_stored(store):
    stored = store.put_stream("studies/1/a.dcm", io.BytesIO(PAYLOAD), content_type="application/dicom")
    assert stored == StoredObject(key="studies/1/a.dcm", size=len(PAYLOAD), sha256=hashlib.sha256(PAYLOAD).hexdigest())


def test_get_stream_returns_the_bytes_in_chunks_of_the_asked_size(store):
    store.put_bytes("studies/1/a.dcm", PAYLOAD)
    chunks = list(store.get_stream("studies/1/a.dcm", chunk_size=4096))
    assert [len(chunk) for chunk in chunks] == [4096, 4096, 2048]
    assert b"".join(chunks) == PAYLOAD


def test_get_bytes_returns_the_whole_object(store):
    store.put_bytes("a.bin", PAYLOAD)
    assert store.get_bytes("a.bin") == PAYLOAD


@pytest.mark.parametrize(("start", "end_inclusive"), [(0, 0), (0, 255), (300, 1299), (10_000, 10_239)])
def test_get_range_returns_the_inclusive_byte_range(store, start, end_inclusive):
    store.put_bytes("a.bin", PAYLOAD)
    assert store.get_range("a.bin", start, end_inclusive) == PAYLOAD[start : end_inclusive + 1]


def test_size_is_the_stored_length(store):
    store.put_bytes("a.bin", PAYLOAD)
    assert store.size("a.bin") == 10_240


def test_exists_is_true_after_put_and_false_after_delete(store):
    assert store.exists("a.bin") is False
    store.put_bytes("a.bin", PAYLOAD)
    assert store.exists("a.bin") is True
    store.delete("a.bin")
    assert store.exists("a.bin") is False


def test_deleting_a_missing_object_is_quiet(store):
    store.delete("never/written.bin")
    assert store.exists("never/written.bin") is False


@pytest.mark.parametrize(
    "read", [lambda s: list(s.get_stream("missing.bin")), lambda s: s.get_bytes("missing.bin"),
             lambda s: s.get_range("missing.bin", 0, 1), lambda s: s.size("missing.bin")],
    ids=["get_stream", "get_bytes", "get_range", "size"],
)
def test_reading_a_missing_object_raises_object_not_found(store, read):
    with pytest.raises(ObjectNotFound) as missing:
        read(store)
    assert (missing.value.code, missing.value.status) == ("object_not_found", 404)


def test_list_keys_and_delete_prefix_touch_only_that_prefix(store):
    for key in ["a/1.bin", "a/2/3.bin", "ab/4.bin", "b/5.bin"]:
        store.put_bytes(key, b"x")
    assert sorted(store.list_keys("a/")) == ["a/1.bin", "a/2/3.bin"]
    assert store.delete_prefix("a/") == 2
    assert sorted(store.list_keys("")) == ["ab/4.bin", "b/5.bin"]


def test_list_objects_gives_each_objects_size_and_write_time_in_key_order(store):
    before = datetime.now(UTC) - timedelta(seconds=2)  # S3 gives the time to the second
    for key, data in [("a/2.bin", PAYLOAD), ("a/1.bin", b"x"), ("a/1/0.bin", b""), ("b/3.bin", b"yy")]:
        store.put_bytes(key, data)
    listed = list(store.list_objects("a/"))
    assert [(item.key, item.size) for item in listed] == [("a/1.bin", 1), ("a/1/0.bin", 0), ("a/2.bin", len(PAYLOAD))]
    assert all(before <= item.modified_at <= datetime.now(UTC) for item in listed)


def test_an_s3_presigned_get_url_downloads_the_object_without_credentials(platform):
    """The filesystem backend's links are bound to a tenant's domain: tests/storage/test_presigned_links.py."""
    store = S3ObjectStore(
        bucket=f"contract-{unique_suffix()}", endpoint_url=platform.s3_endpoint, access_key="testing", secret_key="testing"
    )
    store.ensure_container()
    store.put_bytes("studies/1/a.dcm", PAYLOAD)
    answer = requests.get(store.presigned_get_url("studies/1/a.dcm", expires_in=60, owner="any"), timeout=30)
    store.drop_container()
    assert answer.status_code == 200
    assert answer.content == PAYLOAD


def test_a_presigned_url_states_its_expiry_in_its_signature(store):
    """S3 enforces the expiry it is told in a SigV4 signature (moto, the test S3, does not enforce it,
    so the S3 case checks what the URL says); the filesystem link carries it inside its signed token."""
    from urllib.parse import parse_qs, urlsplit

    from django.core import signing

    from apps.storage.backends import FILESYSTEM_URL_SALT

    url = store.presigned_get_url("a.bin", expires_in=90, owner="test-owner")
    if isinstance(store, S3ObjectStore):
        query = parse_qs(urlsplit(url).query)
        assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
        assert query["X-Amz-Expires"] == ["90"]
        assert "X-Amz-Signature" in query
    else:
        payload = signing.loads(url.removeprefix("/storage/objects/"), salt=FILESYSTEM_URL_SALT)
        assert payload["owner"] == "test-owner"
        assert payload["key"] == "a.bin"
        assert 88 <= payload["expires_at"] - time.time() <= 90


def test_a_presigned_url_lives_no_longer_than_the_server_allows(store):
    from urllib.parse import parse_qs, urlsplit

    from django.core import signing

    from apps.storage.backends import FILESYSTEM_URL_SALT

    with override_settings(STORAGE_PRESIGNED_URL_MAX_SECONDS=600):
        url = store.presigned_get_url("a.bin", expires_in=7 * 24 * 3600, owner="test-owner")
    if isinstance(store, S3ObjectStore):
        assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == ["600"]
    else:
        payload = signing.loads(url.removeprefix("/storage/objects/"), salt=FILESYSTEM_URL_SALT)
        assert 598 <= payload["expires_at"] - time.time() <= 600


@pytest.mark.parametrize("key", UNSAFE_KEYS)
def test_an_unsafe_key_is_refused_by_every_operation(store, key):
    operations = {
        "put_bytes": lambda: store.put_bytes(key, b"x"),
        "put_stream": lambda: store.put_stream(key, io.BytesIO(b"x")),
        "get_bytes": lambda: store.get_bytes(key),
        "get_range": lambda: store.get_range(key, 0, 0),
        "size": lambda: store.size(key),
        "exists": lambda: store.exists(key),
        "delete": lambda: store.delete(key),
        "presigned_get_url": lambda: store.presigned_get_url(key, owner="test-owner"),
    }
    for name, operation in operations.items():
        with pytest.raises(UnsafeObjectKey):
            operation()
            pytest.fail(f"{name} accepted {key!r}")
    assert list(store.list_keys("")) == []


def test_a_storage_that_answers_passes_its_check(store):
    store.check()
