"""Each tenant's called AE title for DIMSE (docs/dimse.md): its slug upper-cased, cut to 16
characters. Added nullable, filled for the tenants that exist, then made required and unique."""

from django.db import migrations, models

import tenants.models


def ae_titles_backfill(apps, schema_editor):  # type: ignore[no-untyped-def]
    Tenant = apps.get_model("tenants", "Tenant")
    for tenant in Tenant.objects.filter(dimse_ae_title__isnull=True).only("pk", "slug"):
        tenant.dimse_ae_title = tenants.models.default_ae_title_for_slug(tenant.slug)
        tenant.save(update_fields=["dimse_ae_title"])


class Migration(migrations.Migration):

    dependencies = [
        ("tenants", "0004_tenant_time_zone"),
    ]

    operations = [
        migrations.AddField(
            model_name="tenant",
            name="dimse_ae_title",
            field=models.CharField(max_length=16, null=True),
        ),
        migrations.RunPython(ae_titles_backfill, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="tenant",
            name="dimse_ae_title",
            field=models.CharField(max_length=16, unique=True, validators=[tenants.models.ae_title_validator]),
        ),
    ]
