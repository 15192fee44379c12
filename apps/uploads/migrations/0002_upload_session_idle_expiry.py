import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('uploads', '0001_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='uploadsession',
            name='last_activity_at',
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        migrations.AlterField(
            model_name='uploadsession',
            name='status',
            field=models.CharField(choices=[('open', 'Open: receiving files'), ('processing', 'Processing'), ('completed', 'Completed'), ('cancelled', 'Cancelled'), ('expired', 'Expired: no file received for too long')], default='open', max_length=16),
        ),
        migrations.AddIndex(
            model_name='uploadsession',
            index=models.Index(condition=models.Q(('status', 'open')), fields=['last_activity_at'], name='upload_session_idle'),
        ),
    ]
