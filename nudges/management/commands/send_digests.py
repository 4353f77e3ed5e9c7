from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from orgs.models import Membership, Organization

from ... import content, services


class Command(BaseCommand):
    help = ("Send this week's digest to the members of an organization now (each member gets "
            "one per week at most), or with --dry-run print what would be sent.")

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="the organization's slug")
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *, org, dry_run, **options):
        with scopes_disabled():
            organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organization with the slug {org!r}.")
        now = timezone.now()
        if not dry_run:
            sent = {}
            for digest_id in services.claim_week(organization, now=now):
                status = services.send_one(digest_id, now=now)
                sent[status] = sent.get(status, 0) + 1
            self.stdout.write(", ".join(f"{n} {s}" for s, n in sorted(sent.items()))
                              or "Everyone has had this week's digest already.")
            return
        with scope(organization=organization):
            members = (Membership.objects.filter(organization=organization)
                       .select_related("organization", "user").order_by("user__email"))
            would = 0
            for m in members.iterator(chunk_size=500):
                if not services.wants_digest(organization, m.user_id):
                    self.stdout.write(f"{m.user.email}: unsubscribed")
                    continue
                d = content.build(m, now=now)
                if d.empty:
                    self.stdout.write(f"{m.user.email}: nothing this week, no email")
                    continue
                would += 1
                self.stdout.write(f"{m.user.email}: {organization.name}: {d.subject()}")
                for label, items in (("check-ins due", d.check_ins), ("upstream", d.upstream),
                                     ("decisions", d.decisions), ("milestones", d.milestones),
                                     ("syncs", d.syncs)):
                    for item in items:
                        self.stdout.write(f"    {label}: {item['title']}")
        self.stdout.write(f"Dry run: {would} email{'s' if would != 1 else ''} would be sent.")
