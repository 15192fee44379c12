from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('archive', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='StorageExtrasUsage',
            fields=[
                ('id', models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False)),
                ('rendered_cache_bytes', models.BigIntegerField(default=0)),
                ('rendered_cache_entries', models.BigIntegerField(default=0)),
                ('staged_upload_bytes', models.BigIntegerField(default=0)),
                ('updated_at', models.DateTimeField(auto_now=True)),
            ],
            options={
                'constraints': [models.CheckConstraint(condition=models.Q(('id', 1)), name='storage_extras_usage_single_row')],
            },
        ),
        migrations.CreateModel(
            name='RenderedCacheEntry',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('object_key', models.CharField(max_length=500, unique=True)),
                ('instance_object_key', models.CharField(db_index=True, max_length=400)),
                ('size_bytes', models.BigIntegerField()),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('last_used_at', models.DateTimeField()),
            ],
            options={
                'indexes': [models.Index(fields=['last_used_at', 'id'], name='rendered_cache_lru')],
            },
        ),
    ]
