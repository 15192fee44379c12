"""WADO-RS (PS3.18 §10.4): instances, metadata, frames and bulk data."""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterator

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from apps.archive import retrieval, selectors, services
from apps.archive.metadata import metadata_array
from apps.archive.selectors import InstanceFile
from apps.audit.actions import AuditAction
from apps.audit.services import Actor
from apps.dicom.headers import PIXEL_DATA_TAGS
from apps.dicom.json_model import BINARY_VRS
from apps.dicom.multipart import new_boundary
from apps.dicom.transcode import (
    NATIVE_TRANSFER_SYNTAXES,
    TRANSFER_SYNTAX_MEDIA_TYPES,
    VIDEO_TRANSFER_SYNTAXES,
    FrameNotFound,
    TranscodeNotPossible,
    can_decode,
    extract_frames,
    number_of_frames,
    transcode_to_explicit_vr_little_endian,
)
from apps.dicom.xml_model import native_dicom_xml
from apps.dicomweb import negotiation
from apps.dicomweb.negotiation import (
    ANY_TRANSFER_SYNTAX,
    DICOM_JSON,
    DICOM_XML,
    EXPLICIT_VR_LITTLE_ENDIAN,
    FramesRepresentation,
    InstancesRepresentation,
)
from apps.dicomweb.responses import (
    generated_multipart,
    not_modified,
    original_single,
    originals_multipart,
    virtual_body_response,
    zip_stream,
)
from apps.dicomweb.views.base import accepted_media, error_response, service_root
from apps.storage.tenant_storage import TenantStorage, storage_for
from tenants.queues import current_tenant


def _not_found(what: str) -> HttpResponseBase:
    return error_response("not_found", f"No {what} here.", 404)


def _storage() -> TenantStorage:
    return storage_for(current_tenant())


def can_transcode(transfer_syntax_uid: str) -> bool:
    return transfer_syntax_uid not in VIDEO_TRANSFER_SYNTAXES and (
        transfer_syntax_uid in NATIVE_TRANSFER_SYNTAXES or can_decode(transfer_syntax_uid)
    )


def _feasible(choice: InstancesRepresentation, files: list[InstanceFile]) -> bool:
    wanted = choice.transfer_syntax
    if wanted == ANY_TRANSFER_SYNTAX or all(item.transfer_syntax_uid == wanted for item in files):
        return True
    if wanted == EXPLICIT_VR_LITTLE_ENDIAN:
        return all(item.transfer_syntax_uid == wanted or can_transcode(item.transfer_syntax_uid) for item in files)
    return False


def _what(study: str, series: str | None, sop: str | None) -> str:
    return "instance" if sop else "series" if series else "study"


def retrieve_instances(
    request: HttpRequest, actor: Actor, *, study: str, series: str | None = None, sop: str | None = None
) -> HttpResponseBase:
    files = selectors.instances_for_retrieval(study_instance_uid=study, series_instance_uid=series, sop_instance_uid=sop)
    if not files:
        return _not_found(_what(study, series, sop))
    choices = negotiation.instance_representations(accepted_media(request), single_part_allowed=sop is not None)
    chosen = next((choice for choice in choices if _feasible(choice, files)), None)
    if chosen is None and sop is not None and negotiation.accepts_instance_bulk_data(accepted_media(request)):
        return _instance_bulk_data(request, actor, files[0])
    if chosen is None:
        return error_response(
            "not_acceptable",
            "None of the accepted representations can be produced: instances are sent as stored "
            "(transfer-syntax=*) or as Explicit VR Little Endian when their pixel data can be decoded.",
            406,
        )
    storage = _storage()
    services.patient_data_read_record(
        actor=actor, action=AuditAction.DICOMWEB_RETRIEVE, study_instance_uid=study, series_instance_uid=series or "",
        sop_instance_uid=sop or "",
        detail={"instances": len(files), "container": chosen.container, "transfer_syntax": chosen.transfer_syntax},
    )
    originals = chosen.transfer_syntax == ANY_TRANSFER_SYNTAX or all(
        item.transfer_syntax_uid == chosen.transfer_syntax for item in files
    )
    if chosen.container == "zip":
        return _zip_response(files, storage, transcode=not originals, study=study)
    if originals:
        if chosen.container == "single":
            body, content_type, etag = original_single(files[0], storage)
        else:
            body, content_type, etag = originals_multipart(files, storage)
        return virtual_body_response(request, body, content_type, etag)
    if chosen.container == "single":
        return HttpResponse(
            _explicit_little_endian(storage, files[0]),
            content_type=f"application/dicom; transfer-syntax={EXPLICIT_VR_LITTLE_ENDIAN}",
        )
    parts = [
        (f"application/dicom; transfer-syntax={EXPLICIT_VR_LITTLE_ENDIAN}", _producer(storage, item)) for item in files
    ]
    return generated_multipart(parts, "application/dicom", boundary=new_boundary(),
                               transfer_syntax=EXPLICIT_VR_LITTLE_ENDIAN)


