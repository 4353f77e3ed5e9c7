"""Several people writing to one organization at the same moment, on PostgreSQL.

- Two people save the same objective from the same form version: exactly one save lands, the
  other is told the objective changed.
- Fifty people add an objective under the same parent at once, through the real view: all fifty
  land, nobody gets an error page, the tree stays consistent.
- A mixed workload from several threads for ``WORKLOAD_SECONDS`` (objective edits and moves,
  check-ins, team moves, dependencies requested, committed and withdrawn, the propagation run
  in-process after each change and beside them): every write is saved or refused with a
  message, none fails, the trees stay consistent.

They need real row locks across connections (each thread has its own), so they run on
PostgreSQL (CI) and are skipped on SQLite, which serializes the whole file.
"""

import logging
import random
import re
import threading
import time
from collections import Counter
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django_scopes import scope, scopes_disabled

from dependencies import network
from dependencies.models import Dependency
from okrs import services
from okrs.models import CheckIn, KeyResult, Objective
from orgs.models import Role, Team
from tests.factories import (
    KeyResultFactory,
    MembershipFactory,
    ObjectiveFactory,
    TeamFactory,
    UserFactory,
)
from tests.trees import assert_trees_consistent

pytestmark = [
    pytest.mark.concurrency,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="needs PostgreSQL row locks (SQLite serializes the whole file)"),
]

CONCURRENT_CREATIONS = 50
WORKLOAD_SECONDS = 20


