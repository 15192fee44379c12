"""A tenant's storage: where its objects land (shared bucket and prefix, or its own bucket), that its
keys cannot leave its prefix, and large objects going up in parts."""

from __future__ import annotations

import hashlib
import io

import pytest
from django.conf import settings
from django.test import override_settings

from apps.storage.keys import UnsafeObjectKey, object_key
from apps.storage.tenant_storage import storage_for
from tests.support.platform import unique_suffix
from tests.support.tenancy import bucket_keys, s3_client

SEVENTEEN_MIB = 17 * 1024 * 1024


class PatternStream(io.RawIOBase):
    """`size` bytes of a repeating pattern, produced as they are read (never all in memory at once)."""

    def __init__(self, size: int) -> None:
        self.remaining = size
        self.block = hashlib.sha256(b"pattern").digest() * 2048  # 64 KiB

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        count = min(len(buffer), self.remaining, len(self.block))
        buffer[:count] = self.block[:count]
        self.remaining -= count
        return count


def _digest_of_pattern(size: int) -> str:
    digest = hashlib.sha256()
    stream = PatternStream(size)
    while chunk := stream.read(1024 * 1024):
        digest.update(chunk)
    return digest.hexdigest()


def test_public_cloud_tenants_share_one_bucket_each_under_its_own_prefix(platform):
    key = f"probe/{unique_suffix()}.bin"
    storage_for(platform.tenants["clinic_a"]).put_bytes(key, b"a")
    storage_for(platform.tenants["clinic_c"]).put_bytes(key, b"c")
    assert bucket_keys(platform, settings.S3_BUCKET, f"tenants/test-clinic-a/{key}") == [f"tenants/test-clinic-a/{key}"]
    assert bucket_keys(platform, settings.S3_BUCKET, f"tenants/test-clinic-c/{key}") == [f"tenants/test-clinic-c/{key}"]


def test_a_dedicated_tenants_objects_live_in_its_own_bucket_and_not_in_the_shared_one(platform):
    key = f"probe/{unique_suffix()}.bin"
    storage = storage_for(platform.tenants["hospital_b"])
    storage.put_bytes(key, b"hospital")
    assert storage.store.bucket == "imaging-cloud-test-hospital-b"
    assert bucket_keys(platform, "imaging-cloud-test-hospital-b", key) == [key]
    assert [k for k in bucket_keys(platform, settings.S3_BUCKET) if k.endswith(key)] == []


def test_one_tenant_reading_the_same_relative_key_never_sees_anothers_object(platform):
    key = f"probe/{unique_suffix()}.bin"
    storage_for(platform.tenants["clinic_c"]).put_bytes(key, b"clinic c only")
    assert storage_for(platform.tenants["clinic_a"]).exists(key) is False
    assert storage_for(platform.tenants["hospital_b"]).exists(key) is False


@pytest.mark.parametrize(
    "relative_key",
    ["../test-clinic-c/probe/x", "a/../../b", "..", "/tenants/test-clinic-c/x", "", "a//b", "a/", "x\r\ny",
     "tenants/../../escape"],
)
def test_a_tenants_key_cannot_leave_its_prefix(platform, relative_key):
    storage = storage_for(platform.tenants["clinic_a"])
    with pytest.raises(UnsafeObjectKey):
        storage.put_bytes(relative_key, b"escape")
    with pytest.raises(UnsafeObjectKey):
        storage.get_bytes(relative_key)
    with pytest.raises(UnsafeObjectKey):
        storage.presigned_get_url(relative_key)


def test_keys_built_from_parts_refuse_separators_and_traversal():
    assert object_key("studies", "1.2.840.1", "instance.dcm") == "studies/1.2.840.1/instance.dcm"
    for part in ["a/b", "..", ".", "a..b", "", "-leading", "x\x00"]:
        with pytest.raises(UnsafeObjectKey):
            object_key("studies", part)


def test_deleting_a_tenants_objects_leaves_other_tenants_objects(platform):
    key = f"probe/{unique_suffix()}.bin"
    clinic_a = storage_for(platform.tenants["clinic_a"])
    clinic_c = storage_for(platform.tenants["clinic_c"])
    clinic_a.put_bytes(f"scratch/{key}", b"a")
    clinic_c.put_bytes(f"scratch/{key}", b"c")
    assert clinic_a.delete_prefix("scratch/") >= 1
    assert clinic_a.exists(f"scratch/{key}") is False
    assert clinic_c.get_bytes(f"scratch/{key}") == b"c"


def test_an_object_over_16_mib_goes_to_s3_in_parts_and_reads_back_whole(platform):
    storage = storage_for(platform.tenants["hospital_b"])
    key = f"large/{unique_suffix()}.bin"
    stored = storage.put_stream(key, PatternStream(SEVENTEEN_MIB))
    head = s3_client(platform).head_object(Bucket="imaging-cloud-test-hospital-b", Key=key)
    assert stored.size == SEVENTEEN_MIB
    assert stored.sha256 == _digest_of_pattern(SEVENTEEN_MIB)
    assert head["ContentLength"] == SEVENTEEN_MIB
    assert head["ETag"].strip('"').endswith("-3")  # 8 MiB parts: 8 + 8 + 1
    digest = hashlib.sha256()
    for chunk in storage.get_stream(key):
        digest.update(chunk)
    assert digest.hexdigest() == stored.sha256
    storage.delete(key)


def test_a_small_object_goes_to_s3_in_one_request(platform):
    storage = storage_for(platform.tenants["clinic_a"])
    key = f"small/{unique_suffix()}.bin"
    storage.put_stream(key, io.BytesIO(b"x" * 1024))
    head = s3_client(platform).head_object(Bucket=settings.S3_BUCKET, Key=f"tenants/test-clinic-a/{key}")
    assert "-" not in head["ETag"]


def test_the_filesystem_backend_lays_tenants_out_the_same_way(platform, tmp_path):
    with override_settings(STORAGE_BACKEND="filesystem", STORAGE_ROOT=str(tmp_path)):
        storage_for(platform.tenants["clinic_a"]).put_bytes("probe/a.bin", b"a")
        storage_for(platform.tenants["hospital_b"]).put_bytes("probe/b.bin", b"b")
    files = sorted(path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*") if path.is_file())
    assert files == [
        "imaging-cloud-test-hospital-b/probe/b.bin",
        f"{settings.S3_BUCKET}/tenants/test-clinic-a/probe/a.bin",
    ]


def test_a_filesystem_tenant_link_downloads_over_the_web_app(platform, tmp_path):
    import requests

    with override_settings(STORAGE_BACKEND="filesystem", STORAGE_ROOT=str(tmp_path)):
        storage = storage_for(platform.tenants["clinic_a"])
        storage.put_bytes("probe/linked.bin", b"linked bytes")
        url = storage.presigned_get_url("probe/linked.bin", expires_in=60)
        answer = requests.get(platform.base_url + url, headers={"Host": platform.host("clinic_a")}, timeout=30)
    assert answer.status_code == 200
    assert answer.content == b"linked bytes"
