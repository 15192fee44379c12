"""Deleting studies and series (admins only): hidden from QIDO-RS and WADO-RS at once, audited, and
purged with their objects once the retention window has passed."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from apps.archive.models import ArchiveUsage, Instance, Series, Study
from apps.archive.services import deleted_purge
from apps.audit.models import AuditEvent
from apps.storage.tenant_storage import storage_for
from tests.support.dicomweb import ct_study, mixed_study, qido, referenced_uids, stow
from tests.support.platform import wait_until


def delete(platform, path: str, role: str = "clinic_admin"):
    return platform.http("clinic_a", role).delete(f"/dicomweb{path}")


def visible_studies(platform, study_uid: str) -> list:
    return qido(platform.http("clinic_a", "technologist"), "/studies", {"StudyInstanceUID": study_uid}).json()


def test_an_admin_deletes_a_study_and_it_disappears_at_once(platform):
    study = ct_study(2)
    stow(platform.http("clinic_a", "technologist"), study.files)
    response = delete(platform, f"/studies/{study.study_instance_uid}")
    assert response.status_code == 204
    assert visible_studies(platform, study.study_instance_uid) == []
    http = platform.http("clinic_a", "technologist")
    assert http.get(f"/dicomweb/studies/{study.study_instance_uid}").status_code == 404
    assert http.get(f"/dicomweb/studies/{study.study_instance_uid}/metadata").status_code == 404
    assert delete(platform, f"/studies/{study.study_instance_uid}").status_code == 404
    with platform.schema("clinic_a"):
        event = AuditEvent.objects.get(action="archive.study_delete", object_id=study.study_instance_uid)
        assert event.actor_name == "clinic_admin-user"
        row = Study.objects.get(study_instance_uid=study.study_instance_uid)
        assert row.purge_after > timezone.now() + timedelta(days=29)


def test_only_admins_may_delete(platform):
    study = ct_study(1)
    stow(platform.http("clinic_a", "technologist"), study.files)
    for role in ("technologist", "referring_physician"):
        response = delete(platform, f"/studies/{study.study_instance_uid}", role=role)
        assert response.status_code == 403
    assert len(visible_studies(platform, study.study_instance_uid)) == 1


def test_deleting_a_series_recounts_its_study_and_the_last_series_takes_the_study(platform):
    study = mixed_study()
    stow(platform.http("clinic_a", "technologist"), study.files)
    ct_series, mr_series = study.series_instance_uids
    assert delete(platform, f"/studies/{study.study_instance_uid}/series/{mr_series}").status_code == 204
    [result] = visible_studies(platform, study.study_instance_uid)
    assert result["00201206"]["Value"] == [1]
    assert result["00201208"]["Value"] == [3]
    assert result["00080061"]["Value"] == ["CT"]
    assert delete(platform, f"/studies/{study.study_instance_uid}/series/{ct_series}").status_code == 204
    assert visible_studies(platform, study.study_instance_uid) == []


def test_a_deleted_study_can_be_sent_again(platform):
    study = ct_study(1)
    http = platform.http("clinic_a", "technologist")
    stow(http, study.files)
    delete(platform, f"/studies/{study.study_instance_uid}")
    again = stow(http, study.files)
    assert again.status_code == 200 and referenced_uids(again) == study.sop_instance_uids
    assert len(visible_studies(platform, study.study_instance_uid)) == 1


def test_the_purge_removes_rows_and_objects_after_the_retention_window(platform):
    study = ct_study(2)
    http = platform.http("clinic_a", "technologist")
    stow(http, study.files)
    path = f"/dicomweb/studies/{study.study_instance_uid}/series/{study.series_instance_uids[0]}/instances/"
    http.get(path + study.sop_instance_uids[0] + "/rendered", headers={"Accept": "image/jpeg"})
    storage = storage_for(platform.tenants["clinic_a"])
    prefix = storage.key_prefix + f"archive/{study.study_instance_uid}/"
    wait_until(lambda: any("/rendered/" in key for key in storage.store.list_keys(prefix)), message="rendered cache")
    delete(platform, f"/studies/{study.study_instance_uid}")
    with platform.schema("clinic_a"):
        bytes_before = ArchiveUsage.objects.get(pk=1).stored_bytes
        summary = deleted_purge(now=timezone.now() + timedelta(days=31))
        assert summary.studies >= 1
        assert not Study.objects.filter(study_instance_uid=study.study_instance_uid).exists()
        assert not Series.objects.filter(series_instance_uid=study.series_instance_uids[0]).exists()
        assert not Instance.objects.filter(sop_instance_uid__in=study.sop_instance_uids).exists()
        assert ArchiveUsage.objects.get(pk=1).stored_bytes <= bytes_before - sum(len(data) for data in study.files)
        assert AuditEvent.objects.filter(action="archive.purge").exists()
    assert list(storage.store.list_keys(prefix)) == []


def test_a_study_inside_its_retention_window_is_not_purged(platform):
    study = ct_study(1)
    stow(platform.http("clinic_a", "technologist"), study.files)
    delete(platform, f"/studies/{study.study_instance_uid}")
    with platform.schema("clinic_a"):
        deleted_purge(now=timezone.now() + timedelta(days=1))
        assert Study.objects.filter(study_instance_uid=study.study_instance_uid).exists()
