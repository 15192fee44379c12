"""Routing rules: which engine runs on which newly stable study."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from apps.ai import selectors
from apps.ai.models import JobTrigger, RoutingRule
from apps.ai.routing_patterns import PatternNotSupported, compile_study_description_pattern
from apps.ai.services.base import (
    AI_ACTOR,
    MAX_ROUTING_RULES_PER_TENANT,
    InvalidRoutingRule,
    RoutingRulesLimitReached,
    _advisory_lock,
)
from apps.ai.services.jobs import JobStart, job_start
from apps.audit.actions import AuditAction
from apps.audit.services import Actor, audit_record
from apps.core.errors import DomainError, NotFound

logger = logging.getLogger(__name__)


def routing_rule_create(
    *, name: str, engine_name: str, actor: Actor, modality: str = "", body_part: str = "",
    study_description_pattern: str = "", enabled: bool = True, created_by: Any = None,
) -> RoutingRule:
    if selectors.engine_registered(engine_name) is None:
        raise InvalidRoutingRule(f"No engine named {engine_name!r}.")
    if study_description_pattern:
        try:
            compile_study_description_pattern(study_description_pattern)
        except PatternNotSupported as error:
            raise InvalidRoutingRule(f"study_description_pattern is not accepted: {error}") from error
    with transaction.atomic():
        _advisory_lock("ai-routing-rules")
        if RoutingRule.objects.count() >= MAX_ROUTING_RULES_PER_TENANT:
            raise RoutingRulesLimitReached(
                f"A tenant has at most {MAX_ROUTING_RULES_PER_TENANT} routing rules; delete one first.")
        rule = RoutingRule.objects.create(
            name=name, engine_name=engine_name, modality=modality.strip().upper(), body_part=body_part.strip().upper(),
            study_description_pattern=study_description_pattern, enabled=enabled, created_by=created_by,
        )
        audit_record(action=AuditAction.AI_ROUTING_RULE_CREATE, actor=actor, object_type="ai_routing_rule", object_id=rule.pk,
                     detail={"engine": engine_name, "modality": rule.modality, "body_part": rule.body_part,
                             "pattern": study_description_pattern})
    return rule


def routing_rule_delete(*, rule_id: int, actor: Actor) -> None:
    with transaction.atomic():
        deleted, _ = RoutingRule.objects.filter(pk=rule_id).delete()
        if not deleted:
            raise NotFound("No such routing rule.", code="routing_rule_not_found")
        audit_record(action=AuditAction.AI_ROUTING_RULE_DELETE, actor=actor, object_type="ai_routing_rule", object_id=rule_id)


def _rule_matches(rule: RoutingRule, study_description: str, series: list[dict[str, Any]]) -> bool:
    """Whether the rule starts its engine on a study; the pattern is matched by RE2, in time linear
    in the description (see apps.ai.routing_patterns), never by a backtracking engine."""
    if rule.study_description_pattern:
        try:
            pattern = compile_study_description_pattern(rule.study_description_pattern)
        except PatternNotSupported as error:
            # Saved before patterns were checked for RE2 (e.g. a look-ahead): it cannot be matched
            # safely, so it matches nothing until an admin replaces it.
            logger.warning("Routing rule %s is skipped: its pattern is not supported: %s", rule.pk, error)
            return False
        if not pattern.matches(study_description):
            return False
    for item in series:
        if rule.modality and item["modality"].upper() != rule.modality:
            continue
        if rule.body_part and (item["body_part_examined"] or "").upper() != rule.body_part:
            continue
        return True
    return False


def jobs_route_study(*, study_instance_uid: str) -> list[JobStart]:
    """Start the engine of every enabled routing rule that matches the study (on study stable).

    A rule whose engine is disabled, refuses the study or is over quota is skipped (and logged):
    routing never fails the event that triggered it.
    """
    study = selectors.study_live(study_instance_uid)
    if study is None:
        return []
    series = selectors.image_series_of_study(study_instance_uid)
    started: list[JobStart] = []
    for rule in selectors.routing_rules(enabled_only=True):
        if not _rule_matches(rule, study.study_description, series):
            continue
        try:
            started.append(job_start(
                engine_name=rule.engine_name, study_instance_uid=study_instance_uid, actor=AI_ACTOR,
                trigger=JobTrigger.ROUTING, routing_rule=rule,
            ))
        except DomainError as error:
            logger.info("Routing rule %s skipped study %s: %s", rule.pk, study_instance_uid, error.detail)
    return started
