"""Typed audit actions (docs/architecture.md "The workflow mechanism"): every event names an
`AuditAction`; the code passes the enum, never a free string; the trail stores the plain string and
refuses an action it does not know."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from apps.audit.actions import AuditAction
from apps.audit.models import AuditEvent
from apps.audit.services import audit_record
from tests.support.platform import unique_suffix

REPO_ROOT = Path(__file__).resolve().parents[2]
# The functions whose `action` ends up in the audit trail.
AUDITING_FUNCTIONS = {"audit_record", "audited_move", "patient_data_read_record", "film_access_record",
                      "_audit_in_tenant", "_stored_pdf"}


def _code_files() -> list[Path]:
    return [path for folder in ("apps", "tenants", "config") for path in (REPO_ROOT / folder).rglob("*.py")
            if "migrations" not in path.parts]


def _called_name(call: ast.Call) -> str:
    return call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")


def test_no_audit_call_passes_a_free_string_as_its_action():
    free = []
    for path in _code_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and _called_name(node) in AUDITING_FUNCTIONS):
                continue
            values = [keyword.value for keyword in node.keywords if keyword.arg == "action"]
            if _called_name(node) == "_audit_in_tenant" and len(node.args) > 1:
                values.append(node.args[1])
            free += [f"{path.relative_to(REPO_ROOT)}:{node.lineno}" for value in values
                     if isinstance(value, ast.Constant | ast.JoinedStr)]

    assert free == []


def test_every_action_the_code_names_is_in_the_enum():
    named = {node.attr for path in _code_files() for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "AuditAction"}

    assert sorted(name for name in named if name not in AuditAction.__members__) == []
    assert {"AI_JOB_SUCCEED", "CONSULT_DELIVER", "FILM_RENDER", "UPLOAD_COMPLETE", "WEBHOOK_FAILED"} <= named


def test_an_action_is_stored_as_its_plain_string(platform):
    with platform.schema("clinic_a"):
        event = AuditEvent.objects.get(pk=audit_record(action=AuditAction.WORKER_PROBE, object_id=unique_suffix()))

    assert (event.action, type(event.action)) == ("worker.probe", str)


def test_an_unknown_action_is_refused_and_nothing_is_written(platform):
    object_id = unique_suffix()
    with platform.schema("clinic_a"):
        with pytest.raises(ValueError, match="no.such_action"):
            audit_record(action="no.such_action", object_type="probe", object_id=object_id)  # type: ignore[arg-type]

        assert not AuditEvent.objects.filter(object_id=object_id).exists()
