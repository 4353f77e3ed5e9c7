"""A generated organization network for the benchmark and the query-budget tests.

Shape, per ``nodes`` (objectives plus key results): company objectives at the roots, department
objectives under them, team objectives under those, three or four key results each; about one
dependency per 20 nodes between key results of different teams, some key results feeding
another team's shared key result. Fan-in and fan-out follow from that: a company objective has
dozens of children, a popular key result several dependents.

Rows are inserted in bulk, with the MPTT fields computed here (the tree is known), so building
20,000 nodes takes seconds, not minutes.
"""

import json
import random
from datetime import timedelta
from decimal import Decimal
from functools import partial

from django.db import connection, transaction
from django.db.models import CharField, JSONField, TextField
from django.utils import timezone

from okrs.models import KeyResult, Objective
from orgs.models import Team
from orgs.services import lock_organization
from orgs.trees import allocate_tree_ids, nested_sets

from .models import Contribution, Dependency


def build(org, cycle, nodes, *, seed=7):
    """About ``nodes`` objectives and key results in ``cycle``, inside the caller's transaction
    (or one of its own): an interrupted build leaves nothing behind."""
    rng = random.Random(seed)
    company = Team.objects.for_org(org).filter(kind=Team.Kind.COMPANY).first()
    with transaction.atomic():
        lock_organization(org)
        n_objectives = max(4, nodes // 4)
        n_teams = max(3, n_objectives // 12)
        n_departments = max(2, n_teams // 6)
        units = [] if company else [(org.name, Team.Kind.COMPANY, None)]
        units += [(f"Department {i + 1}", Team.Kind.DEPARTMENT, 0) for i in range(n_departments)]
        units += [(f"Team {i + 1}", Team.Kind.TEAM, 1 + i % n_departments)
                  for i in range(n_teams)]
        if company is None:  # a fresh organization: the whole tree in bulk
            made = insert_teams(org, units)
        else:  # under an existing company (small test worlds): mptt's own inserts
            made = [company]
            for name, kind, parent in units:
                made.append(Team.objects.create(organization=org, name=name, kind=kind,
                                                parent=made[parent]))
        company, departments, teams = (made[0], made[1:1 + n_departments],
                                       made[1 + n_departments:])
        n_company = max(2, min(5, n_objectives // 400))
        n_department = max(len(departments), n_objectives // 8)
        objectives = []

        def make(team, parent, title):
            o = Objective(organization=org, cycle=cycle, team=team, title=title,
                          state=Objective.State.PUBLISHED, is_local=False,
                          effective_health="", risk_causes=[])
            o._parent_index = parent
            objectives.append(o)
            return len(objectives) - 1

        roots = [make(company, None, f"Company goal {i + 1}") for i in range(n_company)]
        dept_objectives = [
            make(departments[i % len(departments)], roots[i % len(roots)],
                 f"Department goal {i + 1}")
            for i in range(n_department)
        ]
        while len(objectives) < n_objectives:
            i = len(objectives)
            make(teams[i % len(teams)], rng.choice(dept_objectives), f"Team goal {i + 1}")
        insert_tree(Objective, org, objectives,
                    [o._parent_index for o in objectives], lambda o: o.title)

        key_results = []
        remaining = max(0, nodes - len(objectives))
        i = 0
        while len(key_results) < remaining:
            o = objectives[i % len(objectives)]
            i += 1
            healthy = rng.random()
            confidence = "on_track" if healthy < 0.8 else "at_risk" if healthy < 0.95 else (
                "off_track")
            key_results.append(KeyResult(
                organization=org, objective_id=o.pk, title=f"Key result {len(key_results) + 1}",
                kind=KeyResult.Kind.NUMERIC, start_value=Decimal(0), target_value=Decimal(100),
                current_value=Decimal(rng.randint(30, 90)), unit="%", owner_team_id=o.team_id,
                confidence=confidence, weight=Decimal(1), effective_health="", risk_causes=[]))
        # On PostgreSQL the ids come first (from the table's sequence), so the feeding links go
        # in with the rows (no UPDATE after) and each table is one COPY.
        ids_first = allocate_ids(KeyResult, key_results)
        if not ids_first:
            KeyResult.objects.bulk_create(key_results, batch_size=2000)
        deps = []
        for _ in range(max(1, nodes // 20)):
            a, b = sorted(rng.sample(range(len(key_results)), 2))
            up, down = key_results[a], key_results[b]  # lower index upstream: never a loop
            if up.owner_team_id == down.owner_team_id:
                continue
            deps.append(Dependency(
                organization=org, cycle=cycle, upstream_key_result_id=up.pk,
                downstream_key_result_id=down.pk, requesting_team_id=down.owner_team_id,
                providing_team_id=up.owner_team_id, need="Generated", needed_by=cycle.end_date,
                fallback="Generated", status=Dependency.Status.COMMITTED))
        feeds = []
        for _ in range(max(1, nodes // 50)):
            a, b = sorted(rng.sample(range(len(key_results)), 2))
            feeds.append((key_results[a].pk, key_results[b].pk))
        fed = {}
        for src, dst in feeds:
            fed.setdefault(src, dst)  # the first one wins, as "feeds__isnull" did
        updated = []
        for kr in key_results:
            if kr.pk in fed:
                kr.feeds_id = fed[kr.pk]
                updated.append(kr)
        if ids_first:
            insert_rows(KeyResult, key_results)
        else:
            KeyResult.objects.for_org(org).bulk_update(updated, ["feeds"], batch_size=1000)
        # Each link was accepted by the shared key result's owners (see Contribution).
        Contribution.objects.bulk_create(
            [Contribution(organization=org, key_result=kr, shared_id=kr.feeds_id,
                          status=Contribution.Status.ACCEPTED) for kr in updated],
            batch_size=2000)
        insert_rows(Dependency, deps)
    return {"objectives": len(objectives), "key_results": len(key_results),
            "dependencies": len(deps), "teams": len(teams) + len(departments) + 1}


def insert_tree(model, org, rows, parents, sort_key):
    """Insert a whole new forest of ``model`` rows in bulk, with the MPTT fields computed here.

    ``rows``: unsaved instances; ``parents[i]``: the index in ``rows`` of row i's parent, or None
    for a root; ``sort_key(row)``: the order of siblings (mptt's ``order_insertion_by``). Each
    root gets a fresh tree id from ``allocate_tree_ids``. One bulk insert per level, so each row
    is inserted with its parent's id (no UPDATE after). Returns ``rows``, saved. Run inside a
    transaction: the tree constraints are checked at commit."""
    del org  # every row carries its organization already
    positions, _ = nested_sets((i, parents[i], sort_key(row)) for i, row in enumerate(rows))
    roots = sorted({root for root, _, _, _ in positions.values()})
    tree_ids = dict(zip(roots, allocate_tree_ids(model._meta.db_table, len(roots)), strict=True))
    levels = {}
    for i, row in enumerate(rows):
        root, row.lft, row.rght, row.level = positions[i]
        row.tree_id = tree_ids[root]
        levels.setdefault(row.level, []).append(i)
    ordered = [rows[i] for level in sorted(levels) for i in levels[level]]  # parents first
    if allocate_ids(model, ordered):
        for i, row in enumerate(rows):
            row.parent_id = None if parents[i] is None else rows[parents[i]].pk
        insert_rows(model, ordered)
        return rows
    for level in sorted(levels):
        batch = levels[level]
        for i in batch:
            rows[i].parent_id = None if parents[i] is None else rows[parents[i]].pk
        model._base_manager.bulk_create([rows[i] for i in batch], batch_size=2000)
    return rows


def allocate_ids(model, rows):
    """On PostgreSQL, give ``rows`` (unsaved) their ids from the table's own sequence, in
    order, in one query, and return True; elsewhere do nothing and return False (the insert
    gives them)."""
    if connection.vendor != "postgresql" or not rows or any(row.pk is not None for row in rows):
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                       [model._meta.db_table, model._meta.pk.column, len(rows)])
        for row, (pk,) in zip(rows, cursor.fetchall(), strict=True):
            row.pk = pk
    return True


def insert_rows(model, rows):
    """Insert ``rows`` (unsaved instances of ``model``) as ``bulk_create`` would. On PostgreSQL
    they get their ids first (``allocate_ids``, unless they all have one) and go in with one
    COPY: at 100,000 rows, building the INSERT statements costs more than PostgreSQL's work.
    Every column is written, from the instance (its defaults were set when it was made;
    ``auto_now`` fields are set here)."""
    if not rows:
        return rows
    if connection.vendor != "postgresql" or (
            any(row.pk is None for row in rows) and not allocate_ids(model, rows)):
        return model._base_manager.bulk_create(rows, batch_size=2000)
    fields = model._meta.concrete_fields
    prepare = []
    for f in fields:
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            now = timezone.now()
            for row in rows:
                setattr(row, f.attname, now)
            prepare.append(None)
        elif isinstance(f, JSONField):
            prepare.append(partial(_json, f.encoder))
        elif isinstance(f, (CharField, TextField)):
            prepare.append(_text)  # a TextChoices member is written as its value
        else:
            prepare.append(None)
    attnames = [f.attname for f in fields]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([value if fix is None or value is None else fix(value)
                                for value, fix in zip(map(row.__dict__.get, attnames), prepare,
                                                      strict=True)])
    for row in rows:
        row._state.adding, row._state.db = False, connection.alias
    return rows


def _json(encoder, value):
    return json.dumps(value, cls=encoder)


def _text(value):
    return value if value.__class__ is str else str(value)


def analyze():
    """Fresh planner statistics after a bulk build (PostgreSQL): without them the planner takes
    the new tables for empty ones until autovacuum comes by, and picks plans (nested loops
    over sequential scans) that take minutes at 100,000 rows. Run after the build commits."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for table in ("orgs_team", "orgs_membership", "orgs_user", "okrs_objective",
                          "okrs_keyresult", "okrs_checkin", "dependencies_dependency",
                          "dependencies_objectiveshare"):
                cursor.execute(f"ANALYZE {table}")


def insert_teams(org, units):
    """``units``: (name, kind, parent index or None) tuples; the teams, saved, in that order."""
    rows = [Team(organization=org, name=name, kind=kind, charter="", scorecard=[])
            for name, kind, _ in units]
    return insert_tree(Team, org, rows, [p for _, _, p in units], lambda t: t.name)


# A whole company, for the page benchmark (orgs.bench, manage.py bench_pages) ------------------

AREAS = ["Engineering", "Product", "Sales", "Marketing", "Customer Success", "Finance",
         "People", "Operations", "Data", "Security", "Design", "Legal"]
GROUPS = ["Platform", "Growth", "Enterprise", "Core", "Mobile", "Payments", "Insights",
          "Infrastructure", "Onboarding", "Partnerships", "Retention", "Quality"]
SQUADS = ["Atlas", "Beacon", "Comet", "Delta", "Ember", "Falcon", "Glacier", "Harbor", "Iris",
          "Juniper", "Kestrel", "Lumen", "Meridian", "Nova", "Orbit", "Pulse", "Quartz",
          "Radius", "Summit", "Tide"]
FIRST = ["Ava", "Liam", "Priya", "Ethan", "Sofia", "Noah", "Mia", "Lucas", "Olivia", "Amir",
         "Chloe", "Diego", "Elif", "Felix", "Grace", "Hiro", "Ines", "Jonas", "Kofi", "Lena"]
LAST = ["Thompson", "Okafor", "Raman", "Brooks", "Alvarez", "Fischer", "Chen", "Martin", "Berg",
        "Haddad", "Dubois", "Silva", "Yilmaz", "Novak", "Kim", "Sato", "Costa", "Weber", "Mensah"]
VERBS = ["Grow", "Cut", "Launch", "Make", "Win", "Improve", "Reduce", "Ship", "Raise", "Build"]
GOALS = ["customer retention in {x}", "the time to onboard a new {x} customer",
         "a self-serve plan for {x}", "{x} reliable enough to forget about",
         "the mid-market segment with {x}", "the quality of {x} releases",
         "manual work in {x}", "the new {x} experience", "adoption of {x} features",
         "a data platform every {x} team trusts"]
MEASURES = [("Raise weekly active accounts from {a} to {b}", "accounts"),
            ("Cut p95 latency from {a} ms to {b} ms", "ms"),
            ("Close {b} new enterprise deals", "deals"),
            ("Lift NPS from {a} to {b}", ""),
            ("Reduce open support tickets from {a} to {b}", "tickets"),
            ("Ship {b} of the planned milestones", "milestones")]


def company_sizes(*, people, teams, objectives, krs, dependencies, checkins):
    return {"people": people, "teams": teams, "objectives": objectives, "krs": krs,
            "dependencies": dependencies, "checkins": checkins}


def build_company(org, cycle, *, people, teams, objectives, krs, dependencies, checkins,
                  password_hash, seed=11):
    """A company of ``people`` members and ``teams`` org units (a department tree four levels
    deep: company, areas, groups, teams), with ``objectives`` and ``krs`` in ``cycle``,
    ``dependencies`` between key results of different teams, ``checkins`` check-ins per key
    result, and some of everything the pages show: shares, workflows with stakeholders and
    milestones, re-cascade flags, proposals awaiting review, recovery actions, invitations.

    Everything in bulk, inside one transaction (the caller's or its own), under the
    organization lock. Returns the personas: {"admin", "alignment_lead", "team_lead"} users,
    and the counts."""
    from alignment.models import Milestone, RecascadeFlag, ReviewComment, Stakeholder, Workflow
    from okrs.models import CheckIn
    from orgs.models import Invitation, Membership, Role, User

    from .models import ObjectiveShare, RecoveryAction

    rng = random.Random(seed)
    now = timezone.now()
    with transaction.atomic():
        lock_organization(org)
        # The org tree: company, areas, groups, teams (levels 0 to 3).
        n_areas = max(2, min(len(AREAS), teams // 40))
        n_groups = max(n_areas, teams // 12)
        n_teams = max(1, teams - 1 - n_areas - n_groups)
        units = [(org.name, Team.Kind.COMPANY, None)]
        units += [(AREAS[i], Team.Kind.DEPARTMENT, 0) for i in range(n_areas)]
        units += [(f"{AREAS[i % n_areas]} {GROUPS[i // n_areas % len(GROUPS)]}"
                   + (f" {i // (n_areas * len(GROUPS)) + 1}" if i >= n_areas * len(GROUPS)
                      else ""), Team.Kind.DEPARTMENT, 1 + i % n_areas) for i in range(n_groups)]
        units += [(f"{SQUADS[i % len(SQUADS)]} {i + 1}", Team.Kind.TEAM,
                   1 + n_areas + i % n_groups) for i in range(n_teams)]
        made = insert_teams(org, units)
        company, areas = made[0], made[1:1 + n_areas]
        groups, squads = made[1 + n_areas:1 + n_areas + n_groups], made[1 + n_areas + n_groups:]

        # People: one org admin, a few alignment leads, a lead per unit, members, viewers.
        users = [User(email=f"person{i + 1}@{org.slug}.example", password=password_hash,
                      full_name=f"{FIRST[i % len(FIRST)]} {LAST[i // len(FIRST) % len(LAST)]}")
                 for i in range(people)]
        User.objects.bulk_create(users, batch_size=2000)
        n_leads = min(len(made), max(0, people - 3))

        def role_of(i):
            if i == 0:
                return Role.ADMIN
            if i < 3:
                return Role.ALIGNMENT_LEAD
            if i < 3 + n_leads:
                return Role.TEAM_LEAD
            return Role.VIEWER if i % 10 == 0 else Role.MEMBER

        memberships = [Membership(organization=org, user=u, role=role_of(i))
                       for i, u in enumerate(users)]
        Membership.objects.bulk_create(memberships, batch_size=2000)
        lead_of = {}
        for j, team in enumerate(made[:n_leads]):
            lead_of[team.pk] = users[3 + j]
        for team in made:
            team.lead = lead_of.get(team.pk, users[0])
        Team.objects.for_org(org).bulk_update(made, ["lead"], batch_size=2000)
        through = Membership.teams.through
        links = [through(membership_id=memberships[3 + j].pk, team_id=team.pk)
                 for j, team in enumerate(made[:n_leads])]
        for i, m in enumerate(memberships[3 + n_leads:], start=3 + n_leads):
            links.append(through(membership_id=m.pk, team_id=squads[i % len(squads)].pk
                                 if squads else company.pk))
        through.objects.bulk_create(links, batch_size=5000)

        # Objectives: company goals at the roots, area and group goals under them, team goals
        # under their group's; a few local ones, a few proposed for review.
        rows, parents = [], []

        def objective(team, parent, state=Objective.State.PUBLISHED, is_local=False):
            title = (f"{VERBS[len(rows) % len(VERBS)]} "
                     f"{GOALS[len(rows) // len(VERBS) % len(GOALS)].format(x=team.name)}")
            rows.append(Objective(
                organization=org, cycle=cycle, team=team, title=title[:200], state=state,
                is_local=is_local, why="Customers told us so, and the numbers agree.",
                effective_health="", risk_causes=[]))
            parents.append(parent)
            return len(rows) - 1

        roots = [objective(company, None) for _ in range(min(5, max(1, objectives // 500)))]
        area_goals = {a.pk: [objective(a, roots[(i + k) % len(roots)]) for k in range(2)]
                      for i, a in enumerate(areas)}
        group_goals = {}
        for g in groups:
            group_goals[g.pk] = [objective(g, rng.choice(area_goals[g.parent_id]))]
        i = 0
        while len(rows) < objectives and squads:
            team = squads[i % len(squads)]
            i += 1
            if i % 20 == 0:
                objective(team, None, is_local=True)
            elif i % 25 == 0:
                objective(team, group_goals[team.parent_id][0], state=Objective.State.PROPOSED)
            else:
                objective(team, group_goals[team.parent_id][0])
        insert_tree(Objective, org, rows, parents, lambda o: o.title)
        team_objectives = [o for o in rows if o.team.kind == Team.Kind.TEAM]

        # Key results, spread over the objectives, owned by the objective's team.
        key_results = []
        for n in range(krs):
            o = rows[n % len(rows)]
            text, unit = MEASURES[n % len(MEASURES)]
            a, b = rng.randint(10, 60), rng.randint(70, 200)
            healthy = rng.random()
            key_results.append(KeyResult(
                organization=org, objective_id=o.pk, title=text.format(a=a, b=b),
                kind=KeyResult.Kind.NUMERIC, start_value=Decimal(a), target_value=Decimal(b),
                current_value=Decimal(rng.randint(a, b)), unit=unit, owner_team_id=o.team_id,
                owner=lead_of.get(o.team_id, users[0]), weight=Decimal(1),
                confidence=("on_track" if healthy < 0.75 else "at_risk" if healthy < 0.93
                            else "off_track"),
                last_check_in_at=now - timedelta(days=rng.randint(0, 20)) if checkins else None,
                position=n // len(rows), effective_health="", risk_causes=[]))
        KeyResult.objects.bulk_create(key_results, batch_size=2000)
        check_ins = []
        for kr in key_results:
            for w in range(checkins):
                check_ins.append(CheckIn(
                    organization=org, key_result_id=kr.pk, value=kr.current_value,
                    confidence=kr.confidence, note="Steady progress; one blocker left.",
                    author=kr.owner, created_at=now - timedelta(days=7 * (checkins - w))))
        CheckIn.objects.bulk_create(check_ins, batch_size=5000)

        # Dependencies between key results of different teams: the lower index is upstream, so
        # there is never a loop.
        deps, tries = [], 0
        while len(deps) < dependencies and tries < dependencies * 4 and len(key_results) > 1:
            tries += 1
            a, b = sorted(rng.sample(range(len(key_results)), 2))
            up, down = key_results[a], key_results[b]
            if up.owner_team_id == down.owner_team_id:
                continue
            deps.append(Dependency(
                organization=org, cycle=cycle, upstream_key_result=up,
                downstream_key_result=down, requesting_team_id=down.owner_team_id,
                providing_team_id=up.owner_team_id, need="The API, in production",
                needed_by=cycle.end_date - timedelta(days=rng.randint(0, 60)),
                fallback="We ship a manual workaround and say so.",
                status=Dependency.Status.REQUESTED if len(deps) % 8 == 0
                else Dependency.Status.COMMITTED))
        Dependency.objects.bulk_create(deps, batch_size=2000)

        # Some of everything else, so every page has rows.
        shares = [ObjectiveShare(organization=org, objective=o, team=squads[(k + 1) % len(squads)],
                                 kind=ObjectiveShare.Kind.values[k % 2])
                  for k, o in enumerate(team_objectives[:max(1, len(team_objectives) // 10)])
                  if squads and squads[(k + 1) % len(squads)].pk != o.team_id]
        ObjectiveShare.objects.bulk_create(shares, batch_size=2000)
        # Requests to feed another team's key result, waiting for an answer.
        asks = len(key_results) // 50 or min(1, len(key_results) // 2)
        Contribution.objects.bulk_create([
            Contribution(organization=org, key_result=key_results[k],
                         shared=key_results[-1 - k], requested_by=users[0])
            for k in range(asks)
            if key_results[k].owner_team_id != key_results[-1 - k].owner_team_id],
            batch_size=2000)
        workflows = [Workflow(organization=org, cycle=cycle, objective=rows[k], lead=users[1],
                              purpose="Deliver this together, on one plan.")
                     for k in range(min(len(rows), len(roots) + len(areas)))]
        Workflow.objects.bulk_create(workflows)
        Stakeholder.objects.bulk_create([
            Stakeholder(organization=org, workflow=w, team=t, owner=lead_of.get(t.pk, users[0]),
                        role=Stakeholder.Role.LEAD if k == 0 else Stakeholder.Role.CONTRIBUTOR)
            for w in workflows for k, t in enumerate(rng.sample(made[1:], min(4, len(made) - 1)))])
        Milestone.objects.bulk_create([
            Milestone(organization=org, workflow=w, title=f"Milestone {k + 1}",
                      due_date=cycle.end_date - timedelta(days=10 * k))
            for w in workflows for k in range(3)])
        flagged = [k for k, p in enumerate(parents) if p is not None][::15]
        RecascadeFlag.objects.bulk_create([
            RecascadeFlag(organization=org, objective=rows[k], source=rows[parents[k]],
                          change="The parent objective changed its title.") for k in flagged])
        proposed = [o for o in rows if o.state == Objective.State.PROPOSED]
        ReviewComment.objects.bulk_create([
            ReviewComment(organization=org, objective=o, author=users[1],
                          text="Which company goal does this move?") for o in proposed[::3]])
        RecoveryAction.objects.bulk_create([
            RecoveryAction(organization=org, objective=o, title="Add a second on-call engineer",
                           owner=lead_of.get(o.team_id, users[0]),
                           due_date=cycle.end_date - timedelta(days=20))
            for o in team_objectives[::40]])
        Invitation.objects.bulk_create([
            Invitation(organization=org, email=f"new{k}@{org.slug}.example", role=Role.MEMBER,
                       invited_by=users[0]) for k in range(20)])
        team_lead = lead_of.get(squads[0].pk if squads else company.pk, users[0])
    return {"admin": users[0], "alignment_lead": users[min(1, len(users) - 1)],
            "team_lead": team_lead,
            "counts": {"people": len(users), "teams": len(made), "objectives": len(rows),
                       "key_results": len(key_results), "check_ins": len(check_ins),
                       "dependencies": len(deps), "shares": len(shares),
                       "workflows": len(workflows), "recascade_flags": len(flagged)}}
