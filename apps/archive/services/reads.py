"""Reads of patient data: each read use case finds what a request names and writes its audit event.

Who (the actor, with the client address), what (study, series, instance, or the query), when (the
event time): one event per request, however many instances it returns (docs/dicomweb.md "Audit",
docs/security.md "What is logged").

The rule for when a read is recorded, the same for every read: **once the archive has found what the
request names and knows it can answer**, before the protocol compares the client's validators or
ranges. So a conditional GET answered 304 Not Modified is recorded like a 200 (the client reached
the data and is showing the copy it holds), and so are a 206 and a 416; a request that finds
nothing (404) or whose representation cannot be made (406) is not, as nothing was shown.

Bytes sent from storage as the answer streams (originals, zip) are read after these functions
return; the functions ending in `_record` are for those reads, the others return what is shown.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from apps.archive import retrieval, selectors
from apps.archive.selectors import InstanceFile, SearchPage
from apps.audit.actions import AuditAction
from apps.audit.services import Actor, audit_record
from apps.core.errors import DomainError, NotFound, StudyNotFound
from apps.dicom.index_attributes import BY_KEYWORD, Level
from apps.dicom.matching import QidoQuery
from apps.dicom.rendering import DEFAULT_THUMBNAIL_SIZE, RenderOptions
from apps.dicom.transcode import VIDEO_TRANSFER_SYNTAXES, Frame, FrameNotFound, TranscodeNotPossible
from apps.storage.tenant_storage import TenantStorage, storage_for
from tenants.context import current_tenant


class SeriesNotFound(NotFound):
    """A series the request names is not (or no longer) in this study."""

    code = "series_not_found"


class NothingToRender(DomainError):
    code = "rendering_not_possible"
    status = 406


class PixelDataNotAvailable(DomainError):
    """The instance's pixel data cannot be sent as the representation asked for."""

    code = "not_acceptable"
    status = 406


def patient_data_read_record(
    *,
    actor: Actor,
    action: AuditAction,
    study_instance_uid: str = "",
    series_instance_uid: str = "",
    sop_instance_uid: str = "",
    detail: dict[str, Any] | None = None,
) -> None:
    """The one audit event of a read (one plain INSERT, see apps.audit.services.audit_record)."""
    if sop_instance_uid:
        object_type, object_id = "instance", sop_instance_uid
    elif series_instance_uid:
        object_type, object_id = "series", series_instance_uid
    elif study_instance_uid:
        object_type, object_id = "study", study_instance_uid
    else:
        object_type, object_id = "query", ""
    audit_record(
        action=action, actor=actor, object_type=object_type, object_id=object_id,
        detail={
            **({"study": study_instance_uid} if study_instance_uid else {}),
            **({"series": series_instance_uid} if series_instance_uid else {}),
            **({"instance": sop_instance_uid} if sop_instance_uid else {}),
            **(detail or {}),
        },
    )


def _storage() -> TenantStorage:
    return storage_for(current_tenant())


def _level(series_instance_uid: str | None, sop_instance_uid: str | None) -> str:
    return "instance" if sop_instance_uid else "series" if series_instance_uid else "study"


# --- finding what a URL names (no event: nothing is shown yet) ----------------------------------------------


def instances_found(
    *, study_instance_uid: str, series_instance_uid: str | None = None, sop_instance_uid: str | None = None
) -> list[InstanceFile]:
    """The live instances a WADO-RS URL names; NotFound when there are none."""
    files = selectors.instances_for_retrieval(
        study_instance_uid=study_instance_uid, series_instance_uid=series_instance_uid,
        sop_instance_uid=sop_instance_uid,
    )
    if not files:
        raise NotFound(f"No {_level(series_instance_uid, sop_instance_uid)} here.")
    return files


def instance_found(*, study_instance_uid: str, series_instance_uid: str, sop_instance_uid: str) -> InstanceFile:
    item = selectors.instance_for_retrieval(
        study_instance_uid=study_instance_uid, series_instance_uid=series_instance_uid,
        sop_instance_uid=sop_instance_uid,
    )
    if item is None:
        raise NotFound("No instance here.")
    return item


# --- WADO-RS ------------------------------------------------------------------------------------------------


