from django.urls import path

from apps.accounts.api import views

urlpatterns = [
    path("me/", views.MeView.as_view(), name="me"),
    path("users/", views.UserListCreateView.as_view(), name="user-list"),
    path("users/<int:user_id>/", views.UserDetailView.as_view(), name="user-detail"),
    path("tokens/", views.TokenListIssueView.as_view(), name="token-list"),
    path("tokens/<int:token_id>/", views.TokenRevokeView.as_view(), name="token-revoke"),
]
