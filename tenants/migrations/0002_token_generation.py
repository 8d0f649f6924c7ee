from django.db import migrations, models


class Migration(migrations.Migration):
    """The generation every token carries (tenants.tokens): users' in their tenant's database, tenants' in the
    catalog."""

    dependencies = [("tenants", "0001_initial")]

    operations = [
        migrations.AddField("tenant", "token_generation", models.PositiveIntegerField(default=0, editable=False)),
        migrations.AddField("user", "token_generation", models.PositiveIntegerField(default=0, editable=False)),
    ]
