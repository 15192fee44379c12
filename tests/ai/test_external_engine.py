"""The external engine adapter against a small vendor engine server started by the test: the
platform posts the job, the engine reads the study over DICOMweb with the job's token, STOWs its
SEG and SR back and calls back; time-outs, failures and an engine that is down end cleanly."""

from __future__ import annotations

import io
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pydicom
import pytest
import requests
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from apps.ai.engines.base import volume_from_datasets
from apps.ai.engines.pulmonary_nodule import PulmonaryNoduleDetector
from apps.ai.models import JobState
from apps.ai.results.dicom_results import (
    ResultCreator,
    build_nodule_measurement_report,
    build_nodule_segmentation,
    to_bytes,
)
from apps.ai.services import engine_define
from apps.audit.models import AuditEvent
from apps.audit.services import Actor
from tests.ai.jobs_support import JOBS, job_of, series_modalities, store_chest_phantom, wait_for_job
from tests.support.dicomweb import multipart_body, parse_multipart
from tests.support.platform import wait_until

VENDOR = "Vendor Imaging AI"


@dataclass
class VendorEngine:
    """A vendor's engine: accepts jobs, and (per ``behaviour``) analyses, stores and calls back."""

    platform_base_url: str
    # succeed | fail_after_partial | silent | store_then_silent | store_then_wait (calls back once
    # `proceed` is set) | fail_naming_originals | succeed_naming_originals (name the CT series too)
    # | fail_after_adding_to_originals (store one more slice into the CT series, then name it)
    behaviour: str = "succeed"
    jobs: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    callbacks: list[requests.Response] = field(default_factory=list)
    stored: threading.Event = field(default_factory=threading.Event)
    proceed: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)

    def local(self, url: str) -> tuple[str, dict[str, str]]:
        """The platform URL as this machine reaches it: the live server, with the tenant's Host."""
        parts = urlsplit(url)
        return self.platform_base_url + parts.path, {"Host": parts.hostname or ""}

    def get(self, url: str, token: str, **headers: str) -> requests.Response:
        target, host = self.local(url)
        return requests.get(target, headers={**host, "Authorization": f"Bearer {token}", **headers}, timeout=60)

    def post(self, url: str, token: str, **options: Any) -> requests.Response:
        target, host = self.local(url)
        headers = {**host, "Authorization": f"Bearer {token}", **options.pop("headers", {})}
        return requests.post(target, headers=headers, timeout=60, **options)

    def work(self, job: dict[str, Any]) -> None:
        try:
            token = job["access_token"]
            series = self.get(job["dicomweb_url"] + "/series", token, Accept="application/dicom+json").json()
            ct_series = next(item["0020000E"]["Value"][0] for item in series if item["00080060"]["Value"][0] == "CT")
            retrieved = self.get(f"{job['dicomweb_url']}/series/{ct_series}", token,
                                 Accept='multipart/related; type="application/dicom"')
            datasets = [pydicom.dcmread(io.BytesIO(content)) for _, content in parse_multipart(retrieved)]
            result = PulmonaryNoduleDetector().run(volume_from_datasets(datasets))
            creator = ResultCreator(algorithm_name="vendor-nodules", algorithm_version="7.1", manufacturer=VENDOR,
                                    manufacturer_model_name="Vendor Nodule CAD")
            segmentation = build_nodule_segmentation(datasets, result.findings, creator=creator, series_number=700)
            report = build_nodule_measurement_report(datasets, segmentation, result.findings, creator=creator,
                                                     series_number=701)
            objects = [segmentation] if self.behaviour in ("fail_after_partial", "store_then_silent",
                                                           "store_then_wait", "fail_naming_originals") \
                else [segmentation, report]
            if self.behaviour == "fail_after_adding_to_originals":
                objects = [slice_copy_in_the_same_series(datasets[0])]
            body, content_type = multipart_body([to_bytes(item) for item in objects])
            stored = self.post(job["dicomweb_url"], token, data=body,
                               headers={"Content-Type": content_type, "Accept": "application/dicom+json"})
            if stored.status_code != 200:
                self.errors.append(f"STOW answered {stored.status_code}: {stored.text[:300]}")
            series_uids = list(dict.fromkeys(str(item.SeriesInstanceUID) for item in objects))
            self.stored.set()
            if self.behaviour == "store_then_silent":
                return
            if self.behaviour == "store_then_wait" and not self.proceed.wait(60):
                self.errors.append("never told to call back")
                return
            if self.behaviour.endswith("_naming_originals") or self.behaviour.endswith("_adding_to_originals"):
                series_uids.append(ct_series)
            if self.behaviour.startswith("fail"):
                outcome = {"status": "failed", "error": "GPU out of memory", "result_series_instance_uids": series_uids}
            else:
                outcome = {"status": "succeeded", "result_series_instance_uids": series_uids,
                           "summary": {"finding_count": len(result.findings), "finding_noun": "nodule",
                                       "largest_mm": result.summary["largest_long_axis_mm"]}}
            self.callbacks.append(self.post(job["callback_url"], job["callback_token"], json=outcome))
        except Exception as error:  # noqa: BLE001 - the test reports whatever broke in the engine thread
            self.errors.append(repr(error))
        finally:
            self.done.set()


