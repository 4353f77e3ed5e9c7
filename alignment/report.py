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

import hashlib
import json
import logging
import os
import pickle
import signal
import time
import warnings
from collections import Counter, defaultdict
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from operator import attrgetter, itemgetter

from django.db import connection
from django.db.models import Case, Count, F, TextField, Value, When, Window
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, RowNumber
from django.utils import timezone

from dependencies.models import Dependency
from okrs.models import KeyResult, Objective, ObjectiveParent
from orgs.models import Cycle, Organization, Team, Theme

from . import rules
from .models import Finding, FindingsReport, RuleUnits

logger = logging.getLogger(__name__)


def _querysets(org, cycle):
    """The rows the rules read: the cycle's live objectives and their key results, in the order
    of their ids (the order the rules see them in, from scratch or from kept rows)."""
    objectives = (
        Objective.objects.for_org(org).filter(cycle=cycle).exclude(state="retired")
        .values("id", "title", "team_id", "team__name", "team__kind", "parent_id", "is_local",
                "state", "team__lead_id", "team__lead__full_name", "theme__name", "commitment")
        .order_by("id"))
    key_results = (
        KeyResult.objects.for_org(org).filter(objective__cycle=cycle)
        .exclude(objective__state="retired").order_by("id"))
    return objectives, key_results


def cycle_data(org, cycle, *, now=None):
    """Everything every rule reads, read from scratch (the recompute itself reads the rules'
    inputs from kept rows by version, ``_inputs``; both give the rules the same data)."""
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
# it). A rule that reads more adds it to ``_inputs`` and ``_check``.
UNTIMED_KEY_RESULT = ("id", "objective_id", "title", "owner_team__name")


# The rules' inputs, kept between runs by row version --------------------------------------
#
# What the rules that do not read the clock read: the cycle's live objectives (the columns of
# ``_OBJECTIVE_COLUMNS``), their teams (name, kind, lead), the leads' names, the themes' names,
# the extra parents, of key results ``UNTIMED_KEY_RESULT``, and the organization's alignment
# settings. On PostgreSQL a row's version (``xmin`` and ``ctid``, as ``dependencies.network``
# keeps its rows) says whether it is the row read before: objectives and key results are
# identified by the md5 of their ``id version`` list, computed in SQL to decide whether the
# rules must run at all, and from the rows actually used when they do; the few rows of teams,
# leads, themes and extra parents are read and hashed on every run. Elsewhere a row's version
# is its content. The stored findings are identified by their content off PostgreSQL, by their
# versions on PostgreSQL (any write of a finding moves its version; a run's save checks that
# the versions are those it left in place and wrote, ``_after_write``).

_OBJECTIVE_COLUMNS = ("id", "title", "team_id", "parent_id", "is_local", "state", "theme_id",
                      "commitment")
_VERSION = "{t}.id::text || ' ' || {t}.xmin::text || '/' || {t}.ctid::text"
_FINDING_COLUMNS = ("id", "rule", "severity", "message", "who", "objective_id",
                    "key_result_id", "dependency_id")


def _objectives_qs(org, cycle):
    return Objective.objects.for_org(org).filter(cycle=cycle).exclude(state="retired").order_by(
        "id")


def _key_results_qs(org, cycle):
    return KeyResult.objects.for_org(org).filter(objective__cycle=cycle).exclude(
        objective__state="retired").order_by("id")


def _untimed_findings_qs(org, cycle):
    return Finding.objects.for_org(org).filter(cycle=cycle).exclude(
        rule__in=TIMED_RULES).order_by("id")


def _md5(text):
    return hashlib.md5(text.encode()).hexdigest()


def _versions_md5(pairs):
    """The md5 of ``id version`` pairs in the order of ids, as ``_check`` computes it in SQL."""
    return _md5(",".join([f"{pk} {version}" for pk, version in pairs]))


def _content_md5(rows):
    return _md5("\n".join(sorted(repr(row) for row in rows)))


def _postgresql():
    return connection.vendor == "postgresql"


@dataclass
class _Check:
    """What ``_check`` found, as digests: the content of the rules' columns of the live
    objectives and key results and their versions, the stored findings of the rules that ignore
    the clock (their versions on PostgreSQL, as ``finding_versions``; elsewhere their content);
    and the small tables the rules read (``_small``). Off PostgreSQL a row's version is its
    content, and the rows read are in ``rows``."""

    objectives: str
    key_results: str
    objective_versions: str
    key_result_versions: str
    findings: str
    finding_versions: str | None
    small: tuple
    rows: tuple | None = None  # (objectives, key results) read in full, off PostgreSQL
    # The key results ``dependencies.network`` read in this run when they were the table's at
    # the check (``_key_results_since``); ``key_result_versions`` is then None.
    network_key_results: dict | None = None


def _check(org, cycle):
    """One statement on PostgreSQL (one snapshot): the digests of the content and the versions
    of the rules' objectives and key results, and of the versions of the stored findings of the
    rules that ignore the clock. Then the small tables. A check-in or a run's own write of
    health moves a row's version, not the content the rules read: the content decides whether
    they run, the versions whether the rows they read are the ones the content describes."""
    if not _postgresql():
        objectives = _read_objectives(_objectives_qs(org, cycle))
        key_results = _read_key_results(_key_results_qs(org, cycle))
        stored = list(_untimed_findings_qs(org, cycle).values_list(*_FINDING_COLUMNS))
        o = _versions_md5((pk, row[-1]) for pk, row in objectives.items())
        k = _versions_md5((pk, row["row_version"]) for pk, row in key_results.items())
        return _Check(o, k, o, k, _content_md5(stored), None, _small(org, cycle),
                      (objectives, key_results))
    kept = _network_key_results(cycle)
    if kept is not None:
        values, described = _rules_values(kept[0]), _DESCRIBED.get(cycle.pk)
        if described is not None and described[0] == values and _IN_RUN.get() == cycle.pk:
            # The key results as described: their digest is that one, none of them is read.
            f_versions = _finding_versions(cycle)
            if f_versions is not None:
                o, o_versions = _md5s(
                    (_objectives_qs(org, cycle), _OBJECTIVE_COLUMNS, "okrs_objective"))
            else:
                o, o_versions, f_versions = _md5s(
                    (_objectives_qs(org, cycle), _OBJECTIVE_COLUMNS, "okrs_objective"),
                    (_untimed_findings_qs(org, cycle), None, "alignment_finding"))
            k = described[1]
        else:
            checked = _key_results_since(org, cycle, *kept)
            if checked is None:
                kept = None
            else:
                o, o_versions, k, f_versions = checked
                _keep_for(_DESCRIBED, cycle.pk, (values, k))
        if kept is not None:
            return _Check(o, k, o_versions, None, f_versions, f_versions, _small(org, cycle),
                          network_key_results=kept[0])
    o, o_versions, k, k_versions, f_versions = _md5s(
        (_objectives_qs(org, cycle), _OBJECTIVE_COLUMNS, "okrs_objective"),
        (_key_results_qs(org, cycle), _KEY_RESULT_COLUMNS, "okrs_keyresult"),
        (_untimed_findings_qs(org, cycle), None, "alignment_finding"))
    return _Check(o, k, o_versions, k_versions, f_versions, f_versions, _small(org, cycle))


