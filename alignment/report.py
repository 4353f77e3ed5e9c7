"""The misalignment report: computed by the recompute, stored per cycle, read by pages.

The recompute of a cycle (``dependencies.network.run``, after a change or by the sweep; the
hourly full sweep too, so findings that depend on the calendar, stale key results and
unanswered dependencies, move with it) calls ``prepare`` in its compute phase, which loads the
cycle's data (a fixed number of queries) and runs the rules, and ``save`` in its write phase,
under the organization lock, which writes only the findings that changed. Pages call the
readers below (``summary``, ``stored``, ``for_objective``...): a query or two each, whatever the
size of the cycle. They never run the rules; a cycle with no stored report yet says it is being
prepared.
"""

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection
from django.db.models import Count, F, Window
from django.db.models.functions import Coalesce, RowNumber
from django.utils import timezone

from dependencies.models import Dependency
from okrs.models import KeyResult, Objective, ObjectiveParent
from orgs.models import Cycle

from . import rules
from .models import Finding, FindingsReport


def _querysets(org, cycle):
    """The rows the rules read: the cycle's live objectives and their key results."""
    objectives = (
        Objective.objects.for_org(org).filter(cycle=cycle).exclude(state="retired")
        .values("id", "title", "team_id", "team__name", "team__kind", "parent_id", "is_local",
                "state", "team__lead_id", "team__lead__full_name", "theme__name", "commitment"))
    key_results = (
        KeyResult.objects.for_org(org).filter(objective__cycle=cycle)
        .exclude(objective__state="retired"))
    return objectives, key_results


def cycle_data(org, cycle, *, now=None):
    objectives_rows, key_results_rows = _querysets(org, cycle)
    also = defaultdict(list)  # the parents each objective contributes to besides its primary one
    for objective_id, parent_id in ObjectiveParent.objects.for_org(org).filter(
            objective__cycle=cycle).order_by("id").values_list("objective_id", "parent_id"):
        also[objective_id].append(parent_id)
    objectives = [
        rules.Objective(
            id=o["id"], title=o["title"], team_id=o["team_id"], team=o["team__name"],
            team_kind=o["team__kind"], parent_id=o["parent_id"], is_local=o["is_local"],
            state=o["state"], owner_id=o["team__lead_id"], owner=o["team__lead__full_name"] or "",
            theme=o["theme__name"] or "", commitment=o["commitment"],
            also_parents=tuple(also.get(o["id"], ())))
        for o in objectives_rows
    ]
    key_results = [
        rules.KeyResult(id=k["id"], objective_id=k["objective_id"], title=k["title"],
                        created_at=k["created_at"], last_check_in_at=k["last_check_in_at"],
                        owner_team=k["owner_team__name"] or "")
        for k in key_results_rows.values("id", "objective_id", "title", "created_at",
                                         "last_check_in_at", "owner_team__name")
    ]
    dependencies = [
        rules.Dependency(id=d["id"], status=d["status"], created_at=d["created_at"],
                         requesting_team=d["requesting_team__name"],
                         providing_team=d["providing_team__name"], need=d["need"])
        for d in Dependency.objects.for_org(org).filter(cycle=cycle, status="requested")
        .values("id", "status", "created_at", "requesting_team__name", "providing_team__name",
                "need")
    ]
    return rules.Cycle(objectives=objectives, key_results=key_results, dependencies=dependencies,
                       alignment_model=org.alignment_model,
                       local_share_limit=org.local_share_limit / 100,
                       escalate_after_days=org.escalate_after_days,
                       now=now or timezone.now())


# What the rules that do not read the clock read (``UNTIMED_KEY_RESULT``: of key results, only
# these columns; dependencies and the clock are read by ``TIMED`` rules alone, a test checks
# it). A rule that reads more adds it here and to ``inputs_digest``.
UNTIMED_KEY_RESULT = ("id", "objective_id", "title", "owner_team__name")


