"""STOW-RS (PS3.18 §10.5): instances are stored byte for byte and indexed; bad input is refused
per instance with the PS3.18 failure reason, and changes nothing already stored."""

from __future__ import annotations

import contextlib
import hashlib
import threading
import uuid

import pytest
from django.conf import settings

from apps.archive.models import ArchiveUsage, Instance, Series, Study
from apps.archive.selectors import storage_usage
from apps.audit.models import AuditEvent
from apps.dicom.status import FailureReason
from apps.storage.tenant_storage import storage_for
from tenants.models import Plan
from tests.factories.dicom_factory import make_ct_slice, to_part10_bytes
from tests.support.dicomweb import (
    DICOM_JSON,
    ct_study,
    failures,
    mixed_study,
    multipart_body,
    referenced_uids,
    sample_bytes,
    sample_file_with_new_uids,
    stow,
)

CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


def stored_study(platform, tenant_key: str, study_uid: str) -> Study:
    with platform.schema(tenant_key):
        return Study.objects.get(study_instance_uid=study_uid, deleted_at__isnull=True)


def stored_bytes(platform, tenant_key: str, sop_uid: str) -> bytes:
    with platform.schema(tenant_key):
        instance = Instance.objects.get(sop_instance_uid=sop_uid, deleted_at__isnull=True)
        return storage_for(platform.tenants[tenant_key]).get_bytes(instance.object_key)


@contextlib.contextmanager
def on_plan(platform, tenant, **quotas):
    """The tenant on a plan with these quotas for the block, then back on its own plan."""
    with platform.schema():
        plan = Plan.objects.create(code=f"quota-{uuid.uuid4().hex[:8]}", name="Quota test", **quotas)
        previous_plan = tenant.plan
        tenant.plan = plan
        tenant.save(update_fields=["plan"])
    try:
        yield plan
    finally:
        with platform.schema():
            tenant.plan = previous_plan
            tenant.save(update_fields=["plan"])
            plan.delete()


def test_a_study_is_stored_and_every_instance_referenced_with_its_retrieve_url(platform):
    study = ct_study(3)
    response = stow(platform.http("clinic_a", "technologist"), study.files)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith(DICOM_JSON)
    assert referenced_uids(response) == study.sop_instance_uids
    document = response.json()
    assert document["00081190"]["Value"][0].endswith(f"/dicomweb/studies/{study.study_instance_uid}")
    first = document["00081199"]["Value"][0]
    assert first["00081150"]["Value"] == [CT_STORAGE]
    assert first["00081190"]["Value"][0].endswith(
        f"/studies/{study.study_instance_uid}/series/{study.series_instance_uids[0]}/instances/{study.sop_instance_uids[0]}"
    )
    row = stored_study(platform, "clinic_a", study.study_instance_uid)
    assert (row.number_of_series, row.number_of_instances, row.modalities_in_study) == (1, 3, ["CT"])
    assert row.size_bytes == sum(len(data) for data in study.files)


def test_the_original_bytes_are_kept_untouched(platform):
    study = ct_study(1)
    stow(platform.http("clinic_a", "technologist"), study.files)
    assert stored_bytes(platform, "clinic_a", study.sop_instance_uids[0]) == study.files[0]


def test_compressed_sample_files_are_stored_as_sent(platform):
    # pydicom's own RLE file with fresh UIDs: its compressed pixel data as shipped.
    data = sample_file_with_new_uids("MR_small_RLE.dcm")
    response = stow(platform.http("hospital_b", "radiologist"), [data])
    assert response.status_code == 200
    sop_uid = referenced_uids(response)[0]
    assert hashlib.sha256(stored_bytes(platform, "hospital_b", sop_uid)).digest() == hashlib.sha256(data).digest()


def test_a_study_with_two_series_counts_both_and_both_modalities(platform):
    study = mixed_study()
    response = stow(platform.http("clinic_a", "clinic_admin"), study.files)
    assert response.status_code == 200
    row = stored_study(platform, "clinic_a", study.study_instance_uid)
    assert (row.number_of_series, row.number_of_instances, row.modalities_in_study) == (2, 4, ["CT", "MR"])


