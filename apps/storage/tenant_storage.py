"""A tenant's view of object storage: its bucket and key prefix come from the deployment policy."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, BinaryIO

from apps.storage.backends import ListedObject, ObjectStore, StoredObject, store_for_bucket
from apps.storage.keys import object_key
from tenants.deployment import policy_for

if TYPE_CHECKING:
    from tenants.models import Tenant


class TenantStorage:
    """Every key given here is relative to the tenant; the prefix is added and never escaped."""

    def __init__(self, store: ObjectStore, key_prefix: str, *, owner: str) -> None:
        self.store = store
        self.key_prefix = key_prefix
        self.owner = owner  # the tenant's schema: presigned links are bound to it

    def full_key(self, relative_key: str) -> str:
        return f"{self.key_prefix}{object_key(*relative_key.split('/'))}"

    def put_stream(
        self, relative_key: str, stream: BinaryIO, *, content_type: str = "application/octet-stream", sync: bool = True
    ) -> StoredObject:
        return self.store.put_stream(self.full_key(relative_key), stream, content_type=content_type, sync=sync)

    def put_bytes(
        self, relative_key: str, data: bytes, *, content_type: str = "application/octet-stream", sync: bool = True
    ) -> StoredObject:
        return self.store.put_bytes(self.full_key(relative_key), data, content_type=content_type, sync=sync)

    def sync(self, relative_keys: Iterable[str]) -> None:
        """See ObjectStore.put_stream(sync=False)."""
        self.store.sync([self.full_key(key) for key in relative_keys])

    def get_stream(self, relative_key: str) -> Iterator[bytes]:
        return self.store.get_stream(self.full_key(relative_key))

    def get_bytes(self, relative_key: str) -> bytes:
        return self.store.get_bytes(self.full_key(relative_key))

    def get_range(self, relative_key: str, start: int, end_inclusive: int) -> bytes:
        return self.store.get_range(self.full_key(relative_key), start, end_inclusive)

    def size(self, relative_key: str) -> int:
        return self.store.size(self.full_key(relative_key))

    def exists(self, relative_key: str) -> bool:
        return self.store.exists(self.full_key(relative_key))

    def delete(self, relative_key: str) -> None:
        self.store.delete(self.full_key(relative_key))

    def delete_prefix(self, relative_prefix: str) -> int:
        """Remove every object under a relative folder (`relative_prefix` ends with '/')."""
        if not relative_prefix.endswith("/"):
            raise ValueError(f"A prefix to delete must end with '/': {relative_prefix!r}")
        return self.store.delete_prefix(self.full_key(relative_prefix[:-1]) + "/")

    def list_objects(self, relative_prefix: str) -> Iterator[ListedObject]:
        """The objects under a relative folder (`relative_prefix` ends with '/'), in key order, with
        keys relative to the tenant."""
        if not relative_prefix.endswith("/"):
            raise ValueError(f"A prefix to list must end with '/': {relative_prefix!r}")
        for listed in self.store.list_objects(self.full_key(relative_prefix[:-1]) + "/"):
            yield ListedObject(key=listed.key.removeprefix(self.key_prefix), size=listed.size,
                               modified_at=listed.modified_at)

    def presigned_get_url(self, relative_key: str, *, expires_in: int = 3600) -> str:
        return self.store.presigned_get_url(self.full_key(relative_key), expires_in=expires_in, owner=self.owner)

    def delete_everything(self) -> int:
        """Remove every object of the tenant (used when a tenant is deleted)."""
        if not self.key_prefix:
            removed = sum(1 for _ in self.store.list_keys(""))
            self.store.drop_container()
            return removed
        return self.store.delete_prefix(self.key_prefix)

    def prepare(self) -> None:
        self.store.ensure_container()


def storage_for(tenant: Tenant) -> TenantStorage:
    location = policy_for(tenant).storage_location()
    store = store_for_bucket(
        bucket=location.bucket, endpoint_url=location.endpoint_url, kms_key_id=location.kms_key_id
    )
    return TenantStorage(store, location.key_prefix, owner=tenant.schema_name)
