"""WADO-RS (PS3.18 §10.4): instances, metadata, frames and bulk data."""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterator

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from apps.archive import retrieval
from apps.archive.metadata import metadata_array
from apps.archive.selectors import InstanceFile
from apps.archive.services import reads
from apps.audit.services import Actor
from apps.core.errors import NotFound
from apps.dicom.headers import PIXEL_DATA_TAGS
from apps.dicom.json_model import BINARY_VRS
from apps.dicom.multipart import new_boundary
from apps.dicom.transcode import (
    NATIVE_TRANSFER_SYNTAXES,
    OCTET_STREAM,
    TRANSFER_SYNTAX_MEDIA_TYPES,
    VIDEO_TRANSFER_SYNTAXES,
    FrameNotFound,
    TranscodeNotPossible,
    can_decode,
)
from apps.dicom.xml_model import native_dicom_xml
from apps.dicomweb import negotiation
from apps.dicomweb.errors import InvalidFrameList
from apps.dicomweb.negotiation import (
    DICOM_JSON,
    DICOM_XML,
    EXPLICIT_VR_LITTLE_ENDIAN,
    FramesRepresentation,
    NotAcceptable,
)
from apps.dicomweb.responses import (
    generated_multipart,
    not_modified,
    original_single,
    originals_multipart,
    virtual_body_response,
    zip_stream,
)
from apps.dicomweb.views.base import accepted_media, service_root
from apps.storage.tenant_storage import TenantStorage, storage_for
from tenants.context import current_tenant


def _storage() -> TenantStorage:
    return storage_for(current_tenant())


def can_transcode(transfer_syntax_uid: str) -> bool:
    return transfer_syntax_uid not in VIDEO_TRANSFER_SYNTAXES and (
        transfer_syntax_uid in NATIVE_TRANSFER_SYNTAXES or can_decode(transfer_syntax_uid)
    )


def retrieve_instances(
    request: HttpRequest, actor: Actor, *, study: str, series: str | None = None, sop: str | None = None
) -> HttpResponseBase:
    files = reads.instances_found(study_instance_uid=study, series_instance_uid=series, sop_instance_uid=sop)
    storage = _storage()
    choices = negotiation.instance_representations(accepted_media(request), single_part_allowed=sop is not None)
    # Every instance's representation is decided before the first byte: a study that cannot be sent
    # whole is a 406 now, never a 200 cut off mid-stream.
    chosen, planned = None, None
    for choice in choices:
        planned = retrieval.instances_to_send(storage, files, transfer_syntax=choice.transfer_syntax,
                                              transfer_syntax_given=choice.transfer_syntax_given)
        if planned is not None:
            chosen = choice
            break
    if chosen is None and sop is not None and negotiation.accepts_instance_bulk_data(accepted_media(request)):
        return _instance_bulk_data(request, actor, files[0])
    if chosen is None or planned is None:
        raise NotAcceptable(
            "None of the accepted representations can be produced: instances are sent as stored "
            "(transfer-syntax=*) or as Explicit VR Little Endian when their pixel data can be decoded "
            "(Implicit VR Little Endian and Explicit VR Big Endian are not used in web services)."
        )
    reads.instances_retrieve_record(
        actor=actor, files=files, study_instance_uid=study, series_instance_uid=series, sop_instance_uid=sop,
        container=chosen.container, transfer_syntax=chosen.transfer_syntax,
    )
    if chosen.container == "zip":
        return _zip_response(planned, storage, study=study)
    if all(item.as_stored for item in planned):
        if chosen.container == "single":
            body, content_type, etag = original_single(files[0], storage)
        else:
            body, content_type, etag = originals_multipart(files, storage)
        return virtual_body_response(request, body, content_type, etag)
    if chosen.container == "single":
        return HttpResponse(retrieval.instance_bytes(storage, planned[0]),
                            content_type=f"application/dicom; transfer-syntax={planned[0].transfer_syntax_uid}")
    parts = [(f"application/dicom; transfer-syntax={item.transfer_syntax_uid}", _producer(storage, item))
             for item in planned]
    syntaxes = {item.transfer_syntax_uid for item in planned}
    one_syntax = {"transfer_syntax": syntaxes.pop()} if len(syntaxes) == 1 else {}
    return generated_multipart(parts, "application/dicom", boundary=new_boundary(), **one_syntax)


def _instance_bulk_data(request: HttpRequest, actor: Actor, item: InstanceFile) -> HttpResponseBase:
    """An instance as application/octet-stream: its pixel data, uncompressed little endian, one part
    named by the BulkDataURI its metadata gives (PS3.18 §8.6.1.2)."""
    if not item.has_pixels or not can_transcode(item.transfer_syntax_uid):
        raise NotAcceptable("This instance has no pixel data that can be sent as "
                            "application/octet-stream; retrieve it as application/dicom.")
    pixels = reads.instance_pixel_data_read(actor=actor, item=item)
    location = (f"{_instance_url(request, item.study_instance_uid, item.series_instance_uid, item.sop_instance_uid)}"
                "/bulkdata/7FE00010")
    return generated_multipart(
        [(f"application/octet-stream; transfer-syntax={EXPLICIT_VR_LITTLE_ENDIAN}", _constant(pixels))],
        "application/octet-stream", boundary=new_boundary(), content_locations=[location],
    )


def _producer(storage: TenantStorage, item: retrieval.InstanceToSend) -> Callable[[], bytes]:
    return lambda: retrieval.instance_bytes(storage, item)


