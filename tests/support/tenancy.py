"""Scenario helpers for tests that need tenants of their own: provision one, give it users and tokens,
look behind it (schema, rows, domains, objects) and discard it again.

A throwaway tenant is registered on the running `TestPlatform` under a key, so the usual helpers
work for it: `platform.http(key, role)`, `platform.schema(key)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from tests.support.platform import TenantHttp, TestPlatform, unique_suffix

ADMIN_PASSWORD = "correct-horse-battery"


@dataclass(frozen=True)
class TenantTraces:
    """Everything a tenant can leave behind, looked up by slug (so it works after deletion too)."""

    tenant_rows: int
    schema_exists: bool
    domains: list[str]
    object_keys: list[str]
    bucket_exists: bool


def new_slug(prefix: str = "t") -> str:
    return f"{prefix}-{unique_suffix()}"


def provision_throwaway(
    platform: TestPlatform, *, kind: str = "clinic", deployment: str | None = None, key: str | None = None,
    slug: str | None = None,
) -> Any:
    """Provision a tenant through the service, register it on the platform, and return the result."""
    from tenants.services import tenant_provision

    slug = slug or new_slug()
    with platform.schema():
        result = tenant_provision(
            slug=slug, name=f"Throwaway {slug}", kind=kind, deployment=deployment, admin_password=ADMIN_PASSWORD,
        )
    key = key or slug
    platform.tenants[key] = result.tenant
    platform.domains[key] = result.domain
    return result


def add_user_with_token(platform: TestPlatform, key: str, *, role: str, username: str | None = None) -> str:
    """Create a user with `role` in the tenant registered as `key`, remember its token, return the token."""
    from apps.accounts.services import token_issue, user_create

    username = username or f"{role}-{unique_suffix()}"
    with platform.schema(key):
        user = user_create(username=username, role=role, password=ADMIN_PASSWORD)
        secret = token_issue(user=user, name="test").secret
    platform.tokens[(key, role)] = secret
    return secret


def discard_tenant(platform: TestPlatform, slug: str) -> None:
    """Suspend and delete a tenant if it still exists, and forget it on the platform."""
    from tenants.models import Tenant, TenantStatus
    from tenants.services import tenant_delete, tenant_suspend

    with platform.schema():
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is not None:
            if tenant.status != TenantStatus.SUSPENDED:
                tenant_suspend(slug=slug)
            tenant_delete(slug=slug)
    for key in [key for key, tenant in platform.tenants.items() if tenant.slug == slug]:
        platform.tenants.pop(key)
        platform.domains.pop(key, None)
        for token_key in [token_key for token_key in platform.tokens if token_key[0] == key]:
            platform.tokens.pop(token_key)


def http_on(platform: TestPlatform, host: str, token: str | None = None) -> TenantHttp:
    """A client on any host of the live server (a tenant's domain, the platform's, or an unknown one)."""
    return TenantHttp(platform.base_url, host, token)


def s3_client(platform: TestPlatform) -> Any:
    """A plain boto3 client on the test S3 endpoint, to look at buckets behind the storage layer."""
    import boto3

    return boto3.client(
        "s3", endpoint_url=platform.s3_endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
        region_name="us-east-1",
    )


def bucket_keys(platform: TestPlatform, bucket: str, prefix: str = "") -> list[str] | None:
    """Keys in a bucket under `prefix`, or None when the bucket does not exist."""
    from botocore.exceptions import ClientError

    client = s3_client(platform)
    try:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]
    except ClientError as error:
        if error.response["Error"]["Code"] == "NoSuchBucket":
            return None
        raise


def traces_of(platform: TestPlatform, *, slug: str, deployment: str) -> TenantTraces:
    from django_tenants.utils import schema_exists

    from tenants.deployment import default_bucket_for_dedicated
    from tenants.models import Domain, Tenant
    from tenants.services import default_domain_for_slug, schema_name_for_slug

    with platform.schema():
        tenant_rows = Tenant.objects.filter(slug=slug).count()
        schema = schema_exists(schema_name_for_slug(slug))
        domains = sorted(
            Domain.objects.filter(tenant__slug=slug).values_list("domain", flat=True).union(
                Domain.objects.filter(domain=default_domain_for_slug(slug)).values_list("domain", flat=True)
            )
        )
    if deployment == "dedicated_cloud":
        keys = bucket_keys(platform, default_bucket_for_dedicated(slug))
        return TenantTraces(tenant_rows, schema, domains, keys or [], keys is not None)
    keys = bucket_keys(platform, settings.S3_BUCKET, f"tenants/{slug}/")
    return TenantTraces(tenant_rows, schema, domains, keys or [], keys is not None)


def put_object_for(platform: TestPlatform, key: str, relative_key: str, data: bytes) -> None:
    """Store an object in the tenant's storage (through the storage layer, as the archive would)."""
    from apps.storage.tenant_storage import storage_for

    storage_for(platform.tenants[key]).put_bytes(relative_key, data)


def session_login(platform: TestPlatform, host: str, *, username: str, password: str) -> tuple[TenantHttp, Any]:
    """Sign in through the login page on `host`; returns the client (holding the session cookie) and
    the answer to the form post."""
    import re

    client = http_on(platform, host)
    page = client.get("/accounts/login/")
    assert page.status_code == 200, page.text
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert csrf is not None, page.text
    answer = client.post(
        "/accounts/login/", data={"username": username, "password": password, "csrfmiddlewaretoken": csrf.group(1)},
        allow_redirects=False,
    )
    return client, answer
