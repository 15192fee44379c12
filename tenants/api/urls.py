from django.urls import path

from tenants.api import views

urlpatterns = [
    path("tenants/", views.TenantListCreateView.as_view(), name="tenant-list"),
    path("tenants/<slug:slug>/", views.TenantDetailView.as_view(), name="tenant-detail"),
    path("tenants/<slug:slug>/suspend/", views.TenantSuspendView.as_view(), name="tenant-suspend"),
    path("tenants/<slug:slug>/activate/", views.TenantActivateView.as_view(), name="tenant-activate"),
    path("referral-links/", views.ReferralLinkListCreateView.as_view(), name="referral-link-list"),
    path("referral-links/<int:link_id>/deactivate/", views.ReferralLinkDeactivateView.as_view(), name="referral-link-deactivate"),
]
