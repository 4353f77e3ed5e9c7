import os
import resource
import time
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from alignment import report as alignment_report
from alignment.models import FindingsReport, RuleUnits
from okrs.models import KeyResult, Objective
from orgs.models import Cycle, Organization
from orgs.trees import find_problems

from ... import generate, graph, network, snapshot
from ...models import Dependency, NetworkState


class Command(BaseCommand):
    help = ("Build (or reuse) a generated organization of about N nodes, run a full propagation "
            "and a loop check, and print nodes, edges, queries and timings.")

    def add_arguments(self, parser):
        parser.add_argument("--nodes", type=int, default=20000)
        parser.add_argument("--runs", type=int, default=3, help="propagations to time")

    def handle(self, *, nodes, runs, **options):
        # Run as a worker's process runs (``NETWORK_FORK_RULES``): the rules of a run from
        # nothing or a restart in a child on the other core.
        alignment_report.fork_rules(settings.NETWORK_FORK_RULES)
        self.stdout.write(f"the rules forked beside the network: {alignment_report.FORK['on']}")
        slug = f"bench-{nodes}"
        with scopes_disabled():
            org = Organization.objects.filter(slug=slug).first()
        if org is None:
            # One transaction: an interrupted build leaves no organization and no empty cycle.
            t, cpu, pg = time.perf_counter(), time.process_time(), _backend_cpu()
            with transaction.atomic():
                with scopes_disabled():
                    org = Organization.objects.create(slug=slug, name=f"Benchmark {nodes}")
                with scope(organization=org):
                    today = timezone.localdate()
                    cycle = Cycle.objects.create(
                        organization=org, name="Benchmark",
                        start_date=today - timedelta(days=45),
                        end_date=today + timedelta(days=45), status=Cycle.Status.ACTIVE)
                    built = generate.build(org, cycle, nodes)
            pg_after = _backend_cpu()
            pg = "" if pg is None or pg_after is None else (
                f", PostgreSQL's CPU for it {pg_after - pg:.1f} s")
            self.stdout.write(f"built {built} in {time.perf_counter() - t:.1f} s "
                              f"(this process's CPU {time.process_time() - cpu:.1f} s{pg})")
        else:
            self.stdout.write(f"reusing organization {slug}")
        generate.analyze()
        with scope(organization=org):
            cycle = Cycle.objects.for_org(org).get()
            self._bench(org, cycle, runs)
        problems = find_problems()
        self.stdout.write(f"trees: {len(problems)} problems" if problems else "trees: consistent")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        self.stdout.write(f"peak memory of this process: {peak:.0f} MB")

    def _bench(self, org, cycle, runs):
        best = None
        for i in range(runs):
            # Clear the stored results on the first run, so it writes every row (the worst case).
            if i == 0:
                # By organization (it has this one cycle): a plain WHERE, no join.
                Objective.objects.for_org(org).update(effective_health="", risk_causes=[])
                KeyResult.objects.for_org(org).update(effective_health="", risk_causes=[])
            # Nothing kept from an earlier run in this process: each of these runs is full.
            network.forget()
            FindingsReport.objects.for_org(org).filter(cycle=cycle).update(inputs="")
            RuleUnits.objects.for_org(org).filter(cycle=cycle).delete()  # nor stored units
            with CaptureQueriesContext(connection) as ctx:
                cpu = time.process_time()
                outcome = network.run(cycle)
                cpu = (time.process_time() - cpu) * 1000
            label = "first run (writes every row)" if i == 0 else f"run {i + 1} (no change)"
            if outcome.skipped:
                label += ", skipped: nothing it reads changed since the last run"
            self.stdout.write(
                f"{label}: nodes {outcome.nodes}, edges {outcome.edges}, queries {len(ctx)}, "
                f"changed {outcome.changed}, computation {outcome.compute_ms:.0f} ms, "
                f"whole task {outcome.total_ms:.0f} ms (this process's CPU {cpu:.0f} ms"
                f"{_saving(outcome)})")
            if not outcome.skipped:
                best = outcome if best is None or outcome.total_ms < best.total_ms else best
                if i == runs - 1:
                    self._floor(ctx.captured_queries)
        # A worker restart: nothing kept in the process; stored, the rules' units and the
        # network's state the last run saved (``snapshot``: a run from nothing saves it).
        network.forget(saved=False)
        NetworkState.objects.for_org(org).filter(cycle=cycle).update(fingerprint="")
        FindingsReport.objects.for_org(org).filter(cycle=cycle).update(inputs="")
        restart = self._timed_run(cycle, "after a restart (nothing kept in the process; the "
                                         "rules' units stored), the network's saved state "
                                         "read back")
        self._saved_state()
        # Another restart, then a check-in: the rows, the graph, what each key result gave and
        # the impacts read back, then what the check-in reached computed.
        network.forget(saved=False)
        self._check_in(org, cycle)
        self._timed_run(cycle, "after a restart, then a check-in (saved state read back)")
        self._saved_state()
        # Another restart, then a title edit (the misalignment rules' inputs move): what the
        # worker kept saved as it stops (``save_kept``), read back, then what the edit reached.
        objective = Objective.objects.for_org(org).filter(cycle=cycle).order_by("-pk").first()
        title = objective.title.removesuffix(" (edited)")  # toggled: each bench edits it
        title = title if title != objective.title else f"{title} (edited)"
        network.save_kept()
        network.forget(saved=False)
        with transaction.atomic():
            Objective.objects.for_org(org).filter(pk=objective.pk).update(title=title)
            network.mark_changed(cycle)
        self._timed_run(cycle, "after a restart, then a title edit (saved state read back)")
        self._saved_state()
        # The same three after a restart whose warm start (``network.warm_start``, as a worker
        # process that starts runs it) read the state back before the run came: each worker
        # stopped first, saving what it kept (``save_kept``).
        if self._warm_started(org, cycle):
            NetworkState.objects.for_org(org).filter(cycle=cycle).update(fingerprint="")
            FindingsReport.objects.for_org(org).filter(cycle=cycle).update(inputs="")
            self._timed_run(cycle, "after a restart, the worker's warm start done, every rule "
                                   "run")
        if self._warm_started(org, cycle):
            self._check_in(org, cycle)
            self._timed_run(cycle, "after a restart, the worker's warm start done, then a "
                                   "check-in")
        if self._warm_started(org, cycle):
            with transaction.atomic():
                Objective.objects.for_org(org).filter(pk=objective.pk).update(
                    title=_edited_title(title))
                network.mark_changed(cycle)
            self._timed_run(cycle, "after a restart, the worker's warm start done, then a "
                                   "title edit")
        # A check-in, then the run after it: from what the last run kept (``repropagate``),
        # the rules' stored findings kept (a check-in changes nothing they read).
        if self._check_in(org, cycle):
            self._timed_run(cycle, "after one check-in (recomputes what it reached)")
        # A title edit and a new objective with a key result, as the app writes them (a plain
        # UPDATE, an insert into the tree), each run from what the last run kept.
        edited = Objective.objects.for_org(org).filter(cycle=cycle).order_by("pk").first()
        if edited is not None:
            with transaction.atomic():
                Objective.objects.for_org(org).filter(pk=edited.pk).update(
                    title=_edited_title(edited.title))
                network.mark_changed(cycle)
            self._timed_run(cycle, "after a title edit")
        made = self._new_objective(org, cycle)
        if made is not None:
            self._timed_run(cycle, "after a new objective with a key result")
        # A dependency that ends (an edge goes), then starts again (it comes back): each run
        # from the graph the last one kept, the topological order kept or mended in place.
        ends = Dependency.objects.for_org(org).filter(
            cycle=cycle, status=Dependency.Status.COMMITTED).order_by("pk").first()
        if ends is not None:
            for status, what in (
                    (Dependency.Status.DELIVERED, "a dependency ends (an edge goes)"),
                    (Dependency.Status.COMMITTED, "it starts again (the edge comes back)")):
                with transaction.atomic():
                    Dependency.objects.for_org(org).filter(pk=ends.pk).update(status=status)
                    network.mark_changed(cycle)
                self._timed_run(cycle, f"after {what}")
        # The loop check of adding one edge: from a key result deep in the tree to a root.
        dependency = Dependency.objects.filter(cycle=cycle).first()
        kr = KeyResult.objects.filter(objective__cycle=cycle).order_by("-pk").first()
        root = Objective.objects.filter(cycle=cycle, parent__isnull=True).first()
        timings = []
        for src, dst in ((("o", root.pk), ("k", kr.pk)),
                         (("k", dependency.downstream_key_result_id),
                          ("k", dependency.upstream_key_result_id))):
            with transaction.atomic():
                t = time.perf_counter()
                with CaptureQueriesContext(connection) as ctx:
                    loop = graph.find_loop(org, src, dst)
                timings.append((time.perf_counter() - t) * 1000)
            found = f"loop of {len(loop) - 1}" if loop else "no loop"
            self.stdout.write(
                f"loop check {src} -> {dst}: {found}, {len(ctx)} query, {timings[-1]:.1f} ms")
        self.stdout.write(
            f"best full recompute: {best.total_ms:.0f} ms from nothing, {restart.total_ms:.0f} ms "
            f"after a restart; worst loop check: {max(timings):.1f} ms on {connection.vendor}")
        if made is not None:  # the organization as it was, for the next bench (untimed)
            with transaction.atomic():
                KeyResult.objects.for_org(org).filter(objective=made).delete()
                # The instance's delete closes its gap in the tree (a queryset's would not).
                Objective.objects.for_org(org).get(pk=made.pk).delete()
                network.mark_changed(cycle)
            network.run(cycle)

    def _warm_started(self, org, cycle):
        """A worker that stops (it saves what it keeps) and starts again, its warm start done
        (waited for, its figures written); False when the setting turns it off."""
        if not settings.NETWORK_WARM_START:
            self.stdout.write("the worker's warm start is turned off (NETWORK_WARM_START)")
            return False
        network.save_kept()
        network.forget(saved=False)
        # What the warm start's thread does (``network.warm_start``), here in this thread: its
        # figures are this process's alone, and it reads what this transaction sees.
        started, cpu = time.perf_counter(), time.process_time()
        read_back = network.read_back_newest()
        self.stdout.write(f"  a worker's warm start (before the run comes): "
                          f"{(time.perf_counter() - started) * 1000:.0f} ms (this process's CPU "
                          f"{(time.process_time() - cpu) * 1000:.0f} ms; read back "
                          f"{'this cycle' if cycle.pk in read_back else 'not this cycle'})")
        return True

    def _floor(self, queries):
        """What a run from nothing cannot go below on this database and machine, whatever its
        Python: its reads (``queries``, the run's SELECTs), each executed again and fetched as
        plain tuples, nothing made of them. On PostgreSQL only (SQLite has no second process
        to measure, and its figures say nothing of a deployment)."""
        if connection.vendor != "postgresql":
            return
        reads = [q["sql"] for q in queries
                 if q["sql"].lstrip()[:6].upper() in ("SELECT", "WITH")
                 and "pg_advisory" not in q["sql"] and "FOR UPDATE" not in q["sql"].upper()]
        rows, cpu, pg, started = 0, time.process_time(), _backend_cpu(), time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            for sql in reads:
                cursor.execute(sql)
                rows += len(cursor.fetchall())
        wall, cpu = (time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000
        pg_after = _backend_cpu()
        pg = "" if pg is None or pg_after is None else (
            f", PostgreSQL's CPU {(pg_after - pg) * 1000:.0f} ms")
        self.stdout.write(f"  the floor under that run: its {len(reads)} reads executed again and "
                          f"fetched as plain tuples ({rows} rows), nothing computed: {wall:.0f} ms "
                          f"(this process's CPU {cpu:.0f} ms{pg})")

    def _saved_state(self):
        stats = snapshot.stats
        self.stdout.write(f"  the saved state: {stats.get('size', 0) / 1e6:.1f} MB, read back in "
                          f"{stats.get('restore_ms', 0):.0f} ms (this process's CPU "
                          f"{stats.get('restore_cpu_ms', 0):.0f} ms; its row read and checked in "
                          f"{stats.get('read_ms', 0):.0f} ms); saved in "
                          f"{stats.get('save_ms', 0):.0f} ms (CPU "
                          f"{stats.get('save_cpu_ms', 0):.0f} ms)")

    def _check_in(self, org, cycle):
        """A check-in on the first numeric key result, marked changed; False if there is none."""
        kr = KeyResult.objects.for_org(org).filter(
            objective__cycle=cycle, kind=KeyResult.Kind.NUMERIC).order_by("pk").first()
        if kr is None:
            return False
        with transaction.atomic():
            KeyResult.objects.for_org(org).filter(pk=kr.pk).update(
                current_value=(kr.current_value or 0) + 1, confidence="at_risk",
                last_check_in_at=timezone.now())
            network.mark_changed(cycle)
        return True

    def _new_objective(self, org, cycle):
        """A new objective under the first objective with a parent, with one key result,
        marked changed; None if there is no such parent."""
        parent = Objective.objects.for_org(org).filter(
            cycle=cycle, parent__isnull=False).order_by("pk").first()
        if parent is None:
            return None
        with transaction.atomic():
            made = Objective.objects.create(
                organization=org, cycle=cycle, team_id=parent.team_id, parent=parent,
                title="Open the northern market", state=Objective.State.PUBLISHED)
            KeyResult.objects.create(
                organization=org, objective=made, title="Sign 4 distributors",
                owner_team_id=parent.team_id, start_value=0, target_value=4, current_value=1,
                confidence="at_risk")
            network.mark_changed(cycle)
        return made

    def _timed_run(self, cycle, label):
        """``network.run`` once, its figures written after ``label``: rows changed, the whole
        task's wall time, this process's CPU and (on a local PostgreSQL) its backend's."""
        cpu, pg = time.process_time(), _backend_cpu()
        outcome = network.run(cycle)
        cpu, pg_after = (time.process_time() - cpu) * 1000, _backend_cpu()
        pg = "" if pg is None or pg_after is None else (
            f", PostgreSQL's CPU {(pg_after - pg) * 1000:.0f} ms")
        self.stdout.write(f"{label}: changed {outcome.changed}, whole task "
                          f"{outcome.total_ms:.0f} ms (this process's CPU {cpu:.0f} ms{pg}"
                          f"{_saving(outcome)})")
        return outcome


def _edited_title(title):
    """Another title, and back on the next bench: the organization does not grow a suffix."""
    return title.removesuffix(" (edited)") if title.endswith(" (edited)") else f"{title} (edited)"


def _saving(outcome):
    """The share of a run's CPU figure spent saving its state after the commit, if it did."""
    return f", then {outcome.saved_ms:.0f} ms saving the state" if outcome.saved_ms else ""


def _backend_cpu():
    """CPU seconds used so far by this connection's PostgreSQL backend, when it runs on this
    machine (read from /proc); None elsewhere. On a loaded machine, wall time says little."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
