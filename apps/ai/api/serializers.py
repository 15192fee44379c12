from __future__ import annotations

from rest_framework import serializers

from apps.ai.models import AIJob, RoutingRule
from apps.ai.routing_patterns import pattern_refusal


class AIJobSerializer(serializers.ModelSerializer):
    class Meta:
        model = AIJob
        fields = [
            "id", "engine_name", "engine_version", "study_instance_uid", "state", "trigger", "routing_rule", "forced",
            "progress", "attempts", "error_code", "error_detail", "source_series_instance_uid",
            "result_series_instance_uids", "summary", "created_at", "started_at", "finished_at",
        ]
        read_only_fields = fields


class AIJobStartSerializer(serializers.Serializer):
    engine_name = serializers.CharField(max_length=100)
    study_instance_uid = serializers.RegexField(r"^[0-9]+(\.[0-9]+)*$", max_length=64)
    forced = serializers.BooleanField(default=False)


class RoutingRuleSerializer(serializers.ModelSerializer):
    # A rule saved before patterns were checked for RE2 matches nothing: say why, so an admin can fix it.
    study_description_pattern_error = serializers.SerializerMethodField()

    class Meta:
        model = RoutingRule
        fields = ["id", "name", "engine_name", "modality", "body_part", "study_description_pattern",
                  "study_description_pattern_error", "enabled", "created_at"]
        read_only_fields = ["id", "created_at"]

    def get_study_description_pattern_error(self, rule: RoutingRule) -> str | None:
        return pattern_refusal(rule.study_description_pattern)


class EngineUpdateSerializer(serializers.Serializer):
    enabled = serializers.BooleanField(required=False)
    timeout_seconds = serializers.FloatField(required=False)


class ExternalCallbackSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["succeeded", "failed"])
    result_series_instance_uids = serializers.ListField(
        child=serializers.RegexField(r"^[0-9]+(\.[0-9]+)*$", max_length=64), required=False, default=list,
        max_length=20,
    )
    summary = serializers.DictField(required=False, default=dict)
    error = serializers.CharField(required=False, default="", allow_blank=True, max_length=4000)
