from django.apps import AppConfig


class FilmLinksConfig(AppConfig):
    name = "apps.film_links"
    label = "film_links"
    verbose_name = "Cloud film links (token lookup)"
