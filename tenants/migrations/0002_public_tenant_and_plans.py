"""After `migrate_schemas --shared` the platform is ready: the public tenant, its domain and the plans exist."""

import os

from django.db import migrations

PLANS = [
    # code, name, storage bytes, studies per month, AI jobs per month
    ("starter", "Starter", 50 * 1024**3, 500, 200),
    ("standard", "Standard", 500 * 1024**3, 5000, 2000),
    ("unlimited", "Unlimited", None, None, None),
]


def create_public_tenant_and_plans(apps, schema_editor):
    Tenant = apps.get_model("tenants", "Tenant")
    Domain = apps.get_model("tenants", "Domain")
    Plan = apps.get_model("tenants", "Plan")
    for code, name, storage, studies, ai_jobs in PLANS:
        Plan.objects.update_or_create(
            code=code,
            defaults={"name": name, "storage_bytes_quota": storage, "studies_per_month_quota": studies,
                      "ai_jobs_per_month_quota": ai_jobs},
        )
    public, _ = Tenant.objects.get_or_create(
        schema_name="public", defaults={"slug": "public", "name": "Imaging Cloud platform", "kind": "", "deployment": ""}
    )
    domain = os.environ.get("PLATFORM_DOMAIN", "localhost")
    Domain.objects.get_or_create(domain=domain, defaults={"tenant": public, "is_primary": True})


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]
    operations = [migrations.RunPython(create_public_tenant_and_plans, migrations.RunPython.noop)]