# cycle id -> ({id: the rules' columns of a key result}, the digest of that content, as
# ``_CONTENT``): the key results of the network's rows that a check found to be the table's.
# A later run whose network rows hold the same in these columns (a check-in moves a row's
# version, not its title, objective or owner team) takes that digest in its compute phase
# (``_IN_RUN``, the network's rows read in that run) and reads no key result:
# its check costs PostgreSQL the objectives and the findings alone. The digest then describes
# the network's rows of this run (read after the fingerprint was taken), which are the rows
# the rules take: a write after that read is in no digest the run takes, and the next run,
# whose fingerprint moved, sees it.
_DESCRIBED = {}
# The cycle whose run's compute phase is checking (``prepare``, called by the network's run
# after it read its rows): only then are the network's rows those of this run.
_IN_RUN = ContextVar("alignment_report_in_run", default=None)


def _rules_values(rows):
    """{id: (objective_id, title, owner_team_id)} of the network's key result rows."""
    return dict(zip(rows.keys(), map(_RULES_VALUES, rows.values()), strict=True))


def _content_check(org, cycle):
    """In a run's compute phase, when the network's key results are as described
    (``_DESCRIBED``): the check of the content alone, which finds whether the stored findings
    came from these inputs (a check-in: the objectives and the stored findings scanned, no
    version ordered and digested), if they did; else None, and the rules run on the full
    check (``_check``)."""
    kept, described = _network_key_results(cycle), _DESCRIBED.get(cycle.pk)
    if kept is None or described is None or _IN_RUN.get() != cycle.pk \
            or _rules_values(kept[0]) != described[0]:
        return None
    f_versions = _finding_versions(cycle)
    if f_versions is not None:
        (o,) = _md5s((_objectives_qs(org, cycle), _OBJECTIVE_COLUMNS, "okrs_objective"),
                     versions=(False,))
    else:
        o, f_versions = _md5s(
            (_objectives_qs(org, cycle), _OBJECTIVE_COLUMNS, "okrs_objective"),
            (_untimed_findings_qs(org, cycle), None, "alignment_finding"),
            versions=(False, True))
    check = _Check(o, described[1], None, None, f_versions, f_versions, _small(org, cycle),
                   network_key_results=kept[0])
    stored = FindingsReport.objects.for_org(org).filter(cycle=cycle).values_list(
        "inputs", flat=True).first()
    inputs = _with_findings(_identity(check.objectives, check.key_results, check.small),
                            check.findings)
    return check if inputs == stored else None


def _keep_for(kept, cycle_id, value):
    """``kept[cycle_id] = value``, keeping the last ``KEPT_CYCLES`` cycles'."""
    kept.pop(cycle_id, None)
    kept[cycle_id] = value
    for oldest in list(kept)[:-KEPT_CYCLES]:
        del kept[oldest]


def _network_key_results(cycle):
    """(rows, horizon) of the key results ``dependencies.network`` keeps of the cycle, when it
    knows a horizon for them (``network._horizon``), else None."""
    from dependencies import network

    rows = network.kept_rows(cycle.pk)
    if rows is None or rows.horizon is None:
        return None
    return rows.key_results, rows.horizon


def _key_results_since(org, cycle, kept, since):
    """``_check`` when the network keeps the cycle's key results with a horizon: the digests of
    the objectives and findings as ``_md5s``, and of the key results the content only, with
    their count and the (id, version) of those written since the horizon, in one statement.
    (o, o_versions, k, f_versions) when the kept rows are the table's at this statement, else
    None (the caller digests every version, as without kept rows).

    Why that is enough: the kept rows hold, for each key result of the cycle when they were
    read, its version, and a row version written after that read has a transaction id not
    below ``since`` (``network._KeptRows``). So a row now in the cycle that was not written
    since the horizon, nor its objective (which decides whether it is in the cycle), is kept,
    at the version it has now; the rows written since must be kept at their versions now; and
    with as many rows now as kept, the rows now are the kept ones. Ordering and digesting the
    versions of 75,000 rows cost PostgreSQL more than the rest of the check together."""
    from dependencies import network

    key_results = network._written(_key_results_qs(org, cycle).annotate(v=RawSQL(
        "okrs_keyresult.xmin::text || '/' || okrs_keyresult.ctid::text", ())), since,
        via="okrs_objective").values(*_KEY_RESULT_COLUMNS, "v", "written").order_by()
    sql, params = key_results.query.get_compiler(key_results.db).as_sql()
    names = ", ".join(f't."{name}"' for name in _KEY_RESULT_COLUMNS)
    part = (f"(SELECT {_CONTENT.format(columns=names)}, count(*), "
            "array_agg(t.id ORDER BY t.id) FILTER (WHERE t.written), "
            "array_agg(t.v ORDER BY t.id) FILTER (WHERE t.written) "
            f"FROM ({sql}) t) AS k")
    horizon = ("(SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint) AS h")
    o, o_versions, f_versions, k, total, ids, versions, now = _md5s(
        (_objectives_qs(org, cycle), _OBJECTIVE_COLUMNS, "okrs_objective"),
        (_untimed_findings_qs(org, cycle), None, "alignment_finding"),
        extra=((part, params), (horizon, ())))
    if now - since >= network.HORIZON_SPAN or total != len(kept):
        return None
    for pk, version in zip(ids or (), versions or (), strict=True):
        row = kept.get(pk)
        if row is None or row["row_version"] != version:
            return None
    return o, o_versions, k, f_versions


def _small(org, cycle):
    """The few rows the rules read besides objectives and key results, read whole on every
    run: the organization's alignment settings, its teams with their leads' names, its themes,
    and the cycle's extra parents (objective, parent), in the order of ids."""
    settings = Organization.objects.filter(pk=org.pk).values_list(
        "alignment_model", "local_share_limit").get()
    teams = tuple(Team.objects.for_org(org).order_by("id").values_list(
        "id", "name", "kind", "lead_id", "lead__full_name"))
    themes = tuple(Theme.objects.for_org(org).order_by("id").values_list("id", "name"))
    parents = tuple(ObjectiveParent.objects.for_org(org).filter(objective__cycle=cycle).order_by(
        "id").values_list("objective_id", "parent_id"))
    return settings, teams, themes, parents


def _identity(objectives, key_results, small):
    """What the rules that ignore the clock read, as one digest (and the code that reads it)."""
    from dependencies import network

    return hashlib.sha256(
        f"rules {network.code_version()}\n{objectives}\n{key_results}\n{small!r}".encode()
    ).hexdigest()


def _with_findings(identity, findings):
    """The digest stored with the report (``FindingsReport.inputs``): the rules' inputs and
    their stored findings."""
    return hashlib.sha256(f"{identity} {findings}".encode()).hexdigest()


def _read_objectives(queryset):
    """{id: row} of the rules' objective columns and the row's version (last)."""
    if _postgresql():
        queryset = queryset.annotate(row_version=RawSQL(
            "okrs_objective.xmin::text || '/' || okrs_objective.ctid::text", ()))
        return {row[0]: row for row in queryset.values_list(*_OBJECTIVE_COLUMNS, "row_version")}
    return {row[0]: (*row, repr(row)) for row in queryset.values_list(*_OBJECTIVE_COLUMNS)}


# The key result columns the rules' data is built from: as ``UNTIMED_KEY_RESULT``, but the
# owner team by id (its name comes with the teams, ``_small``: a row's version does not move
# when its team is renamed). ``dependencies.network`` reads these too.
_KEY_RESULT_COLUMNS = ("id", "objective_id", "title", "owner_team_id")
_RULES_VALUES = itemgetter(*_KEY_RESULT_COLUMNS[1:])  # of a network's row (``_rules_values``)


def _read_key_results(queryset):
    """{id: row} as ``dependencies.network`` reads them (the columns the rules read, and the
    row's version)."""
    names = _KEY_RESULT_COLUMNS
    if _postgresql():
        queryset = queryset.annotate(row_version=RawSQL(
            "okrs_keyresult.xmin::text || '/' || okrs_keyresult.ctid::text", ()))
        return {row[0]: dict(zip((*names, "row_version"), row, strict=True))
                for row in queryset.values_list(*names, "row_version")}
    return {row[0]: dict(zip(names, row, strict=True)) | {"row_version": repr(row)}
            for row in queryset.values_list(*names)}