def slice_copy_in_the_same_series(source: Dataset) -> Dataset:
    """One more instance of the source's series (a new SOP Instance UID, everything else the same)."""
    copy = pydicom.dcmread(io.BytesIO(to_bytes(source)))
    copy.SOPInstanceUID = generate_uid()
    copy.file_meta.MediaStorageSOPInstanceUID = copy.SOPInstanceUID
    return copy


@pytest.fixture
def vendor(platform) -> Iterator[tuple[VendorEngine, str]]:
    engine = VendorEngine(platform_base_url=platform.base_url)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            job = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            engine.jobs.append(job)
            self.send_response(202)
            self.end_headers()
            if engine.behaviour != "silent":
                threading.Thread(target=engine.work, args=(job,), daemon=True).start()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield engine, f"http://127.0.0.1:{server.server_address[1]}/jobs"
    server.shutdown()
    server.server_close()


def define_vendor_engine(platform, name: str, url: str, *, timeout_seconds: float = 120.0) -> None:
    with platform.schema("hospital_b"):
        engine_define(engine_name=name, kind="external", actor=Actor.system("test"), timeout_seconds=timeout_seconds,
                      definition={"version": "7.1", "vendor": VENDOR, "modalities": ["CT"], "minimum_slices": 20,
                                  "url": url})


def start(platform, engine_name: str, study_uid: str) -> str:
    response = platform.http("hospital_b", "radiologist").post(
        JOBS, json={"engine_name": engine_name, "study_instance_uid": study_uid})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_vendor_engine_reads_the_study_stores_seg_and_sr_and_calls_back(platform, workers, vendor):
    engine, url = vendor
    define_vendor_engine(platform, "vendor-nodules", url)
    stored = store_chest_phantom(platform, "hospital_b", "radiologist")
    job_id = start(platform, "vendor-nodules", stored.study_instance_uid)

    job = wait_for_job(platform, "hospital_b", job_id)
    assert engine.errors == []
    assert (job.state, job.progress) == (JobState.SUCCEEDED, 100)
    posted = engine.jobs[0]
    assert posted["dicomweb_url"] == f"https://{platform.host('hospital_b')}/dicomweb/studies/{stored.study_instance_uid}"
    assert posted["callback_url"].endswith(f"/api/v1/ai/jobs/{job_id}/callback/")
    assert len(job.result_series_instance_uids) == 2
    assert series_modalities(platform, "hospital_b", "radiologist", stored.study_instance_uid) == ["CT", "SEG", "SR"]
    assert job.summary["triage"]["finding_count"] == job.summary["finding_count"] > 0


def test_the_jobs_access_token_is_revoked_once_the_job_has_ended(platform, workers, vendor):
    engine, url = vendor
    define_vendor_engine(platform, "vendor-nodules", url)
    stored = store_chest_phantom(platform, "hospital_b", "radiologist")
    wait_for_job(platform, "hospital_b", start(platform, "vendor-nodules", stored.study_instance_uid))
    response = engine.get(engine.jobs[0]["dicomweb_url"] + "/series", engine.jobs[0]["access_token"],
                          Accept="application/dicom+json")
    assert response.status_code == 401


