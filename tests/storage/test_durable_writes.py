"""Durable writes: an object the archive indexes is on disk before its index row commits
(docs/architecture.md "Data path of a request").

The filesystem backend fsyncs each object and its folder (STORAGE_FSYNC, on by default); ingest
writes objects without waiting, makes them durable in the background and commits the rows only once
every sync has finished. A failed sync fails the request and leaves nothing indexed."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest

from apps.archive.models import Instance
from apps.archive.services import instance_store_file
from apps.audit.services import Actor
from apps.storage import backends
from apps.storage.backends import FilesystemObjectStore
from apps.storage.tenant_storage import TenantStorage, storage_for
from tenants.context import current_tenant
from tests.support.dicomweb import ct_study


@pytest.fixture
def fsynced(monkeypatch) -> list[Path]:
    """Every path os.fsync is called on by the storage backends, in order."""
    seen: list[Path] = []
    real_fsync = os.fsync

    def recording_fsync(descriptor: int) -> None:
        seen.append(Path(os.readlink(f"/proc/self/fd/{descriptor}")))
        real_fsync(descriptor)

    monkeypatch.setattr(backends.os, "fsync", recording_fsync)
    return seen


def test_a_durable_put_fsyncs_the_object_and_its_folder_before_returning(tmp_path, fsynced):
    store = FilesystemObjectStore(root=tmp_path, bucket="durable")
    store.put_bytes("a/b/object.dcm", b"DICM" * 100)
    target = tmp_path / "durable" / "a" / "b" / "object.dcm"
    assert target.read_bytes() == b"DICM" * 100
    # The file is synced under its temporary name (before the rename), then the folder holding its name.
    assert [path.parent for path in fsynced] == [target.parent, target.parent.parent]
    assert fsynced[0].name.startswith(".upload-") and fsynced[1] == target.parent


def test_a_deferred_put_is_synced_only_when_asked(tmp_path, fsynced):
    store = FilesystemObjectStore(root=tmp_path, bucket="durable")
    store.put_bytes("x/one.dcm", b"1" * 10, sync=False)
    store.put_bytes("x/two.dcm", b"2" * 10, sync=False)
    assert fsynced == []
    store.sync(["x/one.dcm", "x/two.dcm"])
    folder = tmp_path / "durable" / "x"
    assert fsynced == [folder / "one.dcm", folder / "two.dcm", folder]  # the shared folder once


def test_a_store_that_is_not_durable_never_fsyncs(tmp_path, fsynced):
    store = FilesystemObjectStore(root=tmp_path, bucket="scratch", durable=False)
    store.put_bytes("k/one", b"x")
    store.sync(["k/one"])
    assert fsynced == []


def test_ingest_commits_only_after_the_objects_are_synced(platform, monkeypatch):
    study = ct_study(1)
    synced: list[str] = []
    real_sync = TenantStorage.sync

    def slow_sync(self: TenantStorage, relative_keys) -> None:
        time.sleep(0.3)  # a slow disk: the request must still wait for it
        real_sync(self, relative_keys)
        synced.extend(relative_keys)

    monkeypatch.setattr(TenantStorage, "sync", slow_sync)
    with platform.schema("clinic_a"):
        report = instance_store_file(stream=io.BytesIO(study.files[0]), actor=Actor.system("test"))
        stored = Instance.objects.get(sop_instance_uid=study.sop_instance_uids[0], deleted_at__isnull=True)
    assert [item.sop_instance_uid for item in report.stored] == study.sop_instance_uids
    assert synced == [stored.object_key]


def test_a_failed_sync_fails_the_ingest_and_indexes_nothing(platform, monkeypatch):
    study = ct_study(1)
    written: list[str] = []
    real_put = TenantStorage.put_bytes

    def remembering_put(self: TenantStorage, relative_key: str, data: bytes, **kwargs) -> object:
        written.append(relative_key)
        return real_put(self, relative_key, data, **kwargs)

    def failing_sync(self: TenantStorage, relative_keys) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(TenantStorage, "put_bytes", remembering_put)
    monkeypatch.setattr(TenantStorage, "sync", failing_sync)
    with platform.schema("clinic_a"), pytest.raises(OSError, match="Input/output"):
        instance_store_file(stream=io.BytesIO(study.files[0]), actor=Actor.system("test"))
    with platform.schema("clinic_a"):
        assert not Instance.objects.filter(sop_instance_uid=study.sop_instance_uids[0]).exists()
        assert written and not storage_for(current_tenant()).exists(written[0])  # the object was removed again