def inputs_digest(org, cycle):
    """A digest of everything the rules that do not read the clock read (the cycle's live
    objectives with their teams, leads and themes, and their extra parents; of its key results
    ``UNTIMED_KEY_RESULT``;
    the organization's alignment settings), of their stored findings, and of the code. Taken
    before the rules read: equal to the one stored with the report, their findings are those
    stored (``findings``). A check-in or a dependency's answer leaves it as it is."""
    from dependencies import network

    objectives, key_results = _querysets(org, cycle)
    parts = [_sql(objectives), _sql(key_results.values(*UNTIMED_KEY_RESULT)),
             ("SELECT id, alignment_model, local_share_limit FROM orgs_organization "
              "WHERE id = %s", [org.pk]),
             _sql(ObjectiveParent.objects.for_org(org).filter(objective__cycle=cycle).values(
                 "id", "objective_id", "parent_id")),
             _sql(Finding.objects.for_org(org).filter(cycle=cycle).exclude(
                 rule__in=TIMED_RULES).values("id", "rule", "severity", "message", "who",
                                              "objective_id", "key_result_id",
                                              "dependency_id"))]
    return network.digest_of(parts, f"rules {network.code_version()}")


def _sql(queryset):
    return queryset.order_by().query.get_compiler(queryset.db).as_sql()


# ``findings``'s ``stored`` when the caller keeps the stored findings of the rules that do not
# read the clock as they are (``prepare``): when they still hold, only the clock's are returned,
# as a ``Reused`` list, and no stored row is read.
STORED = object()


class Reused(list):
    """Findings of the rules that read the clock alone: the others are those stored."""


def findings(org, cycle, *, now=None, inputs=None, stored=None):
    """The rules' findings on the cycle's current data. Only the recompute calls this (through
    ``prepare``); pages read what it stored.

    inputs, stored: the digest of the rules' inputs taken now (``inputs_digest``) and the
    stored findings' rows (id, rule, severity, message, who, objective, key result,
    dependency). When the digest is the one stored with the report, the rules that do not
    read the clock would find what they found then: their stored findings are returned with
    what the clock's rules find now. Otherwise every rule runs (each keeps the units of its
    input that did not change from its last run, ``rules.UNITS``)."""
    if cycle is None:
        return []
    if inputs is not None and stored is not None and inputs == FindingsReport.objects.for_org(
            org).filter(cycle=cycle).values_list("inputs", flat=True).first():
        found = [f for rule in TIMED for f in rule(timed_data(org, cycle, now or timezone.now()))]
        if stored is STORED:
            return Reused(found)
        found += [rules.Finding(rule=rule, severity=severity, message=message, who=who,
                                objective_id=o, key_result_id=k, dependency_id=d)
                  for _, rule, severity, message, who, o, k, d in stored
                  if rule not in TIMED_RULES]
        return sorted(found, key=lambda f: (rules.SEVERITY_ORDER[f.severity], f.rule,
                                            f.message))
    return rules.run_all(cycle_data(org, cycle, now=now))


def counts(found):
    by = Counter(f.severity for f in found)
    return {"total": len(found), "high": by[rules.HIGH], "medium": by[rules.MEDIUM],
            "low": by[rules.LOW]}


def mark_cycles_changed(org):
    """Something every finding can read changed (the organization's alignment settings, a
    theme, a team's name or lead): mark every cycle that is not closed for a recompute. Call it
    inside the change's transaction, after the organization lock, like ``mark_changed``."""
    from dependencies import network

    for cycle in Cycle.objects.for_org(org).exclude(status=Cycle.Status.CLOSED):
        network.mark_changed(cycle)


# Computing and storing (the recompute) ------------------------------------------------------


def _key(rule, severity, message, who, objective_id, key_result_id, dependency_id):
    return (rule, severity, message, who, objective_id, key_result_id, dependency_id)


@dataclass
class Pending:
    """What the compute phase found, and the stored rows it differs from."""

    found: list
    add: list  # rules.Finding to insert
    remove: list  # ids of stored rows to delete
    kept: Counter = None  # reused stored findings by severity (``prepare(reuse=True)``)
    inputs: str | None = None  # the digest of the rules' inputs (``inputs_digest``)


# The rules whose findings depend on the clock (``Cycle.now``); the others depend only on the
# cycle's data, so a run that finds the data unchanged can keep their stored findings.
TIMED = (rules.stale, rules.unowned_dependency)
TIMED_RULES = ("stale", "unowned_dependency")


