"""Jobs take keyword arguments, stored as a JSON object (they were a positional list).

A job recorded by an earlier release keeps its meaning: its list is bound to the parameters of the task it
names, by position. A task that no longer exists keeps its list and fails when run, with the reason."""

import inspect

from django.db import migrations, models
from django.utils.module_loading import import_string


def arguments_by_name(apps, schema_editor):
    Job = apps.get_model("jobs", "Job")
    for job in Job.objects.using(schema_editor.connection.alias).iterator():
        if not isinstance(job.kwargs, list):
            continue
        try:
            parameters = list(inspect.signature(import_string(job.task)).parameters)
        except (ImportError, ValueError, TypeError):
            continue
        job.kwargs = dict(zip(parameters, job.kwargs, strict=False))
        job.save(update_fields=["kwargs"])


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0002_job_rq_job_id"),
    ]

    operations = [
        migrations.RenameField(model_name="job", old_name="args", new_name="kwargs"),
        migrations.AlterField(
            model_name="job",
            name="kwargs",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="The task's keyword arguments: plain ids and values; never secrets.",
            ),
        ),
        migrations.RunPython(arguments_by_name, migrations.RunPython.noop),
    ]