def test_storing_into_a_study_url_refuses_instances_of_another_study(platform):
    study, other = ct_study(1), ct_study(1)
    response = stow(platform.http("clinic_a", "technologist"), [*study.files, *other.files], study=study.study_instance_uid)
    assert response.status_code == 202
    assert referenced_uids(response) == study.sop_instance_uids
    assert failures(response) == [(other.sop_instance_uids[0], FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS)]
    with platform.schema("clinic_a"):
        assert not Study.objects.filter(study_instance_uid=other.study_instance_uid).exists()


def test_sending_the_same_instance_again_succeeds_without_a_second_copy(platform):
    study = ct_study(2)
    http = platform.http("clinic_a", "technologist")
    stow(http, study.files)
    with platform.schema("clinic_a"):
        usage_before = ArchiveUsage.objects.get(pk=1).stored_bytes
    again = stow(http, study.files)
    assert again.status_code == 200
    assert referenced_uids(again) == study.sop_instance_uids
    row = stored_study(platform, "clinic_a", study.study_instance_uid)
    assert row.number_of_instances == 2
    with platform.schema("clinic_a"):
        assert ArchiveUsage.objects.get(pk=1).stored_bytes == usage_before
        keys = list(Instance.objects.filter(study=row).values_list("object_key", flat=True))
    storage = storage_for(platform.tenants["clinic_a"])
    prefix = f"archive/{study.study_instance_uid}/"
    listed = [key for key in storage.store.list_keys(storage.key_prefix + prefix) if key.endswith(".dcm")]
    assert sorted(key[len(storage.key_prefix):] for key in listed) == sorted(keys)


def test_different_content_under_a_stored_sop_instance_uid_is_a_conflict_and_the_original_stays(platform):
    dataset = make_ct_slice(rows=16, columns=16, patient_id=f"P-{uuid.uuid4().hex[:8]}")
    original = to_part10_bytes(dataset)
    dataset.StudyDescription = "CHANGED"
    changed = to_part10_bytes(dataset)
    http = platform.http("clinic_a", "technologist")
    assert stow(http, [original]).status_code == 200
    response = stow(http, [changed])
    assert response.status_code == 409
    assert failures(response) == [(dataset.SOPInstanceUID, FailureReason.DUPLICATE_SOP_INSTANCE)]
    assert stored_bytes(platform, "clinic_a", dataset.SOPInstanceUID) == original


def test_some_failures_answer_202_and_keep_the_good_instances(platform):
    study = ct_study(2)
    response = stow(platform.http("clinic_a", "technologist"), [study.files[0], b"not dicom at all" * 20, study.files[1]])
    assert response.status_code == 202
    assert referenced_uids(response) == study.sop_instance_uids
    assert failures(response) == [("", FailureReason.CANNOT_UNDERSTAND)]
    assert "failed (C000)" in response.headers["Warning"]


@pytest.mark.parametrize(
    ("make_file", "reason"),
    [
        (lambda: b"\x00" * 200, FailureReason.CANNOT_UNDERSTAND),
        (lambda: to_part10_bytes(make_ct_slice(rows=16, columns=16))[:700], FailureReason.CANNOT_UNDERSTAND),
        (lambda: sample_bytes("no_meta.dcm"), FailureReason.CANNOT_UNDERSTAND),
        (lambda: _without("SeriesInstanceUID"), FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS),
        (lambda: _without("SOPInstanceUID"), FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS),
        (lambda: _with(StudyInstanceUID="1.2.840.abc.1"), FailureReason.CANNOT_UNDERSTAND),
        (lambda: _without("PatientID"), FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS),
    ],
    ids=["not-dicom", "truncated", "needs-force", "no-series-uid", "no-sop-uid", "illegal-uid", "no-patient-id"],
)
def test_bad_instances_alone_answer_409_with_their_failure_reason_and_store_nothing(platform, make_file, reason):
    with platform.schema("clinic_a"):
        before = (Instance.objects.count(), AuditEvent.objects.filter(action="archive.store").count())
    response = stow(platform.http("clinic_a", "technologist"), [make_file()])
    assert response.status_code == 409, response.text
    assert [failure[1] for failure in failures(response)] == [reason]
    with platform.schema("clinic_a"):
        assert Instance.objects.count() == before[0]


def _without(keyword: str) -> bytes:
    dataset = make_ct_slice(rows=16, columns=16)
    delattr(dataset, keyword)
    return to_part10_bytes(dataset)


