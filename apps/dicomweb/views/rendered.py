"""WADO-RS rendered resources and thumbnails (PS3.18 §10.4.1.1.3, §10.4.1.1.4)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from apps.archive import retrieval, selectors, services
from apps.archive.selectors import InstanceFile
from apps.audit.actions import AuditAction
from apps.audit.services import Actor
from apps.dicom.multipart import new_boundary
from apps.dicom.rendering import (
    DEFAULT_THUMBNAIL_SIZE,
    RenderingNotPossible,
    RenderingParameterError,
    RenderOptions,
)
from apps.dicom.transcode import VIDEO_TRANSFER_SYNTAXES
from apps.dicomweb import negotiation
from apps.dicomweb.negotiation import RenderedMediaType
from apps.dicomweb.responses import generated_multipart, not_modified
from apps.dicomweb.views.base import accepted_media, error_response
from apps.storage.tenant_storage import TenantStorage, storage_for
from tenants.queues import current_tenant

RENDERED_CACHE_CONTROL = "private, max-age=86400"


def _image_response(request: HttpRequest, data: bytes, etag: str, media_type: str, multipart: bool) -> HttpResponseBase:
    quoted = f'"{etag}"'
    if not_modified(request, quoted):
        return HttpResponse(status=304, headers={"ETag": quoted, "Cache-Control": RENDERED_CACHE_CONTROL})
    if multipart:
        response: HttpResponseBase = generated_multipart([(media_type, lambda: data)], media_type, boundary=new_boundary())
    else:
        response = HttpResponse(data, content_type=media_type)
    response["ETag"] = quoted
    response["Cache-Control"] = RENDERED_CACHE_CONTROL
    return response


def _options(request: HttpRequest, media_type: RenderedMediaType, frame_index: int) -> RenderOptions:
    parameters = {key: request.GET.get(key, "") for key in ("window", "viewport", "quality")}
    return RenderOptions.from_query_parameters(parameters, media_type=media_type, frame_index=frame_index)


def rendered_instance(
    request: HttpRequest, actor: Actor, *, study: str, series: str, sop: str, frame_list: str | None = None
) -> HttpResponseBase:
    """An instance (its first frame) or one frame, rendered as JPEG or PNG."""
    media_type, multipart = negotiation.rendered_media_type(accepted_media(request))
    frame_number = 1
    if frame_list is not None:
        numbers = [part for part in frame_list.split(",") if part]
        if len(numbers) != 1 or not numbers[0].isdigit() or int(numbers[0]) < 1:
            return error_response("invalid_frame_list", "Render one frame at a time: /frames/{n}/rendered.", 400)
        frame_number = int(numbers[0])
    item = selectors.instance_for_retrieval(study_instance_uid=study, series_instance_uid=series, sop_instance_uid=sop)
    if item is None:
        return error_response("not_found", "No instance here.", 404)
    if frame_number > item.number_of_frames:
        return error_response("frame_not_found", f"The instance has {item.number_of_frames} frame(s).", 404)
    try:
        options = _options(request, media_type, frame_number - 1)
        data, etag = retrieval.rendered(storage_for(current_tenant()), item, options)
    except RenderingParameterError as error:
        return error_response("invalid_rendering_parameter", str(error), 400)
    except RenderingNotPossible as error:
        return error_response("rendering_not_possible", str(error), 406)
    services.patient_data_read_record(
        actor=actor, action=AuditAction.DICOMWEB_RENDERED, study_instance_uid=study, series_instance_uid=series,
        sop_instance_uid=sop, detail={"frame": frame_number},
    )
    return _image_response(request, data, etag, media_type, multipart)


def _render_part(storage: TenantStorage, item: InstanceFile, options: RenderOptions) -> Callable[[], bytes | None]:
    def render() -> bytes | None:
        try:
            return retrieval.rendered(storage, item, options)[0]
        except RenderingNotPossible:
            return None  # left out of the answer; the others are still sent

    return render


def rendered_collection(request: HttpRequest, actor: Actor, *, study: str, series: str | None = None) -> HttpResponseBase:
    """Every image of a study or series rendered (first frame each), as multipart/related."""
    media_type, _ = negotiation.rendered_media_type(accepted_media(request))
    files = selectors.instances_for_retrieval(study_instance_uid=study, series_instance_uid=series)
    if not files:
        return error_response("not_found", "No study or series here.", 404)
    try:
        options = _options(request, media_type, 0)
    except RenderingParameterError as error:
        return error_response("invalid_rendering_parameter", str(error), 400)
    storage = storage_for(current_tenant())
    images = [item for item in files if item.has_pixels and item.transfer_syntax_uid not in VIDEO_TRANSFER_SYNTAXES]
    if not images:
        return error_response("rendering_not_possible", "Nothing in it can be rendered as an image.", 406)
    services.patient_data_read_record(
        actor=actor, action=AuditAction.DICOMWEB_RENDERED, study_instance_uid=study, series_instance_uid=series or "",
        detail={"instances": len(images)},
    )
    return generated_multipart(
        [(media_type, _render_part(storage, item, options)) for item in images], media_type, boundary=new_boundary()
    )


def thumbnail(
    request: HttpRequest, actor: Actor, *, study: str, series: str | None = None, sop: str | None = None,
    frame_list: str | None = None,
) -> HttpResponseBase:
    """A small image of a study, series, instance or frame (PS3.18 §10.4.1.1.4): its middle image."""
    media_type, multipart = negotiation.rendered_media_type(accepted_media(request))
    if sop is not None and series is not None:
        item = selectors.instance_for_retrieval(study_instance_uid=study, series_instance_uid=series, sop_instance_uid=sop)
    else:
        item = selectors.representative_instance(study_instance_uid=study, series_instance_uid=series)
    if item is None:
        return error_response("not_found", "No image to make a thumbnail of here.", 404)
    storage = storage_for(current_tenant())
    try:
        if request.GET.get("viewport") or frame_list is not None:
            frame_index = item.number_of_frames // 2
            if frame_list is not None:
                if not frame_list.isdigit() or not 1 <= int(frame_list) <= item.number_of_frames:
                    return error_response("frame_not_found", f"The instance has {item.number_of_frames} frame(s).", 404)
                frame_index = int(frame_list) - 1
            viewport = request.GET.get("viewport") or f"{DEFAULT_THUMBNAIL_SIZE},{DEFAULT_THUMBNAIL_SIZE}"
            options = RenderOptions.from_query_parameters(
                {"viewport": viewport, "quality": request.GET.get("quality", "")}, media_type=media_type,
                frame_index=frame_index,
            )
            data, etag = retrieval.rendered(storage, item, options)
        else:
            data, etag = retrieval.thumbnail(storage, item, size=DEFAULT_THUMBNAIL_SIZE, media_type=media_type)
    except RenderingParameterError as error:
        return error_response("invalid_rendering_parameter", str(error), 400)
    except RenderingNotPossible as error:
        return error_response("rendering_not_possible", str(error), 406)
    services.patient_data_read_record(
        actor=actor, action=AuditAction.DICOMWEB_THUMBNAIL, study_instance_uid=study, series_instance_uid=series or "",
        sop_instance_uid=sop or "", detail={"shown_instance": item.sop_instance_uid},
    )
    return _image_response(request, data, etag, media_type, multipart)
