"""Verify every organization's MPTT trees (teams, objectives): exit non-zero with what is wrong."""

from django.core.management.base import BaseCommand, CommandError

from orgs.models import Organization
from orgs.trees import find_problems, tree_models


class Command(BaseCommand):
    help = (
        "Check the org and alignment trees of every organization: nesting, levels, parent "
        "links, and that no tree id is shared between organizations. Exits 1 on a problem."
    )

    def add_arguments(self, parser):
        parser.add_argument("--database", default="default")

    def handle(self, *args, database, **options):
        models = tree_models()
        problems = find_problems(models, using=database)
        if not problems:
            counts = ", ".join(
                f"{m._base_manager.using(database).count()} {m._meta.verbose_name_plural}"
                for m in models
            )
            orgs = Organization.objects.using(database).count()
            self.stdout.write(f"Trees OK: {counts} in {orgs} organizations.")
            return
        slugs = dict(Organization.objects.using(database).values_list("pk", "slug"))
        for p in problems:
            org = slugs.get(p.organization_id, "(all)")
            self.stderr.write(f"{org}: {p.model} #{p.row_id}: {p.message}")
        raise CommandError(f"{len(problems)} tree problems.")