def _with(**values: str) -> bytes:
    dataset = make_ct_slice(rows=16, columns=16)
    for keyword, value in values.items():
        setattr(dataset, keyword, value)
    return to_part10_bytes(dataset)


def test_a_body_cut_inside_a_part_stores_the_complete_parts(platform):
    study = ct_study(2)
    body, content_type = multipart_body(study.files)
    cut = body[: body.index(study.files[1]) + 1000]
    response = platform.http("clinic_a", "technologist").post(
        "/dicomweb/studies", data=cut, headers={"Content-Type": content_type, "Accept": DICOM_JSON}
    )
    assert response.status_code == 202
    assert referenced_uids(response) == study.sop_instance_uids[:1]
    assert failures(response) == [("", FailureReason.CANNOT_UNDERSTAND)]


def test_a_wrong_boundary_is_a_bad_request(platform):
    study = ct_study(1)
    body, _ = multipart_body(study.files, boundary="the-real-one")
    response = platform.http("clinic_a", "technologist").post(
        "/dicomweb/studies", data=body,
        headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=another-one'},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "boundary_not_found"
    with platform.schema("clinic_a"):
        assert not Study.objects.filter(study_instance_uid=study.study_instance_uid).exists()


@pytest.mark.parametrize(
    "content_type",
    ["application/dicom", 'multipart/related; type="application/dicom+json"; boundary=x', "application/json", ""],
)
def test_a_wrong_content_type_is_unsupported(platform, content_type):
    response = platform.http("clinic_a", "technologist").post(
        "/dicomweb/studies", data=b"--x\r\n\r\n--x--", headers={"Content-Type": content_type}
    )
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


def test_a_body_over_the_limit_is_refused_before_anything_is_stored(platform):
    study = ct_study(2)
    body, content_type = multipart_body(study.files)
    previous = settings.STOW_MAX_BODY_BYTES
    settings.STOW_MAX_BODY_BYTES = len(body) - 1
    try:
        response = platform.http("clinic_a", "technologist").post(
            "/dicomweb/studies", data=body, headers={"Content-Type": content_type}
        )
    finally:
        settings.STOW_MAX_BODY_BYTES = previous
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    with platform.schema("clinic_a"):
        assert not Study.objects.filter(study_instance_uid=study.study_instance_uid).exists()


def test_an_instance_over_the_part_limit_is_out_of_resources(platform):
    small, large = ct_study(1, size=16), ct_study(1, size=128)
    previous = settings.STOW_MAX_PART_BYTES
    settings.STOW_MAX_PART_BYTES = len(small.files[0]) + 10
    try:
        response = stow(platform.http("clinic_a", "technologist"), [large.files[0], small.files[0]])
    finally:
        settings.STOW_MAX_PART_BYTES = previous
    assert response.status_code == 202
    assert referenced_uids(response) == small.sop_instance_uids
    assert failures(response) == [("", FailureReason.OUT_OF_RESOURCES)]


def test_a_storage_quota_refuses_what_does_not_fit_with_out_of_resources(platform):
    tenant = platform.tenants["clinic_c"]
    first, second = ct_study(1), ct_study(1)
    with platform.schema("clinic_c"):
        # As the quota counts it: the archive, the rendered cache and staged uploads.
        used = storage_usage().total_bytes
    # Half an instance of slack: a thumbnail rendered meanwhile by a worker counts too.
    with on_plan(platform, tenant, storage_bytes_quota=used + len(first.files[0]) + len(second.files[0]) // 2):
        response = stow(platform.http("clinic_c", "technologist"), [first.files[0], second.files[0]])
    assert response.status_code == 202
    assert referenced_uids(response) == first.sop_instance_uids
    assert failures(response) == [(second.sop_instance_uids[0], FailureReason.OUT_OF_RESOURCES)]


def test_a_studies_a_month_quota_refuses_new_studies_beyond_it(platform):
    tenant = platform.tenants["clinic_c"]
    existing, new = ct_study(1), ct_study(1)
    assert stow(platform.http("clinic_c", "technologist"), existing.files[:1]).status_code == 200
    more_of_existing = ct_study(1, study_instance_uid=existing.study_instance_uid, patient_id=existing.patient_id)
    with platform.schema("clinic_c"):
        from django.utils import timezone

        month_start = timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        this_month = Study.objects.filter(created_at__gte=month_start).count()
    with on_plan(platform, tenant, studies_per_month_quota=this_month):
        response = stow(platform.http("clinic_c", "technologist"), [new.files[0], more_of_existing.files[0]])
    assert response.status_code == 202
    assert referenced_uids(response) == more_of_existing.sop_instance_uids
    assert failures(response) == [(new.sop_instance_uids[0], FailureReason.OUT_OF_RESOURCES)]


def test_a_series_uid_already_in_another_study_is_refused(platform):
    first = ct_study(1)
    http = platform.http("clinic_a", "technologist")
    stow(http, first.files)
    intruder = ct_study(1, series_instance_uid=first.series_instance_uids[0])
    response = stow(http, intruder.files)
    assert response.status_code == 409
    assert failures(response) == [(intruder.sop_instance_uids[0], FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS)]


def test_every_store_request_is_one_audit_event(platform):
    study = ct_study(3)
    stow(platform.http("clinic_a", "technologist"), study.files)
    with platform.schema("clinic_a"):
        events = list(AuditEvent.objects.filter(action="archive.store", object_id=study.study_instance_uid))
    assert len(events) == 1
    assert events[0].actor_name == "technologist-user"
    assert events[0].detail["stored"] == 3


def test_clients_storing_the_same_study_at_once_end_with_consistent_counts(platform):
    """Four clients send overlapping parts of one study at the same time (PS3.18 allows retries)."""
    study = ct_study(12, size=32)
    batches = [study.files[0:6], study.files[3:9], study.files[6:12], study.files[0:12:2]]
    statuses: list[int] = []

    def send(files: list[bytes]) -> None:
        statuses.append(stow(platform.http("hospital_b", "radiologist"), files).status_code)

    threads = [threading.Thread(target=send, args=(batch,)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200, 200, 200, 200]
    with platform.schema("hospital_b"):
        row = Study.objects.get(study_instance_uid=study.study_instance_uid)
        assert row.number_of_instances == 12
        assert row.number_of_series == 1
        assert Series.objects.get(study=row).number_of_instances == 12
        assert Instance.objects.filter(study=row).count() == 12
        assert row.size_bytes == sum(len(data) for data in study.files)
    storage = storage_for(platform.tenants["hospital_b"])
    originals = [key for key in storage.store.list_keys(storage.key_prefix + f"archive/{study.study_instance_uid}/")
                 if key.endswith(".dcm")]  # thumbnails rendered by workers may sit beside them
    assert len(originals) == 12


def test_a_reader_role_may_not_store(platform):
    response = stow(platform.http("clinic_a", "referring_physician"), ct_study(1).files)
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_a_client_that_accepts_only_xml_is_not_acceptable(platform):
    response = stow(platform.http("clinic_a", "technologist"), ct_study(1).files,
                    headers={"Accept": "application/dicom+xml"})
    assert response.status_code == 406


def test_a_part_10_file_sent_without_its_preamble_is_stored_with_it_and_a_coercion_warning(platform):
    """pydicom 3 writes data sets made in memory without the preamble, and dicomweb-client sends them so."""
    dataset = make_ct_slice(rows=16, columns=16, patient_id=f"P-{uuid.uuid4().hex[:8]}")
    sent = to_part10_bytes(dataset)[132:]
    response = stow(platform.http("clinic_a", "technologist"), [sent])
    assert response.status_code == 202
    item = response.json()["00081199"]["Value"][0]
    assert item["00081196"]["Value"] == [0xB000]
    assert stored_bytes(platform, "clinic_a", dataset.SOPInstanceUID) == b"\0" * 128 + b"DICM" + sent


def test_dicomweb_client_stores_data_sets_made_in_memory(platform):
    from tests.support.dicomweb import dicomweb_client

    study = ct_study(2)
    in_memory = [make_ct_slice(rows=16, columns=16, patient_id=study.patient_id,
                               study_instance_uid=study.study_instance_uid) for _ in range(2)]
    response = dicomweb_client(platform, "clinic_a", "technologist").store_instances(in_memory)
    assert len(response.ReferencedSOPSequence) == 2
