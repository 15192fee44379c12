"""AI jobs end to end on real Celery workers: a chest phantom stored in the dedicated hospital's
archive, a job started through the API, its SEG and SR stored as new series and re-read with
highdicom, reuse and force, failure paths that store nothing, cancellation and time-out."""

from __future__ import annotations

import io
from datetime import timedelta

import highdicom as hd
import pydicom
import pytest
from django.utils import timezone

from apps.ai.engines.base import volume_from_datasets
from apps.ai.models import AIJob, JobState
from apps.ai.registry import RegisteredEngine, descriptor_from_definition
from apps.ai.selectors import engine_registered, triage_flags_for_studies
from apps.ai.services import engine_define, engine_setting_update, jobs_resend_unclaimed
from apps.ai.tasks import ai_unclaimed_jobs_resend
from apps.audit.models import AuditEvent
from apps.audit.services import Actor
from tests.ai.jobs_support import (
    JOBS,
    NODULE_ENGINE,
    finished_runs,
    job_of,
    series_modalities,
    store_chest_phantom,
    wait_for_job,
)
from tests.ai.test_onnx_engine import mean_intensity_classifier
from tests.support.dicomweb import parse_multipart, qido
from tests.support.platform import wait_until

SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
COMPREHENSIVE_3D_SR_STORAGE = "1.2.840.10008.5.1.4.1.1.88.34"


def start(platform, tenant_key: str, role: str, study_uid: str, **extra):
    return platform.http(tenant_key, role).post(JOBS, json={"engine_name": NODULE_ENGINE,
                                                            "study_instance_uid": study_uid, **extra})


def retrieve_series_instance(platform, tenant_key: str, role: str, study_uid: str, series_uid: str) -> pydicom.Dataset:
    response = platform.http(tenant_key, role).get(
        f"/dicomweb/studies/{study_uid}/series/{series_uid}",
        headers={"Accept": 'multipart/related; type="application/dicom"'},
    )
    assert response.status_code == 200, response.text
    parts = parse_multipart(response)
    assert len(parts) == 1
    return pydicom.dcmread(io.BytesIO(parts[0][1]))


@pytest.fixture(scope="module")
def finished_hospital_job(platform, workers):
    """One phantom in hospital_b's archive, analysed once by a job started by a radiologist."""
    stored = store_chest_phantom(platform, "hospital_b", "radiologist")
    response = start(platform, "hospital_b", "radiologist", stored.study_instance_uid)
    assert response.status_code == 201, response.text
    job = wait_for_job(platform, "hospital_b", response.json()["id"])
    return stored, response.json(), job


def test_a_started_job_is_queued_and_then_succeeds_on_the_hospitals_own_worker(platform, workers,
                                                                               finished_hospital_job):
    _, started, job = finished_hospital_job
    assert (started["state"], started["reused"], started["engine_version"]) == ("queued", False, "1.0.0")
    assert (job.state, job.progress, job.attempts, job.error_code) == (JobState.SUCCEEDED, 100, 1, "")
    assert "apps.ai.tasks.ai_job_run" in workers["hospital_b"].log()


def test_the_job_summary_matches_the_detector_run_on_the_same_slices(platform, finished_hospital_job):
    stored, _, job = finished_hospital_job
    expected = stored.detect()
    assert job.summary["nodule_count"] == len(expected.findings)
    assert [n["label"] for n in job.summary["nodules"]] == [n.label for n in expected.findings]
    assert job.summary["largest_long_axis_mm"] == expected.summary["largest_long_axis_mm"]
    planted_6mm_or_more = [truth for truth in stored.phantom.nodules if truth.long_axis_mm >= 6.0]
    assert job.summary["nodule_count"] >= len(planted_6mm_or_more)
    assert job.source_series_instance_uid == stored.series_instance_uid


def test_the_segmentation_and_report_appear_as_new_series_in_qido(platform, finished_hospital_job):
    stored, _, job = finished_hospital_job
    assert len(job.result_series_instance_uids) == 2
    assert series_modalities(platform, "hospital_b", "radiologist", stored.study_instance_uid) == ["CT", "SEG", "SR"]


