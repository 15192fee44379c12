"""Acquisition DateTime on the instance index, for QIDO-RS DT matching (PS3.4 §C.2.2.2.5). Instances
indexed before it get it from their stored DICOM JSON."""

import json

from django.db import migrations, models

from apps.dicom.headers import datetime_key


def backfill_from_metadata(apps, schema_editor):
    Instance = apps.get_model("archive", "Instance")
    pending = Instance.objects.filter(metadata_json__contains='"0008002A"').only("id", "metadata_json")
    for instance in pending.iterator(chunk_size=2000):
        values = json.loads(instance.metadata_json).get("0008002A", {}).get("Value") or [""]
        key = datetime_key(str(values[0]))
        if key:
            Instance.objects.filter(id=instance.id).update(acquisition_datetime=key)


class Migration(migrations.Migration):

    dependencies = [
        ('archive', '0005_instance_bits_allocated'),
    ]

    operations = [
        migrations.AddField(
            model_name='instance',
            name='acquisition_datetime',
            field=models.CharField(blank=True, default='', max_length=21),
        ),
        migrations.RunPython(backfill_from_metadata, migrations.RunPython.noop),
    ]