def _instance_bulk_data(request: HttpRequest, actor: Actor, item: InstanceFile) -> HttpResponseBase:
    """An instance as application/octet-stream: its pixel data, uncompressed little endian, one part
    named by the BulkDataURI its metadata gives (PS3.18 §8.6.1.2)."""
    if not item.has_pixels or not can_transcode(item.transfer_syntax_uid):
        return error_response("not_acceptable", "This instance has no pixel data that can be sent as "
                              "application/octet-stream; retrieve it as application/dicom.", 406)
    try:
        produced = retrieval.frames(_storage(), item, list(range(1, item.number_of_frames + 1)), "uncompressed")
    except (FrameNotFound, TranscodeNotPossible) as error:
        return error_response("not_acceptable", str(error), 406)
    services.patient_data_read_record(
        actor=actor, action=AuditAction.DICOMWEB_RETRIEVE, study_instance_uid=item.study_instance_uid,
        series_instance_uid=item.series_instance_uid, sop_instance_uid=item.sop_instance_uid,
        detail={"instances": 1, "container": "bulk_data"},
    )
    pixels = b"".join(frame.data for frame in produced)
    location = (f"{_instance_url(request, item.study_instance_uid, item.series_instance_uid, item.sop_instance_uid)}"
                "/bulkdata/7FE00010")
    return generated_multipart(
        [(f"application/octet-stream; transfer-syntax={EXPLICIT_VR_LITTLE_ENDIAN}", _constant(pixels))],
        "application/octet-stream", boundary=new_boundary(), content_locations=[location],
    )


def _explicit_little_endian(storage: TenantStorage, item: InstanceFile) -> bytes:
    data = retrieval.original_bytes(storage, item)
    if item.transfer_syntax_uid == EXPLICIT_VR_LITTLE_ENDIAN:
        return data
    return transcode_to_explicit_vr_little_endian(data)


def _producer(storage: TenantStorage, item: InstanceFile) -> Callable[[], bytes]:
    return lambda: _explicit_little_endian(storage, item)