def test_the_stored_segmentation_has_one_segment_per_nodule_over_the_source_slices(platform, finished_hospital_job):
    stored, _, job = finished_hospital_job
    seg_series = job.result_series_instance_uids[0]
    dataset = retrieve_series_instance(platform, "hospital_b", "radiologist", stored.study_instance_uid, seg_series)
    segmentation = hd.seg.Segmentation.from_dataset(dataset)
    assert dataset.SOPClassUID == SEGMENTATION_STORAGE
    assert segmentation.number_of_segments == job.summary["nodule_count"]
    assert [segmentation.get_segment_description(k).segment_label
            for k in range(1, segmentation.number_of_segments + 1)] == [n["label"] for n in job.summary["nodules"]]
    referenced = {item.SeriesInstanceUID for item in dataset.ReferencedSeriesSequence}
    assert referenced == {stored.series_instance_uid}
    source_uids = {str(sop_uid) for _, _, sop_uid in segmentation.get_source_image_uids()}
    assert source_uids == {str(d.SOPInstanceUID) for d in stored.datasets}


def test_the_stored_report_is_a_tid_1500_measurement_report_referencing_ct_and_seg(platform, finished_hospital_job):
    stored, _, job = finished_hospital_job
    seg_series, sr_series = job.result_series_instance_uids
    dataset = retrieve_series_instance(platform, "hospital_b", "radiologist", stored.study_instance_uid, sr_series)
    assert dataset.SOPClassUID == COMPREHENSIVE_3D_SR_STORAGE
    report = hd.sr.Comprehensive3DSR.from_dataset(dataset)
    groups = report.content.get_volumetric_roi_measurement_groups()
    assert len(groups) == job.summary["nodule_count"]
    long_axes = sorted(round(g.get_measurements(name=hd.sr.CodedConcept("103339001", "SCT", "Long Axis"))[0].value, 1)
                       for g in groups)
    assert long_axes == sorted(round(n["long_axis_mm"], 1) for n in job.summary["nodules"])
    evidence = {item.SeriesInstanceUID: {ref.ReferencedSOPInstanceUID for ref in item.ReferencedSOPSequence}
                for study in dataset.CurrentRequestedProcedureEvidenceSequence
                for item in study.ReferencedSeriesSequence}
    assert evidence[stored.series_instance_uid] == {str(d.SOPInstanceUID) for d in stored.datasets}
    assert seg_series in evidence


def test_the_triage_selector_summarises_the_finished_job(platform, finished_hospital_job):
    stored, _, job = finished_hospital_job
    with platform.schema("hospital_b"):
        flags = triage_flags_for_studies([stored.study_instance_uid, "1.2.3.4.5.404"])
    largest = job.summary["largest_long_axis_mm"]
    assert list(flags) == [stored.study_instance_uid]
    assert flags[stored.study_instance_uid]["text"] == (
        f"{job.summary['nodule_count']} nodules, largest {largest:.0f} mm")
    assert flags[stored.study_instance_uid]["flag"] is True


def test_starting_the_same_engine_again_reuses_the_finished_result(platform, finished_hospital_job):
    stored, started, _ = finished_hospital_job
    again = start(platform, "hospital_b", "hospital_admin", stored.study_instance_uid)
    assert again.status_code == 200
    assert (again.json()["id"], again.json()["reused"], again.json()["state"]) == (started["id"], True, "succeeded")


def test_a_forced_start_runs_a_new_job(platform, workers, finished_hospital_job):
    stored, started, _ = finished_hospital_job
    forced = start(platform, "hospital_b", "radiologist", stored.study_instance_uid, forced=True)
    assert forced.status_code == 201
    assert forced.json()["id"] != started["id"]
    job = wait_for_job(platform, "hospital_b", forced.json()["id"])
    assert (job.state, job.forced) == (JobState.SUCCEEDED, True)
    assert len(set(job.result_series_instance_uids)) == 2


def test_an_engine_error_fails_the_job_and_stores_nothing(platform, workers, tmp_path):
    stored = store_chest_phantom(platform, "hospital_b", "radiologist")
    with platform.schema("hospital_b"):
        engine_define(engine_name="broken-onnx", kind="onnx", actor=Actor.system("test"), definition={
            "version": "0.1", "vendor": "Test", "modalities": ["CT"], "minimum_slices": 10,
            "model_path": str(tmp_path / "missing.onnx"), "window": {"center": -600, "width": 1500},
            "output": {"kind": "segmentation", "labels": {"1": "lesion"}},
        })
    response = platform.http("hospital_b", "radiologist").post(
        JOBS, json={"engine_name": "broken-onnx", "study_instance_uid": stored.study_instance_uid})
    assert response.status_code == 201, response.text
    job = wait_for_job(platform, "hospital_b", response.json()["id"])
    assert (job.state, job.error_code) == (JobState.FAILED, "engine_error")
    assert "ONNX model file not found" in job.error_detail
    assert job.result_series_instance_uids == []
    assert series_modalities(platform, "hospital_b", "radiologist", stored.study_instance_uid) == ["CT"]


