from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("tenant_notes", "0001_initial")]

    operations = [
        migrations.AddField("note", "pinned", models.BooleanField(default=False)),
        migrations.AddField(
            "note", "labels", models.ManyToManyField(blank=True, related_name="notes", to="tenant_notes.label")
        ),
    ]
