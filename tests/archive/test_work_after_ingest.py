"""The work that follows an ingest, on real Celery workers: thumbnails are rendered into the cache,
and a study that stops receiving instances is marked stable once and announced."""

from __future__ import annotations

import time

from apps.archive import retrieval, selectors
from apps.archive.keys import derived_prefix
from apps.archive.models import Instance, Study
from apps.archive.tasks import stable_studies_dispatch, studies_mark_stable
from apps.audit.models import AuditEvent
from apps.storage.tenant_storage import storage_for
from tenants.deployment import WorkKind
from tenants.queues import enqueue
from tests.support.dicomweb import ct_study, stow
from tests.support.platform import wait_until


def study_row(platform, tenant_key: str, study_uid: str) -> Study:
    with platform.schema(tenant_key):
        return Study.objects.get(study_instance_uid=study_uid, deleted_at__isnull=True)


def test_a_stored_study_gets_its_thumbnail_rendered_by_a_worker(platform, workers):
    study = ct_study(3)
    assert stow(platform.http("clinic_a", "technologist"), study.files).status_code == 200
    with platform.schema("clinic_a"):
        middle = Instance.objects.get(sop_instance_uid=study.sop_instance_uids[1])
    storage = storage_for(platform.tenants["clinic_a"])
    thumbnail_key = derived_prefix(middle.object_key) + "thumbnail/128.jpg"
    wait_until(lambda: storage.exists(thumbnail_key), timeout=60, message="the study thumbnail in storage")
    response = platform.http("clinic_a", "technologist").get(
        f"/dicomweb/studies/{study.study_instance_uid}/thumbnail", headers={"Accept": "image/jpeg"}
    )
    assert response.content == storage.get_bytes(thumbnail_key)


def test_a_dedicated_tenant_renders_on_its_own_worker(platform, workers):
    study = ct_study(1)
    assert stow(platform.http("hospital_b", "radiologist"), study.files).status_code == 200
    with platform.schema("hospital_b"):
        instance = Instance.objects.get(sop_instance_uid=study.sop_instance_uids[0])
    storage = storage_for(platform.tenants["hospital_b"])
    wait_until(lambda: storage.exists(derived_prefix(instance.object_key) + "thumbnail/128.jpg"), timeout=60,
               message="the thumbnail of the dedicated tenant")
    assert "study_derivatives_warm" in workers["hospital_b"].log()


def test_a_quiet_study_is_marked_stable_once_by_the_periodic_dispatch(platform, workers):
    study = ct_study(2)
    stow(platform.http("clinic_a", "technologist"), study.files)
    assert study_row(platform, "clinic_a", study.study_instance_uid).stable_at is None
    time.sleep(1.2)
    with platform.schema():
        stable_studies_dispatch(stable_after_seconds=1)  # what beat runs every 10 s, here with a 1 s quiet time

    def marked():
        return study_row(platform, "clinic_a", study.study_instance_uid).stable_at

    stable_at = wait_until(marked, timeout=60, message="the study marked stable")
    with platform.schema():
        stable_studies_dispatch(stable_after_seconds=1)
    time.sleep(1.0)
    assert study_row(platform, "clinic_a", study.study_instance_uid).stable_at == stable_at
    with platform.schema("clinic_a"):
        events = AuditEvent.objects.filter(action="archive.study_stable", object_id=study.study_instance_uid)
        assert events.count() == 1


def test_a_new_instance_makes_a_stable_study_unstable_until_it_is_quiet_again(platform, workers):
    study = ct_study(1)
    http = platform.http("hospital_b", "radiologist")
    stow(http, study.files)
    time.sleep(1.1)
    with platform.schema():
        enqueue(studies_mark_stable.name, tenant=platform.tenants["hospital_b"], work=WorkKind.INGEST,
                kwargs={"stable_after_seconds": 1})
    wait_until(lambda: study_row(platform, "hospital_b", study.study_instance_uid).stable_at, timeout=60,
               message="the study marked stable")
    more = ct_study(1, study_instance_uid=study.study_instance_uid, patient_id=study.patient_id)
    stow(http, more.files)
    assert study_row(platform, "hospital_b", study.study_instance_uid).stable_at is None


def test_a_stable_study_has_every_frame_rendered_before_anyone_asks(platform, workers):
    study = ct_study(3)
    http = platform.http("clinic_a", "technologist")
    assert stow(http, study.files).status_code == 200
    time.sleep(1.1)
    with platform.schema():
        enqueue(studies_mark_stable.name, tenant=platform.tenants["clinic_a"], work=WorkKind.INGEST,
                kwargs={"stable_after_seconds": 1})
    with platform.schema("clinic_a"):
        files = selectors.instances_for_retrieval(study_instance_uid=study.study_instance_uid)
    storage = storage_for(platform.tenants["clinic_a"])
    options = retrieval.default_rendered_options()
    wait_until(lambda: all(retrieval.rendered_is_cached(storage, item, options) for item in files), timeout=60,
               message="every frame of the stable study rendered into the cache")
    assert "study_rendered_warm" in workers["shared"].log()
    # A viewer's first request for a frame is answered from that cache, byte for byte.
    for item in files:
        response = http.get(
            f"/dicomweb/studies/{study.study_instance_uid}/series/{item.series_instance_uid}"
            f"/instances/{item.sop_instance_uid}/rendered", headers={"Accept": "image/jpeg"},
        )
        assert response.status_code == 200
        assert response.content == storage.get_bytes(retrieval.rendered_cache_key(item, options))
