"""WADO-URI (PS3.18 §9): ``GET <root>/wado?requestType=WADO&studyUID=…&seriesUID=…&objectUID=…``.

One instance, as DICOM or rendered, through the same selectors, retrieval and rendering services,
roles, grant checks and audit events as WADO-RS; the parameters are read by apps.dicom.wado_uri.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from apps.archive import retrieval, selectors, services
from apps.audit.services import Actor
from apps.dicom.rendering import RenderedMediaType, RenderingNotPossible
from apps.dicom.wado_uri import (
    DICOM,
    WadoUriError,
    WadoUriRequest,
    parse_wado_uri,
    render_options,
    response_content_type,
)
from apps.dicomweb.negotiation import EXPLICIT_VR_LITTLE_ENDIAN
from apps.dicomweb.responses import not_modified, original_single, virtual_body_response
from apps.dicomweb.views.base import READER_ROLES, DicomwebView, error_response
from apps.storage.tenant_storage import storage_for
from tenants.queues import current_tenant

RENDERED_CACHE_CONTROL = "private, max-age=86400"


class WadoUriView(DicomwebView):
    """<root>/wado — GET: one instance (WADO-URI)."""

    allowed_roles = READER_ROLES

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        # The study is in the query string here, not the path: hand it to the checks of a
        # study-scoped token and of a consult's grant, which read it from the URL's arguments.
        # A missing studyUID is the handler's 400, after authentication.
        if request.GET.get("studyUID"):
            kwargs["study"] = request.GET["studyUID"]
        return super().dispatch(request, *args, **kwargs)

    def get(self, request: HttpRequest, study: str | None = None) -> HttpResponseBase:
        try:
            return wado_uri(request, self.actor())
        except WadoUriError as error:
            return error_response(error.code, str(error), error.status)


def wado_uri(request: HttpRequest, actor: Actor) -> HttpResponseBase:
    asked = parse_wado_uri({name: request.GET.getlist(name) for name in request.GET})
    item = selectors.instance_for_retrieval(study_instance_uid=asked.study_instance_uid,
                                            series_instance_uid=asked.series_instance_uid,
                                            sop_instance_uid=asked.sop_instance_uid)
    if item is None:
        return error_response("not_found", "No such instance here.", 404)
    content_type = response_content_type(asked, has_pixels=item.has_pixels, number_of_frames=item.number_of_frames)
    if content_type == DICOM:
        return _instance(request, actor, asked, item)
    media_type: RenderedMediaType = "image/png" if content_type == "image/png" else "image/jpeg"
    options = render_options(asked, media_type, number_of_frames=item.number_of_frames)
    try:
        data, etag = retrieval.rendered(storage_for(current_tenant()), item, options)
    except RenderingNotPossible as error:
        return error_response("rendering_not_possible", str(error), 406)
    services.patient_data_read_record(
        actor=actor, action="dicomweb.rendered", study_instance_uid=item.study_instance_uid,
        series_instance_uid=item.series_instance_uid, sop_instance_uid=item.sop_instance_uid,
        detail={"frame": options.frame_index + 1, "service": "wado-uri"},
    )
    quoted = f'"{etag}"'
    headers = {"ETag": quoted, "Cache-Control": RENDERED_CACHE_CONTROL}
    if not_modified(request, quoted):
        return HttpResponse(status=304, headers=headers)
    return HttpResponse(data, content_type=media_type, headers=headers)


def _instance(
    request: HttpRequest, actor: Actor, asked: WadoUriRequest, item: selectors.InstanceFile
) -> HttpResponseBase:
    """The instance as application/dicom (PS3.18 §9.4): Explicit VR Little Endian unless transferSyntax
    names another (§9.4.2.4: 406 for one that cannot be produced), decided as WADO-RS decides it."""
    storage = storage_for(current_tenant())
    planned = retrieval.instances_to_send(
        storage, [item], transfer_syntax=asked.transfer_syntax or EXPLICIT_VR_LITTLE_ENDIAN,
        transfer_syntax_given=asked.transfer_syntax is not None,
    )
    if planned is None:
        return error_response("not_acceptable", "The instance cannot be sent in "
                              f"{asked.transfer_syntax or EXPLICIT_VR_LITTLE_ENDIAN}; it is stored as "
                              f"{item.transfer_syntax_uid}.", 406)
    [to_send] = planned
    services.patient_data_read_record(
        actor=actor, action="dicomweb.retrieve", study_instance_uid=item.study_instance_uid,
        series_instance_uid=item.series_instance_uid, sop_instance_uid=item.sop_instance_uid,
        detail={"instances": 1, "container": "single", "transfer_syntax": to_send.transfer_syntax_uid,
                "service": "wado-uri"},
    )
    if to_send.as_stored:
        body, content_type, etag = original_single(item, storage)
        return virtual_body_response(request, body, content_type, etag)
    return HttpResponse(retrieval.instance_bytes(storage, to_send),
                        content_type=f"{DICOM}; transfer-syntax={to_send.transfer_syntax_uid}")