def test_concurrent_edits_from_the_same_version_let_exactly_one_through(world_a):
    o = world_a.objective
    barrier = threading.Barrier(2)
    outcomes = []

    def save(title):
        try:
            with scope(organization=world_a.org):
                barrier.wait()
                services.update_objective(
                    membership=world_a.admin, objective=o, version=o.version, title=title,
                    why="", team=world_a.team, parent=world_a.company_objective,
                    is_local=False, state="published")
            outcomes.append(("saved", title))
        except services.StaleEdit:
            outcomes.append(("refused", title))
        finally:
            connection.close()

    threads = [threading.Thread(target=save, args=(t,)) for t in ("From Ann", "From Ben")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(kind for kind, _ in outcomes) == ["refused", "saved"]
    [winner] = [title for kind, title in outcomes if kind == "saved"]
    with scope(organization=world_a.org):
        stored = Objective.objects.get(pk=o.pk)
    assert stored.title == winner and stored.version == o.version + 1


# Harness ---------------------------------------------------------------------------------------


class ErrorLog(logging.Handler):
    """Collects what the app logs at ERROR (a recompute that failed in-process, a 500), and
    counts the transactions run again after a collision (orgs.db logs each at WARNING)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.records = []
        self.retries = 0

    def emit(self, record):
        if record.name == "orgs.db":
            self.retries += 1
        elif record.levelno >= logging.ERROR:
            self.records.append(f"{record.name}: {record.getMessage()}"
                                + (f" ({record.exc_info[1]!r})" if record.exc_info else ""))


@pytest.fixture
def error_log():
    handler = ErrorLog()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


class Tally:
    """What each write came to: saved, refused with a message, or an error (anything else)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = Counter()
        self.errors = []
        self.refusals = Counter()

    def response(self, kind, response):
        if response.status_code == 302:
            outcome = "saved"
        elif response.status_code in (200, 400) and b'role="alert"' in response.content:
            outcome = "refused"
        else:
            outcome = "error"
        with self.lock:
            self.counts[(kind, outcome)] += 1
            if outcome == "refused":
                alert = re.search(r'role="alert"[^>]*>(.*?)</div>', response.content.decode(),
                                  re.S)
                self.refusals[re.sub(r"<[^>]+>", " ", alert.group(1)).split(".")[0].strip()] += 1
            if outcome == "error":
                self.errors.append(f"{kind}: HTTP {response.status_code}")
        return outcome

    def exception(self, kind, exc):
        with self.lock:
            self.counts[(kind, "error")] += 1
            self.errors.append(f"{kind}: {exc!r}")

    def ok(self, kind):
        with self.lock:
            self.counts[(kind, "saved")] += 1

    def total(self, outcome):
        return sum(n for (_, o), n in self.counts.items() if o == outcome)


def run_threads(targets, timeout):
    threads = [threading.Thread(target=t) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a writer hung"


def client_for(user):
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


# Fifty objectives at once ----------------------------------------------------------------------


def test_fifty_objectives_added_at_once_under_one_parent_all_land(world_a, error_log):
    org, parent = world_a.org, world_a.company_objective
    url = reverse("objective_new", args=[org.slug])
    clients = [client_for(world_a.admin.user) for _ in range(CONCURRENT_CREATIONS)]
    barrier = threading.Barrier(CONCURRENT_CREATIONS)
    tally = Tally()

    def add(i):
        def run():
            try:
                barrier.wait(30)
                response = clients[i].post(url, {
                    "title": f"Parallel goal {i:02}", "team": world_a.team.pk,
                    "parent": parent.pk, "state": "published", "why": ""})
                tally.response("add", response)
            except Exception as exc:  # noqa: BLE001 - every failure is counted
                tally.exception("add", exc)
            finally:
                connection.close()
        return run

    run_threads([add(i) for i in range(CONCURRENT_CREATIONS)], timeout=240)
    print(f"\n{CONCURRENT_CREATIONS} concurrent creations: {dict(tally.counts)}; "
          f"errors logged: {len(error_log.records)}; retries: {error_log.retries}")
    assert tally.errors == []
    assert tally.counts[("add", "saved")] == CONCURRENT_CREATIONS
    with scopes_disabled():
        added = Objective.objects.filter(parent=parent, title__startswith="Parallel goal")
        assert added.count() == CONCURRENT_CREATIONS
    assert_trees_consistent()
    assert error_log.records == []


# A mixed workload ------------------------------------------------------------------------------


class Office:
    """world_a plus a second department, a team that moves between the two, and team objectives
    with a key result each under the two company objectives."""


def build_office(world_a):
    with scopes_disabled():
        f = Office()
        f.org, f.cycle = world_a.org, world_a.cycle
        f.roots = [world_a.company_objective, world_a.other_objective]
        f.eng = world_a.team
        f.sales = TeamFactory(organization=f.org, name="Sales", kind=Team.Kind.DEPARTMENT)
        f.web = TeamFactory(organization=f.org, name="Web", parent=f.eng)
        f.users = [world_a.admin.user]
        for n in range(5):
            user = UserFactory(email=f"writer{n}@a.test")
            MembershipFactory(organization=f.org, user=user, role=Role.ADMIN)
            f.users.append(user)
        f.objectives = {f.eng.pk: [world_a.objective], f.sales.pk: []}
        for n in range(6):
            team = f.eng if n % 2 else f.sales
            o = ObjectiveFactory(organization=f.org, cycle=f.cycle, team=team,
                                 parent=f.roots[n % 2], title=f"{team.name} goal {n}")
            f.objectives[team.pk].append(o)
        f.team_objectives = [o for os in f.objectives.values() for o in os]
        for o in f.team_objectives[1:]:
            KeyResultFactory(objective=o, title=f"Measure of {o.title}")
        f.key_results = list(KeyResult.objects.filter(objective__in=f.team_objectives))
        f.check_ins_before = CheckIn.objects.filter(organization=f.org).count()
        f.dependencies_before = Dependency.objects.filter(organization=f.org).count()
    return f


def test_a_mixed_workload_saves_or_refuses_every_write_and_fails_none(world_a, error_log):
    f = build_office(world_a)
    slug = f.org.slug
    clients = iter([client_for(u) for u in f.users])
    tally = Tally()
    requested = []
    deadline = time.monotonic() + WORKLOAD_SECONDS

    def loop(kind, step):
        client = next(clients) if not kind.startswith("run") else None
        rng = random.Random(kind)

        def run():
            try:
                with scope(organization=f.org):
                    while time.monotonic() < deadline:
                        try:
                            step(client, rng)
                        except Exception as exc:  # noqa: BLE001 - every failure is counted
                            tally.exception(kind, exc)
            finally:
                connection.close()
        return run

    def edit(client, rng):
        o = rng.choice(f.team_objectives)
        current = Objective.objects.get(pk=o.pk)
        version = current.version - (1 if rng.random() < 0.2 else 0)
        response = client.post(reverse("objective_edit", args=[slug, o.pk]), {
            "title": f"{current.team.name} goal {rng.randrange(1000)}", "why": "",
            "team": current.team_id, "parent": rng.choice(f.roots).pk, "state": "published",
            "version": version})
        tally.response("edit or move", response)

    def check_in(client, rng):
        kr = rng.choice(f.key_results)
        response = client.post(reverse("check_in", args=[slug, kr.pk]), {
            "value": str(Decimal(rng.randrange(0, 100))), "confidence": rng.choice(
                ["on_track", "at_risk", "off_track"]), "note": "Weekly"})
        tally.response("check-in", response)

    def move_team(client, rng):
        response = client.post(reverse("console_team_edit", args=[slug, f.web.pk]), {
            "name": "Web", "kind": "team", "team_type": "product",
            "parent": rng.choice([f.eng, f.sales]).pk, "lead": "", "charter": "",
            "scorecard": ""})
        tally.response("team move", response)

    def dependency(client, rng):
        down = rng.choice(f.objectives[f.sales.pk])
        up = rng.choice(f.objectives[f.eng.pk])
        response = client.post(reverse("dependency_new", args=[slug, "o", down.pk]), {
            "upstream": f"o:{up.pk}", "need": "Their part", "needed_by": f.cycle.end_date,
            "fallback": "Do without"})
        if tally.response("dependency request", response) != "saved":
            return
        pk = int(re.search(r"/dependencies/(\d+)/", response["Location"]).group(1))
        requested.append(pk)
        for status in ("committed", "withdrawn"):
            response = client.post(reverse("dependency_answer", args=[slug, pk]),
                                   {"status": status, "note": ""})
            tally.response(f"dependency {status}", response)

    def propagate(_client, _rng):
        network.run(f.cycle)
        tally.ok("network run")

    run_threads([loop("edit", edit), loop("edit 2", edit), loop("check-in", check_in),
                 loop("team", move_team), loop("dependency", dependency),
                 loop("run", propagate), loop("run 2", propagate)], timeout=WORKLOAD_SECONDS + 120)
    print(f"\nMixed workload, {WORKLOAD_SECONDS} s: {sorted(tally.counts.items())}; "
          f"errors logged: {len(error_log.records)}; retries: {error_log.retries}; "
          f"refusals: {dict(tally.refusals)}")
    assert tally.errors == []
    assert error_log.records == []
    for kind in ("edit or move", "check-in", "team move", "dependency request",
                 "network run"):
        assert tally.counts[(kind, "saved")] > 0, kind
    with scopes_disabled():
        saved_check_ins = tally.counts[("check-in", "saved")]
        assert CheckIn.objects.filter(organization=f.org).count() == (
            f.check_ins_before + saved_check_ins)
        assert Dependency.objects.filter(organization=f.org).count() == (
            f.dependencies_before + len(requested))
    assert_trees_consistent()