def test_an_engine_reporting_failure_fails_the_job_and_its_partial_series_are_removed(platform, workers, vendor):
    engine, url = vendor
    engine.behaviour = "fail_after_partial"
    define_vendor_engine(platform, "vendor-flaky", url)
    stored = store_chest_phantom(platform, "hospital_b", "radiologist")
    job = wait_for_job(platform, "hospital_b", start(platform, "vendor-flaky", stored.study_instance_uid))
    assert engine.errors == []
    assert (job.state, job.error_code, job.error_detail) == (JobState.FAILED, "engine_reported_failure",
                                                             "GPU out of memory")
    assert len(job.summary["removed_partial_series"]) == 1
    assert series_modalities(platform, "hospital_b", "radiologist", stored.study_instance_uid) == ["CT"]


def test_an_engine_that_never_calls_back_fails_the_job_at_its_time_out(platform, workers, vendor):
    engine, url = vendor
    engine.behaviour = "silent"
    define_vendor_engine(platform, "vendor-silent", url, timeout_seconds=2.0)
    stored = store_chest_phantom(platform, "hospital_b", "radiologist")
    job = wait_for_job(platform, "hospital_b", start(platform, "vendor-silent", stored.study_instance_uid),
                       timeout=60)
    assert (job.state, job.error_code) == (JobState.FAILED, "timeout")
    late = engine.post(engine.jobs[0]["callback_url"], engine.jobs[0]["callback_token"],
                       json={"status": "succeeded", "result_series_instance_uids": []})
    assert (late.status_code, late.json()["code"]) == (409, "job_finished")


def test_series_an_engine_stored_before_timing_out_are_removed(platform, workers, vendor):
    engine, url = vendor
    engine.behaviour = "store_then_silent"
    define_vendor_engine(platform, "vendor-half", url, timeout_seconds=40.0)
    stored = store_chest_phantom(platform, "hospital_b", "radiologist")
    job_id = start(platform, "vendor-half", stored.study_instance_uid)
    assert engine.done.wait(60), "the engine never finished storing"
    assert not engine.errors, engine.errors
    assert series_modalities(platform, "hospital_b", "radiologist", stored.study_instance_uid) == ["CT", "SEG"]
    job = wait_for_job(platform, "hospital_b", job_id, timeout=90)
    assert (job.state, job.error_code) == (JobState.FAILED, "timeout")
    assert "removed 1 series" in job.error_detail
    assert series_modalities(platform, "hospital_b", "radiologist", stored.study_instance_uid) == ["CT"]

def test_an_engine_that_is_down_is_retried_and_then_fails_as_unreachable(platform, workers):
    define_vendor_engine(platform, "vendor-down", f"http://127.0.0.1:{closed_port()}/jobs")
    stored = store_chest_phantom(platform, "hospital_b", "radiologist")
    job = wait_for_job(platform, "hospital_b", start(platform, "vendor-down", stored.study_instance_uid), timeout=90)
    assert (job.state, job.error_code, job.attempts) == (JobState.FAILED, "engine_unreachable", 3)
    assert series_modalities(platform, "hospital_b", "radiologist", stored.study_instance_uid) == ["CT"]


def test_a_forged_callback_is_refused_and_cancelling_revokes_the_engines_token(platform, workers, vendor):
    engine, url = vendor
    engine.behaviour = "silent"
    define_vendor_engine(platform, "vendor-silent", url, timeout_seconds=60.0)
    stored = store_chest_phantom(platform, "hospital_b", "radiologist")
    job_id = start(platform, "vendor-silent", stored.study_instance_uid)
    job = wait_until(lambda: engine.jobs and engine.jobs[0], timeout=60, message="the job posted to the vendor")
    forged = engine.post(job["callback_url"], "not-the-callback-token", json={"status": "failed"})
    assert (forged.status_code, forged.json()["code"]) == (403, "callback_refused")
    cancelled = platform.http("hospital_b", "radiologist").post(f"{JOBS}{job_id}/cancel/")
    assert cancelled.json()["state"] == "cancelled"
    revoked = engine.get(job["dicomweb_url"] + "/series", job["access_token"], Accept="application/dicom+json")
    assert revoked.status_code == 401


def audit_details(platform, job_id: str, action: str) -> list[dict[str, Any]]:
    with platform.schema("hospital_b"):
        return list(AuditEvent.objects.filter(action=action, object_type="ai_job", object_id=job_id)
                    .values_list("detail", flat=True))


@pytest.mark.parametrize("behaviour", ["fail_naming_originals", "succeed_naming_originals",
                                       "fail_after_adding_to_originals"])
