from django.urls import path

from apps.consults.api import views

urlpatterns = [
    path("consults/", views.ConsultListCreateView.as_view(), name="consult-list"),
    path("consults/turnaround/", views.TurnaroundView.as_view(), name="consult-turnaround"),
    path("consults/<uuid:route_id>/", views.ConsultDetailView.as_view(), name="consult-detail"),
    path("consults/<uuid:route_id>/report.pdf", views.ConsultReportPdfView.as_view(), name="consult-report-pdf"),
    path("consults/<uuid:route_id>/attachments/", views.ConsultAttachmentListCreateView.as_view(),
         name="consult-attachment-list"),
    path("consults/<uuid:route_id>/attachments/<int:attachment_id>/", views.ConsultAttachmentDetailView.as_view(),
         name="consult-attachment-detail"),
    path("consults/ai-findings/acceptance/", views.AIEngineAcceptanceView.as_view(), name="consult-ai-acceptance"),
    path("consults/<uuid:route_id>/ai-findings/", views.ConsultAIFindingListView.as_view(),
         name="consult-ai-finding-list"),
    path("consults/<uuid:route_id>/ai-findings/<uuid:job_id>/<str:tracking_uid>/verdict/",
         views.ConsultAIFindingVerdictView.as_view(), name="consult-ai-finding-verdict"),
    path("consults/<uuid:route_id>/<slug:action>/", views.ConsultActionView.as_view(), name="consult-action"),
    path("webhooks/", views.WebhookListCreateView.as_view(), name="webhook-list"),
    path("webhooks/<int:endpoint_id>/", views.WebhookDetailView.as_view(), name="webhook-detail"),
]
