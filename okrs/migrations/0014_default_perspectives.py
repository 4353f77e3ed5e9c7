"""Every existing organization starts with a balanced scorecard's four perspectives (new ones
get them from orgs.services.create_organization)."""

from django.db import migrations

DEFAULT_PERSPECTIVES = ("Financial", "Customer", "Internal process", "Learning and growth")


def add_defaults(apps, schema_editor):
    Organization = apps.get_model("orgs", "Organization")
    Perspective = apps.get_model("okrs", "Perspective")
    have = set(Perspective.objects.values_list("organization_id", flat=True).distinct())
    Perspective.objects.bulk_create([
        Perspective(organization_id=org_id, name=name, position=i)
        for org_id in Organization.objects.exclude(pk__in=have).values_list("pk", flat=True)
        for i, name in enumerate(DEFAULT_PERSPECTIVES)], batch_size=1000)


class Migration(migrations.Migration):

    dependencies = [
        ("okrs", "0013_key_result_kinds"),
        ("orgs", "0009_cycle_closed_at_by"),
    ]

    operations = [
        migrations.RunPython(add_defaults, migrations.RunPython.noop),
    ]
