from datetime import datetime

from django.db.models import QuerySet

from apps.audit.models import AuditEvent


def audit_events_list(
    *,
    action: str | None = None,
    actor_name: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.all()
    if action:
        events = events.filter(action=action) if not action.endswith(".") else events.filter(action__startswith=action)
    if actor_name:
        events = events.filter(actor_name=actor_name)
    if object_type:
        events = events.filter(object_type=object_type)
    if object_id:
        events = events.filter(object_id=object_id)
    if since:
        events = events.filter(occurred_at__gte=since)
    if until:
        events = events.filter(occurred_at__lt=until)
    return events