def timed_data(org, cycle, now):
    """What the clock-dependent rules read, narrowed in SQL to the rows they can report: key
    results of published objectives not checked in (or created, if never) since the stale
    limit, and requests older than the organization's escalation delay."""
    stale_before = now - timedelta(days=rules.STALE_DAYS)
    key_results = (KeyResult.objects.for_org(org).filter(
        objective__cycle=cycle, objective__state="published")
        .annotate(last=Coalesce("last_check_in_at", "created_at"))
        .filter(last__lt=stale_before)
        .values("id", "objective_id", "title", "created_at", "last_check_in_at",
                "objective__team_id", "objective__team__name", "objective__team__kind"))
    objectives, krs = {}, []
    for k in key_results:
        objectives[k["objective_id"]] = rules.Objective(
            id=k["objective_id"], title="", team_id=k["objective__team_id"],
            team=k["objective__team__name"], team_kind=k["objective__team__kind"])
        krs.append(rules.KeyResult(id=k["id"], objective_id=k["objective_id"], title=k["title"],
                                   created_at=k["created_at"],
                                   last_check_in_at=k["last_check_in_at"]))
    dependencies = [
        rules.Dependency(id=d["id"], status=d["status"], created_at=d["created_at"],
                         requesting_team=d["requesting_team__name"],
                         providing_team=d["providing_team__name"], need=d["need"])
        for d in Dependency.objects.for_org(org).filter(
            cycle=cycle, status="requested",
            created_at__lte=now - timedelta(days=org.escalate_after_days))
        .values("id", "status", "created_at", "requesting_team__name", "providing_team__name",
                "need")
    ]
    return rules.Cycle(objectives=list(objectives.values()), key_results=krs,
                       dependencies=dependencies, escalate_after_days=org.escalate_after_days,
                       now=now)


def prepare(cycle, *, now=None, reuse=False):
    """The compute phase: run the rules, and diff their findings against the stored rows of the
    cycle (one read; runs of a cycle take turns, so nobody else writes them meanwhile).

    reuse: the cycle's data is as it was when its findings were stored (the recompute checked
    it, ``dependencies.network.fingerprint``): only the rules that depend on the clock run; the
    other findings stay as they are, counted in SQL. Otherwise the digest of the rules' inputs
    decides (``findings``)."""
    now = now or timezone.now()
    org = cycle.organization
    stored_rows = Finding.objects.for_org(org).filter(cycle=cycle)
    kept = inputs = None
    columns = ("id", "rule", "severity", "message", "who", "objective_id", "key_result_id",
               "dependency_id")
    if reuse:
        data = timed_data(org, cycle, now)
        found = [f for rule in TIMED for f in rule(data)]
        kept = Counter(dict(stored_rows.exclude(rule__in=TIMED_RULES).values_list("severity")
                            .annotate(n=Count("id")).order_by()))
        rows = stored_rows.filter(rule__in=TIMED_RULES).values_list(*columns)
    else:
        inputs = inputs_digest(org, cycle)  # before the rules read
        found = findings(org, cycle, now=now, inputs=inputs, stored=STORED)
        if isinstance(found, Reused):
            # As ``reuse``: the stored findings of the rules that ignore the clock stay as they
            # are (counted in SQL); those of the clock's are compared with what they found.
            kept = Counter(dict(stored_rows.exclude(rule__in=TIMED_RULES).values_list(
                "severity").annotate(n=Count("id")).order_by()))
            rows = stored_rows.filter(rule__in=TIMED_RULES).values_list(*columns)
        else:
            rows = stored_rows.values_list(*columns)
    stored = {}
    for pk, *key in rows:
        stored.setdefault(_key(*key), []).append(pk)
    add = []
    for f in found:
        ids = stored.get(_key(f.rule, f.severity, f.message, f.who, f.objective_id,
                              f.key_result_id, f.dependency_id))
        if ids:
            ids.pop()  # unchanged: kept as it is
        else:
            add.append(f)
    return Pending(found, add, [pk for ids in stored.values() for pk in ids], kept, inputs)


def save(cycle, pending, *, now=None):
    """The write phase (under the organization lock): delete the findings that went, insert the
    new ones, and record the report's counts and time. A fixed number of queries."""
    now = now or timezone.now()
    if pending.remove:
        _delete(pending.remove)
    if pending.add:
        _insert(cycle, pending.add)
    fields = counts(pending.found) | {"computed_at": now}
    if pending.inputs is not None:
        fields["inputs"] = pending.inputs
    if pending.kept:
        for severity, n in pending.kept.items():
            fields[severity] += n
            fields["total"] += n
    reports = FindingsReport.objects.for_org(cycle.organization).filter(cycle=cycle)
    if not reports.update(**fields):
        FindingsReport.objects.create(organization_id=cycle.organization_id, cycle=cycle,
                                      **fields)


