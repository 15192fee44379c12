"""Archive services called directly: the study-stable subscribers, the bulk index loader, uploads
through the ingest service, and the demo's sample studies."""

from __future__ import annotations

import io
import random

import pytest

from apps.archive.events import on_study_stable, unsubscribe
from apps.archive.models import Instance, Study
from apps.archive.services import index_bulk_load, instance_store_file, studies_mark_stable
from apps.audit.services import Actor
from apps.dicom.status import FailureReason
from apps.storage.tenant_storage import storage_for
from bench.scale_index import synthetic_index
from tests.support.dicomweb import ct_study, qido, stow


def test_study_stable_subscribers_are_called_once_with_the_study(platform):
    study = ct_study(2)
    stow(platform.http("hospital_b", "radiologist"), study.files)
    seen = []
    on_study_stable("test.collector")(seen.append)
    try:
        with platform.schema("hospital_b"):
            studies_mark_stable(stable_after_seconds=0)
            studies_mark_stable(stable_after_seconds=0)
    finally:
        unsubscribe("test.collector")
    mine = [event for event in seen if event.study_instance_uid == study.study_instance_uid]
    assert len(mine) == 1
    assert (mine[0].number_of_instances, mine[0].modalities_in_study, mine[0].tenant_slug) == (
        2, ("CT",), platform.tenants["hospital_b"].slug
    )


def test_a_failing_subscriber_leaves_the_study_to_be_announced_again(platform):
    study = ct_study(1)
    stow(platform.http("hospital_b", "radiologist"), study.files)

    def refuse(event):
        if event.study_instance_uid == study.study_instance_uid:
            raise RuntimeError("not now")

    on_study_stable("test.refuser")(refuse)
    try:
        with platform.schema("hospital_b"):
            try:
                studies_mark_stable(stable_after_seconds=0)
            except RuntimeError:
                pass
            assert Study.objects.get(study_instance_uid=study.study_instance_uid).stable_at is None
    finally:
        unsubscribe("test.refuser")
    with platform.schema("hospital_b"):
        assert study.study_instance_uid in studies_mark_stable(stable_after_seconds=0)


def test_the_bulk_loader_indexes_synthetic_studies_with_their_counters_idempotently(platform):
    seed = random.randrange(10**9)
    records = list(synthetic_index(studies=6, instances=90, seed=seed))
    datasets = [dataset for record in records for dataset in record.instance_datasets()]
    with platform.schema("clinic_c"):
        first = index_bulk_load(datasets=datasets, chunk_size=40)
        again = index_bulk_load(datasets=datasets)
    assert (first.instances, first.indexed) == (90, 90)
    assert (again.indexed, again.already_indexed) == (0, 90)
    record = records[0]
    response = qido(platform.http("clinic_c", "technologist"), "/studies",
                    {"StudyInstanceUID": record.study_instance_uid})
    [result] = response.json()
    assert result["00201208"]["Value"] == [sum(len(series.sop_instance_uids) for series in record.series)]
    assert result["00201206"]["Value"] == [len(record.series)]
    assert result["00100020"]["Value"] == [record.patient_id]


def test_an_uploaded_file_goes_through_the_same_ingest(platform):
    study = ct_study(1)
    with platform.schema("clinic_a"):
        report = instance_store_file(stream=io.BytesIO(study.files[0]), actor=Actor.system("test"))
        again = instance_store_file(stream=io.BytesIO(study.files[0]), actor=Actor.system("test"))
        refused = instance_store_file(stream=io.BytesIO(b"nope" * 100), actor=Actor.system("test"))
    assert [item.sop_instance_uid for item in report.stored] == study.sop_instance_uids
    assert again.stored[0].already_stored
    assert refused.failed[0].reason == FailureReason.CANNOT_UNDERSTAND


def test_the_demo_samples_load_once_and_again_without_change(platform):
    from apps.archive.demo_data import load_sample_studies

    with platform.schema("clinic_c"):
        first = load_sample_studies(tenant=platform.tenants["clinic_c"])
        second = load_sample_studies(tenant=platform.tenants["clinic_c"])
    assert first.failed == second.failed == 0
    assert first.stored + first.already_stored == first.files == 43
    assert (second.stored, second.already_stored) == (0, 43)


def test_prepared_index_statements_follow_the_tenant_on_one_connection(platform):
    """The index statements are prepared once per connection; PostgreSQL re-parses them when the
    search_path differs, so one connection serving tenant after tenant writes each into its own schema."""
    from django.db import connection

    from apps.archive.models import Instance

    studies = {key: ct_study(1) for key in ("clinic_a", "hospital_b", "clinic_a_again")}
    backend_pids = set()
    for key, study in studies.items():
        tenant_key = key.removesuffix("_again")
        with platform.schema(tenant_key):
            report = instance_store_file(stream=io.BytesIO(study.files[0]), actor=Actor.system("test"))
            assert [item.sop_instance_uid for item in report.stored] == study.sop_instance_uids
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                backend_pids.add(cursor.fetchone()[0])
                cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%%archive_instance%%'")
                prepared = cursor.fetchone()[0]
    assert len(backend_pids) == 1  # really one connection
    assert prepared >= 1  # and really prepared statements
    for key, study in studies.items():
        own, other = ("hospital_b", "clinic_a") if key == "hospital_b" else ("clinic_a", "hospital_b")
        uid = study.sop_instance_uids[0]
        with platform.schema(own):
            assert Instance.objects.filter(sop_instance_uid=uid).count() == 1
        with platform.schema(other):
            assert not Instance.objects.filter(sop_instance_uid=uid).exists()


def test_an_error_after_the_index_commit_keeps_the_objects_its_rows_name(platform, monkeypatch):
    def after_commit_work_fails(*, row):
        raise RuntimeError("the after-commit work failed")

    monkeypatch.setattr("tenants.outbox.outbox_task_publish_after_commit", after_commit_work_fails)
    study = ct_study(1)  # a new series: its thumbnail task is queued for after the commit
    with platform.schema("clinic_a"):
        with pytest.raises(RuntimeError):
            instance_store_file(stream=io.BytesIO(study.files[0]), actor=Actor.system("test"))
        instance = Instance.objects.get(sop_instance_uid=study.sop_instance_uids[0])
    assert storage_for(platform.tenants["clinic_a"]).get_bytes(instance.object_key) == study.files[0]
