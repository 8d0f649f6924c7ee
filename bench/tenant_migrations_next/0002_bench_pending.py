"""A typical next tenant-side migration: a new column and an index on the users table."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]

    operations = [
        migrations.AddField("user", "bench_nickname", models.CharField(max_length=40, null=True, blank=True)),
        migrations.AddIndex("user", models.Index(fields=["last_name", "first_name"], name="bench_user_name_idx")),
    ]
