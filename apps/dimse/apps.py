from django.apps import AppConfig


class DimseConfig(AppConfig):
    name = "apps.dimse"
    label = "dimse"
    verbose_name = "DICOM networking (DIMSE)"
