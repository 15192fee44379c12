"""Object keys of archived instances and what is derived from them, relative to the tenant's storage.

An instance is stored at ``archive/<study>/<series>/<sop>/<upload>.dcm``: the UIDs say what it is
(so the index can be rebuilt from a listing), the upload id makes every stored copy its own object,
so two clients sending the same instance at once never write, or clean up, each other's object.
What is derived from that copy (rendered frames, thumbnails) lives under ``…/<upload>/`` and goes
with it.
"""

from __future__ import annotations

import uuid

from apps.storage.keys import object_key

ARCHIVE_PREFIX = "archive"
_SUFFIX = ".dcm"


def new_upload_id() -> str:
    return uuid.uuid4().hex


def instance_object_key(*, study_instance_uid: str, series_instance_uid: str, sop_instance_uid: str, upload_id: str) -> str:
    return object_key(ARCHIVE_PREFIX, study_instance_uid, series_instance_uid, sop_instance_uid, upload_id + _SUFFIX)


def derived_prefix(instance_key: str) -> str:
    """The folder (ending in '/') of objects derived from one stored instance."""
    stem = instance_key[: -len(_SUFFIX)] if instance_key.endswith(_SUFFIX) else instance_key
    return stem + "/"


def derived_key(instance_key: str, name: str) -> str:
    return derived_prefix(instance_key) + object_key(*name.split("/"))
