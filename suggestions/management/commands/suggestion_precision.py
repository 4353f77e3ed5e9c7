"""Print the parent suggestions' precision@1 and @3 on the demo organization and on a
generated one (built inside a transaction that is rolled back: nothing stays)."""

from django.core.management.base import BaseCommand
from django.db import transaction
from django_scopes import scope, scopes_disabled

import history
from orgs.models import Cycle, Organization
from suggestions.precision import evaluate


class Rollback(Exception):
    pass


class Command(BaseCommand):
    help = "Precision of the parent suggestions, on the demo and on a generated organization."

    def add_arguments(self, parser):
        parser.add_argument("--org", default="northwind", help="slug of the organization "
                            "to measure (default: the demo, northwind)")
        parser.add_argument("--objectives", type=int, default=600,
                            help="objectives of the generated organization (0: skip it)")

    def handle(self, *args, org, objectives, **options):
        with scopes_disabled():
            found = Organization.objects.filter(slug=org).first()
        if found is None:
            self.stdout.write(f"{org}: no such organization (run manage.py seed_demo)")
        else:
            self.measure(found)
        if objectives:
            try:
                with transaction.atomic(), history.paused():
                    self.measure(self.generate(objectives))
                    raise Rollback
            except Rollback:
                pass

    def measure(self, org):
        self.stdout.write(f"{org.name} ({org.slug}):")
        with scope(organization=org):
            for cycle in Cycle.objects.for_org(org).order_by("start_date"):
                self.stdout.write("  " + evaluate(org, cycle).line())

    def generate(self, objectives):
        import datetime

        from django.contrib.auth.hashers import make_password

        from dependencies.generate import build_company

        org = Organization.objects.create(name="Generated Precision Co",
                                          slug="generated-precision")
        with scope(organization=org):
            today = datetime.date.today()
            cycle = Cycle.objects.create(organization=org, name="Generated quarter",
                                         start_date=today, end_date=today
                                         + datetime.timedelta(days=90), status="active")
            build_company(org, cycle, people=max(50, objectives // 2),
                          teams=max(12, objectives // 8), objectives=objectives,
                          krs=objectives * 3, dependencies=objectives // 4, checkins=0,
                          password_hash=make_password(None))
        return org
