"""A new tenant-side migration: a column on the users table."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]

    operations = [migrations.AddField("user", "nickname", models.CharField(max_length=40, default="", blank=True))]
