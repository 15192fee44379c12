"""An upload session whose processing meets a database outage (about 10 s, this test database only:
the shared PostgreSQL server goes on): the worker caught half-way through the zip when every
connection is ended and new ones refused. The processing retries, the session completes once the
database is back, and every instance of the zip is retrievable byte for byte. Real processes:
private redis-server, web server, relay, beat and worker (tests/support/faults.py)."""

from __future__ import annotations

import re

from tests.support.faults import database_out_for
from tests.uploads.support import upload_caught_mid_processing

INSTANCES = 40
OUTAGE_SECONDS = 10
PROCESSING_RETRY = re.compile(r"upload_session_process\[[0-9a-f-]+\] retry: .*(OperationalError|InterfaceError)")


def test_an_upload_whose_processing_met_a_database_outage_completes_with_every_instance_stored(crash_platform):
    caught = upload_caught_mid_processing(crash_platform.platform, instances=INSTANCES, fault=lambda: database_out_for(
        OUTAGE_SECONDS, worker=crash_platform.worker, until_retried=PROCESSING_RETRY))
    caught.completed(message="the upload to complete after the outage")
