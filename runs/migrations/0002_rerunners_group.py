"""The "Rerunners" group, holding the permission to rerun (runs.add_rerunrequest).

Django creates model permissions only after every migration has run, so this migration
creates the permission itself when it does not exist yet.
"""

from django.db import migrations


def create_rerunners(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    content_type, _ = ContentType.objects.get_or_create(app_label="runs", model="rerunrequest")
    permission, _ = Permission.objects.get_or_create(
        content_type=content_type,
        codename="add_rerunrequest",
        defaults={"name": "Can add rerun request"},
    )
    group, _ = Group.objects.get_or_create(name="Rerunners")
    group.permissions.add(permission)


def remove_rerunners(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name="Rerunners").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_rerunners, remove_rerunners)]
