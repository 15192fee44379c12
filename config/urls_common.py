"""Routes served on every domain: health, API schema and docs, login."""

from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularSwaggerSplitView

from apps.core.api_schema import DomainSchemaView
from apps.operations.health import healthz, readyz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("api/schema/", DomainSchemaView.as_view(), name="api-schema"),
    # The split view serves its start-up script as a file, so the page needs no inline script (CSP).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("accounts/login/", auth_views.LoginView.as_view(template_name="accounts/login.html"), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Django's set_language: the language switch in the pages' header posts here.
    path("i18n/", include("django.conf.urls.i18n")),
]

api_common = [
    path("", include("apps.accounts.api.urls")),
    path("", include("apps.audit.api.urls")),
]
