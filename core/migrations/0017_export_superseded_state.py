# A failed export that a newer export of the same record (to the same destination) replaced no
# longer counts as failed: it becomes `superseded` (core.engine.exports.exports_supersede_failed).
# This marks the ones stored before, and takes them off their runs' exports_failed. Running it
# again changes nothing. The reverse turns them back into failed exports (the counters stay).

from django.db import migrations, models
from django.db.models import Count, Exists, F, OuterRef, Value
from django.db.models.functions import Greatest


def supersede_replaced_failures(apps, schema_editor):
    Export = apps.get_model("core", "Export")
    Run = apps.get_model("core", "Run")
    newer = Export.objects.filter(
        destination=OuterRef("destination"), record=OuterRef("record"), pk__gt=OuterRef("pk")
    ).exclude(state="canceled")
    replaced = Export.objects.filter(state="failed").filter(Exists(newer))
    per_run = replaced.exclude(run=None).order_by().values("run").annotate(n=Count("id"))
    for row in per_run:
        Run.objects.filter(pk=row["run"]).update(
            exports_failed=Greatest(F("exports_failed") - row["n"], Value(0))
        )
    replaced.update(state="superseded")


def back_to_failed(apps, schema_editor):
    apps.get_model("core", "Export").objects.filter(state="superseded").update(state="failed")


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0016_url_credentials_encrypted"),
    ]

    operations = [
        migrations.AlterField(
            model_name="export",
            name="state",
            field=models.CharField(
                choices=[
                    ("pending", "Pending"),
                    ("processing", "Processing"),
                    ("complete", "Complete"),
                    ("failed", "Failed"),
                    ("canceled", "Canceled"),
                    ("superseded", "Failed, superseded by a newer export"),
                ],
                default="pending",
                max_length=12,
            ),
        ),
        migrations.RunPython(supersede_replaced_failures, back_to_failed),
    ]
