"""The DICOMweb resources (PS3.18 §10): one view per URL, each method handed to its handler."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from apps.archive import services
from apps.dicom.index_attributes import Level
from apps.dicomweb.views import rendered, retrieve
from apps.dicomweb.views.base import DELETER_ROLES, READER_ROLES, STORER_ROLES, DicomwebView
from apps.dicomweb.views.search import search
from apps.dicomweb.views.store import store


class StudiesView(DicomwebView):
    """/studies — GET: search studies (QIDO-RS); POST: store instances (STOW-RS)."""

    allowed_roles_by_method = {"GET": READER_ROLES, "POST": STORER_ROLES}

    def get(self, request: HttpRequest) -> HttpResponseBase:
        return search(request, self.actor(), Level.STUDY)

    def post(self, request: HttpRequest) -> HttpResponseBase:
        return store(request, self.actor(), None)


class StudyView(DicomwebView):
    """/studies/{study} — GET: retrieve; POST: store into this study; DELETE: delete (admins)."""

    allowed_roles_by_method = {"GET": READER_ROLES, "POST": STORER_ROLES, "DELETE": DELETER_ROLES}

    def get(self, request: HttpRequest, study: str) -> HttpResponseBase:
        return retrieve.retrieve_instances(request, self.actor(), study=study)

    def post(self, request: HttpRequest, study: str) -> HttpResponseBase:
        return store(request, self.actor(), study)

    def delete(self, request: HttpRequest, study: str) -> HttpResponseBase:
        services.study_delete(study_instance_uid=study, actor=self.actor())
        return HttpResponse(status=204)


class SeriesView(DicomwebView):
    """/studies/{study}/series/{series} — GET: retrieve; DELETE: delete (admins)."""

    allowed_roles_by_method = {"GET": READER_ROLES, "DELETE": DELETER_ROLES}

    def get(self, request: HttpRequest, study: str, series: str) -> HttpResponseBase:
        return retrieve.retrieve_instances(request, self.actor(), study=study, series=series)

    def delete(self, request: HttpRequest, study: str, series: str) -> HttpResponseBase:
        services.series_delete(study_instance_uid=study, series_instance_uid=series, actor=self.actor())
        return HttpResponse(status=204)


class InstanceView(DicomwebView):
    allowed_roles = READER_ROLES

    def get(self, request: HttpRequest, study: str, series: str, sop: str) -> HttpResponseBase:
        return retrieve.retrieve_instances(request, self.actor(), study=study, series=series, sop=sop)


class MetadataView(DicomwebView):
    """…/metadata of a study, series or instance."""

    allowed_roles = READER_ROLES

    def get(self, request: HttpRequest, study: str, series: str | None = None, sop: str | None = None) -> HttpResponseBase:
        return retrieve.metadata(request, self.actor(), study=study, series=series, sop=sop)


class FramesView(DicomwebView):
    allowed_roles = READER_ROLES

    def get(self, request: HttpRequest, study: str, series: str, sop: str, frames: str) -> HttpResponseBase:
        return retrieve.frames(request, self.actor(), study=study, series=series, sop=sop, frame_list=frames)


class BulkDataView(DicomwebView):
    allowed_roles = READER_ROLES

    def get(self, request: HttpRequest, study: str, series: str, sop: str, tag_path: str) -> HttpResponseBase:
        return retrieve.bulk_data(request, self.actor(), study=study, series=series, sop=sop, tag_path=tag_path)


class RenderedView(DicomwebView):
    """…/rendered of a study, series, instance or frame."""

    allowed_roles = READER_ROLES

    def get(
        self, request: HttpRequest, study: str, series: str | None = None, sop: str | None = None,
        frames: str | None = None,
    ) -> HttpResponseBase:
        if sop is None:
            return rendered.rendered_collection(request, self.actor(), study=study, series=series)
        assert series is not None
        return rendered.rendered_instance(request, self.actor(), study=study, series=series, sop=sop, frame_list=frames)


class ThumbnailView(DicomwebView):
    """…/thumbnail of a study, series, instance or frame."""

    allowed_roles = READER_ROLES

    def get(
        self, request: HttpRequest, study: str, series: str | None = None, sop: str | None = None,
        frames: str | None = None,
    ) -> HttpResponseBase:
        return rendered.thumbnail(request, self.actor(), study=study, series=series, sop=sop, frame_list=frames)
