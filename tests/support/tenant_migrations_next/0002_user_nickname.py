"""A new tenant-side migration: a column on the users table (nullable: the model does not know it)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]

    operations = [migrations.AddField("user", "nickname", models.CharField(max_length=40, null=True, blank=True))]
