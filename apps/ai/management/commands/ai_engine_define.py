"""Give a tenant an ONNX model or a vendor engine (an operator's action: paths are on the workers)."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.ai.models import EngineKind
from apps.ai.services import engine_define
from apps.audit.services import Actor
from apps.core.errors import DomainError
from tenants.context import tenant_entered
from tenants.models import Tenant


class Command(BaseCommand):
    help = ("Define (or redefine) an ONNX or external AI engine for a tenant from a JSON definition file "
            "(see apps.ai.registry for its fields).")

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--tenant", required=True, help="Tenant slug.")
        parser.add_argument("--name", required=True, help="Engine name, e.g. vendor-bone-tumor.")
        parser.add_argument("--kind", required=True, choices=[EngineKind.ONNX.value, EngineKind.EXTERNAL.value])
        parser.add_argument("--definition", required=True, type=Path, help="Path of the JSON definition.")
        parser.add_argument("--timeout", type=float, default=600.0, help="Time-out of one job, in seconds.")
        parser.add_argument("--disabled", action="store_true", help="Define it without enabling it.")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant {options['tenant']!r}.")
        try:
            definition = json.loads(options["definition"].read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise CommandError(f"Cannot read the definition: {error}") from error
        if not isinstance(definition, dict):
            raise CommandError("The definition must be a JSON object.")
        with tenant_entered(tenant):
            try:
                engine = engine_define(engine_name=options["name"], kind=options["kind"], definition=definition,
                                       actor=Actor.system("ai_engine_define"), enabled=not options["disabled"],
                                       timeout_seconds=options["timeout"])
            except DomainError as error:
                raise CommandError(f"{error.code}: {error.detail}") from error
        self.stdout.write(json.dumps(engine.as_json()))
