from django.urls import path

from apps.uploads.pages import views

urlpatterns = [
    path("", views.upload_page, name="upload-page"),
]
