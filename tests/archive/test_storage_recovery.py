"""Storage hygiene and recovery: `archive_reindex` rebuilds lost index rows from the stored objects,
the orphan collector removes old objects no row names and nothing else. Both backends (S3 over
HTTP, a local folder), a tenant of their own, real PostgreSQL; the periodic run on real workers."""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from apps.archive.keys import derived_key, instance_object_key, new_upload_id
from apps.archive.models import ArchiveUsage, Instance, Series, Study
from apps.archive.services import StorageMaintenanceBusy, archive_reindex, orphaned_objects_collect
from apps.audit.models import AuditEvent
from apps.audit.services import Actor
from apps.storage.tenant_storage import TenantStorage, storage_for
from tests.support.dicomweb import ct_study, parse_multipart, qido, stow
from tests.support.platform import wait_until
from tests.support.tenancy import add_user_with_token, discard_tenant, provision_throwaway

KEY = "storage-recovery"
ORIGINALS = 'multipart/related; type="application/dicom"; transfer-syntax=*'
ACTOR = Actor.system("test")
# Objects written before the pause are older than this safety age, those written after are not
# (S3 gives ages to the second, rounded down: an object never looks younger than it is).
SAFETY_AGE_SECONDS = 2
PAUSE_SECONDS = 2.6


@pytest.fixture(scope="module")
def tenant(platform) -> Iterator[str]:
    result = provision_throwaway(platform, kind="clinic", key=KEY)
    add_user_with_token(platform, KEY, role="technologist")
    add_user_with_token(platform, KEY, role="referring_physician")
    yield result.tenant.slug
    discard_tenant(platform, result.tenant.slug)


@pytest.fixture(params=["s3", "filesystem"])
def backend(request, platform, tenant, tmp_path, monkeypatch) -> str:
    """The tenant's storage on either backend; the live server (same process) follows the setting."""
    if request.param == "filesystem":
        monkeypatch.setattr(settings, "STORAGE_BACKEND", "filesystem")
        monkeypatch.setattr(settings, "STORAGE_ROOT", str(tmp_path))
        with platform.schema(KEY):
            storage_for(platform.tenants[KEY]).prepare()
    return str(request.param)


def tenant_storage(platform) -> TenantStorage:
    return storage_for(platform.tenants[KEY])


def stored_study(platform, slices: int = 3):
    study = ct_study(slices)
    assert stow(platform.http(KEY, "technologist"), study.files).status_code == 200
    return study