def _delete(ids):
    table = Finding._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"DELETE FROM {table} WHERE id = ANY(%s)", [ids])
        else:
            cursor.execute(f"DELETE FROM {table} WHERE id IN (SELECT value FROM json_each(%s))",
                           [json.dumps(ids)])


_COLUMNS = ("rule", "severity", "rank", "message", "who", "objective_id", "key_result_id",
            "dependency_id")


def _insert(cycle, found):
    """One INSERT for any number of findings, fed by a single JSON parameter."""
    payload = json.dumps([
        {"rule": f.rule, "severity": f.severity, "rank": rules.SEVERITY_ORDER[f.severity],
         "message": f.message, "who": f.who, "objective_id": f.objective_id,
         "key_result_id": f.key_result_id, "dependency_id": f.dependency_id} for f in found])
    table, columns = Finding._meta.db_table, ", ".join(_COLUMNS)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"INSERT INTO {table} (organization_id, cycle_id, {columns}) "
                f"SELECT %s, %s, {columns} FROM jsonb_to_recordset(%s::jsonb) AS v(rule text, "
                "severity text, rank smallint, message text, who text, objective_id bigint, "
                "key_result_id bigint, dependency_id bigint)",
                [cycle.organization_id, cycle.pk, payload])
        else:
            values = ", ".join(f"j.value ->> '$.{c}'" for c in _COLUMNS)
            cursor.execute(
                f"INSERT INTO {table} (organization_id, cycle_id, {columns}) "
                f"SELECT %s, %s, {values} FROM json_each(%s) AS j",
                [cycle.organization_id, cycle.pk, payload])


# Reading (pages) ---------------------------------------------------------------------------


def summary(org, cycle):
    """The cycle's stored report (``total``, ``high``, ``medium``, ``low``, ``computed_at``), or
    None while it is being prepared. One query."""
    if cycle is None:
        return None
    return FindingsReport.objects.for_org(org).filter(cycle=cycle).first()


def stored(org, cycle):
    """The stored report and its findings, in the report's order (severity, rule, message);
    ``(None, [])`` while it is being prepared. Two queries."""
    report = summary(org, cycle)
    if report is None:
        return None, []
    return report, list(Finding.objects.for_org(org).filter(cycle=cycle))


def first_by_rule(org, cycle, per_rule):
    """The stored report, and for every rule that found something ``(count, its first
    per_rule findings)`` in the report's order; ``(None, {})`` while it is being prepared. Two
    queries (the report, then one with window functions that counts and numbers each rule's
    findings), whatever the number of findings."""
    report = summary(org, cycle)
    if report is None:
        return None, {}
    order = [F(name[1:]).desc() if name.startswith("-") else F(name)
             for name in Finding._meta.ordering]
    rows = (Finding.objects.for_org(org).filter(cycle=cycle)
            .annotate(row=Window(RowNumber(), partition_by=[F("rule")], order_by=order),
                      rule_total=Window(Count("id"), partition_by=[F("rule")]))
            .filter(row__lte=per_rule).order_by("rule", "row"))
    by = {}
    for f in rows:
        by.setdefault(f.rule, (f.rule_total, []))[1].append(f)
    return report, by


def of_rule(org, cycle, rule):
    """The stored findings of one rule, in the report's order, as a query to page in SQL."""
    return Finding.objects.for_org(org).filter(cycle=cycle, rule=rule)


def for_objective(org, cycle, objective_id):
    """The stored findings of one objective. One query."""
    return list(Finding.objects.for_org(org).filter(cycle=cycle, objective_id=objective_id))


def for_objectives(org, cycle, objective_ids):
    """The stored findings of some objectives, by objective id. One query."""
    by = {pk: [] for pk in objective_ids}
    for f in Finding.objects.for_org(org).filter(cycle=cycle, objective_id__in=objective_ids):
        by[f.objective_id].append(f)
    return by


def count_by_objective(org, cycle, objective_ids):
    """How many stored findings each of some objectives has. One query."""
    return dict(Finding.objects.for_org(org).filter(cycle=cycle, objective_id__in=objective_ids)
                .values_list("objective_id").annotate(n=Count("id")).order_by())
