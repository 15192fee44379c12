"""The rendered cache in object storage is bounded: only canonical renders (a viewer's plain request,
the warm-ahead task, default thumbnails) are stored and counted toward the tenant's storage usage;
renders with ad-hoc parameters are made on the fly and stored nowhere; a per-tenant cap is held by
evicting the least recently used entries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from apps.archive import retrieval, selectors
from apps.archive.models import RenderedCacheEntry
from apps.archive.services import rendered_cache_evict
from apps.audit.models import AuditEvent
from apps.dicom.rendering import RenderOptions
from apps.dicom.status import FailureReason
from apps.storage.tenant_storage import storage_for
from tests.dicomweb.test_stow import on_plan
from tests.support.dicomweb import ct_study, failures, stow
from tests.support.platform import wait_until
from tests.support.tenancy import discard_tenant, provision_throwaway


@pytest.fixture(scope="module")
def study(platform):
    stored = ct_study(3, size=64)
    assert stow(platform.http("clinic_a", "technologist"), stored.files).status_code == 200
    return stored


def _files(platform, tenant_key, study):
    with platform.schema(tenant_key):
        return selectors.instances_for_retrieval(study_instance_uid=study.study_instance_uid)


def _rendered_path(study, item) -> str:
    return (f"/dicomweb/studies/{study.study_instance_uid}/series/{item.series_instance_uid}"
            f"/instances/{item.sop_instance_uid}/rendered")


def _usage(platform, tenant_key="clinic_a"):
    with platform.schema(tenant_key):
        return selectors.storage_usage()


def _entry_bytes(platform, tenant_key="clinic_a") -> int:
    with platform.schema(tenant_key):
        return sum(RenderedCacheEntry.objects.values_list("size_bytes", flat=True))


def _entries_named(platform, keys, tenant_key="clinic_a") -> list[str]:
    with platform.schema(tenant_key):
        return list(RenderedCacheEntry.objects.filter(object_key__in=keys).values_list("object_key", flat=True))


def test_a_plain_render_is_stored_and_its_bytes_count_toward_usage(platform, study):
    item = _files(platform, "clinic_a", study)[0]
    before = _usage(platform)

    response = platform.http("clinic_a", "referring_physician").get(_rendered_path(study, item),
                                                                    headers={"Accept": "image/jpeg"})

    assert response.status_code == 200
    key = retrieval.rendered_cache_key(item, retrieval.default_rendered_options())
    assert storage_for(platform.tenants["clinic_a"]).get_bytes(key) == response.content
    with platform.schema("clinic_a"):
        entry = RenderedCacheEntry.objects.get(object_key=key)
    assert entry.size_bytes == len(response.content)
    assert entry.instance_object_key == item.object_key
    assert _usage(platform).rendered_cache_bytes >= before.rendered_cache_bytes + len(response.content)
    # Ingest workers may cache other renders of this tenant meanwhile: what must hold is that the
    # counted bytes are exactly the entries' bytes, once they are done.
    wait_until(lambda: _usage(platform).rendered_cache_bytes == _entry_bytes(platform), timeout=60,
               message="the rendered-cache usage to equal its entries' bytes")


def test_forty_renders_with_ad_hoc_parameters_store_nothing(platform, study):
    item = _files(platform, "clinic_a", study)[1]
    http = platform.http("clinic_a", "referring_physician")
    storage = storage_for(platform.tenants["clinic_a"])
    ad_hoc_keys = []

    for number in range(40):
        parameters = {"window": f"{40 + number},{400 + number}", "viewport": f"{32 + number},{32 + number}",
                      "quality": str(50 + number)}
        response = http.get(_rendered_path(study, item), params=parameters, headers={"Accept": "image/jpeg"})
        assert response.status_code == 200
        options = RenderOptions.from_query_parameters(parameters, media_type="image/jpeg", frame_index=0)
        ad_hoc_keys.append(retrieval.rendered_cache_key(item, options))
        assert not storage.exists(ad_hoc_keys[-1])

    # Ingest workers warm canonical renders of this tenant meanwhile, so the test names the keys it
    # made rather than counting the tenant's entries.
    assert not _entries_named(platform, ad_hoc_keys)
    wait_until(lambda: _usage(platform).rendered_cache_bytes == _entry_bytes(platform), timeout=60,
               message="the rendered-cache usage to equal its entries' bytes")


def test_a_thumbnail_with_a_viewport_is_not_stored(platform, study):
    item = _files(platform, "clinic_a", study)[2]

    response = platform.http("clinic_a", "referring_physician").get(
        _rendered_path(study, item).replace("/rendered", "/thumbnail"), params={"viewport": "77,77"},
        headers={"Accept": "image/jpeg"})

    assert response.status_code == 200
    options = RenderOptions.from_query_parameters({"viewport": "77,77", "quality": ""}, media_type="image/jpeg",
                                                  frame_index=0)
    key = retrieval.rendered_cache_key(item, options)
    assert not storage_for(platform.tenants["clinic_a"]).exists(key)
    assert not _entries_named(platform, [key])


def test_an_ad_hoc_render_is_still_answered_with_the_same_etag_twice(platform, study):
    item = _files(platform, "clinic_a", study)[1]
    http = platform.http("clinic_a", "referring_physician")
    parameters = {"window": "40,400"}

    first = http.get(_rendered_path(study, item), params=parameters, headers={"Accept": "image/jpeg"})
    again = http.get(_rendered_path(study, item), params=parameters,
                     headers={"Accept": "image/jpeg", "If-None-Match": first.headers["ETag"]})

    assert first.status_code == 200
    assert again.status_code == 304


def test_only_parameter_free_renders_are_canonical():
    plain = retrieval.default_rendered_options()

    assert retrieval.is_canonical_render(plain)
    assert retrieval.is_canonical_render(RenderOptions.from_query_parameters({}, media_type="image/png", frame_index=4))
    assert not retrieval.is_canonical_render(
        RenderOptions.from_query_parameters({"window": "40,400"}, media_type="image/jpeg", frame_index=0))
    assert not retrieval.is_canonical_render(
        RenderOptions.from_query_parameters({"viewport": "64,64"}, media_type="image/jpeg", frame_index=0))
    assert not retrieval.is_canonical_render(
        RenderOptions.from_query_parameters({"quality": "30"}, media_type="image/jpeg", frame_index=0))


def test_cached_renders_count_toward_the_storage_quota(platform, study):
    item = _files(platform, "clinic_a", study)[0]
    http = platform.http("clinic_a", "technologist")
    assert http.get(_rendered_path(study, item), headers={"Accept": "image/jpeg"}).status_code == 200
    usage = _usage(platform)
    assert usage.rendered_cache_bytes > 1
    new = ct_study(1)
    # Room for the new instance if only the archive counted; not with the cached renders counted too.
    quota = usage.archive_bytes + len(new.files[0]) + 1 + usage.staged_upload_bytes

    with on_plan(platform, platform.tenants["clinic_a"], storage_bytes_quota=quota):
        response = stow(http, new.files)

    assert response.status_code == 409
    assert failures(response) == [(new.sop_instance_uids[0], FailureReason.OUT_OF_RESOURCES)]


@pytest.fixture
def cached_tenant(platform):
    """A tenant of its own holding one study with all three frames rendered into the cache, oldest first."""
    result = provision_throwaway(platform, kind="clinic", key="rendered-cache")
    from tests.support.tenancy import add_user_with_token

    add_user_with_token(platform, "rendered-cache", role="technologist")
    stored = ct_study(3, size=64)
    http = platform.http("rendered-cache", "technologist")
    assert stow(http, stored.files).status_code == 200
    files = _files(platform, "rendered-cache", stored)
    for item in files:
        assert http.get(_rendered_path(stored, item), headers={"Accept": "image/jpeg"}).status_code == 200
    keys = [retrieval.rendered_cache_key(item, retrieval.default_rendered_options()) for item in files]
    now = timezone.now()
    with platform.schema("rendered-cache"):
        for age, key in zip((3, 2, 1), keys, strict=True):
            RenderedCacheEntry.objects.filter(object_key=key).update(last_used_at=now - timedelta(hours=age))
    yield keys, files
    discard_tenant(platform, result.tenant.slug)


def other_entries_bytes(keys: list[str]) -> int:
    """Bytes of entries other than the fixture's three: a running ingest worker may render other
    canonical images of the study (thumbnails, warm frames) while a test runs; they are newer."""
    return sum(RenderedCacheEntry.objects.exclude(object_key__in=keys).values_list("size_bytes", flat=True))


def test_eviction_removes_the_least_recently_used_entries_down_below_the_cap(platform, cached_tenant):
    (oldest, middle, newest), _ = cached_tenant
    with platform.schema("rendered-cache"):
        sizes = dict(RenderedCacheEntry.objects.values_list("object_key", "size_bytes"))
        others = other_entries_bytes([oldest, middle, newest])
        cap = others + sizes[newest] + sizes[middle] // 2  # holds one entry and a half: two must go

        evicted = rendered_cache_evict(max_bytes=cap)

        remaining = RenderedCacheEntry.objects.filter(object_key__in=[oldest, middle, newest])
        assert sorted(remaining.values_list("object_key", flat=True)) == [newest]
        assert selectors.storage_usage().rendered_cache_bytes == sizes[newest] + others
        assert AuditEvent.objects.filter(action="archive.rendered_cache_evict").count() == 1
    assert (evicted.entries, evicted.bytes) == (2, sizes[oldest] + sizes[middle])
    storage = storage_for(platform.tenants["rendered-cache"])
    assert [storage.exists(key) for key in (oldest, middle, newest)] == [False, False, True]


def test_eviction_does_nothing_within_the_cap(platform, cached_tenant):
    with platform.schema("rendered-cache"):
        total = selectors.storage_usage().rendered_cache_bytes

        evicted = rendered_cache_evict(max_bytes=total)

        assert RenderedCacheEntry.objects.filter(object_key__in=cached_tenant[0]).count() == 3
    assert (evicted.entries, evicted.bytes) == (0, 0)


def test_an_evicted_image_is_rendered_and_cached_again_on_the_next_request(platform, cached_tenant):
    (oldest, _, _), (item, _, _) = cached_tenant
    with platform.schema("rendered-cache"):
        rendered_cache_evict(max_bytes=1)
        assert RenderedCacheEntry.objects.count() == 0
        assert selectors.storage_usage().rendered_cache_bytes == 0
        retrieval._rendered_memory.clear()  # as in a process that has not served it from memory
        data, _ = retrieval.rendered(storage_for(platform.tenants["rendered-cache"]), item,
                                     retrieval.default_rendered_options())
        assert selectors.storage_usage().rendered_cache_bytes == len(data)
    assert storage_for(platform.tenants["rendered-cache"]).get_bytes(oldest) == data


def test_a_write_that_takes_the_cache_over_its_cap_queues_an_eviction(platform, cached_tenant, monkeypatch):
    queued = []
    monkeypatch.setattr("tenants.queues.enqueue", lambda task, **kwargs: queued.append((task, kwargs)))
    _, (item, _, _) = cached_tenant
    with platform.schema("rendered-cache"):
        total = selectors.storage_usage().rendered_cache_bytes
        png = RenderOptions.from_query_parameters({}, media_type="image/png", frame_index=0)
        with override_settings(RENDERED_CACHE_MAX_BYTES_PER_TENANT=total + 1):
            retrieval.rendered(storage_for(platform.tenants["rendered-cache"]), item, png)

    assert [name for name, _ in queued] == ["apps.archive.tasks.rendered_cache_evict"]
    assert queued[0][1]["tenant"].slug == platform.tenants["rendered-cache"].slug


def test_purging_a_deleted_study_forgets_its_cached_renders(platform, cached_tenant):
    from apps.archive.services import deleted_purge, study_delete
    from apps.audit.services import Actor

    with platform.schema("rendered-cache"):
        study_delete(study_instance_uid=cached_tenant[1][0].study_instance_uid, actor=Actor.system("test"))
        deleted_purge(now=timezone.now() + timedelta(days=3650))

        assert RenderedCacheEntry.objects.count() == 0
        assert selectors.storage_usage().rendered_cache_bytes == 0



def test_the_periodic_sweep_queues_an_eviction_for_each_tenant_over_the_cap_only(platform, cached_tenant,
                                                                                  monkeypatch):
    from apps.archive.tasks import rendered_cache_evict_dispatch

    queued = []
    monkeypatch.setattr("apps.archive.tasks.enqueue", lambda task, **kwargs: queued.append(kwargs["tenant"].slug))
    with platform.schema("rendered-cache"):
        total = selectors.storage_usage().rendered_cache_bytes

    with platform.schema(), override_settings(RENDERED_CACHE_MAX_BYTES_PER_TENANT=total - 1):
        rendered_cache_evict_dispatch()
    over = list(queued)
    queued.clear()
    with platform.schema(), override_settings(RENDERED_CACHE_MAX_BYTES_PER_TENANT=total):
        rendered_cache_evict_dispatch()

    assert platform.tenants["rendered-cache"].slug in over
    assert platform.tenants["rendered-cache"].slug not in queued


def test_an_image_is_answered_when_its_cache_entry_cannot_be_recorded(platform, study, monkeypatch):
    from django.db import OperationalError

    def database_away(**_):
        raise OperationalError("the database went away")

    monkeypatch.setattr("apps.archive.services.storage_extras.rendered_cache_entry_record", database_away)
    item = _files(platform, "clinic_a", study)[2]
    png = RenderOptions.from_query_parameters({}, media_type="image/png", frame_index=0)
    retrieval._rendered_memory.clear()  # as in a process that has not served it from memory

    with platform.schema("clinic_a"):
        data, _ = retrieval.rendered(storage_for(platform.tenants["clinic_a"]), item, png)

    assert data.startswith(b"\x89PNG\r\n\x1a\n")
