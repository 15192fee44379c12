from django.urls import path

from apps.films.api import views

urlpatterns = [
    path("films/", views.FilmListCreateView.as_view(), name="film-list"),
    path("films/<int:film_id>/", views.FilmDetailView.as_view(), name="film-detail"),
    path("films/<int:film_id>/links/", views.FilmLinkIssueView.as_view(), name="film-link-issue"),
    path("films/<int:film_id>/links/<int:link_id>/", views.FilmLinkDetailView.as_view(), name="film-link-detail"),
    path("films/<int:film_id>/links/<int:link_id>/revoke/", views.FilmLinkRevokeView.as_view(),
         name="film-link-revoke"),
]
