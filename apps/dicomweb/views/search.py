"""QIDO-RS (PS3.18 §10.6): search studies, series and instances."""

from __future__ import annotations

from urllib.parse import parse_qsl

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from apps.archive import selectors, services
from apps.archive.attributes import BY_KEYWORD, Level
from apps.audit.actions import AuditAction
from apps.audit.services import Actor
from apps.dicom.matching import QueryError, parse_query
from apps.dicomweb.negotiation import DICOM_JSON, accepts_json
from apps.dicomweb.serializers import qido_results
from apps.dicomweb.views.base import READER_ROLES, DicomwebView, error_response, request_scope, service_root

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
        return error_response("not_acceptable", "QIDO-RS results are application/dicom+json.", 406)
    parameters = parse_qsl(request.META.get("QUERY_STRING", ""), keep_blank_values=True)
    try:
        query = parse_query(parameters, max_limit=settings.QIDO_MAX_RESULTS)
    except QueryError as error:
        return error_response("invalid_query", str(error), 400)
    limit = settings.QIDO_MAX_RESULTS
    # A consult's root searches only the consult's studies, at every level.
    within = request_scope(request).study_instance_uids
    if level == Level.STUDY:
        page = selectors.studies_search(query=query, default_limit=limit, within_studies=within)
    elif level == Level.SERIES:
        page = selectors.series_search(query=query, default_limit=limit, study_instance_uid=study_instance_uid,
                                       within_studies=within)
    else:
        page = selectors.instances_search(
            query=query, default_limit=limit, study_instance_uid=study_instance_uid,
            series_instance_uid=series_instance_uid, within_studies=within,
            with_metadata=query.include_all or any(
                field.keyword not in BY_KEYWORD for field in query.include_fields
            ),
        )
    if not page.rows and not selectors.search_scope_exists(
        study_instance_uid=study_instance_uid, series_instance_uid=series_instance_uid,
    ):
        # An empty list would claim the study (or series) exists and holds nothing; a target resource
        # that does not exist is 404. Checked only when nothing matched: no cost otherwise.
        if series_instance_uid:
            return error_response("series_not_found", "No such series in this study.", 404)
        return error_response("study_not_found", "No such study in this archive.", 404)
    scoped = {Level.STUDY} if study_instance_uid else set()
    if series_instance_uid:
        scoped.add(Level.SERIES)
    root = service_root(request)
    body = qido_results(page, query, service_root=root, scoped_levels=scoped)
    services.patient_data_read_record(
        actor=actor, action=AuditAction.DICOMWEB_SEARCH, study_instance_uid=study_instance_uid or "",
        series_instance_uid=series_instance_uid or "",
        detail={"level": str(level), "query": request.META.get("QUERY_STRING", "")[:500], "results": len(page.rows)},
    )
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
