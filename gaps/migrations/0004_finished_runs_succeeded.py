"""Runs recorded before EvaluationRun.status existed: those that finished succeeded."""

from django.db import migrations


def mark_finished(apps, schema_editor):
    EvaluationRun = apps.get_model("gaps", "EvaluationRun")
    # EvaluationRun keeps no history (the run is the record), so a plain update is right here.
    EvaluationRun.objects.filter(finished_at__isnull=False).update(status="succeeded")


class Migration(migrations.Migration):
    dependencies = [("gaps", "0003_evaluation_run_status_and_chunks")]

    operations = [migrations.RunPython(mark_finished, migrations.RunPython.noop)]
