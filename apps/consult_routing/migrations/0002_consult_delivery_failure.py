from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('consult_routing', '0001_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='consultroute',
            name='delivery_failure',
            field=models.CharField(blank=True, default='', max_length=500),
        ),
        migrations.AddField(
            model_name='consultroute',
            name='delivery_failed_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
