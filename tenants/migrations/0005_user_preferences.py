from django.db import migrations, models


class Migration(migrations.Migration):
    """The web client's preferences of each user (PUT /api/identity/preferences), in the user's own database."""

    dependencies = [("tenants", "0004_upgrades")]

    operations = [
        migrations.AddField("user", "preferences", models.JSONField(blank=True, default=dict)),
    ]
