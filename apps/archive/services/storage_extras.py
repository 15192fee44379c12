"""What a tenant keeps in storage besides its archive: the rendered cache and staged upload bytes.

Both are counted in the tenant's StorageExtrasUsage row and count toward its storage quota
(apps.archive.selectors.storage_usage). The rendered cache is held under
RENDERED_CACHE_MAX_BYTES_PER_TENANT by `rendered_cache_evict`, run by a task after a write takes
the cache over its cap and by a periodic sweep, never in the request path: a request only records
(or refreshes) its entry, one statement (docs/security.md, "Resource limits").
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Count, F, Sum, Value
from django.db.models.functions import Greatest

from apps.archive.models import RenderedCacheEntry, StorageExtrasUsage
from apps.audit.actions import AuditAction
from apps.audit.services import Actor, audit_record
from apps.storage.backends import StorageUnavailable
from apps.storage.tenant_storage import storage_for
from tenants.context import current_tenant

logger = logging.getLogger(__name__)

# An eviction frees down to this share of the cap, so the next few writes do not start another one.
EVICTION_LOW_WATER_FRACTION = 0.9
EVICTION_BATCH_ENTRIES = 2000
# A cache hit refreshes its entry's last use at most this often: LRU order to the minute, and no
# database write on every hit of a busy image.
TOUCH_INTERVAL_SECONDS = 60


def _table(model: type) -> str:
    return connection.ops.quote_name(model._meta.db_table)  # type: ignore[attr-defined]


def rendered_cache_entry_record(*, object_key: str, instance_object_key: str, size_bytes: int) -> int | None:
    """Record a cached image as written (or as just served from storage): a new entry adds its bytes
    to the tenant's count, a known one has its last use refreshed (at most once a minute).

    One statement, in autocommit. Returns the tenant's rendered-cache bytes after a new entry was
    added, None when the entry was already known.
    """
    entries, usage = _table(RenderedCacheEntry), _table(StorageExtrasUsage)
    sql = f"""
        WITH entry AS (
            INSERT INTO {entries} AS e (object_key, instance_object_key, size_bytes, created_at, last_used_at)
            VALUES (%s, %s, %s, now(), now())
            ON CONFLICT (object_key) DO UPDATE SET last_used_at = now()
                WHERE e.last_used_at < now() - make_interval(secs => %s)
            RETURNING size_bytes, (xmax = 0) AS inserted
        )
        INSERT INTO {usage} AS u (id, rendered_cache_bytes, rendered_cache_entries, staged_upload_bytes, updated_at)
        SELECT 1, size_bytes, 1, 0, now() FROM entry WHERE inserted
        ON CONFLICT (id) DO UPDATE SET
            rendered_cache_bytes = u.rendered_cache_bytes + EXCLUDED.rendered_cache_bytes,
            rendered_cache_entries = u.rendered_cache_entries + 1, updated_at = now()
        RETURNING rendered_cache_bytes
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [object_key, instance_object_key, size_bytes, TOUCH_INTERVAL_SECONDS])
        row = cursor.fetchone()
    return None if row is None else int(row[0])


def rendered_cache_entries_forget(*, instance_object_keys: Sequence[str]) -> int:
    """Drop the entries of images rendered from these stored instances (their objects go with the
    instance's derived folder) and take their bytes off the count. Call inside the purge's
    transaction. Returns the bytes forgotten."""
    if not instance_object_keys:
        return 0
    entries = RenderedCacheEntry.objects.filter(instance_object_key__in=list(instance_object_keys))
    totals = entries.aggregate(size=Sum("size_bytes"), count=Count("id"))
    if not totals["count"]:
        return 0
    entries.delete()
    size = int(totals["size"] or 0)
    StorageExtrasUsage.objects.filter(pk=1).update(
        rendered_cache_bytes=Greatest(F("rendered_cache_bytes") - Value(size), Value(0)),
        rendered_cache_entries=Greatest(F("rendered_cache_entries") - Value(int(totals["count"])), Value(0)),
    )
    return size


def staged_upload_bytes_change(*, delta: int) -> None:
    """Add (or, negative, take off) bytes of upload sessions held in staging. One statement."""
    if delta == 0:
        return
    usage = _table(StorageExtrasUsage)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {usage} AS u (id, rendered_cache_bytes, rendered_cache_entries, staged_upload_bytes, updated_at)
            VALUES (1, 0, 0, GREATEST(%s, 0), now())
            ON CONFLICT (id) DO UPDATE SET staged_upload_bytes = GREATEST(u.staged_upload_bytes + %s, 0),
                updated_at = now()
            """,
            [delta, delta],
        )


@dataclass(frozen=True)
class RenderedCacheEviction:
    entries: int
    bytes: int


def rendered_cache_evict(*, max_bytes: int) -> RenderedCacheEviction:
    """Evict the least recently used entries of the tenant's rendered cache until it holds at most
    EVICTION_LOW_WATER_FRACTION of `max_bytes`; nothing happens while it is within `max_bytes`.

    Rows go first, in one transaction that also takes the bytes off the count and writes the audit
    row; objects are deleted after the commit (a crash in between leaves objects no row names: they
    are found again, and counted, the next time they are served). Safe to run twice at once: the
    count's row lock orders them.
    """
    target = int(max_bytes * EVICTION_LOW_WATER_FRACTION)
    keys: list[str] = []
    freed = 0
    with transaction.atomic():
        usage = StorageExtrasUsage.objects.select_for_update().filter(pk=1).first()
        if usage is None or usage.rendered_cache_bytes <= max_bytes:
            return RenderedCacheEviction(entries=0, bytes=0)
        to_free = usage.rendered_cache_bytes - target
        while freed < to_free:
            least_recently_used = RenderedCacheEntry.objects.order_by("last_used_at", "id")
            batch = list(least_recently_used.values_list("id", "object_key", "size_bytes")[:EVICTION_BATCH_ENTRIES])
            if not batch:
                break
            chosen: list[int] = []
            for entry_id, key, size in batch:
                if freed >= to_free:
                    break
                chosen.append(entry_id)
                keys.append(key)
                freed += size
            RenderedCacheEntry.objects.filter(id__in=chosen).delete()
        StorageExtrasUsage.objects.filter(pk=1).update(
            rendered_cache_bytes=Greatest(F("rendered_cache_bytes") - Value(freed), Value(0)),
            rendered_cache_entries=Greatest(F("rendered_cache_entries") - Value(len(keys)), Value(0)),
        )
        audit_record(
            action=AuditAction.ARCHIVE_RENDERED_CACHE_EVICT, actor=Actor.system("archive.rendered-cache"),
            object_type="archive", detail={"entries": len(keys), "bytes": freed, "cap_bytes": max_bytes},
        )
    storage = storage_for(current_tenant())
    for key in keys:
        try:
            storage.delete(key)
        except (OSError, StorageUnavailable):
            logger.warning("Could not remove evicted rendered image %s", key, exc_info=True)
    return RenderedCacheEviction(entries=len(keys), bytes=freed)
