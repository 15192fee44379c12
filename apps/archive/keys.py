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


# What a derived folder holds (apps.archive.retrieval): rendered frames and thumbnails.
DERIVED_KINDS = frozenset({"rendered", "thumbnail"})


def is_instance_key(key: str) -> bool:
    """True for a key laid out as a stored instance: archive/<study>/<series>/<sop>/<upload>.dcm."""
    parts = key.split("/")
    return len(parts) == 5 and parts[0] == ARCHIVE_PREFIX and parts[4].endswith(_SUFFIX) and len(parts[4]) > len(_SUFFIX)


def instance_key_of_derived(key: str) -> str | None:
    """The instance key a rendered frame or thumbnail was derived from, or None when `key` is not
    laid out as one (archive/<study>/<series>/<sop>/<upload>/{rendered|thumbnail}/…)."""
    parts = key.split("/")
    if len(parts) < 7 or parts[0] != ARCHIVE_PREFIX or parts[5] not in DERIVED_KINDS or parts[4].endswith(_SUFFIX):
        return None
    return "/".join(parts[:5]) + _SUFFIX
