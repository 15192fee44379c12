from django.apps import AppConfig


class ConsultRoutingConfig(AppConfig):
    name = "apps.consult_routing"
    label = "consult_routing"
    verbose_name = "Consult routing (cross-tenant)"
