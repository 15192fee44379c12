from rest_framework import serializers

from tenants.deployment import policy_for
from tenants.models import Deployment, ReferralLink, Tenant, TenantKind


class TenantSerializer(serializers.ModelSerializer):
    domains = serializers.SerializerMethodField()
    plan = serializers.SlugRelatedField(slug_field="code", read_only=True)
    queues = serializers.SerializerMethodField()

    class Meta:
        model = Tenant
        fields = ["slug", "name", "kind", "deployment", "status", "suspended_reason", "plan", "domains", "queues", "created_at"]

    def get_domains(self, tenant: Tenant) -> list[str]:
        return [domain.domain for domain in tenant.domains.all()]

    def get_queues(self, tenant: Tenant) -> list[str]:
        return policy_for(tenant).queues()


class TenantProvisionSerializer(serializers.Serializer):
    slug = serializers.CharField(max_length=40)
    name = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=TenantKind.choices)
    deployment = serializers.ChoiceField(choices=Deployment.choices, required=False)
    domain = serializers.CharField(max_length=253, required=False)
    plan = serializers.CharField(max_length=40, required=False)
    admin_username = serializers.CharField(max_length=150, required=False, default="admin")


class TenantProvisionResultSerializer(serializers.Serializer):
    tenant = TenantSerializer()
    domain = serializers.CharField()
    admin_username = serializers.CharField()
    admin_password = serializers.CharField()


class SuspendSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=300, required=False, default="")


class ReferralLinkSerializer(serializers.ModelSerializer):
    clinic = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    hospital = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = ReferralLink
        fields = ["id", "clinic", "hospital", "active", "sla_minutes", "created_at"]


class ReferralLinkCreateSerializer(serializers.Serializer):
    clinic = serializers.CharField(max_length=40)
    hospital = serializers.CharField(max_length=40)
    sla_minutes = serializers.DictField(child=serializers.IntegerField(min_value=1), required=False)
