from django.db import migrations

DEFAULT_LABELS = ("todo", "done")


def add_default_labels(apps, schema_editor):
    Label = apps.get_model("tenant_notes", "Label")
    for name in DEFAULT_LABELS:
        Label.objects.using(schema_editor.connection.alias).get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [("tenant_notes", "0003_note_pinned_index")]

    operations = [migrations.RunPython(add_default_labels, migrations.RunPython.noop)]
