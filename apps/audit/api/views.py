from django.utils.dateparse import parse_datetime
from rest_framework import serializers
from rest_framework.generics import ListAPIView

from apps.accounts.roles import ADMIN_ROLES, PLATFORM_ROLES
from apps.audit.models import AuditEvent
from apps.audit.selectors import audit_events_list


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "id", "occurred_at", "tenant_slug", "actor_type", "actor_id", "actor_name", "action",
            "object_type", "object_id", "client_ip", "outcome", "detail",
        ]


class AuditEventListView(ListAPIView):
    """The tenant's audit trail, newest first; for tenant admins (and operators on the public domain)."""

    allowed_roles = ADMIN_ROLES | PLATFORM_ROLES
    serializer_class = AuditEventSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        params = self.request.query_params
        since = parse_datetime(params["since"]) if params.get("since") else None
        until = parse_datetime(params["until"]) if params.get("until") else None
        return audit_events_list(
            action=params.get("action"), actor_name=params.get("actor"), object_type=params.get("object_type"),
            object_id=params.get("object_id"), since=since, until=until,
        )
