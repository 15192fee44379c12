"""The operator's `ai_engine_define` command: a valid definition is saved, a bad one is refused."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from apps.ai.selectors import engine_registered


def test_an_external_engine_defined_by_the_command_is_registered_for_that_tenant_only(platform, tmp_path, capsys):
    definition = tmp_path / "vendor.json"
    definition.write_text(json.dumps({"version": "3.2", "vendor": "Bone AI", "modalities": ["CT", "DX"],
                                      "minimum_slices": 1, "url": "https://vendor.example/jobs"}))
    call_command("ai_engine_define", "--tenant", platform.tenants["hospital_b"].slug, "--name", "bone-tumor",
                 "--kind", "external", "--definition", str(definition), "--timeout", "900")
    printed = json.loads(capsys.readouterr().out)
    assert (printed["name"], printed["version"], printed["kind"], printed["timeout_seconds"]) == (
        "bone-tumor", "3.2", "external", 900.0)
    with platform.schema("hospital_b"):
        assert engine_registered("bone-tumor").descriptor.modalities == ("CT", "DX")
    with platform.schema("clinic_a"):
        assert engine_registered("bone-tumor") is None


def test_an_external_engine_without_a_url_is_refused(platform, tmp_path):
    definition = tmp_path / "vendor.json"
    definition.write_text(json.dumps({"version": "1"}))
    with pytest.raises(CommandError, match="engine_definition_invalid: an external engine needs an http"):
        call_command("ai_engine_define", "--tenant", platform.tenants["hospital_b"].slug, "--name", "no-url",
                     "--kind", "external", "--definition", str(definition))
