"""Creates the default Setting rows and the one django-q2 schedule that ticks every minute."""
from django.db import migrations

TICK_FUNC = "core.tasks.tick"


def forwards(apps, schema_editor):
    from core.settings_registry import DEFAULTS

    Setting = apps.get_model("core", "Setting")
    for d in DEFAULTS:
        Setting.objects.get_or_create(
            plugin="core",
            key=d.key,
            defaults={"value": d.default, "type": d.type, "title": d.title, "description": d.description},
        )
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.update_or_create(
        name="grouparoo-tick",
        defaults={"func": TICK_FUNC, "schedule_type": "I", "minutes": 1, "repeats": -1},
    )


def backwards(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="grouparoo-tick").delete()


class Migration(migrations.Migration):
    dependencies = [("core", "0001_initial"), ("django_q", "0018_task_success_index")]
    operations = [migrations.RunPython(forwards, backwards)]
