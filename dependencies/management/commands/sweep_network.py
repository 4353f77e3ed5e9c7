from django.core.management.base import BaseCommand

from ...tasks import climb_ladders, sweep_network


class Command(BaseCommand):
    help = ("Recompute every cycle still marked as changed (a recompute lost with its process), "
            "or with --full every running cycle. Without a broker, run it from cron, every few "
            "minutes (and hourly with --full: pace moves with the calendar); with a broker, "
            "Celery beat does the same. It also moves unanswered requests and blockers up the "
            "escalation ladder.")

    def add_arguments(self, parser):
        parser.add_argument("--full", action="store_true",
                            help="every cycle that is not closed, not only the changed ones")

    def handle(self, *, full, **options):
        count = sweep_network(full=full)
        self.stdout.write(f"{count} cycle{'' if count == 1 else 's'} recomputed or queued.")
        reached = climb_ladders()
        self.stdout.write(f"{reached} escalation step{'' if reached == 1 else 's'} reached.")