def test_a_job_over_its_time_out_fails_with_timeout_and_stores_nothing(platform, workers):
    stored = store_chest_phantom(platform, "clinic_c", "technologist")
    with platform.schema("clinic_c"):
        engine_setting_update(engine_name=NODULE_ENGINE, actor=Actor.system("test"), timeout_seconds=0.001)
    try:
        response = start(platform, "clinic_c", "technologist", stored.study_instance_uid)
        assert response.status_code == 201, response.text
        job = wait_for_job(platform, "clinic_c", response.json()["id"])
    finally:
        with platform.schema("clinic_c"):
            engine_setting_update(engine_name=NODULE_ENGINE, actor=Actor.system("test"), timeout_seconds=600)
    assert (job.state, job.error_code) == (JobState.FAILED, "timeout")
    assert series_modalities(platform, "clinic_c", "technologist", stored.study_instance_uid) == ["CT"]


def test_a_job_whose_run_message_was_lost_is_sent_again_by_the_sweep_and_runs(platform, workers):
    stored = store_chest_phantom(platform, "hospital_b", "radiologist")
    with platform.schema("hospital_b"):
        # What a broker restart leaves behind: dispatched an hour ago, no message anywhere.
        version = engine_registered(NODULE_ENGINE).descriptor.version
        lost = AIJob.objects.create(engine_name=NODULE_ENGINE, engine_version=version,
                                    study_instance_uid=stored.study_instance_uid,
                                    dispatched_at=timezone.now() - timedelta(hours=1))
        assert jobs_resend_unclaimed(older_than_seconds=2 * 3600) == 0  # not yet that old
    with platform.schema():
        assert ai_unclaimed_jobs_resend(older_than_seconds=600) >= 1  # the periodic task, every tenant
    job = wait_for_job(platform, "hospital_b", str(lost.pk))
    assert job.state == JobState.SUCCEEDED and job.attempts == 1
    assert job.dispatched_at > timezone.now() - timedelta(minutes=5)
    with platform.schema("hospital_b"):
        assert AuditEvent.objects.filter(action="ai.job_resend", object_id=str(lost.pk)).count() == 1


def test_a_cancelled_job_ends_cancelled_and_stores_nothing(platform, workers):
    stored = store_chest_phantom(platform, "hospital_b", "radiologist")
    runs_before = len(finished_runs(workers["hospital_b"].log()))
    response = start(platform, "hospital_b", "radiologist", stored.study_instance_uid)
    cancelled = platform.http("hospital_b", "radiologist").post(f"{JOBS}{response.json()['id']}/cancel/")
    assert cancelled.status_code == 200
    assert cancelled.json()["state"] == "cancelled"
    outcomes = wait_until(lambda: finished_runs(workers["hospital_b"].log())[runs_before:], timeout=120,
                          message="the cancelled job's task to end")
    assert outcomes[-1] in ("skipped", "cancelled")
    assert job_of(platform, "hospital_b", response.json()["id"]).state == JobState.CANCELLED
    assert series_modalities(platform, "hospital_b", "radiologist", stored.study_instance_uid) == ["CT"]


def test_cancelling_a_finished_job_is_a_conflict(platform, finished_hospital_job):
    _, started, _ = finished_hospital_job
    response = platform.http("hospital_b", "radiologist").post(f"{JOBS}{started['id']}/cancel/")
    assert response.status_code == 409
    assert response.json()["code"] == "job_finished"


def test_the_job_detail_and_list_show_the_job_through_the_api(platform, finished_hospital_job):
    stored, started, job = finished_hospital_job
    detail = platform.http("hospital_b", "consult_coordinator").get(f"{JOBS}{started['id']}/")
    assert detail.status_code == 200
    assert (detail.json()["state"], detail.json()["result_series_instance_uids"]) == (
        "succeeded", job.result_series_instance_uids)
    listed = platform.http("hospital_b", "radiologist").get(JOBS, params={"study_instance_uid": stored.study_instance_uid})
    assert started["id"] in [item["id"] for item in listed.json()["results"]]
    assert {item["study_instance_uid"] for item in listed.json()["results"]} == {stored.study_instance_uid}


def test_qido_shows_the_results_to_a_dicomweb_client(platform, finished_hospital_job):
    stored, _, _ = finished_hospital_job
    response = qido(platform.http("hospital_b", "radiologist"), f"/studies/{stored.study_instance_uid}/series",
                    params={"Modality": "SEG"})
    with platform.schema("hospital_b"):
        jobs = AIJob.objects.filter(study_instance_uid=stored.study_instance_uid, state=JobState.SUCCEEDED)
        segmentations = {job.result_series_instance_uids[0] for job in jobs}
    assert {item["0020000E"]["Value"][0] for item in response.json()} == segmentations