def instances_retrieve_record(
    *, actor: Actor, files: list[InstanceFile], study_instance_uid: str, series_instance_uid: str | None,
    sop_instance_uid: str | None, container: str, transfer_syntax: str, service: str | None = None,
) -> None:
    """A retrieve of instances (PS3.18 §10.4.1.1.1), whose bytes the answer streams from storage;
    `service` names a transaction other than WADO-RS (``wado-uri``)."""
    patient_data_read_record(
        actor=actor, action=AuditAction.DICOMWEB_RETRIEVE, study_instance_uid=study_instance_uid,
        series_instance_uid=series_instance_uid or "", sop_instance_uid=sop_instance_uid or "",
        detail={"instances": len(files), "container": container, "transfer_syntax": transfer_syntax,
                **_service(service)},
    )


def _service(service: str | None) -> dict[str, str]:
    return {"service": service} if service else {}


def instance_pixel_data_read(*, actor: Actor, item: InstanceFile) -> bytes:
    """Every frame of an instance, uncompressed little endian, as one run of bytes (an instance asked
    for as application/octet-stream, PS3.18 §8.6.1.2)."""
    try:
        produced = retrieval.frames(_storage(), item, list(range(1, item.number_of_frames + 1)), "uncompressed")
    except (FrameNotFound, TranscodeNotPossible) as error:
        raise PixelDataNotAvailable(str(error)) from error
    patient_data_read_record(
        actor=actor, action=AuditAction.DICOMWEB_RETRIEVE, study_instance_uid=item.study_instance_uid,
        series_instance_uid=item.series_instance_uid, sop_instance_uid=item.sop_instance_uid,
        detail={"instances": 1, "container": "bulk_data"},
    )
    return b"".join(frame.data for frame in produced)


def metadata_read(
    *, actor: Actor, study_instance_uid: str, series_instance_uid: str | None = None,
    sop_instance_uid: str | None = None, media_type: str | None = None,
) -> list[str]:
    """The stored DICOM JSON of the instances a metadata URL names (PS3.18 §10.4.1.1.2); `media_type`
    is recorded when the answer is not the default application/dicom+json."""
    texts = selectors.metadata_texts(
        study_instance_uid=study_instance_uid, series_instance_uid=series_instance_uid,
        sop_instance_uid=sop_instance_uid,
    )
    if not texts:
        raise NotFound(f"No {_level(series_instance_uid, sop_instance_uid)} here.")
    patient_data_read_record(
        actor=actor, action=AuditAction.DICOMWEB_METADATA, study_instance_uid=study_instance_uid,
        series_instance_uid=series_instance_uid or "", sop_instance_uid=sop_instance_uid or "",
        detail={"instances": len(texts), **({"media_type": media_type} if media_type else {})},
    )
    return texts


def frames_read(*, actor: Actor, item: InstanceFile, numbers: list[int], form: retrieval.FrameForm) -> list[Frame]:
    """Frames of an instance in the form asked for (PS3.18 §10.4.1.1.2); FrameNotFound for a frame
    it lacks, TranscodeNotPossible when the form cannot be made from it."""
    produced = retrieval.frames(_storage(), item, numbers, form)
    patient_data_read_record(
        actor=actor, action=AuditAction.DICOMWEB_FRAMES, study_instance_uid=item.study_instance_uid,
        series_instance_uid=item.series_instance_uid, sop_instance_uid=item.sop_instance_uid,
        detail={"frames": numbers[:50]},
    )
    return produced


def bulk_data_read_record(*, actor: Actor, item: InstanceFile, tag_path: str) -> None:
    """A bulk data element of an instance, sent as found (PS3.18 §10.4.1.1.5)."""
    patient_data_read_record(
        actor=actor, action=AuditAction.DICOMWEB_BULKDATA, study_instance_uid=item.study_instance_uid,
        series_instance_uid=item.series_instance_uid, sop_instance_uid=item.sop_instance_uid,
        detail={"tag_path": tag_path},
    )


# --- rendered and thumbnails --------------------------------------------------------------------------------


def rendered_read(
    *, actor: Actor, item: InstanceFile, options: RenderOptions, service: str | None = None
) -> tuple[bytes, str]:
    """One frame of an instance rendered (PS3.18 §10.4.1.1.3, or WADO-URI's image/jpeg), and its ETag."""
    if options.frame_index >= item.number_of_frames:
        raise FrameNotFound(f"The instance has {item.number_of_frames} frame(s).")
    data, etag = retrieval.rendered(_storage(), item, options)
    patient_data_read_record(
        actor=actor, action=AuditAction.DICOMWEB_RENDERED, study_instance_uid=item.study_instance_uid,
        series_instance_uid=item.series_instance_uid, sop_instance_uid=item.sop_instance_uid,
        detail={"frame": options.frame_index + 1, **_service(service)},
    )
    return data, etag


