from django.urls import path

from apps.ai.api import views

urlpatterns = [
    path("ai/engines/", views.EngineListView.as_view(), name="ai-engine-list"),
    path("ai/engines/<str:engine_name>/", views.EngineDetailView.as_view(), name="ai-engine-detail"),
    path("ai/routing-rules/", views.RoutingRuleListCreateView.as_view(), name="ai-routing-rule-list"),
    path("ai/routing-rules/<int:rule_id>/", views.RoutingRuleDetailView.as_view(), name="ai-routing-rule-detail"),
    path("ai/jobs/", views.JobListStartView.as_view(), name="ai-job-list"),
    path("ai/jobs/<uuid:job_id>/", views.JobDetailView.as_view(), name="ai-job-detail"),
    path("ai/jobs/<uuid:job_id>/cancel/", views.JobCancelView.as_view(), name="ai-job-cancel"),
    path("ai/jobs/<uuid:job_id>/callback/", views.JobCallbackView.as_view(), name="ai-job-callback"),
]
