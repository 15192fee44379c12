"""The filesystem backend's presigned links (/storage/objects/<token>): served only with that backend,
only on the domain of the tenant the link was made for, only for that tenant's keys in the bucket its
deployment policy names, and never longer than the server allows."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core import signing
from django.test import override_settings

from apps.storage.backends import FILESYSTEM_URL_SALT
from apps.storage.tenant_storage import storage_for

SECRET_FILE = b"root:x:0:0:a file outside every bucket\n"


@pytest.fixture
def filesystem_storage(platform, tmp_path) -> Iterator[Path]:
    """The filesystem backend for this test (the live server runs in this process and sees it), with a
    file outside the storage folder standing in for /etc/passwd."""
    root = tmp_path / "objects"
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "passwd").write_bytes(SECRET_FILE)
    with override_settings(STORAGE_BACKEND="filesystem", STORAGE_ROOT=str(root)):
        yield root


def link_for(platform, tenant_key: str, relative_key: str, data: bytes, **kwargs) -> str:
    storage = storage_for(platform.tenants[tenant_key])
    storage.put_bytes(relative_key, data)
    return storage.presigned_get_url(relative_key, **kwargs)


def forged(payload: dict) -> str:
    """A token signed with the server's own key: what someone who read an old link's format could make
    only if the key leaked, and what a bug in the signer could produce."""
    return "/storage/objects/" + signing.dumps(payload, salt=FILESYSTEM_URL_SALT, compress=True)


def test_a_link_downloads_its_object_on_its_tenants_domain(platform, filesystem_storage):
    url = link_for(platform, "clinic_a", "probe/report.pdf", b"report bytes", expires_in=60)
    answer = platform.http("clinic_a").get(url)
    assert answer.status_code == 200
    assert answer.content == b"report bytes"
    assert answer.headers["Cache-Control"] == "private, no-store"


def test_a_link_that_names_a_folder_as_its_bucket_reads_nothing(platform, filesystem_storage, tmp_path):
    """The old token carried its bucket, and the server used it as a folder: `/etc` read /etc/passwd."""
    outside = str(tmp_path / "outside")
    for payload in (
        {"bucket": outside, "key": "passwd", "expires_in": 3600},
        {"bucket": f"../{Path(outside).name}", "key": "passwd", "expires_in": 3600},
        {"bucket": outside, "key": "passwd", "owner": platform.tenants["clinic_a"].schema_name,
         "expires_at": int(time.time()) + 3600},
    ):
        answer = platform.http("clinic_a").get(forged(payload))
        assert answer.status_code == 403, payload
        assert answer.json() == {"code": "bad_signature", "detail": "This download link is not valid."}
        assert SECRET_FILE not in answer.content


def test_a_link_is_refused_on_another_tenants_domain(platform, filesystem_storage):
    url = link_for(platform, "clinic_a", "probe/only-a.bin", b"clinic a only")
    answer = platform.http("clinic_c").get(url)
    assert answer.status_code == 403
    assert answer.json()["code"] == "bad_signature"


def test_a_link_is_not_served_on_the_platform_domain(platform, filesystem_storage):
    url = link_for(platform, "clinic_a", "probe/not-public.bin", b"clinic a only")
    answer = platform.operator_http(token="").get(url)
    assert answer.status_code == 404
    assert b"clinic a only" not in answer.content


def test_a_link_for_another_tenants_key_is_refused_on_this_domain(platform, filesystem_storage):
    """A token naming this tenant but a key under another tenant's prefix, in the same shared bucket."""
    storage_for(platform.tenants["clinic_c"]).put_bytes("probe/c.bin", b"clinic c")
    payload = {
        "owner": platform.tenants["clinic_a"].schema_name,
        "key": f"tenants/{platform.tenants['clinic_c'].slug}/probe/c.bin",
        "expires_at": int(time.time()) + 60,
    }
    answer = platform.http("clinic_a").get(forged(payload))
    assert answer.status_code == 403
    assert answer.json()["code"] == "bad_signature"


def test_the_route_answers_404_when_objects_are_in_s3(platform):
    storage = storage_for(platform.tenants["clinic_a"])
    storage.put_bytes("probe/in-s3.bin", b"s3 object")
    with override_settings(STORAGE_BACKEND="filesystem"):
        url = storage_for(platform.tenants["clinic_a"]).presigned_get_url("probe/in-s3.bin")
    answer = platform.http("clinic_a").get(url)  # the suite's backend is S3
    assert answer.status_code == 404
    assert answer.json()["code"] == "not_found"


def test_a_link_expires_after_the_server_cap_whatever_its_signer_asked(platform, filesystem_storage):
    with override_settings(STORAGE_PRESIGNED_URL_MAX_SECONDS=1):
        url = link_for(platform, "clinic_a", "probe/short.bin", b"short-lived", expires_in=30 * 24 * 3600)
        time.sleep(2.1)
        answer = platform.http("clinic_a").get(url)
    assert answer.status_code == 403
    assert answer.json() == {"code": "link_expired", "detail": "This download link has expired."}


def test_a_tampered_link_is_refused(platform, filesystem_storage):
    url = link_for(platform, "clinic_a", "probe/tampered.bin", b"x")
    answer = platform.http("clinic_a").get(url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB"))
    assert answer.status_code == 403
    assert answer.json() == {"code": "bad_signature", "detail": "This download link is not valid."}


def test_a_link_to_a_deleted_object_answers_404(platform, filesystem_storage):
    url = link_for(platform, "clinic_a", "probe/deleted.bin", b"x")
    storage_for(platform.tenants["clinic_a"]).delete("probe/deleted.bin")
    answer = platform.http("clinic_a").get(url)
    assert answer.status_code == 404
    assert answer.json()["code"] == "object_not_found"


@pytest.mark.parametrize("bucket", ["/etc", "../etc", "a/b", "..", ""])
def test_a_filesystem_bucket_must_be_one_safe_folder_name(bucket):
    from apps.storage.backends import FilesystemObjectStore
    from apps.storage.keys import UnsafeObjectKey

    with pytest.raises(UnsafeObjectKey):
        FilesystemObjectStore(root="objects", bucket=bucket)
