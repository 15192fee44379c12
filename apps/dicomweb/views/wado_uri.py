"""WADO-URI (PS3.18 §9): ``GET <root>/wado?requestType=WADO&studyUID=…&seriesUID=…&objectUID=…``.

One instance, as DICOM or rendered, through the same read services, retrieval planning, roles,
grant checks and audit events as WADO-RS; the parameters are read by apps.dicom.wado_uri. Errors
are raised and answered by apps.dicomweb.errors like every DICOMweb error.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from apps.archive import retrieval
from apps.archive.selectors import InstanceFile
from apps.archive.services import reads
from apps.audit.services import Actor
from apps.dicom.rendering import RenderedMediaType
from apps.dicom.wado_uri import DICOM, WadoUriRequest, parse_wado_uri, render_options, response_content_type
from apps.dicomweb.negotiation import EXPLICIT_VR_LITTLE_ENDIAN, NotAcceptable
from apps.dicomweb.responses import not_modified, original_single, virtual_body_response
from apps.dicomweb.views.base import READER_ROLES, DicomwebView
from apps.storage.tenant_storage import storage_for
from tenants.context import current_tenant

RENDERED_CACHE_CONTROL = "private, max-age=86400"
SERVICE = "wado-uri"


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
        return wado_uri(request, self.actor())


def wado_uri(request: HttpRequest, actor: Actor) -> HttpResponseBase:
    asked = parse_wado_uri({name: request.GET.getlist(name) for name in request.GET})
    item = reads.instance_found(study_instance_uid=asked.study_instance_uid,
                                series_instance_uid=asked.series_instance_uid,
                                sop_instance_uid=asked.sop_instance_uid)
    content_type = response_content_type(asked, has_pixels=item.has_pixels, number_of_frames=item.number_of_frames)
    if content_type == DICOM:
        return _instance(request, actor, asked, item)
    media_type: RenderedMediaType = "image/png" if content_type == "image/png" else "image/jpeg"
    options = render_options(asked, media_type, number_of_frames=item.number_of_frames)
    data, etag = reads.rendered_read(actor=actor, item=item, options=options, service=SERVICE)
    quoted = f'"{etag}"'
    headers = {"ETag": quoted, "Cache-Control": RENDERED_CACHE_CONTROL}
    if not_modified(request, quoted):
        return HttpResponse(status=304, headers=headers)
    return HttpResponse(data, content_type=media_type, headers=headers)


def _instance(request: HttpRequest, actor: Actor, asked: WadoUriRequest, item: InstanceFile) -> HttpResponseBase:
    """The instance as application/dicom (PS3.18 §9.4): Explicit VR Little Endian unless transferSyntax
    names another (§9.4.2.4: 406 for one that cannot be produced), decided as WADO-RS decides it."""
    storage = storage_for(current_tenant())
    wanted = asked.transfer_syntax or EXPLICIT_VR_LITTLE_ENDIAN
    planned = retrieval.instances_to_send(storage, [item], transfer_syntax=wanted,
                                          transfer_syntax_given=asked.transfer_syntax is not None)
    if planned is None:
        raise NotAcceptable(f"The instance cannot be sent in {wanted}; it is stored as {item.transfer_syntax_uid}.")
    [to_send] = planned
    reads.instances_retrieve_record(
        actor=actor, files=[item], study_instance_uid=item.study_instance_uid,
        series_instance_uid=item.series_instance_uid, sop_instance_uid=item.sop_instance_uid,
        container="single", transfer_syntax=to_send.transfer_syntax_uid, service=SERVICE,
    )
    if to_send.as_stored:
        body, content_type, etag = original_single(item, storage)
        return virtual_body_response(request, body, content_type, etag)
    return HttpResponse(retrieval.instance_bytes(storage, to_send),
                        content_type=f"{DICOM}; transfer-syntax={to_send.transfer_syntax_uid}")
