"""Session-wide test platform: real PostgreSQL, S3 over HTTP (moto server), a live HTTP server,
provisioned tenants with a user and token for every role, and real Celery workers on demand."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.conf import settings

from tests.support.broker_outage import BrokerOutage, start_broker_outage_platform
from tests.support.faults import CrashPlatform, start_crash_platform
from tests.support.platform import (
    ROLES_BY_KIND,
    TENANT_SPECS,
    RunningWorker,
    TestPlatform,
    start_worker,
)


@pytest.fixture(scope="session")
def django_db_setup(
    django_test_environment: None,
    django_db_blocker: Any,
    django_db_keepdb: bool,
    django_db_createdb: bool,
    django_db_modify_db_settings: None,
) -> Iterator[None]:
    """Build (or, with --reuse-db, bring up to date) the test database `test_<name>`.

    pytest-django's own fixture builds databases only for tests that ask for `db`, `transactional_db`
    or `live_server`; these tests ask for none of them (the live server and workers need committed
    data), so without this they would run against the development database itself, and fail on a
    machine where it does not exist."""
    from django.test.utils import setup_databases, teardown_databases

    keepdb = django_db_keepdb and not django_db_createdb
    with django_db_blocker.unblock():
        created = setup_databases(
            verbosity=0, interactive=False, keepdb=keepdb, aliases={"default"}, serialized_aliases=set()
        )
    yield
    if not django_db_keepdb:
        with django_db_blocker.unblock():
            teardown_databases(created, verbosity=0)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real HTTP S3 endpoint (moto's server mode) that every backend call goes through."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    settings.STORAGE_BACKEND = "s3"
    settings.S3_ENDPOINT_URL = endpoint
    settings.S3_ACCESS_KEY_ID = "testing"
    settings.S3_SECRET_ACCESS_KEY = "testing"
    settings.S3_BUCKET = "imaging-cloud-test"
    yield endpoint
    server.stop()


def _ensure_tenant(key: str, spec: dict[str, Any]) -> Any:
    from apps.storage.tenant_storage import storage_for
    from tenants.models import Tenant
    from tenants.services import tenant_provision

    tenant = Tenant.objects.filter(slug=spec["slug"]).first()
    if tenant is None:
        tenant = tenant_provision(
            slug=spec["slug"], name=spec["slug"].replace("-", " ").title(), kind=spec["kind"],
            deployment=spec["deployment"], plan_code=spec["plan"],
        ).tenant
    elif not tenant.is_active:
        tenant.status = "active"
        tenant.save(update_fields=["status"])
    # moto keeps buckets in memory: a reused database needs them made again.
    storage_for(tenant).prepare()
    return tenant


def _token_for(tenant: Any, username: str, role: str) -> str:
    from apps.accounts.models import User
    from apps.accounts.services import token_issue, user_create
    from tenants.context import tenant_entered

    with tenant_entered(tenant):
        user = User.objects.filter(username=username).first() or user_create(
            username=username, role=role, password="correct-horse-battery"
        )
        return token_issue(user=user, name="test").secret


@pytest.fixture(scope="session")
def platform(django_db_setup: Any, django_db_blocker: Any, s3_endpoint: str) -> Iterator[TestPlatform]:
    from pytest_django.live_server_helper import LiveServer

    from apps.accounts.models import User
    from apps.accounts.services import token_issue, user_create
    from apps.storage.backends import store_for_bucket
    from tenants.context import public_entered
    from tenants.services import referral_link_create

    settings.ALLOWED_HOSTS = ["*"]
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()  # no stale messages from an earlier run
    with django_db_blocker.unblock(), public_entered():
        store_for_bucket(bucket=settings.S3_BUCKET).ensure_container()
        tenants = {key: _ensure_tenant(key, spec) for key, spec in TENANT_SPECS.items()}
        referral_link_create(clinic_slug=tenants["clinic_a"].slug, hospital_slug=tenants["hospital_b"].slug)
        tokens = {
            (key, role): _token_for(tenant, f"{role}-user", role)
            for key, tenant in tenants.items()
            for role in ROLES_BY_KIND[tenant.kind]
        }
        operator = User.objects.filter(username="operator-user").first() or user_create(
            username="operator-user", role="operator"
        )
        operator_token = token_issue(user=operator, name="test").secret
        domains = {key: tenant.get_primary_domain().domain for key, tenant in tenants.items()}
    server = LiveServer("127.0.0.1:0")
    test_platform = TestPlatform(
        base_url=server.url, db_blocker=django_db_blocker, tenants=tenants, domains=domains,
        tokens=tokens, operator_token=operator_token, s3_endpoint=s3_endpoint,
    )
    # The live server thread reaches the database while tests run outside any unblock(), so keep
    # database access open for the whole session (tests never use pytest-django's `db`).
    with django_db_blocker.unblock():
        yield test_platform
    server.stop()


@pytest.fixture(scope="session")
def workers(platform: TestPlatform) -> Iterator[dict[str, RunningWorker]]:
    """Two real Celery workers against the real Redis broker: one serves the shared queues, one the
    dedicated hospital's own queues (as its own deployment would)."""
    from tenants.deployment import SHARED_QUEUES, policy_for

    environment = platform.worker_environment()
    hospital_queues = policy_for(platform.tenants["hospital_b"]).queues()
    running = {
        "shared": start_worker(environment, queues=list(SHARED_QUEUES), hostname="shared"),
        "hospital_b": start_worker(environment, queues=hospital_queues, hostname="hospital-b"),
    }
    yield running
    for worker in running.values():
        worker.stop()


@pytest.fixture(scope="session")
def broker_outage(platform: TestPlatform) -> Iterator[BrokerOutage]:
    """A web server, worker and outbox relay on a private broker that a test may stop
    (`with broker_outage.broker_down(): ...`); the shared broker is never touched."""
    from tenants.deployment import SHARED_QUEUES, policy_for

    queues = list(SHARED_QUEUES) + policy_for(platform.tenants["hospital_b"]).queues()
    outage = start_broker_outage_platform(platform, queues=queues)
    yield outage
    outage.stop()


@pytest.fixture(scope="module")
def crash_platform(platform: TestPlatform) -> Iterator[CrashPlatform]:
    """Web server, relay, beat (sweeps every 2 s) and a worker that a test may crash and replace, on a
    private broker; one per module, because its fast sweeps act on every tenant while it runs."""
    from tenants.deployment import SHARED_QUEUES, policy_for

    queues = list(SHARED_QUEUES) + policy_for(platform.tenants["hospital_b"]).queues()
    crash = start_crash_platform(platform, queues=queues)
    yield crash
    crash.stop()