def rendered_collection_read(
    *, actor: Actor, study_instance_uid: str, series_instance_uid: str | None = None
) -> list[InstanceFile]:
    """The images of a study or series to render (first frame each), rendered as the answer streams."""
    files = selectors.instances_for_retrieval(
        study_instance_uid=study_instance_uid, series_instance_uid=series_instance_uid
    )
    if not files:
        raise NotFound("No study or series here.")
    images = [item for item in files if item.has_pixels and item.transfer_syntax_uid not in VIDEO_TRANSFER_SYNTAXES]
    if not images:
        raise NothingToRender("Nothing in it can be rendered as an image.")
    patient_data_read_record(
        actor=actor, action=AuditAction.DICOMWEB_RENDERED, study_instance_uid=study_instance_uid,
        series_instance_uid=series_instance_uid or "", detail={"instances": len(images)},
    )
    return images


def thumbnail_instance(
    *, study_instance_uid: str, series_instance_uid: str | None = None, sop_instance_uid: str | None = None
) -> InstanceFile:
    """The instance a thumbnail of a study, series or instance shows (PS3.18 §10.4.1.1.4)."""
    if sop_instance_uid is not None and series_instance_uid is not None:
        item = selectors.instance_for_retrieval(
            study_instance_uid=study_instance_uid, series_instance_uid=series_instance_uid,
            sop_instance_uid=sop_instance_uid,
        )
    else:
        item = selectors.representative_instance(
            study_instance_uid=study_instance_uid, series_instance_uid=series_instance_uid
        )
    if item is None:
        raise NotFound("No image to make a thumbnail of here.")
    return item


def thumbnail_read(
    *, actor: Actor, item: InstanceFile, study_instance_uid: str, series_instance_uid: str | None,
    sop_instance_uid: str | None, options: RenderOptions,
) -> tuple[bytes, str]:
    """The thumbnail image and its ETag: the cached default-size one, or a frame rendered to the
    options' viewport (a viewport or frame asked for)."""
    if options.viewport is None:
        data, etag = retrieval.thumbnail(_storage(), item, size=DEFAULT_THUMBNAIL_SIZE, media_type=options.media_type)
    else:
        data, etag = retrieval.rendered(_storage(), item, options)
    patient_data_read_record(
        actor=actor, action=AuditAction.DICOMWEB_THUMBNAIL, study_instance_uid=study_instance_uid,
        series_instance_uid=series_instance_uid or "", sop_instance_uid=sop_instance_uid or "",
        detail={"shown_instance": item.sop_instance_uid},
    )
    return data, etag


# --- QIDO-RS ------------------------------------------------------------------------------------------------


def archive_search(
    *, actor: Actor, level: Level, query: QidoQuery, default_limit: int, query_string: str,
    study_instance_uid: str | None = None, series_instance_uid: str | None = None,
    within_studies: Collection[str] | None = None,
) -> SearchPage:
    """A QIDO-RS search (PS3.18 §10.6) at one level, only among `within_studies` when given. A scoped
    search of a study or series that does not exist is StudyNotFound / SeriesNotFound: an empty list
    would claim it exists and holds nothing."""
    if level == Level.STUDY:
        page = selectors.studies_search(query=query, default_limit=default_limit, within_studies=within_studies)
    elif level == Level.SERIES:
        page = selectors.series_search(query=query, default_limit=default_limit,
                                       study_instance_uid=study_instance_uid, within_studies=within_studies)
    else:
        page = selectors.instances_search(
            query=query, default_limit=default_limit, study_instance_uid=study_instance_uid,
            series_instance_uid=series_instance_uid, within_studies=within_studies,
            with_metadata=query.include_all or any(field.keyword not in BY_KEYWORD for field in query.include_fields),
        )
    # Checked only when nothing matched: no cost otherwise.
    if not page.rows and not selectors.search_scope_exists(
        study_instance_uid=study_instance_uid, series_instance_uid=series_instance_uid,
    ):
        if series_instance_uid:
            raise SeriesNotFound("No such series in this study.")
        raise StudyNotFound("No such study in this archive.")
    patient_data_read_record(
        actor=actor, action=AuditAction.DICOMWEB_SEARCH, study_instance_uid=study_instance_uid or "",
        series_instance_uid=series_instance_uid or "",
        detail={"level": str(level), "query": query_string[:500], "results": len(page.rows)},
    )
    return page
