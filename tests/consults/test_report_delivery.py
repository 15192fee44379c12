"""Delivery of a signed report to the clinic when the study is unusual or delivery fails: a study
without StudyID is delivered; a delivery that cannot succeed is recorded with its reason on the
consult, audited on both sides, and a coordinator asks for it again once the cause is fixed."""

from __future__ import annotations

import io

import pydicom
import pytest
from django.db import OperationalError

from apps.archive.models import Instance
from apps.audit.models import AuditEvent
from apps.consults import delivery
from apps.consults.tasks import DELIVERY_MAX_RETRIES, consult_deliver_task
from apps.storage.tenant_storage import storage_for
from tests.consults.support import act, consult_in_reading, consult_state, wait_for_state, write_report
from tests.consults.test_clinic_pages import PASSWORD, _csrf, _signed_in
from tests.factories.dicom_factory import to_part10_bytes
from tests.support.dicomweb import Study, ct_study, stow
from tests.support.platform import TenantHttp, wait_until


def _study_without_study_id() -> Study:
    study = ct_study(2, size=32)
    for dataset in study.datasets:
        del dataset.StudyID
    return Study(study.study_instance_uid, study.patient_id, [to_part10_bytes(d) for d in study.datasets],
                 study.datasets)


def _stored(platform, study: Study) -> Study:
    response = stow(platform.http("clinic_a", "technologist"), study.files)
    assert response.status_code == 200, response.text
    return study


def _sign(platform, consult_id: str) -> None:
    assert write_report(platform, consult_id).status_code == 200
    signed = act(platform, "hospital_b", "radiologist", consult_id, "sign")
    assert signed.status_code == 200, signed.text


def _object_keys(platform, study: Study) -> list[str]:
    with platform.schema("clinic_a"):
        return list(Instance.objects.filter(study__study_instance_uid=study.study_instance_uid)
                    .order_by("id").values_list("object_key", flat=True))


def _audit_actions(platform, tenant_key: str, consult_id: str) -> list[str]:
    with platform.schema(tenant_key):
        return list(AuditEvent.objects.filter(object_id=consult_id).order_by("id").values_list("action", flat=True))


def _wait_for_failure(platform, consult_id: str) -> dict:
    return wait_until(lambda: (body := consult_state(platform, consult_id)).get("delivery_failure") and body,
                      timeout=90, message=f"consult {consult_id} to record a failed delivery")


@pytest.fixture(scope="module")
def failed_delivery(platform, workers):
    """A signed consult whose study's stored objects are unreadable when the delivery runs."""
    study = _stored(platform, ct_study(2, size=32))
    consult_id = consult_in_reading(platform, study)
    storage = storage_for(platform.tenants["clinic_a"])
    originals = {key: storage.get_bytes(key) for key in _object_keys(platform, study)}
    for key in originals:
        storage.delete(key)
    _sign(platform, consult_id)
    return consult_id, _wait_for_failure(platform, consult_id), originals


def test_a_study_without_study_id_is_delivered_with_an_empty_study_id_in_the_sr(platform, workers):
    study = _stored(platform, _study_without_study_id())
    consult_id = consult_in_reading(platform, study)
    _sign(platform, consult_id)

    final = wait_for_state(platform, consult_id, "delivered")

    assert final["delivery_failure"] is None
    with platform.schema("clinic_a"):
        instance = Instance.objects.get(sop_instance_uid=final["report_sr_sop_instance_uid"])
        sr = pydicom.dcmread(io.BytesIO(storage_for(platform.tenants["clinic_a"]).get_bytes(instance.object_key)))
    assert "StudyID" in sr
    assert sr.StudyID == ""
    assert sr.StudyInstanceUID == study.study_instance_uid


def test_a_failed_delivery_is_shown_on_the_consult_with_its_reason(platform, failed_delivery):
    consult_id, failed, _ = failed_delivery

    assert failed["state"] == "finalized"
    assert "missing" in failed["delivery_failure"]
    assert failed["delivery_failed_at"]
    hospital_view = consult_state(platform, consult_id, "hospital_b", "consult_coordinator")
    assert hospital_view["delivery_failure"] == failed["delivery_failure"]


