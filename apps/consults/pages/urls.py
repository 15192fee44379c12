from django.urls import path

from apps.consults.pages import ai_findings_views, views

urlpatterns = [
    path("", views.consult_list, name="consult-list-page"),
    path("<uuid:route_id>/", views.consult_page, name="consult-page"),
    path("<uuid:route_id>/report", views.consult_page_report, name="consult-page-report"),
    path("<uuid:route_id>/addendum", views.consult_page_addendum, name="consult-page-addendum"),
    path("<uuid:route_id>/ai-findings/<uuid:job_id>/<str:tracking_uid>/verdict",
         ai_findings_views.consult_page_ai_finding_verdict, name="consult-page-ai-finding-verdict"),
    path("<uuid:route_id>/<slug:action>", views.consult_page_action, name="consult-page-action"),
]
