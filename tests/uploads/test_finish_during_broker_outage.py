"""An upload finished while the broker is down: "finish" answers 202, the ingest waits in the task
outbox, and once the broker is back the session completes and every instance is retrievable byte
for byte. Real processes: a private redis-server the test stops, with a web server, worker and
outbox relay of their own on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.broker_outage import BrokerOutage, originals_by_sop_instance_uid, outbox_rows
from tests.support.dicomweb import Study, ct_study
from tests.support.platform import wait_until
from tests.uploads.test_upload_sessions import open_session, send_file, zip_of

PROCESS_TASK = "apps.uploads.tasks.upload_session_process"


@dataclass
class FinishedDuringOutage:
    study: Study
    session_id: str
    finish: Any
    status_while_down: str
    process_rows_while_down: list[Any]


def process_rows(outage: BrokerOutage, session_id: str) -> list[Any]:
    rows = outbox_rows(outage.platform, task_name=PROCESS_TASK, tenant_key="clinic_a")
    return [row for row in rows if row.args == [session_id]]


@pytest.fixture(scope="module")
def finished_during_outage(broker_outage: BrokerOutage) -> FinishedDuringOutage:
    http = broker_outage.platform.http("clinic_a", "technologist")
    study = ct_study(3)
    session = open_session(http)
    assert send_file(http, session["id"], "first.dcm", study.files[0]).status_code == 201
    archive = zip_of({f"rest/{index}.dcm": data for index, data in enumerate(study.files[1:], start=1)})
    assert send_file(http, session["id"], "rest.zip", archive, "application/zip").status_code == 201
    with broker_outage.broker_down():
        finish = http.post(f"/api/v1/uploads/{session['id']}/finish/")
        status = http.get(f"/api/v1/uploads/{session['id']}/").json()["status"]
        rows = process_rows(broker_outage, session["id"])
    return FinishedDuringOutage(study, session["id"], finish, status, rows)


def test_finishing_an_upload_while_the_broker_is_down_answers_202(finished_during_outage):
    assert finished_during_outage.finish.status_code == 202, finished_during_outage.finish.text
    assert finished_during_outage.status_while_down == "processing"


def test_the_ingest_of_an_upload_finished_while_the_broker_is_down_waits_in_the_outbox(finished_during_outage):
    [row] = finished_during_outage.process_rows_while_down
    assert (row.sent_at, row.queue) == (None, "ingest")


def test_an_upload_finished_while_the_broker_was_down_completes_once_it_is_back(broker_outage, finished_during_outage):
    http = broker_outage.platform.http("clinic_a", "technologist")
    session_id = finished_during_outage.session_id

    def completed() -> Any:
        body = http.get(f"/api/v1/uploads/{session_id}/").json()
        return body if body["status"] == "completed" else None

    done = wait_until(completed, timeout=120, message="the upload finished during the outage to complete")
    assert (done["items_stored"], done["items_duplicate"], done["items_failed"]) == (3, 0, 0)
    study = finished_during_outage.study
    assert originals_by_sop_instance_uid(http, study.datasets) == dict(
        zip(study.sop_instance_uids, study.files, strict=True))
