from django.apps import AppConfig


class AiConfig(AppConfig):
    name = "apps.ai"
    label = "ai"

    def ready(self) -> None:
        # Registers the study-stable subscriber that starts routed jobs.
        from apps.ai import subscribers  # noqa: F401
