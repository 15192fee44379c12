from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("archive", "0003_study_identity_conflicts"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="instance",
            index=models.Index(fields=["object_key"], name="archive_instance_object_key"),
        ),
    ]