def _zip_response(planned: list[retrieval.InstanceToSend], storage: TenantStorage, *, study: str) -> HttpResponseBase:
    def entries() -> Iterator[tuple[str, Iterator[bytes]]]:
        for item in planned:
            instance = item.instance
            name = f"{instance.study_instance_uid}/{instance.series_instance_uid}/{instance.sop_instance_uid}.dcm"
            content = (retrieval.original_chunks(storage, instance) if item.as_stored
                       else iter([retrieval.instance_bytes(storage, item)]))
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
        raise NotAcceptable("Metadata is application/dicom+json or application/dicom+xml.")
    texts = reads.metadata_read(actor=actor, study_instance_uid=study, series_instance_uid=series,
                                sop_instance_uid=sop, media_type=DICOM_XML if as_xml else None)
    body = metadata_array(texts, service_root(request)).encode()
    if as_xml:
        documents = [_constant(native_dicom_xml(document)) for document in json.loads(body)]
        response = generated_multipart([(DICOM_XML, document) for document in documents], DICOM_XML,
                                       boundary=new_boundary())
        response["Cache-Control"] = "private, no-store"
        return response
    etag = f'W/"{zlib.adler32(body):08x}-{len(body):x}"'
    if not_modified(request, etag):
        return HttpResponse(status=304, headers={"ETag": etag})
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
        raise InvalidFrameList("Frame numbers are 1-based integers separated by commas.")
    item = reads.instance_found(study_instance_uid=study, series_instance_uid=series, sop_instance_uid=sop)
    choice = _frame_choice(negotiation.frame_representations(accepted_media(request)), item)
    if choice is None:
        raise NotAcceptable(
            f"The frames are stored as {TRANSFER_SYNTAX_MEDIA_TYPES.get(item.transfer_syntax_uid, 'unknown')} "
            f"({item.transfer_syntax_uid}); none of the accepted representations can be produced from them."
        )
    produced = reads.frames_read(actor=actor, item=item, numbers=numbers, form=choice.form)
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


def _is_hex_tag(tag_path: str) -> bool:
    text = tag_path.strip("/")
    return len(text) == 8 and all(character in "0123456789abcdefABCDEF" for character in text)


def _pixel_data_parts(
    request: HttpRequest, item: InstanceFile, instance_url: str
) -> tuple[list[tuple[str, bytes]], list[str]]:
    """The pixel data as its BulkDataURI serves it, negotiated like frames (PS3.18 §8.7.3.3.2, Table
    8.7.3-4): application/octet-stream without a transfer syntax is uncompressed little endian, in
    one part; stored compressed frames are sent one part a frame, each named by its frame's URL. A
    frame missing from the stored pixel data fails the whole answer: never a 200 with fewer frames."""
    if not item.has_pixels:
        raise NotFound("No bulk data element here.")
    choice = _frame_choice(negotiation.frame_representations(accepted_media(request)), item)
    if choice is None:
        raise NotAcceptable("None of the accepted media types can be produced from the pixel data, stored as "
                            f"{item.transfer_syntax_uid}.")
    try:
        produced = retrieval.frames(_storage(), item, list(range(1, item.number_of_frames + 1)), choice.form)
    except FrameNotFound as error:
        raise retrieval.InstanceUnreadable(f"the stored pixel data is damaged: {error}") from error
    except TranscodeNotPossible as error:
        raise reads.PixelDataNotAvailable(str(error)) from error
    if all(frame.media_type == OCTET_STREAM for frame in produced):
        media_type = f"{OCTET_STREAM}; transfer-syntax={produced[0].transfer_syntax_uid}"
        return [(media_type, b"".join(frame.data for frame in produced))], []
    label = OCTET_STREAM if choice.label_as == "octet-stream" else None
    parts = [(f"{label or frame.media_type}; transfer-syntax={frame.transfer_syntax_uid}", frame.data)
             for frame in produced]
    return parts, [f"{instance_url}/frames/{number}" for number in range(1, len(parts) + 1)]


def bulk_data(
    request: HttpRequest, actor: Actor, *, study: str, series: str, sop: str, tag_path: str
) -> HttpResponseBase:
    container = negotiation.bulk_data_container(accepted_media(request))
    item = reads.instance_found(study_instance_uid=study, series_instance_uid=series, sop_instance_uid=sop)
    parts: list[tuple[str, bytes]]
    instance_url = _instance_url(request, study, series, sop)
    bulk_data_url = f"{instance_url}/bulkdata/{tag_path.strip('/')}"
    locations = [bulk_data_url]
    if _is_hex_tag(tag_path) and int(tag_path.strip("/"), 16) in PIXEL_DATA_TAGS:
        parts, frame_locations = _pixel_data_parts(request, item, instance_url)
        locations = frame_locations or locations
    else:
        found = _element_at(retrieval.read_dataset(_storage(), item), tag_path)
        element = found[1] if found is not None else None
        vr = getattr(element, "VR", "")
        value = getattr(element, "value", None)
        if vr not in BINARY_VRS or not isinstance(value, bytes | bytearray):
            raise NotFound("No bulk data element here.")
        parts = [("application/octet-stream", bytes(value))]
    reads.bulk_data_read_record(actor=actor, item=item, tag_path=tag_path)
    if container == "single" and len(parts) == 1:
        return HttpResponse(parts[0][1], content_type=parts[0][0], headers={"Content-Location": bulk_data_url})
    return generated_multipart(
        [(content_type, _constant(data)) for content_type, data in parts], parts[0][0].split(";")[0],
        boundary=new_boundary(), content_locations=locations,
    )
