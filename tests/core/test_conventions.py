"""Rules of docs/conventions.md that a linter does not hold: every setting is declared once, in
config/settings/base.py, so each can be set from the environment and is documented where it is read;
only tenants.context switches the connection's schema."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from django.conf import settings

REPO_ROOT = Path(__file__).resolve().parents[2]
SETTING_WITH_A_FALLBACK = re.compile(r"getattr\(\s*settings\s*,\s*[\"'](?P<name>[A-Z0-9_]+)[\"']\s*,")


def _code_files() -> list[Path]:
    return [path for folder in ("apps", "tenants") for path in (REPO_ROOT / folder).rglob("*.py")
            if "migrations" not in path.parts]


def test_code_reads_no_setting_with_a_fallback_of_its_own():
    fallbacks = [f"{path.relative_to(REPO_ROOT)}: {match.group('name')}"
                 for path in _code_files() for match in SETTING_WITH_A_FALLBACK.finditer(path.read_text())]

    assert fallbacks == []


def test_every_setting_the_code_reads_is_declared():
    read = {match for path in _code_files() for match in re.findall(r"settings\.([A-Z][A-Z0-9_]+)", path.read_text())}

    assert sorted(name for name in read if not hasattr(settings, name)) == []



# The database backend is where a switch is carried out (it overrides set_tenant), not a caller of one.
DATABASE_BACKEND_MODULE = REPO_ROOT / "tenants" / "postgresql_backend" / "base.py"
TENANCY_CONTEXT_MODULE = REPO_ROOT / "tenants" / "context.py"
# django-tenants' ways to switch the connection's tenant, each a second way beside tenants.context.
SCHEMA_SWITCHES = {"schema_context", "tenant_context", "set_tenant", "set_schema", "set_schema_to_public"}


def _schema_switches(source: str) -> list[tuple[int, str]]:
    """(line, name) of every import or call of a django-tenants schema switch, and of every write of
    the connection's `tenant`, in Python `source`, in line order."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("django_tenants"):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name in SCHEMA_SWITCHES]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SCHEMA_SWITCHES:
            found.append((node.lineno, node.func.attr))
        elif isinstance(node, ast.Assign):
            found += [(node.lineno, "connection.tenant =") for target in node.targets
                      if isinstance(target, ast.Attribute) and target.attr == "tenant"
                      and isinstance(target.value, ast.Name) and target.value.id == "connection"]
    return sorted(found, key=lambda switch: switch[0])


def test_only_the_tenancy_context_switches_the_schema():
    """docs/architecture.md "The tenancy context": tenants.context is the one way to enter a tenant or
    the public schema; code and tests alike use its tenant_entered() and public_entered()."""
    files = [path for folder in ("apps", "tenants", "config", "tests") for path in (REPO_ROOT / folder).rglob("*.py")
             if path not in (TENANCY_CONTEXT_MODULE, DATABASE_BACKEND_MODULE)]

    switches = [f"{path.relative_to(REPO_ROOT)}:{line} {name}"
                for path in files for line, name in _schema_switches(path.read_text())]

    assert switches == []


def test_the_rule_finds_every_way_of_switching_the_schema():
    source = (
        "from django_tenants.utils import get_public_schema_name, schema_context, tenant_context\n"
        "connection.set_tenant(tenant)\n"
        "connection.set_schema('clinic')\n"
        "connection.set_schema_to_public()\n"
        "connection.tenant = tenant\n"
    )

    assert _schema_switches(source) == [
        (1, "schema_context"), (1, "tenant_context"), (2, "set_tenant"), (3, "set_schema"),
        (4, "set_schema_to_public"), (5, "connection.tenant ="),
    ]


def test_a_module_over_500_lines_says_at_its_top_why_it_is_not_split():
    """docs/conventions.md "Names, comments, tests": the reason is in the module's docstring."""
    unexplained = []
    for folder in ("apps", "tenants", "config", "launcher"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            text = path.read_text()
            if text.count("\n") > 500 and "over 500 lines on purpose" not in (ast.get_docstring(ast.parse(text)) or ""):
                unexplained.append(str(path.relative_to(REPO_ROOT)))
    assert unexplained == []
