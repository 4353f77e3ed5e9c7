"""Tree ids are never shared between organizations (issue 10, section 1).

1. A PostgreSQL sequence hands out objective tree ids outside the tenant scope.
2. Existing databases are repaired: a tree id used by several trees (every organization's
   first root objective got tree id 1) is given to one of them and the others get fresh ones, then
   lft/rght/level are rebuilt from the parent links (orgs.trees.repair_trees).
3. The database refuses an inconsistent tree: (tree_id, lft) and (tree_id, rght) are unique,
   checked at commit (PostgreSQL; SQLite has no deferrable unique constraints), and lft < rght.
"""

import django.db.models.constraints
from django.db import migrations, models

import orgs.trees

TABLE = "okrs_objective"


def forwards(apps, schema_editor):
    orgs.trees.create_sequence(schema_editor, TABLE)
    orgs.trees.repair_trees(apps.get_model("okrs", "Objective"), using=schema_editor.connection.alias)


def backwards(apps, schema_editor):
    orgs.trees.drop_sequence(schema_editor, TABLE)


class Migration(migrations.Migration):

    dependencies = [
        ("okrs", "0006_objective_success_objective_tradeoffs"),
    ]

    operations = [
        migrations.RunPython(forwards, backwards),
        migrations.AddConstraint(
            model_name="objective",
            constraint=orgs.trees.DeferredUniqueConstraint(
                deferrable=django.db.models.constraints.Deferrable["DEFERRED"],
                fields=("tree_id", "lft"), name="objective_tree_lft_unique"),
        ),
        migrations.AddConstraint(
            model_name="objective",
            constraint=orgs.trees.DeferredUniqueConstraint(
                deferrable=django.db.models.constraints.Deferrable["DEFERRED"],
                fields=("tree_id", "rght"), name="objective_tree_rght_unique"),
        ),
        migrations.AddConstraint(
            model_name="objective",
            constraint=models.CheckConstraint(
                condition=models.Q(("lft__lt", models.F("rght"))),
                name="objective_tree_lft_below_rght"),
        ),
    ]
