"""Rerunners may mute a cause of failure (runs.mute_failuregroup).

Django creates model permissions only after every migration has run, so this migration
creates the permission itself when it does not exist yet.
"""

from django.db import migrations


def rerunners_mute(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    content_type, _ = ContentType.objects.get_or_create(app_label="runs", model="failuregroup")
    permission, _ = Permission.objects.get_or_create(
        content_type=content_type,
        codename="mute_failuregroup",
        defaults={"name": "Can mute a failure group"},
    )
    group, _ = Group.objects.get_or_create(name="Rerunners")
    group.permissions.add(permission)


def rerunners_unmute(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    for group in Group.objects.filter(name="Rerunners"):
        group.permissions.remove(*Permission.objects.filter(codename="mute_failuregroup"))


class Migration(migrations.Migration):
    dependencies = [("runs", "0014_failure_fingerprints")]

    operations = [migrations.RunPython(rerunners_mute, rerunners_unmute)]
