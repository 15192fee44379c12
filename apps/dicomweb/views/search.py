"""QIDO-RS (PS3.18 §10.6): search studies, series and instances."""

from __future__ import annotations

from urllib.parse import parse_qsl

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from apps.archive.services import reads
from apps.audit.services import Actor
from apps.dicom.index_attributes import Level
from apps.dicom.matching import parse_query
from apps.dicomweb.negotiation import DICOM_JSON, NotAcceptable, accepts_json
from apps.dicomweb.serializers import qido_results
from apps.dicomweb.views.base import READER_ROLES, DicomwebView, request_scope, service_root

MORE_RESULTS_WARNING = (
    "The number of results exceeded the maximum supported by the server. Additional results can be requested."
)


def search(
    request: HttpRequest,
    actor: Actor,
    level: Level,
    *,
    study_instance_uid: str | None = None,
    series_instance_uid: str | None = None,
) -> HttpResponseBase:
    if not accepts_json(request.headers.get("Accept")):
        raise NotAcceptable("QIDO-RS results are application/dicom+json.")
    query_string = request.META.get("QUERY_STRING", "")
    query = parse_query(parse_qsl(query_string, keep_blank_values=True), max_limit=settings.QIDO_MAX_RESULTS)
    # A consult's root searches only the consult's studies, at every level.
    page = reads.archive_search(
        actor=actor, level=level, query=query, default_limit=settings.QIDO_MAX_RESULTS, query_string=query_string,
        study_instance_uid=study_instance_uid, series_instance_uid=series_instance_uid,
        within_studies=request_scope(request).study_instance_uids,
    )
    scoped = {Level.STUDY} if study_instance_uid else set()
    if series_instance_uid:
        scoped.add(Level.SERIES)
    root = service_root(request)
    body = qido_results(page, query, service_root=root, scoped_levels=scoped)
    response = HttpResponse(body, content_type=DICOM_JSON)
    warnings = []
    if page.more:
        warnings.append(f'299 {root}: "{MORE_RESULTS_WARNING}"')
    if page.unsupported:
        names = ", ".join(sorted(set(page.unsupported)))[:300]
        warnings.append(f'299 {root}: "The following query keys are not supported and were not matched: {names}"')
    if warnings:
        response["Warning"] = ", ".join(warnings)
    response["Cache-Control"] = "private, no-store"
    return response


class SeriesSearchView(DicomwebView):
    """GET /series and /studies/{study}/series."""

    allowed_roles = READER_ROLES

    def get(self, request: HttpRequest, study: str | None = None) -> HttpResponseBase:
        return search(request, self.actor(), Level.SERIES, study_instance_uid=study)


class InstancesSearchView(DicomwebView):
    """GET /instances, /studies/{study}/instances and /studies/{study}/series/{series}/instances."""

    allowed_roles = READER_ROLES

    def get(self, request: HttpRequest, study: str | None = None, series: str | None = None) -> HttpResponseBase:
        return search(request, self.actor(), Level.INSTANCE, study_instance_uid=study, series_instance_uid=series)
