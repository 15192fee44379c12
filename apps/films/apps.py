from django.apps import AppConfig


class FilmsConfig(AppConfig):
    name = "apps.films"
    label = "films"

    def ready(self) -> None:
        # A delivered consult report makes the patient's film (apps.consults.events).
        from apps.films import subscribers  # noqa: F401
