"""A tenant's domain: its API, DICOMweb and pages."""

from django.urls import include, path
from django.views.generic import RedirectView

from apps.dicomweb.urls import urlpatterns as dicomweb_urlpatterns
from apps.storage.views import presigned_object
from apps.viewer.views import app_config as viewer_app_config
from config.urls_common import api_common
from config.urls_common import urlpatterns as common

urlpatterns = common + [
    path("api/v1/", include(api_common + [path("", include("apps.uploads.api.urls"))])),
    path("dicomweb/", include("apps.dicomweb.urls")),
    path("api/v1/", include("apps.ai.api.urls")),
    path("api/v1/", include("apps.consults.api.urls")),
    path("api/v1/", include("apps.films.api.urls")),
    path("api/v1/", include("apps.dimse.api.urls")),
    # The same DICOMweb views, read-only, for one consult's studies from the sending clinic's archive
    # (docs/consults.md); before the pages, whose `<id>/<action>` would otherwise match.
    path("consults/<uuid:consult_id>/dicomweb/", include((dicomweb_urlpatterns, "consult_dicomweb"))),
    path("consults/", include("apps.consults.pages.urls")),
    # The embedded diagnostic viewer (docs/viewer.md): OHIF's page under /viewer/, its configuration
    # where OHIF's page loads it; OHIF's other files are served at the root by WhiteNoise.
    path("viewer/", include("apps.viewer.urls")),
    path("app-config.js", viewer_app_config, name="viewer-app-config"),
    path("uploads/", include("apps.uploads.pages.urls")),
    # Presigned filesystem objects, bound to this tenant (the S3 backend's links go to S3).
    path("storage/objects/<str:token>", presigned_object, name="storage-presigned"),
    path("", RedirectView.as_view(url="/consults/", permanent=False)),
]

# Errors on API and DICOMweb paths are JSON {code, detail} like every other answer there, and a
# dependency outage is a 503 to retry (apps.core.outages).
handler400 = "apps.core.errors.bad_request_handler"
handler404 = "apps.core.errors.not_found_handler"
handler500 = "apps.core.errors.server_error_handler"
