from django.apps import AppConfig


class ConsultsConfig(AppConfig):
    name = "apps.consults"
    label = "consults"