def test_an_onnx_model_runs_as_a_job_and_its_scores_become_the_json_summary(platform, workers, tmp_path):
    definition = {
        "version": "2.0", "vendor": "Test", "modalities": ["CT"], "minimum_slices": 20,
        "model_path": str(mean_intensity_classifier(tmp_path / "mean.onnx")),
        "window": {"center": -600, "width": 1500},
        "output": {"kind": "classification", "class_names": ["aerated"], "threshold": 0.0},
    }
    with platform.schema("hospital_b"):
        engine_define(engine_name="mean-aeration", kind="onnx", actor=Actor.system("test"), definition=definition)
    stored = store_chest_phantom(platform, "hospital_b", "radiologist")
    response = platform.http("hospital_b", "radiologist").post(
        JOBS, json={"engine_name": "mean-aeration", "study_instance_uid": stored.study_instance_uid})
    job = wait_for_job(platform, "hospital_b", response.json()["id"])

    in_process = RegisteredEngine(descriptor=descriptor_from_definition("mean-aeration", "onnx", definition),
                                  kind="onnx", enabled=True, timeout_seconds=60, definition=definition)
    expected = in_process.build().run(volume_from_datasets(stored.datasets)).summary["scores"]["aerated"]
    assert (job.state, job.engine_version) == (JobState.SUCCEEDED, "2.0")
    assert job.summary["scores"]["aerated"] == pytest.approx(expected, abs=1e-6)
    assert job.summary["triage"]["text"] == "1 finding"
    assert job.result_series_instance_uids == []
    assert series_modalities(platform, "hospital_b", "radiologist", stored.study_instance_uid) == ["CT"]


def test_a_job_whose_worker_was_lost_mid_run_is_run_again_and_frees_the_clinics_place(platform, workers):
    """A pool process killed mid-job acknowledges its message: the job stays `running` and, on the
    shared queue, holds the clinic's only in-flight place. The periodic sweep sends it again once
    its attempt has outlived the engine's time-out; it runs, and the job waiting behind it runs too."""
    from apps.ai.services import lost_attempt_grace_seconds

    stored = store_chest_phantom(platform, "clinic_c", "technologist")
    waiting_study = store_chest_phantom(platform, "clinic_c", "technologist")
    with platform.schema("clinic_c"):
        timeout = engine_registered(NODULE_ENGINE).timeout_seconds
        version = engine_registered(NODULE_ENGINE).descriptor.version
        abandoned = timezone.now() - timedelta(seconds=timeout + lost_attempt_grace_seconds() + 30)
        lost = AIJob.objects.create(engine_name=NODULE_ENGINE, engine_version=version, state=JobState.RUNNING,
                                    study_instance_uid=stored.study_instance_uid, attempts=1,
                                    started_at=abandoned, dispatched_at=abandoned)
    behind = start(platform, "clinic_c", "technologist", waiting_study.study_instance_uid)
    assert behind.status_code == 201, behind.text
    with platform.schema():
        assert ai_unclaimed_jobs_resend() >= 1
    rerun = wait_for_job(platform, "clinic_c", str(lost.pk))
    waited = wait_for_job(platform, "clinic_c", behind.json()["id"])
    assert (rerun.state, rerun.attempts) == (JobState.SUCCEEDED, 2)
    assert waited.state == JobState.SUCCEEDED
    with platform.schema("clinic_c"):
        resend = AuditEvent.objects.get(action="ai.job_resend", object_id=str(lost.pk))
    assert resend.detail["attempts"] == 1


def test_a_job_within_its_time_out_is_left_running_by_the_sweep(platform):
    from apps.ai.services import jobs_resend_lost_attempts

    with platform.schema("clinic_c"):
        version = engine_registered(NODULE_ENGINE).descriptor.version
        running = AIJob.objects.create(engine_name=NODULE_ENGINE, engine_version=version, state=JobState.RUNNING,
                                       study_instance_uid="1.2.826.0.1.3680043.8.498.777", attempts=1,
                                       started_at=timezone.now(), dispatched_at=timezone.now())
        try:
            assert jobs_resend_lost_attempts() == 0
            assert not AuditEvent.objects.filter(action="ai.job_resend", object_id=str(running.pk)).exists()
        finally:
            running.delete()
