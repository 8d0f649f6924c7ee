"""A new tenant-side migration, as a next release would bring one: a column on the users table (nullable: the
model does not know it) and an index, so that `migrate_tenants` has real work to do in the benchmarks too."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("tenants", "0005_user_preferences")]

    operations = [
        migrations.AddField("user", "nickname", models.CharField(max_length=40, null=True, blank=True)),
        migrations.AddIndex("user", models.Index(fields=["last_name", "first_name"], name="tenants_user_name_idx")),
    ]
