"""A STOW-RS request that creates a new series while the broker is down: the instances are kept,
answered as stored and retrievable byte for byte, and the work they queued runs once the broker is
back (through the task outbox's relay). Real processes: a private redis-server that the test stops,
and a web server, worker and relay of their own on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from apps.archive.keys import derived_prefix
from apps.archive.models import Instance, Study
from apps.storage.tenant_storage import storage_for
from tests.support.broker_outage import BrokerOutage, originals_by_sop_instance_uid, outbox_rows
from tests.support.dicomweb import Study as GeneratedStudy
from tests.support.dicomweb import ct_study, failures, referenced_uids, stow
from tests.support.platform import wait_until

THUMBNAIL_TASK = "apps.archive.tasks.study_derivatives_warm"


@dataclass
class StoredDuringOutage:
    study: GeneratedStudy
    response: Any
    retrieved_while_down: dict[str, bytes]
    thumbnail_rows_while_down: list[Any]


@pytest.fixture(scope="module")
def stored_during_outage(broker_outage: BrokerOutage) -> StoredDuringOutage:
    platform = broker_outage.platform
    http = platform.http("clinic_a", "technologist")
    study = ct_study(3)
    with broker_outage.broker_down():
        response = stow(http, study.files)
        retrieved = originals_by_sop_instance_uid(http, study.datasets)
        rows = thumbnail_rows(broker_outage, study)
    return StoredDuringOutage(study, response, retrieved, rows)


def study_pk(outage: BrokerOutage, study: GeneratedStudy) -> int | None:
    with outage.platform.schema("clinic_a"):
        return Study.objects.filter(study_instance_uid=study.study_instance_uid).values_list("pk", flat=True).first()


def thumbnail_rows(outage: BrokerOutage, study: GeneratedStudy) -> list[Any]:
    pk = study_pk(outage, study)
    rows = outbox_rows(outage.platform, task_name=THUMBNAIL_TASK, tenant_key="clinic_a")
    return [row for row in rows if row.args and row.args[0] == pk]


def test_a_stow_of_a_new_series_while_the_broker_is_down_answers_200_for_every_instance(stored_during_outage):
    response = stored_during_outage.response
    assert response.status_code == 200, response.text
    assert referenced_uids(response) == stored_during_outage.study.sop_instance_uids
    assert failures(response) == []


def test_instances_stored_while_the_broker_is_down_are_retrievable_byte_identical(stored_during_outage):
    study = stored_during_outage.study
    assert stored_during_outage.retrieved_while_down == dict(zip(study.sop_instance_uids, study.files, strict=True))


def test_the_objects_of_instances_stored_while_the_broker_is_down_stay_in_storage(broker_outage, stored_during_outage):
    study = stored_during_outage.study
    storage = storage_for(broker_outage.platform.tenants["clinic_a"])
    with broker_outage.platform.schema("clinic_a"):
        keys = dict(Instance.objects.filter(sop_instance_uid__in=study.sop_instance_uids)
                    .values_list("sop_instance_uid", "object_key"))
    assert sorted(keys) == sorted(study.sop_instance_uids)
    assert {uid: storage.get_bytes(key) for uid, key in keys.items()} == dict(
        zip(study.sop_instance_uids, study.files, strict=True))


def test_the_thumbnail_task_waits_in_the_outbox_while_the_broker_is_down(stored_during_outage):
    [row] = stored_during_outage.thumbnail_rows_while_down
    assert row.sent_at is None
    assert row.attempts >= 1
    assert "Error" in row.last_error


def test_the_thumbnail_work_queued_while_the_broker_was_down_runs_once_it_is_back(broker_outage, stored_during_outage):
    study = stored_during_outage.study
    with broker_outage.platform.schema("clinic_a"):
        middle = Instance.objects.get(sop_instance_uid=study.sop_instance_uids[1])
    storage = storage_for(broker_outage.platform.tenants["clinic_a"])
    wait_until(lambda: storage.exists(derived_prefix(middle.object_key) + "thumbnail/128.jpg"), timeout=90,
               message="the thumbnail of the study stored while the broker was down")
    [row] = thumbnail_rows(broker_outage, study)
    assert row.sent_at is not None


def test_instances_stored_while_the_broker_was_down_are_still_byte_identical_after_it_is_back(
    broker_outage, stored_during_outage,
):
    study = stored_during_outage.study
    http = broker_outage.platform.http("clinic_a", "technologist")
    assert originals_by_sop_instance_uid(http, study.datasets) == dict(zip(study.sop_instance_uids, study.files,
                                                                           strict=True))
