"""A worker node that crashes while it processes an upload: its whole process group SIGKILLed with
the session half-ingested and the message unacknowledged. A new worker starts; the beat's sweep
sends the stalled session again and it completes, every instance of the zip retrievable byte for
byte. Real processes: private redis-server, web server, relay, beat and workers (tests/support/faults.py)."""

from __future__ import annotations

from apps.audit.models import AuditEvent
from tests.uploads.support import upload_caught_mid_processing

INSTANCES = 40


def test_an_upload_whose_worker_crashed_mid_processing_completes_on_a_new_worker(crash_platform):
    caught = upload_caught_mid_processing(crash_platform.platform, instances=INSTANCES,
                                          fault=crash_platform.crash_worker)
    crash_platform.start_new_worker()
    caught.completed(message="the crashed upload to be resumed and completed")
    with caught.platform.schema("clinic_a"):
        assert AuditEvent.objects.filter(action="upload.resume", object_id=caught.session_id).exists()
