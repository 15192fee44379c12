from rest_framework import serializers
from rest_framework.generics import ListAPIView

from apps.accounts.roles import ADMIN_ROLES, PLATFORM_ROLES
from apps.audit.models import AuditEvent
from apps.audit.selectors import audit_events_list
from apps.core.requests import query_datetime


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
        since = query_datetime(params, "since")
        until = query_datetime(params, "until")
        return audit_events_list(
            action=params.get("action"), actor_name=params.get("actor"), object_type=params.get("object_type"),
            object_id=params.get("object_id"), since=since, until=until,
        )
