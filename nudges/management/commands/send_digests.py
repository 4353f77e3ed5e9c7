import logging

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from orgs.models import Membership, Organization

from ... import content, services

log = logging.getLogger(__name__)


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
            self._send(organization, now)
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

    def _send(self, organization, now):
        """Each member on their own: a failure is recorded on that member's row (the outbox
        retries it later) and the others go on. Exits non-zero when any failed."""
        counts = dict.fromkeys(SUMMARY, 0)
        for digest_id in services.claim_week(organization, now=now):
            try:
                outcome = services.send_one(digest_id, now=now)
            except Exception as exc:  # noqa: BLE001 - one member's problem stops no one else
                log.exception("Digest %s of %s could not be written", digest_id,
                              organization.slug)
                self.stderr.write(f"Digest {digest_id}: {type(exc).__name__}: {exc}")
                outcome = "failed"
            counts["failed" if outcome == "pending" else outcome] += 1
        summary = ", ".join(f"{counts[key]} {label}" for key, label in SUMMARY.items()
                            if counts[key] or key in ("sent", "failed"))
        self.stdout.write(summary)
        if not any(counts.values()):
            self.stdout.write("Everyone has had this week's digest already.")
        if counts["failed"]:
            raise CommandError(f"{counts['failed']} digest{'s' if counts['failed'] > 1 else ''}"
                               " could not be sent. They stay in the outbox and are retried; "
                               "the send log says why.")


SUMMARY = {"sent": "sent", "empty": "with nothing to say", "failed": "failed",
           "waiting": "waiting for a retry", "already": "handled by another run"}