KEPT_CYCLES = 2  # cycles whose inputs a process keeps, the last run first dropped last


@dataclass
class _Kept:
    """What the last run of a cycle used and stored, kept in this process (``rules.KEPT``)."""

    objectives: dict  # id -> row (``_read_objectives``)
    built: dict  # objective id -> (row, what else it read, rules.Objective)
    findings: dict | None = None  # key -> [(id, version)]: the untimed findings stored
    finding_versions: str | None = None  # their md5 (``_versions_md5``)
    finding_pairs: list | None = None  # their (id, "id version"), in the order of ids
    key_results: dict = field(default_factory=dict)  # id -> (version, rules.KeyResult)
    owners: dict | None = None  # owner team id -> the name the key results were made with
    described: "_Described | None" = None  # what the stored untimed findings came from
    small: tuple | None = None  # the small tables the objects were made with (``_small``)


@dataclass
class _Described:
    """What the stored untimed findings were computed from, and those findings by objective:
    set by a run that ran the rules once its write is checked (``_after_write``), so that the
    next run computes again only the findings a change reaches (``_near``)."""

    objectives: dict  # id -> (row, context, rules.Objective), as ``_Kept.built``
    key_results: dict  # id -> (version, rules.KeyResult), as ``_Kept.key_results``
    children: dict  # objective id -> the ids of its live children, in order
    key_results_of: dict  # objective id -> its key results, in order
    by_objective: dict  # objective id -> the ``rules.PER_OBJECTIVE`` findings about it
    shape: list  # the ``rules.SHAPE`` findings
    settings: tuple  # the alignment settings
    units: int  # the rules' units kept in the process after that run (``rules.UNITS``)


def _kept(cycle_id):
    from . import kept  # what a restart read back, decoded when the rules first need it

    return rules.KEPT.get(cycle_id) or kept.take(cycle_id) or _Kept({}, {})


def _keep(cycle_id, kept):
    rules.KEPT.pop(cycle_id, None)
    rules.KEPT[cycle_id] = kept
    for oldest in list(rules.KEPT)[:-KEPT_CYCLES]:
        del rules.KEPT[oldest]


def _objective_rows(org, cycle, kept, renewed=None):
    """The rules' objective rows: on PostgreSQL the kept ones but for those whose version
    moved (one narrow query of versions, then the moved rows). A row whose version alone
    moved, as ``dependencies.network`` found in this run (a tree move: ``_KeptRows.renewed``,
    from the version kept here to the one read here), is the kept one with its new version,
    not read; ``renewed`` (a dict) takes them: id -> the row kept."""
    queryset = _objectives_qs(org, cycle)
    if not kept or not _postgresql():
        return _read_objectives(queryset)
    versions = queryset.annotate(v=RawSQL(
        "okrs_objective.xmin::text || '/' || okrs_objective.ctid::text", ())).values_list(
            "id", "v")
    versions = _rows_list(versions)
    moved = {pk: version for pk, version in versions
             if (kept.get(pk) or _NO_ROW)[-1] != version}
    same = _renewed_by_the_network(cycle) if moved else None
    again = {}
    if same:
        for pk, version in moved.items():
            row = kept.get(pk)
            if row is not None and same.get(pk) == (row[-1], version):
                again[pk] = (*row[:-1], version)
                if renewed is not None:
                    renewed[pk] = row
        for pk in again:
            del moved[pk]
    if len(moved) > len(kept) // 5:
        return _read_objectives(queryset)
    fresh = _read_objectives(queryset.filter(id__in=moved)) if moved else {}
    fresh.update(again)
    # A row gone between the two reads is left out (it is not in ``fresh``).
    return {pk: fresh.get(pk) or kept[pk] for pk, _ in versions
            if pk in fresh or pk not in moved}


def _renewed_by_the_network(cycle):
    """The objectives whose version alone moved, as ``dependencies.network`` found them in
    this run (its hash covers the columns read here too), or None."""
    from dependencies import network

    rows = network.kept_rows(cycle.pk)
    return rows.renewed if rows is not None else None


_NO_ROW = (None,)


def _key_result_rows(org, cycle, check):
    """The rules' key result rows: those ``dependencies.network`` read in this run (kept with
    their versions) when their versions are the table's (``check``), else read here."""
    from dependencies import network

    rows = network.kept_rows(cycle.pk)
    if rows is not None and (rows.key_results is check.network_key_results or (
            check.key_result_versions is not None and _versions_md5(
                (pk, k["row_version"]) for pk, k in rows.key_results.items())
            == check.key_result_versions)):
        return rows.key_results
    return _read_key_results(_key_results_qs(org, cycle))


def _network_rows(cycle):
    from dependencies import network

    rows = network.kept_rows(cycle.pk)
    return rows.key_results if rows is not None else None


def _inputs(org, cycle, check, now):
    """The rules' data (a ``rules.Cycle`` of the rules that ignore the clock) from rows kept
    by version, and the identity of the rows it used (``_identity``)."""
    last = _kept(cycle.pk)
    renewed = {}  # id -> the row kept, of the rows whose version alone moved
    if check.rows is not None:
        objective_rows, key_result_rows = check.rows
    else:
        objective_rows = _objective_rows(org, cycle, last.objectives, renewed)
        key_result_rows = _key_result_rows(org, cycle, check)
    settings, teams, themes, parents = check.small
    team_of = {pk: (name, kind, lead_id, lead or "") for pk, name, kind, lead_id, lead in teams}
    theme_of = dict(themes)
    also = defaultdict(list)
    for objective_id, parent_id in parents:
        also[objective_id].append(parent_id)
    also = {pk: tuple(ids) for pk, ids in also.items()}
    built, objectives, last_built, no_team = {}, [], last.built, ("", "", None, "")
    rebuilt = []  # the objectives made again (new, or what they read moved)
    # When the teams, themes and extra parents are those of the last run, a row kept (the
    # very one) keeps its object without a look at what else it reads.
    same_small = last.small == check.small
    for pk, row in objective_rows.items():
        if same_small:
            was = last_built.get(pk)
            if was is not None and was[0] is row:
                built[pk] = was
                objectives.append(was[2])
                continue
            if was is not None and renewed and was[0] is renewed.get(pk):
                built[pk] = (row, was[1], was[2])  # the same columns, a new version
                objectives.append(was[2])
                continue
        _, title, team_id, parent_id, is_local, state, theme_id, commitment, _ = row
        context = (team_of.get(team_id), theme_of.get(theme_id), also.get(pk, ()))
        was = last_built.get(pk)
        # The row kept, or one read again with the same content (an mptt insert moves the
        # ``lft``/``rght``, so the version, of every row of its tree, not what the rules read).
        if was is not None and (was[0] is row or was[0][:-1] == row[:-1]) \
                and was[1] == context:
            built[pk] = was if was[0] is row else (row, context, was[2])
            objectives.append(was[2])
            continue
        team = context[0] or no_team
        o = rules.objective(pk, title, team_id, team[0], team[1], parent_id, is_local, state,
                            team[2], team[3], context[1] or "", commitment, context[2])
        built[pk] = (row, context, o)
        objectives.append(o)
        rebuilt.append(pk)
    # A key result is made again when its row's version moved (or an owner team's name): else
    # the one kept is the same. Each owner team's name is looked up once per team.
    owner_of = {pk: team[0] or "" for pk, team in team_of.items()}
    new_key_result = rules.key_result
    kept_key_results = last.key_results if last.owners == owner_of else {}
    remade = [pk for pk, row in key_result_rows.items()
              if (was := kept_key_results.get(pk)) is None or was[0] != row["row_version"]]
    by_id = dict(kept_key_results)
    for pk in remade:
        row = key_result_rows[pk]
        by_id[pk] = (row["row_version"], new_key_result(
            pk, row["objective_id"], row["title"], owner_of.get(row["owner_team_id"], "")))
    if len(by_id) != len(key_result_rows) or (kept_key_results and any(
            pk < next(reversed(kept_key_results)) for pk in remade
            if pk not in kept_key_results)):
        by_id = {pk: by_id[pk] for pk in key_result_rows}  # some gone, or new among the kept
    key_results = [was[1] for was in by_id.values()]
    _keep(cycle.pk, _Kept(objective_rows, built, last.findings, last.finding_versions,
                          last.finding_pairs, by_id, owner_of, last.described, check.small))
    # The rows used are those whose content ``check`` saw when their versions are those it
    # saw; else a write came in between, and no digest describes them (None: the next run
    # runs every rule).
    same = check.rows is not None or (
        _versions_md5((pk, row[-1]) for pk, row in objective_rows.items())
        == check.objective_versions
        and (key_result_rows is _network_rows(cycle) or _versions_md5(
            (pk, k["row_version"]) for pk, k in key_result_rows.items())
            == check.key_result_versions))
    identity = _identity(check.objectives, check.key_results, check.small) if same else None
    data = rules.Cycle(objectives=objectives, key_results=key_results, dependencies=[],
                       alignment_model=settings[0], local_share_limit=settings[1] / 100,
                       now=now)
    # What this run's rows are, beside what the last run's were: for ``_near``.
    made = _Made(last_built, built, rebuilt, last.key_results, by_id, remade,
                 (settings[0], settings[1]))
    return data, identity, made


