"""The thumbnail task of a stored study starts while the database refuses every connection (about
10 s, this test database only: the shared PostgreSQL server goes on): it retries, and renders the
thumbnail once the database is back; the outbox relay lives through the outage. Real processes:
private redis-server, web server, relay, beat and worker (tests/support/faults.py)."""

from __future__ import annotations

import re
import time

from apps.archive.keys import derived_prefix
from apps.archive.models import Instance
from apps.storage.tenant_storage import storage_for
from tests.support.dicomweb import ct_study, stow
from tests.support.faults import database_refusing_connections
from tests.support.platform import wait_until

OUTAGE_SECONDS = 10
THUMBNAIL_RETRY = re.compile(r"study_derivatives_warm\[[0-9a-f-]+\] retry: .*OperationalError")


def test_the_thumbnail_task_retries_through_a_database_outage_and_renders_after_it(crash_platform):
    platform = crash_platform.platform
    worker = crash_platform.worker
    study = ct_study(3)
    worker.freeze()  # the thumbnail task starts only once the database is out
    try:
        assert stow(platform.http("clinic_a", "technologist"), study.files).status_code == 200
        with platform.schema("clinic_a"):
            middle = Instance.objects.get(sop_instance_uid=study.sop_instance_uids[1])
        thumbnail = derived_prefix(middle.object_key) + "thumbnail/128.jpg"
        storage = storage_for(platform.tenants["clinic_a"])
        assert not storage.exists(thumbnail)
        with database_refusing_connections():
            outage_began = time.monotonic()
            worker.thaw()
            wait_until(lambda: THUMBNAIL_RETRY.search(worker.log()), timeout=OUTAGE_SECONDS,
                       message="the thumbnail task to meet the outage and retry")
            time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - outage_began)))
            assert not storage.exists(thumbnail)
    finally:
        if worker.process.poll() is None:
            worker.thaw()
    wait_until(lambda: storage.exists(thumbnail), timeout=40, message="the thumbnail after the outage")
    assert crash_platform.outage.relay.process.poll() is None, crash_platform.outage.relay.log()
    assert worker.process.poll() is None, worker.log()
