from django.urls import path

from apps.uploads.api import tus_views, views

urlpatterns = [
    path("uploads/", views.UploadSessionListOpenView.as_view(), name="upload-list"),
    path("uploads/<uuid:session_id>/", views.UploadSessionDetailView.as_view(), name="upload-detail"),
    path("uploads/<uuid:session_id>/files/", views.UploadFileView.as_view(), name="upload-files"),
    path("uploads/<uuid:session_id>/finish/", views.UploadSessionFinishView.as_view(), name="upload-finish"),
    path("uploads/<uuid:session_id>/items/", views.UploadItemListView.as_view(), name="upload-items"),
    # Resumable transfers (tus 1.0.0, docs/uploads.md).
    path("uploads/<uuid:session_id>/tus/", tus_views.TusCreateView.as_view(), name="upload-tus"),
    path("uploads/<uuid:session_id>/tus/<uuid:transfer_id>/", tus_views.TusTransferView.as_view(), name="upload-tus-transfer"),
]
