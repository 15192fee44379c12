from django.urls import path

from apps.dimse.api import views

urlpatterns = [
    path("dimse/peers/", views.PeerListCreateView.as_view(), name="dimse-peer-list"),
    path("dimse/peers/<int:peer_id>/", views.PeerDetailView.as_view(), name="dimse-peer-detail"),
]