@dataclass
class _Made:
    """The rules' inputs of a run beside those of the run before (``_inputs``): each row's
    object, and which were made again (the others are the very objects of the run before)."""

    last_objectives: dict
    objectives: dict  # id -> (row, context, rules.Objective)
    rebuilt: list  # ids of the objectives made again
    last_key_results: dict
    key_results: dict  # id -> (version, rules.KeyResult)
    remade: list  # ids of the key results made again
    settings: tuple


# ``findings``'s ``stored`` when the caller keeps the stored findings of the rules that do not
# read the clock as they are (``prepare``): when they still hold, only the clock's are returned,
# as a ``Reused`` list, and no stored row is read.
STORED = object()


class Reused(list):
    """Findings of the rules that read the clock alone: the others are those stored."""


class Computed(list):
    """Every rule's findings, with the identity of the inputs they were computed from."""

    identity = None
    check = None
    units = None  # the similarity rules' units to store (``_units_to_store``), or None
    described = None  # ``_Described`` (``_describe``, ``_near``)
    # When only what a change reached was computed (``_near``): the write it takes, and the
    # findings of the rules that read the clock (the others are the kept ones and the new).
    delta = timed = None


# The similarity rules' units kept in the database (``RuleUnits``, one row per cycle) ----------
#
# A unit's result depends on its key alone (``rules._Units``): the row files each result
# under the md5 of its key salted with the organization, the cycle and the rules' code, and a
# run that does not have the cycle's units in memory (a new process, a restart, a run of
# another cycle in between) reads the row back and looks each unit up there before computing
# it. What it holds is never wrong, only sometimes incomplete (units whose input changed since
# it was written are not found): so it is written again only when this process computed more
# than ``RESTORE_AT_MOST`` of the units since it last read or wrote the row, or the row was
# missing, damaged or of other code. Its checksum covers the payload and the salt.

RESTORE_AT_MOST = 0.02  # the share of units a restart may find missing (at least 32 units)
KEPT_UNSAVED = 64  # cycles whose count a process keeps (one forgotten: its row is written again)


def _units_salt(org, cycle):
    return f"{org.pk} {cycle.pk} {rules.code_version()}"


def _restore_units(org, cycle):
    """Before the rules run: read the cycle's stored units for the run to look up, unless the
    row is the one this process last read or wrote for the cycle and its units in memory are
    the cycle's (its last run of the rules was this cycle's). One query either way: the row's
    checksum, with the payload only when it is needed."""
    units = rules.UNITS
    units.salt = _units_salt(org, cycle)
    known = units.checksums.get(cycle.pk) if units.cycle == cycle.pk else None
    row = RuleUnits.objects.for_org(org).filter(cycle=cycle).annotate(data=Case(
        When(checksum=known or "-", then=Value("")), default=F("payload"),
        output_field=TextField())).values_list("code", "checksum", "data").first()
    if known and row is not None and row[1] == known:
        return
    units.cycle = cycle.pk
    stored = _read_units(row, units.salt)
    units.stored = stored or {}
    _remember(cycle.pk, None if stored is None else 0, None if stored is None else row[1])


def _remember(cycle_id, unsaved, checksum):
    """What this process knows of a cycle's stored row: the units computed since it read or
    wrote it (None: no usable row) and its checksum, for the cycles it ran last."""
    units = rules.UNITS
    for known in (units.unsaved, units.checksums):
        known.pop(cycle_id, None)
    units.unsaved[cycle_id], units.checksums[cycle_id] = unsaved, checksum
    while len(units.unsaved) > KEPT_UNSAVED:
        oldest = next(iter(units.unsaved))
        del units.unsaved[oldest]
        units.checksums.pop(oldest, None)


def _read_units(row, salt):
    """{digest: stored form} of a stored row, or None if there is none usable."""
    if row is None:
        return None
    code, checksum, payload = row
    if code != rules.code_version() or checksum != _md5(f"{salt}\n{payload}"):
        return None
    try:
        data = json.loads(payload)
        none, some = data["none"], data["some"]
        stored = dict.fromkeys(none[i:i + 32] for i in range(0, len(none), 32))
        stored.update(some)
    except (ValueError, KeyError, TypeError):
        return None
    return stored


def _units_to_store(cycle):
    """After the rules ran: the payload to store for the cycle's units, or None when the stored
    row is still close enough."""
    units = rules.UNITS
    computed = units.last[0]
    unsaved = units.unsaved.get(cycle.pk)
    if unsaved is not None:
        unsaved = units.unsaved[cycle.pk] = unsaved + computed
        if unsaved <= max(32, RESTORE_AT_MOST * len(units.previous)):
            return None
    entries = units.to_store()
    none = "".join(sorted(digest for digest, value in entries.items() if value is None))
    some = {digest: value for digest, value in entries.items() if value is not None}
    payload = json.dumps({"none": none, "some": some}, separators=(",", ":"), sort_keys=True)
    return payload, _md5(f"{units.salt}\n{payload}"), len(entries)


def _store_units(cycle, stored, now):
    payload, checksum, count = stored
    fields = {"code": rules.code_version(), "checksum": checksum, "payload": payload,
              "units": count, "stored_at": now}
    if not RuleUnits.objects.for_org(cycle.organization).filter(cycle=cycle).update(**fields):
        RuleUnits.objects.create(organization_id=cycle.organization_id, cycle=cycle, **fields)
    _remember(cycle.pk, 0, checksum)


_CHECKS = {}  # cycle id -> the ``_check`` ``prepare`` made just before calling ``findings``
# What the run computes beside the rules when they run in a child (``prepare``'s ``beside``).
_BESIDE = ContextVar("alignment_report_beside", default=None)


