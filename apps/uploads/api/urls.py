from django.urls import path

from apps.uploads.api import views

urlpatterns = [
    path("uploads/", views.UploadSessionListOpenView.as_view(), name="upload-list"),
    path("uploads/<uuid:session_id>/", views.UploadSessionDetailView.as_view(), name="upload-detail"),
    path("uploads/<uuid:session_id>/files/", views.UploadFileView.as_view(), name="upload-files"),
    path("uploads/<uuid:session_id>/finish/", views.UploadSessionFinishView.as_view(), name="upload-finish"),
    path("uploads/<uuid:session_id>/items/", views.UploadItemListView.as_view(), name="upload-items"),
]
