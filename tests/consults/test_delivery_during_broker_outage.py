"""A report signed while the broker is down: the signature is kept, the delivery waits in the task
outbox, and the clinic receives the report once the broker is back. Real processes: a private
redis-server the test stops, with a web server, worker and outbox relay of their own on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.consults.support import (
    act,
    clinic_study,
    consult_in_reading,
    consult_state,
    wait_for_state,
    write_report,
)
from tests.support.broker_outage import BrokerOutage, outbox_rows

DELIVER_TASK = "apps.consults.tasks.consult_deliver_task"


@dataclass
class SignedDuringOutage:
    consult_id: str
    signed: Any
    state_while_down: str
    deliver_rows_while_down: list[Any]


def deliver_rows(outage: BrokerOutage, consult_id: str) -> list[Any]:
    return [row for row in outbox_rows(outage.platform, task_name=DELIVER_TASK, tenant_key="clinic_a")
            if row.args == [consult_id]]


@pytest.fixture(scope="module")
def signed_during_outage(broker_outage: BrokerOutage) -> SignedDuringOutage:
    platform = broker_outage.platform
    study = clinic_study(platform)
    consult_id = consult_in_reading(platform, study)
    assert write_report(platform, consult_id).status_code == 200
    with broker_outage.broker_down():
        signed = act(platform, "hospital_b", "radiologist", consult_id, "sign")
        state = consult_state(platform, consult_id)["state"]
        rows = deliver_rows(broker_outage, consult_id)
    return SignedDuringOutage(consult_id, signed, state, rows)


def test_signing_while_the_broker_is_down_keeps_the_signature(signed_during_outage):
    assert signed_during_outage.signed.status_code == 200, signed_during_outage.signed.text
    assert signed_during_outage.signed.json()["reports"][-1]["signed_by"] == "radiologist-user"


def test_the_delivery_of_a_report_signed_while_the_broker_is_down_waits_in_the_outbox(signed_during_outage):
    assert signed_during_outage.state_while_down == "finalized"
    [row] = signed_during_outage.deliver_rows_while_down
    assert row.sent_at is None


def test_a_report_signed_while_the_broker_was_down_is_delivered_once_it_is_back(broker_outage, signed_during_outage):
    final = wait_for_state(broker_outage.platform, signed_during_outage.consult_id, "delivered", timeout=120)
    assert final["report"]["findings"] == "A 9 mm solid nodule in the right upper lobe."
    assert final["report_sr_sop_instance_uid"]
    [row] = deliver_rows(broker_outage, signed_during_outage.consult_id)
    assert row.sent_at is not None
