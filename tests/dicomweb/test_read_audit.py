"""The audit rule of reads (apps.archive.services.reads): a read is recorded, once, as soon as the
archive found what the request names and can answer it. A conditional GET answered 304 Not Modified
is recorded like a 200 (the client reached the data and shows the copy it holds); a request that
finds nothing (404) or whose representation cannot be made (406) is not."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.archive.services import reads
from apps.audit.models import AuditEvent
from apps.audit.services import Actor
from tests.support.dicomweb import ct_study, instance_path, stow

ORIGINAL = "application/dicom; transfer-syntax=*"


@pytest.fixture
def stored(platform):
    """A fresh single-instance study per test, so its events are this test's alone."""
    study = ct_study(1)
    assert stow(platform.http("clinic_a", "technologist"), study.files).status_code == 200
    return study




def _get(platform, path: str, **headers):
    return platform.http("clinic_a", "referring_physician").get(path, headers=headers)


def _events(platform, action: str, object_id: str) -> list[AuditEvent]:
    with platform.schema("clinic_a"):
        return list(AuditEvent.objects.filter(action=action, object_id=object_id).order_by("id"))


def test_a_wado_retrieve_writes_one_event_naming_the_instance_and_the_representation(platform, stored):
    sop = stored.datasets[0].SOPInstanceUID
    answer = _get(platform, instance_path(stored), Accept=ORIGINAL)
    assert answer.status_code == 200
    [event] = _events(platform, "dicomweb.retrieve", sop)
    assert (event.actor_type, event.actor_name, event.object_type) == ("user", "referring_physician-user", "instance")
    assert event.detail == {
        "study": stored.study_instance_uid, "series": stored.datasets[0].SeriesInstanceUID, "instance": sop,
        "instances": 1, "container": "single", "transfer_syntax": "*",
    }


def test_a_wado_retrieve_answered_304_not_modified_is_recorded_like_a_200(platform, stored):
    sop = stored.datasets[0].SOPInstanceUID
    first = _get(platform, instance_path(stored), Accept=ORIGINAL)
    again = _get(platform, instance_path(stored), Accept=ORIGINAL, **{"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    assert len(_events(platform, "dicomweb.retrieve", sop)) == 2


def test_metadata_answered_304_not_modified_is_recorded_like_a_200(platform, stored):
    path = f"/dicomweb/studies/{stored.study_instance_uid}/metadata"
    first = _get(platform, path)
    again = _get(platform, path, **{"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    events = _events(platform, "dicomweb.metadata", stored.study_instance_uid)
    assert [event.detail["instances"] for event in events] == [1, 1]


def test_a_rendered_image_answered_304_not_modified_is_recorded_like_a_200(platform, stored):
    path = f"{instance_path(stored)}/rendered"
    first = _get(platform, path, Accept="image/png")
    again = _get(platform, path, Accept="image/png", **{"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    assert len(_events(platform, "dicomweb.rendered", stored.datasets[0].SOPInstanceUID)) == 2


def test_a_thumbnail_answered_304_not_modified_is_recorded_like_a_200(platform, stored):
    path = f"/dicomweb/studies/{stored.study_instance_uid}/thumbnail"
    first = _get(platform, path, Accept="image/jpeg")
    again = _get(platform, path, Accept="image/jpeg", **{"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    assert len(_events(platform, "dicomweb.thumbnail", stored.study_instance_uid)) == 2


def test_a_read_that_finds_nothing_is_not_recorded(platform, stored):
    dataset = stored.datasets[0]
    missing = "1.2.826.0.1.3680043.8.498.424242424242"
    path = f"/dicomweb/studies/{stored.study_instance_uid}/series/{dataset.SeriesInstanceUID}/instances/{missing}"
    assert _get(platform, path, Accept=ORIGINAL).status_code == 404
    assert _get(platform, f"{path}/metadata").status_code == 404
    with platform.schema("clinic_a"):
        assert not AuditEvent.objects.filter(object_id=missing).exists()


def test_a_representation_that_cannot_be_made_is_not_recorded(platform, stored):
    answer = _get(platform, f"/dicomweb/studies/{stored.study_instance_uid}/metadata", Accept="image/png")
    assert answer.status_code == 406
    assert _events(platform, "dicomweb.metadata", stored.study_instance_uid) == []


def test_a_metadata_read_costs_one_select_and_the_events_insert(platform, stored):
    with platform.schema("clinic_a"), CaptureQueriesContext(connection) as queries:
        texts = reads.metadata_read(actor=Actor.system(), study_instance_uid=stored.study_instance_uid)
    assert len(texts) == 1
    # django-tenants sets the search path before the first query in a schema: not the read's cost.
    statements = [query["sql"].split()[0] for query in queries.captured_queries]
    assert [statement for statement in statements if statement != "SET"] == ["SELECT", "INSERT"]