def findings(org, cycle, *, now=None, inputs=None, stored=None):
    """The rules' findings on the cycle's current data. Only the recompute calls this (through
    ``prepare``); pages read what it stored.

    inputs, stored: the digest of the rules' inputs and stored findings taken now (``prepare``)
    and the stored findings' rows (id, rule, severity, message, who, objective, key result,
    dependency). When the digest is the one stored with the report, the rules that do not
    read the clock would find what they found then: their stored findings are returned with
    what the clock's rules find now. Otherwise every rule runs, on the rows kept from the last
    run but for those whose version moved (``_inputs``), each keeping the units of its input
    that did not change from its last run (``rules.UNITS``)."""
    if cycle is None:
        return []
    now = now or timezone.now()
    check = _CHECKS.pop(cycle.pk, None)
    if inputs is not None and stored is not None and inputs == FindingsReport.objects.for_org(
            org).filter(cycle=cycle).values_list("inputs", flat=True).first():
        clock = timed_data(org, cycle, now)  # once for every rule that reads the clock
        found = [f for rule in TIMED for f in rule(clock)]
        if stored is STORED:
            return Reused(found)
        found += [rules.Finding(rule=rule, severity=severity, message=message, who=who,
                                objective_id=o, key_result_id=k, dependency_id=d)
                  for _, rule, severity, message, who, o, k, d in stored
                  if rule not in TIMED_RULES]
        return sorted(found, key=lambda f: (rules.SEVERITY_ORDER[f.severity], f.rule,
                                            f.message))
    if check is None or check.objective_versions is None:  # none, or ``_content_check``'s
        check = _check(org, cycle)
    last = _kept(cycle.pk)
    described = last.described if last.findings is not None and check.finding_versions \
        is not None and last.finding_versions == check.finding_versions else None
    data, identity, made = _inputs(org, cycle, check, now)
    units_cycle = rules.UNITS.cycle
    _restore_units(org, cycle)
    clock = timed_data(org, cycle, now)
    near = None
    if described is not None and stored is STORED and units_cycle == cycle.pk:
        near = _near(described, data, made, last.findings)
    if near is not None:
        timed = [f for rule in TIMED for f in rule(clock)]
        found = Computed([*timed, *near.shape, *(f for fs in near.by_objective.values()
                                                 for f in fs)])
        found.timed, found.delta, found.described = timed, near.delta, near.described
    elif (beside := _BESIDE.get()) is not None and _forks(data, units_cycle, cycle):
        ran, units = _run_all_beside(cycle, data, clock, beside)
        found = Computed(ran)
        found.described = _describe(data, found, made)
        found.identity, found.check, found.units = identity, check, units
        return found
    else:
        found = Computed(rules.run_all(data, clock=clock))
        found.described = _describe(data, found, made)
    found.identity, found.check = identity, check
    found.units = _units_to_store(cycle)
    return found


# Every rule run over a large cycle whose units this process neither keeps nor finds stored (a
# run from nothing, a deploy of the rules' code) runs in a child process forked for it
# (``_run_all_beside``), on the other core, while the network computes in this one: at least
# this many objectives. Below it, or with the cycle's units kept (the rules then cost a
# fraction of it), the fork and the copy back (~0.2 s at 100,000 nodes) cost more than they
# save; so does a run that computes only what a change reached (``_near``), which never forks.
FORK_AT_LEAST = 2000
# The child's time at most (a few seconds at 100,000 nodes): past it, it is killed and the
# rules run in the process.
FORK_TIMEOUT = 60.0
# Whether this process may fork for the rules (``fork_rules``).
FORK = {"on": False}


def fork_rules(on):
    """Let this process fork for the rules (``_run_all_beside``), or not: a Celery worker's
    process when it starts (``dependencies.snapshot``) and the bench, as the
    ``NETWORK_FORK_RULES`` setting says. Never a web process: a fork copies none of its other
    threads, and a thread's lock held at the fork would stay held in the child."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
    FORK["on"] = bool(on) and hasattr(os, "fork") and cores > 1


def _forks(data, units_cycle, cycle):
    """Whether this run of every rule goes to a child: a large cycle, on PostgreSQL, whose
    units this process neither keeps nor read back from the cycle's stored row (``rules.UNITS``):
    a run from nothing. (After a restart the stored units make the rules cheap: at 100,000
    nodes the child's copy back costs what it saves.)"""
    return (FORK["on"] and _postgresql() and len(data.objectives) >= FORK_AT_LEAST
            and not rules.UNITS.stored
            and (units_cycle != cycle.pk or not rules.UNITS.previous))


def _run_all_beside(cycle, data, clock, beside):
    """``rules.run_all(data, clock=clock)`` and then ``_units_to_store(cycle)``, computed in a
    child forked from this process while ``beside()`` runs here (the network's computation,
    which needs nothing of the rules): the child reads what this process holds as it was at the
    fork (copy-on-write), and hands back the findings, the units it kept (``rules.UNITS``) and
    the units to store through a file in memory. This process then holds what those calls
    would have left in it. If the child fails (dies, times out, hands back what cannot be
    read), they run here, as without a child."""
    fd = os.memfd_create("alignment-rules") if hasattr(os, "memfd_create") else None
    if fd is None:
        import tempfile

        fd = tempfile.TemporaryFile().detach()
    try:
        with warnings.catch_warnings():
            # Python warns about a fork in a process with threads (a worker's warm start): the
            # child takes no lock, logs nothing, touches no connection and leaves by _exit.
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the child
            code = 1
            try:
                # A worker's handlers are its parent's business: a signal ends the child.
                for number in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP):
                    signal.signal(number, signal.SIG_DFL)
                found = rules.run_all(data, clock=clock)
                units = rules.UNITS
                to_store = _units_to_store(cycle)
                payload = pickle.dumps(
                    (found, units.previous, units.last, to_store, units.unsaved.get(cycle.pk)),
                    pickle.HIGHEST_PROTOCOL)
                view = memoryview(payload)
                while view:
                    view = view[os.write(fd, view):]
                code = 0
            finally:
                os._exit(code)
        try:
            beside()
        except BaseException:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise
        result = _child_result(pid, fd)
    finally:
        os.close(fd)
    if result is None:
        return rules.run_all(data, clock=clock), _units_to_store(cycle)
    found, units, last, to_store, unsaved = result
    rules.ran_elsewhere(units, last)
    if cycle.pk in rules.UNITS.unsaved:  # the count ``_units_to_store`` moved
        rules.UNITS.unsaved[cycle.pk] = unsaved
    return found, to_store


def _child_result(pid, fd):
    """What the child handed back, once it ended; None (logged) if it failed or took more than
    ``FORK_TIMEOUT``, when it is killed."""
    deadline = time.monotonic() + FORK_TIMEOUT
    status = None
    while status is None:
        done, status = os.waitpid(pid, os.WNOHANG)
        if not done:
            status = None
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                logger.warning("The misalignment rules' child took more than %.0f s: "
                               "computed in the run's process.", FORK_TIMEOUT)
                return None
            time.sleep(0.002)
    if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        logger.warning("The misalignment rules' child failed (status %s): computed in the "
                       "run's process.", status)
        return None
    try:
        size = os.lseek(fd, 0, os.SEEK_END)
        with open(os.dup(fd), "rb", closefd=True) as file:
            file.seek(0)
            payload = file.read(size)
        found, units, last, to_store, unsaved = pickle.loads(payload)
        if type(found) is not list or type(units) is not dict:
            raise TypeError(type(found), type(units))
    except Exception:
        logger.exception("The misalignment rules' child handed back what cannot be read: "
                         "computed in the run's process.")
        return None
    return found, units, last, to_store, unsaved


# A run that finds at most this share of the objectives or key results moved computes again
# only the findings they reach (``_near``); above it, every rule over the cycle costs less.
NEAR_AT_MOST = 0.2