def index_rows_lose(study_instance_uid: str) -> None:
    """What a database restored from an older backup looks like for one study: no rows at all."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, number_of_instances, size_bytes FROM {Study._meta.db_table} "
                       "WHERE study_instance_uid = %s AND deleted_at IS NULL", [study_instance_uid])
        study_id, instances, size = cursor.fetchone()
        cursor.execute(f"DELETE FROM {Instance._meta.db_table} WHERE study_id = %s", [study_id])
        cursor.execute(f"DELETE FROM {Series._meta.db_table} WHERE study_id = %s", [study_id])
        cursor.execute(f"DELETE FROM {Study._meta.db_table} WHERE id = %s", [study_id])
        cursor.execute(f"UPDATE {ArchiveUsage._meta.db_table} SET stored_bytes = stored_bytes - %s, "
                       "stored_instances = stored_instances - %s WHERE id = 1", [size, instances])


def reindex_output(slug: str) -> str:
    output = io.StringIO()
    call_command("archive_reindex", "--tenant", slug, stdout=output)
    return output.getvalue()


def orphan_instance_key() -> str:
    return instance_object_key(study_instance_uid=f"2.25.{uuid.uuid4().int}", series_instance_uid="1.2.3",
                               sop_instance_uid="1.2.3.4", upload_id=new_upload_id())


def test_reindex_restores_a_study_whose_rows_were_lost_byte_identical_and_checksums_verified(platform, tenant,
                                                                                             backend):
    study = stored_study(platform)
    with platform.schema(KEY):
        original = dict(Instance.objects.filter(study__study_instance_uid=study.study_instance_uid)
                        .values_list("sop_instance_uid", "sha256"))
        index_rows_lose(study.study_instance_uid)
    http = platform.http(KEY, "referring_physician")
    assert qido(http, "/studies", {"StudyInstanceUID": study.study_instance_uid}).json() == []

    first = reindex_output(tenant)
    again = reindex_output(tenant)

    assert "restored 3 (in 1 studies), checksum mismatches 0, unreadable 0" in first
    assert "restored 0 (in 0 studies), checksum mismatches 0, unreadable 0" in again
    [result] = qido(http, "/studies", {"StudyInstanceUID": study.study_instance_uid}).json()
    assert (result["00201208"]["Value"], result["00201206"]["Value"]) == ([3], [1])
    retrieved = http.get(f"/dicomweb/studies/{study.study_instance_uid}", headers={"Accept": ORIGINALS})
    assert [content for _, content in parse_multipart(retrieved)] == study.files
    with platform.schema(KEY):
        restored = dict(Instance.objects.filter(study__study_instance_uid=study.study_instance_uid)
                        .values_list("sop_instance_uid", "sha256"))
        audit = list(AuditEvent.objects.filter(action="archive.reindex").order_by("-id")[:2])
    assert restored == original
    assert [event.detail["restored"] for event in audit] == [0, 3]


def test_reindex_reports_a_corrupted_object_an_unreadable_one_and_a_second_copy_and_indexes_none(platform, tenant,
                                                                                                  backend):
    study = stored_study(platform, slices=2)
    storage = tenant_storage(platform)
    with platform.schema(KEY):
        corrupted, copied = Instance.objects.filter(sop_instance_uid__in=study.sop_instance_uids).order_by("id")
        storage.put_bytes(corrupted.object_key, study.files[0][:-1] + bytes([study.files[0][-1] ^ 0xFF]))
        garbage = orphan_instance_key()
        storage.put_bytes(garbage, b"not a DICOM file at all")
        second_copy = instance_object_key(
            study_instance_uid=study.study_instance_uid, series_instance_uid=study.series_instance_uids[0],
            sop_instance_uid=copied.sop_instance_uid, upload_id=new_upload_id(),
        )
        storage.put_bytes(second_copy, storage.get_bytes(copied.object_key))
        try:
            summary = archive_reindex(actor=ACTOR)
        finally:
            storage.delete(garbage)
            storage.delete(second_copy)
        assert Instance.objects.get(pk=corrupted.pk).sha256 == corrupted.sha256
        assert not Instance.objects.filter(object_key__in=[garbage, second_copy]).exists()
    assert corrupted.object_key in summary.checksum_mismatches
    assert summary.unreadable == [garbage]
    assert (summary.duplicate_copies, summary.refused) == (1, {})


def test_the_collector_removes_old_unreferenced_objects_only_and_a_dry_run_removes_nothing(platform, tenant,
                                                                                           backend):
    study = stored_study(platform, slices=1)
    storage = tenant_storage(platform)
    with platform.schema(KEY):
        referenced = Instance.objects.get(sop_instance_uid=study.sop_instance_uids[0]).object_key
    aged_orphan, young_orphan = orphan_instance_key(), orphan_instance_key()
    aged_render_of_orphan = derived_key(aged_orphan, "rendered/1-0123456789abcdef0123.jpg")
    aged_render_of_referenced = derived_key(referenced, "thumbnail/128.jpg")
    not_the_archives = [f"films/{uuid.uuid4().hex}/film.pdf", f"uploads/{uuid.uuid4().hex}/staged",
                        f"archive/{uuid.uuid4().hex}/unknown-layout.bin"]
    for key in [aged_orphan, aged_render_of_orphan, aged_render_of_referenced, *not_the_archives]:
        storage.put_bytes(key, b"x" * 100)
    time.sleep(PAUSE_SECONDS)
    storage.put_bytes(young_orphan, b"y" * 50)

    with platform.schema(KEY):
        dry = orphaned_objects_collect(min_age_seconds=SAFETY_AGE_SECONDS, max_unreferenced_instances=10,
                                       dry_run=True, actor=ACTOR)
        assert all(storage.exists(key) for key in (aged_orphan, aged_render_of_orphan))
        collected = orphaned_objects_collect(min_age_seconds=SAFETY_AGE_SECONDS, max_unreferenced_instances=10,
                                             actor=ACTOR)
        [audit, dry_audit] = AuditEvent.objects.filter(action="storage.orphans_collect").order_by("-id")[:2]

    assert sorted(dry.removed_keys) == sorted(collected.removed_keys) == sorted([aged_orphan, aged_render_of_orphan])
    assert not storage.exists(aged_orphan) and not storage.exists(aged_render_of_orphan)
    assert all(storage.exists(key) for key in [young_orphan, referenced, aged_render_of_referenced, *not_the_archives])
    assert (audit.detail["dry_run"], audit.detail["instances_removed"], audit.detail["derived_removed"],
            audit.detail["bytes_removed"]) == (False, 1, 1, 200)
    assert (dry_audit.detail["dry_run"], dry_audit.detail["removed"]) == (True, 2)
    assert audit.detail["too_young"] >= 1
    for key in [young_orphan, aged_render_of_referenced, *not_the_archives]:
        storage.delete(key)


def test_the_collector_removes_no_instance_while_more_than_the_limit_are_unreferenced(platform, tenant):
    storage = tenant_storage(platform)
    orphans = [orphan_instance_key(), orphan_instance_key()]
    for key in orphans:
        storage.put_bytes(key, b"z" * 10)
    time.sleep(PAUSE_SECONDS)
    try:
        with platform.schema(KEY):
            collected = orphaned_objects_collect(min_age_seconds=SAFETY_AGE_SECONDS, max_unreferenced_instances=1,
                                                 actor=ACTOR)
            audit = AuditEvent.objects.filter(action="storage.orphans_collect").latest("id")
        assert all(storage.exists(key) for key in orphans)
        assert (collected.instances_removed, collected.instances_withheld) == (0, 2)
        assert (audit.outcome, audit.detail["instances_withheld"]) == ("failure", 2)
    finally:
        for key in orphans:
            storage.delete(key)


def test_the_collector_and_a_reindex_of_one_tenant_never_run_at_once(platform, tenant):
    database = settings.DATABASES["default"]
    schema = platform.tenants[KEY].schema_name
    with psycopg.connect(host=database["HOST"] or "127.0.0.1", port=database["PORT"] or 5432,
                         user=database["USER"], dbname=database["NAME"], autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(7402117, hashtext(%s))", [schema])
        with platform.schema(KEY):
            with pytest.raises(StorageMaintenanceBusy):
                orphaned_objects_collect(min_age_seconds=0, max_unreferenced_instances=0, actor=ACTOR)
            with pytest.raises(StorageMaintenanceBusy):
                archive_reindex(actor=ACTOR)


def test_the_periodic_collection_runs_for_each_tenant_on_its_own_workers(platform, tenant, workers):
    from apps.archive.tasks import orphaned_objects_collect_dispatch

    with platform.schema():
        started = {key: _latest_collection(platform, key) for key in (KEY, "hospital_b")}
        orphaned_objects_collect_dispatch()
    for key in (KEY, "hospital_b"):
        wait_until(lambda key=key: _latest_collection(platform, key) > started[key], timeout=60,
                   message=f"an orphan collection audited in {key}")


def _latest_collection(platform, key: str) -> int:
    with platform.schema(key):
        latest = AuditEvent.objects.filter(action="storage.orphans_collect").order_by("-id").first()
        return latest.id if latest else 0
