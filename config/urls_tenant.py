"""A tenant's domain: its API, DICOMweb and pages."""

from django.urls import include, path
from django.views.generic import RedirectView

from config.urls_common import api_common
from config.urls_common import urlpatterns as common

urlpatterns = common + [
    path("api/v1/", include(api_common + [path("", include("apps.uploads.api.urls"))])),
    path("dicomweb/", include("apps.dicomweb.urls")),
    path("api/v1/", include("apps.ai.api.urls")),
    path("api/v1/", include("apps.consults.api.urls")),
    path("api/v1/", include("apps.films.api.urls")),
    path("consults/", include("apps.consults.pages.urls")),
    path("", RedirectView.as_view(url="/consults/", permanent=False)),
]

# Errors on API and DICOMweb paths are JSON {code, detail} like every other answer there.
handler400 = "apps.core.errors.bad_request_handler"
handler404 = "apps.core.errors.not_found_handler"
handler500 = "apps.core.errors.server_error_handler"
