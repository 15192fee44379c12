"""`{% viewer_url uids %}` and `{% viewer_url uids consult=id %}`: where a page opens studies in OHIF."""

from __future__ import annotations

from django import template

from apps.viewer import app_config

register = template.Library()


@register.simple_tag
def viewer_url(study_instance_uids: list[str], consult: object = None) -> str:
    return app_config.viewer_url(list(study_instance_uids), consult_id=str(consult) if consult else None)
