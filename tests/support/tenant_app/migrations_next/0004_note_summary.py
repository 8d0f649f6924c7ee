from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("tenant_notes", "0003_note_pinned_index")]

    # Nullable: the model of today does not know the column and keeps writing rows without it.
    operations = [
        migrations.AddField("note", "summary", models.CharField(max_length=200, null=True, blank=True)),
        migrations.AddIndex("note", models.Index(fields=["summary"], name="tenant_note_summary_idx")),
    ]
