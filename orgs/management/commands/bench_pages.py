"""Time every page on a large generated organization and on the demo, in the same run.

See docs/performance.md for how to run it and the figures."""

import json

from django.conf import settings
from django.core.management.base import BaseCommand

from orgs import bench

DEFAULTS = {"people": 5000, "teams": 500, "objectives": 3000, "krs": 10000,
            "dependencies": 5000, "checkins": 4}
SMALL = {"people": 500, "teams": 50, "objectives": 300, "krs": 1000, "dependencies": 500,
         "checkins": 2}


class Command(BaseCommand):
    help = ("Build (once) a large organization, then time every GET page as an org admin, an "
            "alignment lead and a team lead, and the check-in and objective edit POSTs, beside "
            "the demo organization: p50, p95, bytes, queries, ratio large/demo.")

    def add_arguments(self, parser):
        for name, value in DEFAULTS.items():
            parser.add_argument(f"--{name}", type=int, default=None,
                                help=f"default {value} ({SMALL[name]} with --small)")
        parser.add_argument("--small", action="store_true",
                            help="a quick run: 500 people, 50 teams, 300 objectives, ...")
        parser.add_argument("--requests", type=int, default=20,
                            help="timed requests per page and persona, after two warm-ups")
        parser.add_argument("--only", action="append", default=[],
                            help="measure only the pages whose name contains this (repeatable)")
        parser.add_argument("--warmup", type=int, default=2,
                            help="untimed requests first (the first counts the queries)")
        parser.add_argument("--persona", action="append", choices=bench.PERSONAS,
                            help="measure only as this persona (repeatable; default: all three)")
        parser.add_argument("--json", dest="json_path", help="write the figures to this file")

    def handle(self, *, small, requests, only, json_path, warmup, persona, **options):
        sizes = {k: options[k] if options[k] is not None else (SMALL if small else DEFAULTS)[k]
                 for k in DEFAULTS}
        def write_json(rows, skipped=()):
            if json_path:
                with open(json_path, "w") as f:
                    json.dump({"sizes": sizes, "requests": requests,
                               "pages": [r.as_json() for r in rows],
                               "not_measured": list(skipped)}, f, indent=1)

        # The schedule's sweeps (run in-process after responses without a broker) are not
        # what a page costs: they stay off while pages are timed.
        settings.BEAT_IN_PROCESS = False
        # The JSON is written after each persona too, so a long run that is stopped keeps
        # what it measured.
        rows, skipped = bench.run(sizes=sizes, requests=requests, only=only,
                                  personas=persona or bench.PERSONAS, warmup=max(1, warmup),
                                  out=self.stdout.write, progress=write_json)
        self.stdout.write(
            f"\n{'page':<32} {'persona':<15} {'p50 ms':>8} {'p95 ms':>8} {'KB':>8} "
            f"{'queries':>7} {'demo p50':>9} {'demo q':>6} {'ratio':>6}")
        for r in rows:
            demo = "-" if r.demo_p50_ms is None else f"{r.demo_p50_ms:.0f}"
            demo_q = "-" if r.demo_queries is None else str(r.demo_queries)
            ratio = "-" if r.ratio is None else f"{r.ratio:.1f}"
            self.stdout.write(
                f"{r.page:<32} {r.persona:<15} {r.p50_ms:>8.0f} {r.p95_ms:>8.0f} "
                f"{r.bytes / 1024:>8.1f} {r.queries:>7} {demo:>9} {demo_q:>6} {ratio:>6}")
        if skipped:
            self.stdout.write("\nNot measured:")
            for s in skipped:
                self.stdout.write(f"  {s['page']} as {s['persona']} in {s['org']}: {s['why']}")
        missed = bench.missed(rows)
        self.stdout.write(f"\nTargets missed: {len(missed)} of {len(rows)} rows")
        for r, reasons in missed:
            self.stdout.write(f"  {r.page} ({r.persona}): {'; '.join(reasons)}")
        if json_path:
            write_json(rows, skipped)
            self.stdout.write(f"wrote {json_path}")
