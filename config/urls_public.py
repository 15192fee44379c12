"""The platform (public schema) domain: operator API."""

from django.urls import include, path

from config.urls_common import api_common
from config.urls_common import urlpatterns as common

urlpatterns = common + [
    path("api/v1/", include(api_common + [path("", include("tenants.api.urls"))])),
    # The patient's cloud film (no account: an opaque link and an access code).
    path("film/", include("apps.films.patient_urls")),
]

# Errors on API and DICOMweb paths are JSON {code, detail} like every other answer there, and a
# dependency outage is a 503 to retry (apps.core.outages).
handler400 = "apps.core.errors.bad_request_handler"
handler404 = "apps.core.errors.not_found_handler"
handler500 = "apps.core.errors.server_error_handler"
