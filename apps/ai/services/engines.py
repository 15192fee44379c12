"""Configuring engines: per-tenant settings and external engine definitions."""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction

from apps.ai import selectors
from apps.ai.engines.base import EngineDescriptor
from apps.ai.models import EngineSetting
from apps.ai.registry import RegisteredEngine, validate_definition
from apps.ai.services.base import EngineNotFound
from apps.audit.actions import AuditAction
from apps.audit.services import Actor, audit_record
from apps.core.errors import Conflict, InvalidInput


def engine_setting_update(
    *, engine_name: str, actor: Actor, enabled: bool | None = None, timeout_seconds: float | None = None
) -> RegisteredEngine:
    """Enable or disable an engine for this tenant, or change its time-out."""
    engine = selectors.engine_registered(engine_name)
    if engine is None:
        raise EngineNotFound(f"No engine named {engine_name!r}.")
    if timeout_seconds is not None and not 0 < timeout_seconds <= 6 * 3600:
        raise InvalidInput("timeout_seconds must be between 0 and 21600.", code="invalid_timeout")
    with transaction.atomic():
        setting, _ = EngineSetting.objects.select_for_update().get_or_create(
            engine_name=engine_name, defaults={"kind": engine.kind, "definition": dict(engine.definition)},
        )
        if enabled is not None:
            setting.enabled = enabled
        if timeout_seconds is not None:
            setting.timeout_seconds = timeout_seconds
        setting.save()
        audit_record(action=AuditAction.AI_ENGINE_CONFIGURE, actor=actor, object_type="ai_engine", object_id=engine_name,
                     detail={"enabled": setting.enabled, "timeout_seconds": setting.timeout_seconds})
    refreshed = selectors.engine_registered(engine_name)
    assert refreshed is not None
    return refreshed


def engine_define(
    *, engine_name: str, kind: str, definition: dict[str, Any], actor: Actor, enabled: bool = True,
    timeout_seconds: float = 600.0,
) -> RegisteredEngine:
    """Give this tenant an ONNX model or a vendor engine (an operator's action: the model path is
    a path on the workers). The definition is validated before it is saved."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{1,99}", engine_name):
        raise InvalidInput("engine names are 2–100 lowercase letters, digits, '.', '_' or '-'.", code="invalid_name")
    if engine_name in {descriptor.name for descriptor in _built_in_names()}:
        raise Conflict(f"{engine_name} is a built-in engine.", code="engine_built_in")
    validate_definition(engine_name, kind, definition)
    with transaction.atomic():
        EngineSetting.objects.update_or_create(
            engine_name=engine_name,
            defaults={"kind": kind, "definition": definition, "enabled": enabled, "timeout_seconds": timeout_seconds},
        )
        audit_record(action=AuditAction.AI_ENGINE_DEFINE, actor=actor, object_type="ai_engine", object_id=engine_name,
                     detail={"kind": kind, "version": str(definition.get("version", ""))})
    engine = selectors.engine_registered(engine_name)
    assert engine is not None
    return engine


def _built_in_names() -> list[EngineDescriptor]:
    from apps.ai.registry import built_in_descriptors

    return built_in_descriptors()