def test_a_failed_delivery_is_audited_on_both_sides(platform, failed_delivery):
    consult_id, _, _ = failed_delivery

    assert "consult.delivery_failed" in _audit_actions(platform, "clinic_a", consult_id)
    assert "consult.delivery_failed" in _audit_actions(platform, "hospital_b", consult_id)


def test_the_clinic_page_tells_that_the_report_is_not_delivered_yet(platform, failed_delivery):
    consult_id, failed, _ = failed_delivery

    page = _signed_in(platform).get(f"/consults/{consult_id}")

    assert page.status_code == 200
    assert 'id="delivery-failure"' in page.text
    assert failed["delivery_failure"] in page.text


def test_the_coordinators_reading_page_shows_the_failure_and_offers_a_new_delivery(platform, failed_delivery):
    consult_id, failed, _ = failed_delivery
    browser = TenantHttp(platform.base_url, platform.domains["hospital_b"], None)
    login = browser.get("/accounts/login/")
    signed_in = browser.post("/accounts/login/", data={
        "csrfmiddlewaretoken": _csrf(login), "username": "consult_coordinator-user", "password": PASSWORD,
        "next": f"/consults/{consult_id}",
    })

    assert signed_in.status_code == 200
    assert 'id="delivery-failure"' in signed_in.text
    assert failed["delivery_failure"] in signed_in.text
    assert 'id="retry-delivery"' in signed_in.text


def test_a_transient_fault_is_retried_by_the_delivery_task(platform, monkeypatch):
    attempts = []

    def flaky(*, route_id):
        attempts.append(route_id)
        if len(attempts) == 1:
            raise OperationalError("the database went away for a moment")
        return "delivered"

    monkeypatch.setattr(delivery, "consult_deliver", flaky)

    result = consult_deliver_task.apply(args=("a-route",))

    assert result.get() == "delivered"
    assert attempts == ["a-route", "a-route"]


def test_a_transient_fault_past_the_last_retry_is_recorded_as_a_failed_delivery(platform, failed_delivery,
                                                                                  monkeypatch):
    consult_id, _, _ = failed_delivery

    def still_down(*, route_id):
        raise OperationalError("the database is still away")

    monkeypatch.setattr(delivery, "consult_deliver", still_down)
    with platform.schema("clinic_a"):
        outcome = consult_deliver_task.apply(args=(consult_id,), retries=DELIVERY_MAX_RETRIES).get()

    assert outcome == "failed"
    failure = consult_state(platform, consult_id)["delivery_failure"]
    assert failure == f"Still failing after {DELIVERY_MAX_RETRIES + 1} attempts: OperationalError: the database is still away"


def test_a_radiologist_may_not_ask_for_a_new_delivery(platform, failed_delivery):
    consult_id, _, _ = failed_delivery

    response = act(platform, "hospital_b", "radiologist", consult_id, "retry-delivery")

    assert response.status_code == 403
    assert response.json()["code"]


def test_a_delivered_consult_has_no_delivery_to_retry(platform, workers):
    study = _stored(platform, ct_study(1, size=32))
    consult_id = consult_in_reading(platform, study)
    _sign(platform, consult_id)
    wait_for_state(platform, consult_id, "delivered")

    response = act(platform, "hospital_b", "consult_coordinator", consult_id, "retry-delivery")

    assert response.status_code == 409
    assert response.json()["code"] == "invalid_transition"


def test_the_coordinator_asks_again_and_the_report_is_delivered_once_the_cause_is_fixed(platform, failed_delivery):
    consult_id, _, originals = failed_delivery
    storage = storage_for(platform.tenants["clinic_a"])
    for key, data in originals.items():
        storage.put_bytes(key, data)

    retried = act(platform, "hospital_b", "consult_coordinator", consult_id, "retry-delivery")

    assert retried.status_code == 200, retried.text
    assert retried.json()["delivery_failure"] is None
    final = wait_for_state(platform, consult_id, "delivered")
    assert final["report_sr_sop_instance_uid"]
    assert "consult.delivery_retry" in _audit_actions(platform, "hospital_b", consult_id)
    assert "consult.delivery_retry" in _audit_actions(platform, "clinic_a", consult_id)