def _zip_response(files: list[InstanceFile], storage: TenantStorage, *, transcode: bool, study: str) -> HttpResponseBase:
    def entries() -> Iterator[tuple[str, Iterator[bytes]]]:
        for item in files:
            name = f"{item.study_instance_uid}/{item.series_instance_uid}/{item.sop_instance_uid}.dcm"
            content = iter([_explicit_little_endian(storage, item)]) if transcode else retrieval.original_chunks(storage, item)
            yield name, content

    response = StreamingHttpResponse(zip_stream(entries()), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{study}.zip"'
    return response


def metadata(
    request: HttpRequest, actor: Actor, *, study: str, series: str | None = None, sop: str | None = None
) -> HttpResponseBase:
    """Study, series or instance metadata (PS3.18 §10.4.1.1.2): the stored JSON, joined; or one
    Native DICOM Model document per instance (PS3.19) when only application/dicom+xml is accepted."""
    accept = accepted_media(request)
    as_xml = not negotiation.accepts_json(accept) and negotiation.accepts_dicom_xml(accept)
    if not as_xml and not negotiation.accepts_json(accept):
        return error_response("not_acceptable", "Metadata is application/dicom+json or application/dicom+xml.", 406)
    texts = selectors.metadata_texts(study_instance_uid=study, series_instance_uid=series, sop_instance_uid=sop)
    if not texts:
        return _not_found(_what(study, series, sop))
    body = metadata_array(texts, service_root(request)).encode()
    if as_xml:
        services.patient_data_read_record(
            actor=actor, action=AuditAction.DICOMWEB_METADATA, study_instance_uid=study, series_instance_uid=series or "",
            sop_instance_uid=sop or "", detail={"instances": len(texts), "media_type": DICOM_XML},
        )
        documents = [_constant(native_dicom_xml(document)) for document in json.loads(body)]
        response = generated_multipart([(DICOM_XML, document) for document in documents], DICOM_XML,
                                       boundary=new_boundary())
        response["Cache-Control"] = "private, no-store"
        return response
    etag = f'W/"{zlib.adler32(body):08x}-{len(body):x}"'
    if not_modified(request, etag):
        return HttpResponse(status=304, headers={"ETag": etag})
    services.patient_data_read_record(
        actor=actor, action=AuditAction.DICOMWEB_METADATA, study_instance_uid=study, series_instance_uid=series or "",
        sop_instance_uid=sop or "", detail={"instances": len(texts)},
    )
    return HttpResponse(body, content_type=DICOM_JSON, headers={"ETag": etag, "Cache-Control": "private, no-store"})


# --- frames -----------------------------------------------------------------------------------------------


def parse_frame_list(text: str) -> list[int] | None:
    """``1,3,5`` → [1, 3, 5] (PS3.18 §10.4.1.1.2: 1-based frame numbers); None when malformed."""
    try:
        numbers = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        return None
    if not numbers or any(number < 1 for number in numbers):
        return None
    return numbers


def _frame_choice(choices: list[FramesRepresentation], item: InstanceFile) -> FramesRepresentation | None:
    stored_syntax = item.transfer_syntax_uid
    stored_media = TRANSFER_SYNTAX_MEDIA_TYPES.get(stored_syntax)
    for choice in choices:
        if choice.form == "as_stored":
            if stored_media is None or stored_syntax in VIDEO_TRANSFER_SYNTAXES:
                continue
            if choice.transfer_syntax and choice.transfer_syntax != stored_syntax:
                continue
            if choice.stored_media_type == "image/*" and not stored_media.startswith("image/"):
                continue
            if choice.stored_media_type not in (None, "image/*") and choice.stored_media_type != stored_media:
                continue
            return choice
        if choice.form == "uncompressed" and can_transcode(stored_syntax):
            return choice
        if choice.form == "jpeg2000" and can_transcode(stored_syntax):
            return choice
    return None


def frames(
    request: HttpRequest, actor: Actor, *, study: str, series: str, sop: str, frame_list: str
) -> HttpResponseBase:
    numbers = parse_frame_list(frame_list)
    if numbers is None:
        return error_response("invalid_frame_list", "Frame numbers are 1-based integers separated by commas.", 400)
    item = selectors.instance_for_retrieval(study_instance_uid=study, series_instance_uid=series, sop_instance_uid=sop)
    if item is None:
        return _not_found("instance")
    choice = _frame_choice(negotiation.frame_representations(accepted_media(request)), item)
    if choice is None:
        return error_response(
            "not_acceptable",
            f"The frames are stored as {TRANSFER_SYNTAX_MEDIA_TYPES.get(item.transfer_syntax_uid, 'unknown')} "
            f"({item.transfer_syntax_uid}); none of the accepted representations can be produced from them.",
            406,
        )
    try:
        produced = retrieval.frames(_storage(), item, numbers, choice.form)
    except FrameNotFound as error:
        return error_response("frame_not_found", str(error), 404)
    except TranscodeNotPossible as error:
        return error_response("not_acceptable", str(error), 406)
    services.patient_data_read_record(
        actor=actor, action=AuditAction.DICOMWEB_FRAMES, study_instance_uid=study, series_instance_uid=series,
        sop_instance_uid=sop, detail={"frames": numbers[:50]},
    )
    parts = []
    for frame in produced:
        media_type = "application/octet-stream" if choice.label_as == "octet-stream" else frame.media_type
        parts.append((f"{media_type}; transfer-syntax={frame.transfer_syntax_uid}", _constant(frame.data)))
    part_type = parts[0][0].split(";")[0]
    instance_url = _instance_url(request, study, series, sop)
    response = generated_multipart(parts, part_type, boundary=new_boundary(),
                                   content_locations=[f"{instance_url}/frames/{number}" for number in numbers])
    response["Cache-Control"] = "private, max-age=86400"
    return response


def _instance_url(request: HttpRequest, study: str, series: str, sop: str) -> str:
    return f"{service_root(request)}/studies/{study}/series/{series}/instances/{sop}"


def _constant(data: bytes) -> Callable[[], bytes]:
    return lambda: data


# --- bulk data ----------------------------------------------------------------------------------------------


def _element_at(dataset: Dataset, tag_path: str) -> tuple[int, object] | None:
    """The element a BulkDataURI tag path names: ``TAG`` or ``SEQTAG/index/TAG/...``."""
    parts = [part for part in tag_path.split("/") if part]
    if not parts or len(parts) % 2 == 0:
        return None
    current = dataset
    try:
        for position in range(0, len(parts) - 1, 2):
            sequence = current[Tag(int(parts[position], 16))].value
            current = sequence[int(parts[position + 1])]
        tag = Tag(int(parts[-1], 16))
        return int(tag), current[tag]
    except (KeyError, IndexError, ValueError, TypeError, OverflowError):
        return None


def bulk_data(
    request: HttpRequest, actor: Actor, *, study: str, series: str, sop: str, tag_path: str
) -> HttpResponseBase:
    container = negotiation.bulk_data_container(accepted_media(request))
    item = selectors.instance_for_retrieval(study_instance_uid=study, series_instance_uid=series, sop_instance_uid=sop)
    if item is None:
        return _not_found("instance")
    dataset = retrieval.read_dataset(_storage(), item)
    found = _element_at(dataset, tag_path)
    if found is None:
        return _not_found("bulk data element")
    tag, element = found
    parts: list[tuple[str, bytes]]
    instance_url = _instance_url(request, study, series, sop)
    bulk_data_url = f"{instance_url}/bulkdata/{tag_path.strip('/')}"
    locations = [bulk_data_url]
    if tag in PIXEL_DATA_TAGS and "/" not in tag_path.strip("/"):
        try:
            stored_frames = extract_frames(dataset, list(range(1, number_of_frames(dataset) + 1)))
        except (FrameNotFound, TranscodeNotPossible) as error:
            return error_response("not_acceptable", str(error), 406)
        if item.transfer_syntax_uid in NATIVE_TRANSFER_SYNTAXES:
            parts = [(f"application/octet-stream; transfer-syntax={EXPLICIT_VR_LITTLE_ENDIAN}",
                      b"".join(frame.data for frame in stored_frames))]
        else:
            parts = [(f"{frame.media_type}; transfer-syntax={frame.transfer_syntax_uid}", frame.data)
                     for frame in stored_frames]
            # One part a frame: each names the frame's own resource.
            locations = [f"{instance_url}/frames/{number}" for number in range(1, len(parts) + 1)]
    else:
        vr = getattr(element, "VR", "")
        value = getattr(element, "value", None)
        if vr not in BINARY_VRS or not isinstance(value, bytes | bytearray):
            return _not_found("bulk data element")
        parts = [("application/octet-stream", bytes(value))]
    services.patient_data_read_record(
        actor=actor, action=AuditAction.DICOMWEB_BULKDATA, study_instance_uid=study, series_instance_uid=series,
        sop_instance_uid=sop, detail={"tag_path": tag_path},
    )
    if container == "single" and len(parts) == 1:
        return HttpResponse(parts[0][1], content_type=parts[0][0], headers={"Content-Location": bulk_data_url})
    return generated_multipart(
        [(content_type, _constant(data)) for content_type, data in parts], parts[0][0].split(";")[0],
        boundary=new_boundary(), content_locations=locations,
    )
