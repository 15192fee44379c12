"""DICOMweb routes under /dicomweb (PS3.18 §10: STOW-RS, QIDO-RS, WADO-RS; §9: WADO-URI at /wado; plus
DELETE of studies and series). UIDs in paths are digits and dots (PS3.5 §9.1); anything else does not match (404)."""

from django.urls import path, register_converter

from apps.dicomweb.views.resources import (
    BulkDataView,
    FramesView,
    InstanceView,
    MetadataView,
    RenderedView,
    SeriesView,
    StudiesView,
    StudyView,
    ThumbnailView,
)
from apps.dicomweb.views.search import InstancesSearchView, SeriesSearchView
from apps.dicomweb.views.wado_uri import WadoUriView


class UidConverter:
    regex = r"[0-9.]{1,64}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class FrameListConverter:
    regex = r"[0-9]+(?:,[0-9]+)*"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(UidConverter, "uid")
register_converter(FrameListConverter, "frames")

STUDY = "studies/<uid:study>"
SERIES = f"{STUDY}/series/<uid:series>"
INSTANCE = f"{SERIES}/instances/<uid:sop>"
FRAMES = f"{INSTANCE}/frames/<frames:frames>"

urlpatterns = [
    path("studies", StudiesView.as_view(), name="dicomweb-studies"),
    path("series", SeriesSearchView.as_view(), name="dicomweb-series-search"),
    path("instances", InstancesSearchView.as_view(), name="dicomweb-instances-search"),
    path("wado", WadoUriView.as_view(), name="dicomweb-wado-uri"),
    path(STUDY, StudyView.as_view(), name="dicomweb-study"),
    path(f"{STUDY}/metadata", MetadataView.as_view(), name="dicomweb-study-metadata"),
    path(f"{STUDY}/rendered", RenderedView.as_view(), name="dicomweb-study-rendered"),
    path(f"{STUDY}/thumbnail", ThumbnailView.as_view(), name="dicomweb-study-thumbnail"),
    path(f"{STUDY}/series", SeriesSearchView.as_view(), name="dicomweb-study-series-search"),
    path(f"{STUDY}/instances", InstancesSearchView.as_view(), name="dicomweb-study-instances-search"),
    path(SERIES, SeriesView.as_view(), name="dicomweb-series"),
    path(f"{SERIES}/metadata", MetadataView.as_view(), name="dicomweb-series-metadata"),
    path(f"{SERIES}/rendered", RenderedView.as_view(), name="dicomweb-series-rendered"),
    path(f"{SERIES}/thumbnail", ThumbnailView.as_view(), name="dicomweb-series-thumbnail"),
    path(f"{SERIES}/instances", InstancesSearchView.as_view(), name="dicomweb-series-instances-search"),
    path(INSTANCE, InstanceView.as_view(), name="dicomweb-instance"),
    path(f"{INSTANCE}/metadata", MetadataView.as_view(), name="dicomweb-instance-metadata"),
    path(f"{INSTANCE}/rendered", RenderedView.as_view(), name="dicomweb-instance-rendered"),
    path(f"{INSTANCE}/thumbnail", ThumbnailView.as_view(), name="dicomweb-instance-thumbnail"),
    path(f"{INSTANCE}/bulkdata/<path:tag_path>", BulkDataView.as_view(), name="dicomweb-bulkdata"),
    path(FRAMES, FramesView.as_view(), name="dicomweb-frames"),
    path(f"{FRAMES}/rendered", RenderedView.as_view(), name="dicomweb-frame-rendered"),
    path(f"{FRAMES}/thumbnail", ThumbnailView.as_view(), name="dicomweb-frame-thumbnail"),
]