def _describe(data, found, made):
    """What a run that ran every rule leaves for the next to compare with (``_Described``)."""
    children, key_results_of, by_objective, shape = {}, {}, {}, []
    for o in data.objectives:
        if o.parent_id is not None:
            children.setdefault(o.parent_id, []).append(o.id)
    for k in data.key_results:
        key_results_of.setdefault(k.objective_id, []).append(k)
    for f in found:
        if f.rule in TIMED_RULES:
            continue
        if f.objective_id is None:  # the ``SHAPE`` rules' (a test checks it)
            shape.append(f)
        else:
            by_objective.setdefault(f.objective_id, []).append(f)
    return _Described(made.objectives, made.key_results, children, key_results_of,
                      by_objective, shape, made.settings, len(rules.UNITS.previous))


@dataclass
class _Near:
    """What ``_near`` found: the new ``_Described`` parts, and the write it takes."""

    described: _Described
    delta: tuple  # (findings to add, ids of stored rows to remove, ``_delta``'s taken)

    @property
    def shape(self):
        return self.described.shape

    @property
    def by_objective(self):
        return self.described.by_objective


def _near(d, data, made, stored):
    """The untimed findings of this run's data computed from those of the last (``d``, the
    stored ones: ``stored`` maps their keys to their rows) where a change reached, or None
    when it cannot (the objects are not compared with those ``d`` describes, the settings
    moved, too much moved, or the process keeps too many units besides the cycle's).

    A ``rules.PER_OBJECTIVE`` finding reads its objective, its parent (title, key results),
    its siblings, its children, its key results and the alignment model: an objective that
    moved (new, gone, or any of what the rules read of it) reaches itself, its parent, old and
    new, their children and its own; a key result that moved reaches its objective and that
    one's children. Those objectives' findings are computed again on the part of the cycle
    they read (``rules.run_for``); the ``SHAPE`` rules run again only when an objective moved
    in what they read. The others' findings stay, and so do their stored rows."""
    if made.settings != d.settings or made.last_objectives is not d.objectives \
            or made.last_key_results is not d.key_results \
            or len(rules.UNITS.previous) > d.units + max(64, d.units // 10):
        return None
    old_o, new_o, old_k, new_k = d.objectives, made.objectives, d.key_results, made.key_results
    moved_o = {pk for pk in made.rebuilt if pk not in old_o or old_o[pk][2] != new_o[pk][2]}
    if len(new_o) - len(old_o) != sum(1 for pk in made.rebuilt if pk not in old_o):
        moved_o.update(old_o.keys() - new_o.keys())  # some are gone
    moved_k = {pk for pk in made.remade if pk not in old_k or old_k[pk][1] != new_k[pk][1]}
    if len(new_k) - len(old_k) != sum(1 for pk in made.remade if pk not in old_k):
        moved_k.update(old_k.keys() - new_k.keys())
    if len(moved_o) > NEAR_AT_MOST * len(new_o) or len(moved_k) > NEAR_AT_MOST * len(new_k):
        return None
    children = _patched(d.children, moved_o, old_o, new_o, lambda w: w[2].parent_id,
                        lambda w: w[2].id)
    key_results_of = _patched(d.key_results_of, moved_k, old_k, new_k,
                              lambda w: w[1].objective_id, lambda w: w[1])
    # The objectives whose findings a change can reach.
    reached = set(moved_o)

    def family(pk):  # an objective, and its live children before and after
        reached.add(pk)
        reached.update(d.children.get(pk, ()))
        reached.update(children.get(pk, ()))

    for pk in moved_o:
        family(pk)
        for w in (old_o.get(pk), new_o.get(pk)):
            if w is not None and w[2].parent_id is not None:
                family(w[2].parent_id)
    for pk in moved_k:
        for w in (old_k.get(pk), new_k.get(pk)):
            if w is not None:
                family(w[1].objective_id)
    # The part of the cycle their findings read: each live one with its live parent, that
    # parent's live children and its own, and the key results of it and of its parent.
    live = [pk for pk in reached if pk in new_o]
    read = set(live)
    read.update(p for pk in live if (p := new_o[pk][2].parent_id) in new_o)
    own = list(read)
    for pk in own:
        read.update(children.get(pk, ()))
    part = rules.Cycle(
        objectives=[new_o[pk][2] for pk in sorted(read)],
        key_results=sorted((k for pk in own for k in key_results_of.get(pk, ())),
                           key=_ID),
        alignment_model=data.alignment_model, local_share_limit=data.local_share_limit,
        now=data.now)
    shape_moved = any(pk not in old_o or pk not in new_o
                      or rules.shaped(old_o[pk][2]) != rules.shaped(new_o[pk][2])
                      for pk in moved_o)
    old, new = [], []
    if shape_moved:
        old += d.shape
        new_shape = rules.run_shape(data)
        new += new_shape
    found = rules.run_for(part, reached)
    by_objective = dict(d.by_objective)
    for pk in reached:
        old += by_objective.pop(pk, ())
    for f in found:
        by_objective.setdefault(f.objective_id, []).append(f)
    new += found
    delta = _delta(old, new, stored)
    if delta is None:
        return None
    return _Near(_Described(new_o, new_k, children, key_results_of, by_objective,
                            new_shape if shape_moved else d.shape, d.settings,
                            d.units), delta)


_ID = attrgetter("id")


def _patched(index, moved, old, new, parent_of, item_of):
    """``index`` ({parent: items in the order of ids}, not changed) with the moved rows
    (``moved``: ids in ``old``, ``new`` or both, {id: row}) taken out of their old parent's
    list and put in their new parent's."""
    parents = {parent_of(w) for pk in moved for w in (old.get(pk), new.get(pk))
               if w is not None}
    parents.discard(None)
    if not parents:
        return index
    index = dict(index)
    for parent in parents:
        items = [i for i in index.get(parent, ()) if _pk(i) not in moved]
        items += [item_of(new[pk]) for pk in moved if pk in new and parent_of(new[pk]) == parent]
        items.sort(key=_pk)
        if items:
            index[parent] = items
        else:
            index.pop(parent, None)
    return index


def _pk(item):
    return item if type(item) is int else item.id


def _delta(old, new, stored):
    """The write from the findings ``old`` (stored: ``stored`` maps each key to its rows (id,
    version)) to ``new``: the findings to add, in the report's order, the ids of the rows to
    remove, and how many rows of each key go ({key: n}, the last n of its rows: ``_stored_after``
    keeps the others). None if ``old`` is not what is stored."""
    gone = Counter(map(_finding_key, old))
    gone.subtract(map(_finding_key, new))
    add, remove, taken = [], [], {}
    for key, n in gone.items():
        if n > 0:
            rows = stored.get(key, ())
            if len(rows) < n:
                return None
            remove += [pk for pk, _ in rows[len(rows) - n:]]
            taken[key] = n
    for f in new:
        key = _finding_key(f)
        if gone[key] < 0:
            gone[key] += 1
            add.append(f)
    return rules.in_order(add), remove, taken


def _stored_after(stored, taken, inserted):
    """The stored untimed findings (key -> [(id, version)]) after a write that removed the
    last ``taken[key]`` rows of some keys (``_delta``) and inserted ``inserted`` (the rows
    ``_insert`` returns): ``stored`` is not changed."""
    after = dict(stored)
    for key, n in taken.items():
        rows = after[key][:len(after[key]) - n]
        if rows:
            after[key] = rows
        else:
            del after[key]
    for pk, *key, version in inserted:
        if key[0] not in TIMED_RULES:
            after[_key(*key)] = [*after.get(_key(*key), ()), (pk, version)]
    return after


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


# A found finding's ``_key`` (a getter in C: ``prepare`` makes one per finding).
_finding_key = attrgetter("rule", "severity", "message", "who", "objective_id", "key_result_id",
                          "dependency_id")


@dataclass
class Pending:
    """What the compute phase found, and the stored rows it differs from."""

    found: list
    add: list  # rules.Finding to insert
    remove: list  # ids of stored rows to delete
    kept: Counter = None  # reused stored findings by severity (``prepare(reuse=True)``)
    inputs: str | None = None  # the digest of the rules' inputs and stored findings
    # When every rule ran: the identity of the inputs they read (``_identity``), and the
    # untimed stored findings left in place, (key, id, version), to check after the write that
    # the stored findings are exactly these and the new ones (``save``).
    identity: str | None = None
    staying: list | None = None
    units: tuple | None = None  # the similarity rules' units to store (``_units_to_store``)
    described: _Described | None = None  # what the untimed findings found came from
    # Instead of ``staying``, when only what a change reached was computed (``_near``): the
    # ids of the untimed stored rows removed, and ``_delta``'s taken.
    taken: tuple | None = None


# The rules whose findings depend on the clock (``Cycle.now``); the others depend only on the
# cycle's data, so a run that finds the data unchanged can keep their stored findings.
TIMED = rules.CLOCK
TIMED_RULES = tuple(rule.__name__ for rule in TIMED)


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


def prepare(cycle, *, now=None, reuse=False, beside=None):
    """The compute phase: run the rules, and diff their findings against the stored rows of the
    cycle (runs of a cycle take turns, so nobody else writes them meanwhile, but a write
    outside the services could: ``save`` checks).

    reuse: the cycle's data is as it was when its findings were stored (the recompute checked
    it, ``dependencies.network.fingerprint``): only the rules that depend on the clock run; the
    other findings stay as they are, counted in SQL. Otherwise the digest of the rules' inputs
    and stored findings decides (``findings``): equal to the stored one, the same; else every
    rule runs, and the stored findings are compared with what they found (read again, unless
    this process kept them from its last write and their versions say they are still those).

    Called by the network's run (``dependencies.network.run``) after it read the cycle's rows:
    the check takes the key results it read (``_DESCRIBED``).

    beside: the run's other computation (the network's), called here once while the rules run
    in a forked child (``_run_all_beside``); when they do not, it is not called."""
    now = now or timezone.now()
    org = cycle.organization
    stored_rows = Finding.objects.for_org(org).filter(cycle=cycle)
    kept = inputs = None
    columns = _FINDING_COLUMNS
    staying = identity = described = None
    if reuse:
        data = timed_data(org, cycle, now)
        found = [f for rule in TIMED for f in rule(data)]
        kept = Counter(dict(stored_rows.exclude(rule__in=TIMED_RULES).values_list("severity")
                            .annotate(n=Count("id")).order_by()))
        rows = stored_rows.filter(rule__in=TIMED_RULES).values_list(*columns)
    else:
        token = _IN_RUN.set(cycle.pk)
        try:  # before the rules read
            check = _content_check(org, cycle) or _check(org, cycle)
        finally:
            _IN_RUN.reset(token)
        inputs = _with_findings(_identity(check.objectives, check.key_results, check.small),
                                check.findings)
        _CHECKS[cycle.pk] = check
        try:
            token = _BESIDE.set(beside)
            try:
                found = findings(org, cycle, now=now, inputs=inputs, stored=STORED)
            finally:
                _BESIDE.reset(token)
        finally:
            _CHECKS.pop(cycle.pk, None)
        if isinstance(found, Reused):
            # As ``reuse``: the stored findings of the rules that ignore the clock stay as they
            # are (counted, in SQL unless kept); those of the clock's are compared with what
            # they found.
            kept = _kept_counts(cycle, check) or Counter(dict(stored_rows.exclude(
                rule__in=TIMED_RULES).values_list("severity").annotate(n=Count("id")).order_by()))
            rows = stored_rows.filter(rule__in=TIMED_RULES).values_list(*columns)
        else:
            identity = getattr(found, "identity", None)
            if identity is None:
                inputs = ""  # the rules read rows the digest does not describe
            described = found.described
            if found.delta is not None:  # only what a change reached (``_near``)
                add, remove, taken = found.delta
                timed = stored_rows.filter(rule__in=TIMED_RULES).values_list(*columns)
                timed_add, _, timed_remove = _diff(found.timed, timed)
                return Pending(found, [*timed_add, *add], [*timed_remove, *remove], None,
                               inputs, identity, None, found.units, described, (remove, taken))
            rows, staying = _stored_rows(org, cycle, found)
    add, stays, remove = _diff(found, rows)
    if staying is not None:
        staying = stays
    return Pending(found, add, remove, kept, inputs,
                   identity if staying is not None else None, staying,
                   getattr(found, "units", None), described)


def _kept_counts(cycle, check):
    """The stored findings of the rules that ignore the clock by severity, from those this
    process kept of its last write (``_Kept.findings``) when the check found their versions
    (``_after_write``); else None."""
    last = rules.KEPT.get(cycle.pk)
    if last is None or last.findings is None or check.finding_versions is None \
            or last.finding_versions != check.finding_versions:
        return None
    counts = Counter()
    for key, rows in last.findings.items():
        counts[key[1]] += len(rows)
    return counts


def _diff(found, rows):
    """The findings to add, the stored ones that stay ``(key, id, version)`` (of the rules that
    ignore the clock) and the ids of the stored ones to remove, from the stored rows
    ``(id, *key, version)`` (the version only on PostgreSQL). A found finding keeps a stored
    row of the same key; a key found twice keeps as many rows as there are."""
    rows = list(rows)
    by_key = {row[1:8]: row for row in rows}
    add, stays = [], []
    if len(by_key) == len(rows):  # no key stored twice (always, but for a write by hand)
        for f, key in zip(found, map(_finding_key, found), strict=True):
            row = by_key.pop(key, None)
            if row is None:
                add.append(f)
            elif f.rule not in TIMED_RULES:  # unchanged: kept as it is
                stays.append((key, row[0], row[8] if len(row) > 8 else None))
        return add, stays, [row[0] for row in by_key.values()]
    stored = {}
    for row in rows:
        stored.setdefault(row[1:8], []).append((row[0], row[8] if len(row) > 8 else None))
    for f in found:
        key = _finding_key(f)
        ids = stored.get(key)
        if ids:
            pk, version = ids.pop()  # unchanged: kept as it is
            if f.rule not in TIMED_RULES:
                stays.append((key, pk, version))
        else:
            add.append(f)
    return add, stays, [pk for ids in stored.values() for pk, _ in ids]


def _stored_rows(org, cycle, found):
    """The stored rows to compare every rule's findings with, (id, *key, version): on
    PostgreSQL the untimed ones kept from this process's last write when their versions are
    still those (``_Check.finding_versions``), else all of them read (with their versions);
    and whether ``save`` can check its write (PostgreSQL: a list to fill, else None)."""
    stored_rows = Finding.objects.for_org(org).filter(cycle=cycle)
    if not _postgresql():
        return stored_rows.values_list(*_FINDING_COLUMNS), None
    last = rules.KEPT.get(cycle.pk)
    timed = stored_rows.filter(rule__in=TIMED_RULES).annotate(row_version=RawSQL(
        "alignment_finding.xmin::text || '/' || alignment_finding.ctid::text", ()))
    check = getattr(found, "check", None)
    if last is not None and last.findings is not None and check is not None \
            and last.finding_versions == check.finding_versions:
        untimed = [(pk, *key, version) for key, rows in last.findings.items()
                   for pk, version in rows]
        return [*untimed, *timed.values_list(*_FINDING_COLUMNS, "row_version")], []
    everything = stored_rows.annotate(row_version=RawSQL(
        "alignment_finding.xmin::text || '/' || alignment_finding.ctid::text", ()))
    return list(everything.values_list(*_FINDING_COLUMNS, "row_version")), []


def save(cycle, pending, *, now=None):
    """The write phase (under the organization lock): delete the findings that went, insert the
    new ones, and record the report's counts and time. A fixed number of queries.

    When every rule ran (on PostgreSQL), the digest stored with the report covers the findings
    as this write leaves them, once checked: the versions of the untimed stored findings must be
    exactly those the compute phase left in place and those inserted here, or a write outside
    the services changed them meanwhile and the digest stored is one no run will find (the
    next run runs every rule)."""
    now = now or timezone.now()
    if pending.remove:
        _delete(pending.remove)
    if pending.units is not None:
        _store_units(cycle, pending.units, now)
    inserted = _insert(cycle, pending.add) if pending.add else []
    fields = counts(pending.found) | {"computed_at": now}
    if pending.inputs is not None:
        fields["inputs"] = pending.inputs
    if (pending.staying is not None or pending.taken is not None) \
            and pending.identity is not None:
        fields["inputs"] = _after_write(cycle, pending, inserted)
    if pending.kept:
        for severity, n in pending.kept.items():
            fields[severity] += n
            fields["total"] += n
    reports = FindingsReport.objects.for_org(cycle.organization).filter(cycle=cycle)
    if not reports.update(**fields):
        FindingsReport.objects.create(organization_id=cycle.organization_id, cycle=cycle,
                                      **fields)


def _after_write(cycle, pending, inserted):
    """The digest to store after the write of a run that ran every rule, and what this process
    keeps of the stored findings (``_Kept.findings``)."""
    org = cycle.organization
    last = rules.KEPT.get(cycle.pk)
    # (id, "id version"): the text ``_versions_md5`` makes of each, made once per row kept.
    new = sorted((row[0], f"{row[0]} {row[-1]}") for row in inserted
                 if row[1] not in TIMED_RULES)
    if pending.taken is not None:  # the stored ones but those removed, and those inserted
        if last is None or last.finding_pairs is None:
            return ""
        removed = set(pending.taken[0])
        expected = [pair for pair in last.finding_pairs if pair[0] not in removed]
        if expected and new and expected[-1][0] > new[0][0]:
            expected = sorted(expected + new)
        else:
            expected += new
    else:
        expected = [(pk, f"{pk} {version}") for _, pk, version in pending.staying]
        expected += new
        expected.sort()
    check, part = _check_findings(org, cycle)
    if check != _md5(",".join([text for _, text in expected])):
        if last is not None:
            last.findings = last.finding_versions = last.finding_pairs = last.described = None
        return ""
    _keep_for(_FINDINGS_DESCRIBED, cycle.pk, (part, check))
    if last is not None:
        if pending.taken is not None:
            by_key = _stored_after(last.findings, pending.taken[1], inserted)
        else:
            by_key = {}
            for key, pk, version in pending.staying:
                by_key.setdefault(key, []).append((pk, version))
            for pk, *key, version in inserted:
                if key[0] not in TIMED_RULES:
                    by_key.setdefault(_key(*key), []).append((pk, version))
        last.findings, last.finding_versions, last.finding_pairs = by_key, check, expected
        last.described = pending.described
    return _with_findings(pending.identity, check)


def _check_findings(org, cycle):
    """The md5 of the versions of the stored untimed findings (as ``_check``), and the digest
    of the same rows as the fingerprint's part of them (``network.part_digest_sql``)."""
    from dependencies import network

    sql, params = network.part_digest_sql("findings", cycle)
    return _md5s((_untimed_findings_qs(org, cycle), None, "alignment_finding"),
                 extra=((f"{sql} AS f", params),))


# cycle id -> (the fingerprint's digest of the stored untimed findings, the md5 of their
# versions), both of one statement after a run's write (``_after_write``): the next run whose
# fingerprint finds that digest has those findings, and takes the md5 without reading them.
_FINDINGS_DESCRIBED = {}


def _finding_versions(cycle):
    """In a run's compute phase, the md5 of the versions of the untimed findings when the run's
    fingerprint (taken at its start) found them as the last write left them, else None."""
    from dependencies import network

    described = _FINDINGS_DESCRIBED.get(cycle.pk)
    if described is None or _IN_RUN.get() != cycle.pk:
        return None
    part = network.fingerprint_part(cycle.pk, "findings")
    return described[1] if part is not None and part == described[0] else None


# Of a source's rows (``_md5s``): a digest of the content of the columns asked, the sum of a
# 64-bit hash of each row (``hash_record_extended``: no text built, no sort) and their count;
# and the md5 of their versions in the order of ids, as ``_versions_md5`` computes it from rows
# in hand. Both in one scan of the source. The hash is not a cryptographic one and titles are
# typed by users: a title made on purpose to give its row the hash the row had would leave the
# cycle's findings as they were until the next change the rules read (within the organization
# of whoever typed it, and findings are advice); an accident is a chance of about 2^-64.
_CONTENT = "coalesce(sum(hash_record_extended(ROW({columns}), 0)), 0) || ' ' || count(*)"
_VERSIONS = "md5(coalesce(string_agg(t.v, ',' ORDER BY t.id), ''))"


def _md5s(*sources, extra=(), versions=None):
    """For each (queryset, columns, table): the digest of its rows' content in ``columns``
    (unless None) and the md5 of their row versions in id order (unless ``versions`` says
    False for it), all in one statement (one snapshot), one scan of each source; then the
    columns of the ``extra`` (sql, params) parts, each a subquery with its alias. PostgreSQL
    only."""
    parts, params = [], []
    for i, (queryset, columns, table) in enumerate(sources):
        with_versions = versions is None or versions[i]
        rows = queryset.annotate(v=RawSQL(_VERSION.format(t=table), ())).values(
            *(columns or ("id",)), *(("v",) if with_versions else ())).order_by()
        sql, p = rows.query.get_compiler(rows.db).as_sql()
        digests = [_VERSIONS] if with_versions else []
        if columns:
            names = ", ".join(f't."{name}"' for name in columns)
            digests.insert(0, _CONTENT.format(columns=names))
        parts.append(f"(SELECT {', '.join(digests)} FROM ({sql}) t) AS s{len(parts)}")
        params += p
    for sql, p in extra:
        parts.append(sql)
        params += p
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM " + ", ".join(parts), params)
        return cursor.fetchone()


def _rows_list(queryset):
    """The rows of a ``.values_list()`` queryset, read with a plain cursor."""
    sql, params = queryset.query.get_compiler(queryset.db).as_sql()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


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
    """One INSERT for any number of findings, fed by a single JSON parameter. On PostgreSQL it
    returns the rows inserted, (id, rule, severity, message, who, objective, key result,
    dependency, version)."""
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
                "key_result_id bigint, dependency_id bigint) "
                "RETURNING id, rule, severity, message, who, objective_id, key_result_id, "
                f"dependency_id, {table}.xmin::text || '/' || {table}.ctid::text",
                [cycle.organization_id, cycle.pk, payload])
            return cursor.fetchall()
        values = ", ".join(f"j.value ->> '$.{c}'" for c in _COLUMNS)
        cursor.execute(
            f"INSERT INTO {table} (organization_id, cycle_id, {columns}) "
            f"SELECT %s, %s, {values} FROM json_each(%s) AS j",
            [cycle.organization_id, cycle.pk, payload])
        return []


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
