from django.urls import path, re_path

from apps.viewer import views

urlpatterns = [
    path("", views.viewer_page, name="viewer-page"),
    re_path(r"^(?P<route>.+)$", views.viewer_page, name="viewer-route"),
]
