"""The one place that knows what a tenant's deployment means.

Public cloud: one shared bucket with every key under the tenant's prefix, shared Celery queues,
plan quotas. Dedicated cloud: the tenant's own bucket (optionally its own endpoint and KMS key), its
own queues `<slug>.<work>` served by its own workers, no plan quotas. Nothing else branches on
`Tenant.deployment`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from django.conf import settings

if TYPE_CHECKING:
    from tenants.models import Tenant


class WorkKind(StrEnum):
    INGEST = "ingest"
    AI = "ai"
    FILM = "film"
    WORKFLOW = "workflow"


SHARED_QUEUES: tuple[str, ...] = tuple(kind.value for kind in WorkKind)


@dataclass(frozen=True)
class StorageLocation:
    bucket: str
    key_prefix: str
    endpoint_url: str | None = None
    kms_key_id: str | None = None


@dataclass(frozen=True)
class Quotas:
    storage_bytes: int | None = None
    studies_per_month: int | None = None
    ai_jobs_per_month: int | None = None

    @property
    def unlimited(self) -> bool:
        return self.storage_bytes is None and self.studies_per_month is None and self.ai_jobs_per_month is None


class DeploymentPolicy(Protocol):
    def storage_location(self) -> StorageLocation: ...

    def queue_for(self, work: WorkKind | str) -> str: ...

    def queues(self) -> list[str]: ...

    def quotas(self) -> Quotas: ...


@dataclass(frozen=True)
class PublicCloudPolicy:
    tenant_slug: str
    plan_quotas: Quotas

    def storage_location(self) -> StorageLocation:
        return StorageLocation(bucket=settings.S3_BUCKET, key_prefix=f"tenants/{self.tenant_slug}/")

    def queue_for(self, work: WorkKind | str) -> str:
        return WorkKind(work).value

    def queues(self) -> list[str]:
        return list(SHARED_QUEUES)

    def quotas(self) -> Quotas:
        return self.plan_quotas


@dataclass(frozen=True)
class DedicatedCloudPolicy:
    tenant_slug: str
    bucket: str
    endpoint_url: str | None
    kms_key_id: str | None

    def storage_location(self) -> StorageLocation:
        return StorageLocation(
            bucket=self.bucket, key_prefix="", endpoint_url=self.endpoint_url, kms_key_id=self.kms_key_id
        )

    def queue_for(self, work: WorkKind | str) -> str:
        return f"{self.tenant_slug}.{WorkKind(work).value}"

    def queues(self) -> list[str]:
        return [self.queue_for(kind) for kind in WorkKind]

    def quotas(self) -> Quotas:
        return Quotas()


def default_bucket_for_dedicated(slug: str) -> str:
    return f"{settings.S3_DEDICATED_BUCKET_PREFIX}{slug}"


def policy_for(tenant: Tenant) -> DeploymentPolicy:
    from tenants.models import Deployment

    if tenant.deployment == Deployment.DEDICATED_CLOUD:
        return DedicatedCloudPolicy(
            tenant_slug=tenant.slug,
            bucket=tenant.storage_bucket or default_bucket_for_dedicated(tenant.slug),
            endpoint_url=tenant.storage_endpoint_url or None,
            kms_key_id=tenant.storage_kms_key_id or None,
        )
    plan = tenant.plan
    quotas = (
        Quotas(
            storage_bytes=plan.storage_bytes_quota,
            studies_per_month=plan.studies_per_month_quota,
            ai_jobs_per_month=plan.ai_jobs_per_month_quota,
        )
        if plan is not None
        else Quotas()
    )
    return PublicCloudPolicy(tenant_slug=tenant.slug, plan_quotas=quotas)


def default_deployment_for_kind(kind: str) -> str:
    """A clinic defaults to the public cloud, a hospital to a dedicated cloud."""
    from tenants.models import Deployment, TenantKind

    return Deployment.DEDICATED_CLOUD if kind == TenantKind.HOSPITAL else Deployment.PUBLIC_CLOUD
