"""Bits Allocated on the instance index: QIDO-RS returns it at instance level (PS3.18 Table 10.6.3-5).
Instances indexed before it get it from their stored DICOM JSON."""

from django.db import migrations, models

BACKFILL_FROM_METADATA = """
UPDATE archive_instance
SET bits_allocated = (metadata_json::jsonb #>> '{00280100,Value,0}')::integer
WHERE bits_allocated IS NULL AND metadata_json LIKE '%"00280100"%'
"""


class Migration(migrations.Migration):

    dependencies = [
        ('archive', '0004_instance_object_key_index'),
    ]

    operations = [
        migrations.AddField(
            model_name='instance',
            name='bits_allocated',
            field=models.IntegerField(blank=True, null=True),
        ),
        migrations.RunSQL(BACKFILL_FROM_METADATA, reverse_sql=migrations.RunSQL.noop),
    ]
