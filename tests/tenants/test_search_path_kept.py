"""A kept connection (CONN_MAX_AGE) is sent `SET search_path` only when the path changes
(tenants/postgresql_backend): the next request of the same tenant sends none, another tenant's
request sends its own, and after a rollback (which may undo a SET) the path is set again."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.accounts.models import User
from tenants.context import tenant_entered


def _search_path_sets(queries: CaptureQueriesContext) -> list[str]:
    return [query["sql"] for query in queries.captured_queries if query["sql"].startswith("SET search_path")]


def _request(platform, tenant_key: str) -> list[str]:
    client = Client(HTTP_HOST=platform.host(tenant_key),
                    HTTP_AUTHORIZATION=f"Bearer {platform.tokens[(tenant_key, 'technologist' if tenant_key.startswith('clinic') else 'radiologist')]}")
    connection.close_if_unusable_or_obsolete()  # what request_started does on a server
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/api/v1/me/").status_code == 200
    return _search_path_sets(queries)


def test_the_same_tenant_again_sends_no_search_path_and_another_tenant_sends_its_own(platform):
    with platform.db_blocker.unblock():
        _request(platform, "clinic_a")
        assert _request(platform, "clinic_a") == []
        assert _request(platform, "clinic_c") == ['SET search_path = "test_clinic_c","public"']
        assert _request(platform, "clinic_a") == ['SET search_path = "test_clinic_a","public"']


def test_after_a_rollback_the_search_path_is_set_again(platform):
    tenant = platform.tenants["clinic_a"]
    with platform.db_blocker.unblock():
        with tenant_entered(tenant):
            User.objects.count()
            with pytest.raises(RuntimeError), transaction.atomic():
                User.objects.count()
                raise RuntimeError("roll back")
            with CaptureQueriesContext(connection) as queries:
                User.objects.count()
        assert _search_path_sets(queries) == ['SET search_path = "test_clinic_a","public"']