def test_a_callback_naming_the_patients_original_series_is_refused_audited_and_removes_nothing(
    platform, workers, vendor, behaviour,
):
    engine, url = vendor
    engine.behaviour = behaviour
    define_vendor_engine(platform, "vendor-greedy", url, timeout_seconds=30.0)
    stored = store_chest_phantom(platform, "hospital_b", "radiologist")
    job_id = start(platform, "vendor-greedy", stored.study_instance_uid)
    assert engine.done.wait(60), "the engine never called back"
    assert engine.errors == []
    refused = engine.callbacks[0]
    assert (refused.status_code, refused.json()["code"]) == (422, "series_not_stored_by_engine")
    assert stored.series_instance_uid in refused.json()["detail"]
    modalities = {"fail_naming_originals": ["CT", "SEG"], "succeed_naming_originals": ["CT", "SEG", "SR"],
                  "fail_after_adding_to_originals": ["CT"]}[behaviour]
    assert series_modalities(platform, "hospital_b", "radiologist", stored.study_instance_uid) == modalities
    assert job_of(platform, "hospital_b", job_id).state == JobState.RUNNING
    [refusal] = audit_details(platform, job_id, "ai.job_callback_refuse")
    assert refusal["series_not_stored_by_engine"] == [stored.series_instance_uid]


def test_a_callback_after_the_job_was_cancelled_removes_what_the_engine_stored_and_answers_409(
    platform, workers, vendor,
):
    engine, url = vendor
    engine.behaviour = "store_then_wait"
    define_vendor_engine(platform, "vendor-slow", url, timeout_seconds=60.0)
    stored = store_chest_phantom(platform, "hospital_b", "radiologist")
    job_id = start(platform, "vendor-slow", stored.study_instance_uid)
    assert engine.stored.wait(60), "the engine never stored its result"
    assert series_modalities(platform, "hospital_b", "radiologist", stored.study_instance_uid) == ["CT", "SEG"]
    cancelled = platform.http("hospital_b", "radiologist").post(f"{JOBS}{job_id}/cancel/")
    assert cancelled.json()["state"] == "cancelled"
    engine.proceed.set()
    assert engine.done.wait(60), "the engine never called back"
    assert engine.errors == []
    late = engine.callbacks[0]
    assert (late.status_code, late.json()["code"]) == (409, "job_finished")
    assert series_modalities(platform, "hospital_b", "radiologist", stored.study_instance_uid) == ["CT"]
    [record] = audit_details(platform, job_id, "ai.job_callback_late")
    assert (record["state"], len(record["removed_series"])) == ("cancelled", 1)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_malformed_callback_bodies_get_json_4xx_and_change_nothing(platform, workers, vendor):
    engine, url = vendor
    engine.behaviour = "silent"
    define_vendor_engine(platform, "vendor-silent", url, timeout_seconds=60.0)
    stored = store_chest_phantom(platform, "hospital_b", "radiologist")
    job_id = start(platform, "vendor-silent", stored.study_instance_uid)
    job = wait_until(lambda: engine.jobs and engine.jobs[0], timeout=60, message="the job posted to the vendor")
    as_json = {"Content-Type": "application/json"}

    def answer(token: str, body: str) -> tuple[int, str]:
        response = engine.post(job["callback_url"], token, data=body.encode(), headers=as_json)
        assert response.headers["Content-Type"] == "application/json", response.text[:200]
        return response.status_code, response.json()["code"]

    assert answer("not-the-callback-token", nested(100_000)) == (403, "callback_refused")
    assert answer(job["callback_token"], nested(100_000)) == (400, "parse_error")
    deep_summary = '{"status": "succeeded", "summary": {"a": ' + nested(40) + "}}"
    assert answer(job["callback_token"], deep_summary) == (400, "parse_error")
    assert answer(job["callback_token"], " " * (300 * 1024) + "{}") == (413, "payload_too_large")
    odd_summary = '{"status": "succeeded", "summary": {"largest_mm": "big"}}'
    assert answer(job["callback_token"], odd_summary) == (422, "invalid_summary")
    assert job_of(platform, "hospital_b", job_id).state == JobState.RUNNING
    platform.http("hospital_b", "radiologist").post(f"{JOBS}{job_id}/cancel/")
