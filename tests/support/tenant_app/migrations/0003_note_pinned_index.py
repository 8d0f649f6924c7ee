from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("tenant_notes", "0002_note_pinned_labels")]

    operations = [
        migrations.AddIndex("note", models.Index(fields=["pinned", "-created_on"], name="tenant_note_pinned_idx")),
    ]
