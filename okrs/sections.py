"""The objective page's sections that every reader sees alike, read once per change.

Its aligned objectives, breadcrumb and other parents, its key results' check-in history,
contributors and alignment, its shares, dependencies, contributions and recovery plan, its
review thread, its history across cycles: about twenty queries, most of the page's time. They
are cached per objective (``orgs/versions.py``, ``bump_pages``): a row written with its
instance (a service's save, a delete, a ``bulk_create``) moves the versions of the objectives
whose page shows it (``pages_of_row``), so a check-in on another team's key result leaves this
page's entry alone. Teams and cycles, and queryset writes of other columns than health and
values, move the organization's "objective" version: every page at once. The day is in the key
too (health by pace, escalations in days).

What every write of the recompute moves (effective health, risk causes, rolled progress and
values, the findings) is read afresh on each request (``_fresh``: three queries at most), as is
the objective with its key results. What depends on the reader (which buttons and forms, who
may answer or stop a contribution, which dependencies are escalated today) is worked out on
each request from the cached rows.

People's names (check-in authors, recovery owners, commenters) are not in the versions: a
renamed person shows under the old name until the entry expires (``TTL``).
"""

from django.db import connection
from django.db.models import Q
from django.utils import timezone
from django_scopes import scopes_disabled

from dependencies import selectors as network_selectors
from orgs import versions

from . import scoring, selectors
from .models import CheckIn, KeyResult, Objective, ObjectiveParent

# How long an entry may outlive a write whose version bump was lost (the cache failed then, or
# another process keeps its own in-process cache), or a person's new name.
TTL = 300

# What the sections attach to each of the objective's key results.
KR_PARTS = ("history", "sparkline", "contributing", "rollup_sentence", "aligned_objective",
            "feeds_kr", "fed_by", "contribution")

# Read afresh on each request for the other rows the page shows (``_fresh``): what the
# recompute and a check-in write (``versions.PAGE_VOLATILE``).
FRESH_OBJECTIVE = ("effective_health", "risk_causes", "rolled_progress", "risk_above")
FRESH_KEY_RESULT = ("current_value", "confidence", "last_check_in_at", "is_done",
                    "effective_health", "risk_causes")


def _read(org, objective):
    """The sections, computed: plain rows, no reference to ``objective`` or its key results
    (they are read fresh on each request), so the same value serves every reader."""
    krs = list(objective.key_results.all())
    present = _present(org, objective, [k.pk for k in krs])
    page = selectors.objective_sections(org, objective, present)
    network = network_selectors.objective_network(org, objective, present)
    network["contributions"] = [k.pk for k in network["contributions"]]
    for d in (*network["depends_on"], *network["needed_by"]):
        d._state.fields_cache.pop("organization", None)  # the reader's, set again on each read
    # Its other cycles: the objectives it continues, and its copies (none: nothing to read).
    history = scoring.history(org, objective) \
        if objective.carried_from_id or present["copies"] else []
    return {
        **page,
        "network": network,
        "alignment_rows": _alignment_rows(org, objective, present),
        "cycle_history": [None if o.pk == objective.pk else o for o in history],
        "kr_parts": {k.pk: {a: getattr(k, a) for a in KR_PARTS if hasattr(k, a)} for k in krs},
    }


def objective_sections(org, objective):
    """The sections for ``objective`` (read by ``access_objective``), from the cache when
    nothing they show changed, attached to the objective's key results. The objective is
    assessed afresh; the rows are the same for every reader (``dependencies.selectors
    .for_reader`` adds the reader's part)."""
    key = f"objective:{org.pk}:{objective.pk}:{timezone.localdate().isoformat()}"
    computed = []

    def compute():
        computed.append(True)
        return _read(org, objective)

    data = versions.read_through(org.pk, versions.PAGE_TOPIC, key, compute, TTL,
                                 page=objective.pk)
    selectors.assess([objective])
    krs = {k.pk: k for k in objective.key_results.all()}
    for pk, parts in data["kr_parts"].items():
        if pk in krs:
            krs[pk].__dict__.update(parts)
    network = dict(data["network"])
    network["contributions"] = [krs[pk] for pk in network["contributions"] if pk in krs]
    for d in (*network["depends_on"], *network["needed_by"]):
        d.organization = org
    if not computed:
        _fresh(org, data, krs.values())
    return {
        **{k: v for k, v in data.items() if k not in ("kr_parts", "network", "cycle_history",
                                                      "alignment_rows")},
        "network": network,
        "alignment_rows": {**data["alignment_rows"], **_findings(
            org, objective, ready=data["alignment_rows"]["findings_ready"])},
        "cycle_history": [objective if o is None else o for o in data["cycle_history"]],
    }


def _present(org, objective, kr_ids):
    """Which of the page's lists have rows, in one query (an EXISTS each, by the indexed column
    that links them to this objective or its key results, within the organization), so that a
    first read skips the lists that are empty: most are, on most objectives, and each ORM query
    costs more to build and plan than to run. Plain SQL: the ORM took 10-20 ms to build these
    twelve subqueries, PostgreSQL under 2 ms to plan and run them."""
    from alignment.models import RecascadeFlag, ReviewComment
    from dependencies.models import Contribution, Dependency, ObjectiveShare, RecoveryAction

    o, k = "%(o)s", ", ".join(f"%(k{i})s" for i in range(len(kr_ids)))
    params = {"org": org.pk, "o": objective.pk, "retired": Objective.State.RETIRED,
              "withdrawn": Dependency.Status.WITHDRAWN, "open": "open",
              **{f"k{i}": pk for i, pk in enumerate(kr_ids)},
              **{f"c{i}": s for i, s in enumerate(Contribution.OPEN)}}
    checks = {
        "children": (Objective, f"parent_id = {o} AND state <> %(retired)s"),
        "links": (ObjectiveParent, f"(objective_id = {o} OR parent_id = {o})"),
        "aligned": (KeyResult, f"aligned_to_id = {o}"),
        "shares": (ObjectiveShare, f"objective_id = {o}"),
        "dependencies": (Dependency, f"status <> %(withdrawn)s AND (downstream_objective_id = {o}"
                                     f" OR upstream_objective_id = {o}" + (
                                         f" OR downstream_key_result_id IN ({k})"
                                         f" OR upstream_key_result_id IN ({k})" if kr_ids else "")
                         + ")"),
        "recovery": (RecoveryAction, f"objective_id = {o}"),
        "copies": (Objective, f"carried_from_id = {o}"),
        "thread": (ReviewComment, f"objective_id = {o}"),
        "recascade": (RecascadeFlag, f"objective_id = {o} AND resolution = %(open)s"),
    }
    if kr_ids:
        statuses = ", ".join(f"%(c{i})s" for i in range(len(Contribution.OPEN)))
        checks |= {
            "check_ins": (CheckIn, f"key_result_id IN ({k})"),
            "fed_by": (KeyResult, f"feeds_id IN ({k})"),
            "contributions": (Contribution, f"status IN ({statuses}) AND (key_result_id IN ({k})"
                                            f" OR shared_id IN ({k}))"),
        }
    sql = "SELECT " + ", ".join(
        f"EXISTS (SELECT 1 FROM {model._meta.db_table} WHERE organization_id = %(org)s"
        f" AND {where})" for model, where in checks.values())
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchone()
    return {"check_ins": False, "fed_by": False, "contributions": False,
            **{name: bool(v) for name, v in zip(checks, found, strict=True)}}


def _alignment_rows(org, objective, present):
    """``alignment.selectors.objective_alignment_rows`` but the findings (``_findings``), and
    whether the cycle's report is there (it stays once it is)."""
    from alignment import report
    from alignment.models import RecascadeFlag, ReviewComment

    return {
        "findings_ready": report.summary(org, objective.cycle) is not None,
        "thread": list(ReviewComment.objects.for_org(org).filter(objective=objective)
                       .select_related("author")) if present["thread"] else [],
        "recascade": list(RecascadeFlag.objects.for_org(org).filter(
            objective=objective, resolution="open").select_related("source"))
        if present["recascade"] else [],
    }


def _findings(org, objective, ready=False):
    """The objective's stored findings, read on each request: the recompute writes them with
    raw SQL. One query; two while the cycle's report is not there yet (``ready``: it was when
    the entry was read; the report is made once per cycle and kept)."""
    from alignment import report

    findings = report.for_objective(org, objective.cycle, objective.pk)
    return {"findings": findings, "findings_ready": ready or bool(findings)
            or report.summary(org, objective.cycle) is not None}


def _fresh(org, data, own_key_results):
    """Health, values and rolled progress of the other objectives and key results the cached
    rows show, read again (two queries), and the aligned objectives assessed again with them."""
    objectives, key_results = {}, {}
    aligned = [*data["children"], *data["extra_children"]]
    for o in aligned:
        objectives.setdefault(o.pk, []).append(o)
        for k in o.key_results.all():
            key_results.setdefault(k.pk, []).append(k)
    network = data["network"]
    for d in (*network["depends_on"], *network["needed_by"]):
        for end in ("downstream_objective", "upstream_objective"):
            if (o := getattr(d, end)) is not None:
                objectives.setdefault(o.pk, []).append(o)
        for end in ("downstream_key_result", "upstream_key_result"):
            if (k := getattr(d, end)) is not None:
                key_results.setdefault(k.pk, []).append(k)
    for k in data["aligned_key_results"]:
        key_results.setdefault(k.pk, []).append(k)
    for kr in own_key_results:
        for c in getattr(kr, "contributing", ()):
            key_results.setdefault(c.pk, []).append(c)
    for model, rows, fields in ((Objective, objectives, FRESH_OBJECTIVE),
                                (KeyResult, key_results, FRESH_KEY_RESULT)):
        if not rows:
            continue
        for pk, *values in (model.objects.for_org(org).filter(pk__in=rows)
                            .values_list("pk", *fields)):
            for row in rows[pk]:
                row.__dict__.update(zip(fields, values, strict=True))
    selectors.assess(aligned)


# Which pages show a row ---------------------------------------------------------------------


def pages_showing(org_id, *, objectives=(), key_results=(), holders=(), descendants=False):
    """The ids of the objectives whose page shows something of these objectives or key results
    (a title, a team, a state, a weight, a link): their own, their parents' (primary and extra,
    which list them), their extra children's, the pages their key results are aligned to or
    feed, the other ends of their dependencies and contributions, their other cycles', the
    re-cascade requests they caused, and with ``descendants`` every objective below (the
    breadcrumb). ``holders``: objectives whose key results these are or were (a deleted key
    result is no longer found). Seven queries at most, nine with ``descendants``; fewer when
    there is nothing to follow."""
    objective_ids = set(objectives) - {None}
    key_result_ids = set(key_results) - {None}
    pages = set(objective_ids)
    with scopes_disabled():
        krs = KeyResult.objects.filter(organization_id=org_id)
        objs = Objective.objects.filter(organization_id=org_id)
        holders, feeds = set(holders) - {None} - objective_ids, set()
        for pk, objective_id, aligned_to, feeds_id in (
                krs.filter(Q(pk__in=key_result_ids) | Q(objective__in=objective_ids))
                .values_list("pk", "objective_id", "aligned_to_id", "feeds_id")):
            key_result_ids.add(pk)
            pages |= {aligned_to}
            feeds.add(feeds_id)
            if objective_id not in objective_ids:
                holders.add(objective_id)  # shows it among its key results, and is assessed by it
        pages |= holders
        feeds.discard(None)
        if key_result_ids or feeds or objective_ids:
            pages |= set(krs.filter(Q(feeds__in=key_result_ids) | Q(pk__in=feeds)
                                    | Q(aligned_to__in=objective_ids))
                         .values_list("objective_id", flat=True))
        listed = objective_ids | holders  # shown with their progress in their parents' lists
        for _, parent, carried_from in objs.filter(pk__in=listed).values_list(
                "pk", "parent_id", "carried_from_id"):
            pages |= {parent, carried_from}
        for child, parent in ObjectiveParent.objects.filter(organization_id=org_id).filter(
                Q(objective__in=listed) | Q(parent__in=objective_ids)).values_list(
                "objective_id", "parent_id"):
            pages |= {child, parent}
        pages |= _network_pages(org_id, listed, key_result_ids)
        if objective_ids:
            pages |= _objective_pages(org_id, objs, objective_ids, descendants)
    pages.discard(None)
    return pages


def _network_pages(org_id, objective_ids, key_result_ids):
    from dependencies.models import Contribution, Dependency

    pages = set()
    if not objective_ids and not key_result_ids:
        return pages
    ends = ("downstream_objective_id", "upstream_objective_id",
            "downstream_key_result__objective_id", "upstream_key_result__objective_id")
    for row in Dependency.objects.filter(organization_id=org_id).filter(
            Q(downstream_objective__in=objective_ids) | Q(upstream_objective__in=objective_ids)
            | Q(downstream_key_result__in=key_result_ids)
            | Q(upstream_key_result__in=key_result_ids)).values_list(*ends):
        pages.update(row)
    if key_result_ids:
        for row in Contribution.objects.filter(organization_id=org_id).filter(
                Q(key_result__in=key_result_ids) | Q(shared__in=key_result_ids)).values_list(
                "key_result__objective_id", "shared__objective_id"):
            pages.update(row)
    return pages


def _objective_pages(org_id, objs, objective_ids, descendants):
    """Their copies in later cycles (whose history lists them), the objectives whose re-cascade
    request names them, and below them (the breadcrumb)."""
    from alignment.models import RecascadeFlag

    pages = set()
    copies = objective_ids
    for _ in range(scoring.HISTORY_BACK):
        copies = set(objs.filter(carried_from__in=copies).values_list("pk", flat=True))
        if not copies:
            break
        pages |= copies
    back = set(objs.filter(pk__in=objective_ids).values_list("carried_from__carried_from_id",
                                                              flat=True)) - {None}
    pages |= back
    pages |= set(RecascadeFlag.objects.filter(organization_id=org_id, source__in=objective_ids)
                 .values_list("objective_id", flat=True))
    if descendants:
        pages |= set(Objective.objects.get_queryset_descendants(
            objs.filter(pk__in=objective_ids)).values_list("pk", flat=True))
    return pages


def _was(instance, name):
    """A tracked row's value as loaded (``history.capture`` keeps it), else None."""
    return getattr(instance, "_history_was", {}).get(name)


def _objectives_of(org_id, key_result_ids):
    ids = set(key_result_ids) - {None}
    if not ids:
        return set()
    with scopes_disabled():
        return set(KeyResult.objects.filter(organization_id=org_id, pk__in=ids)
                   .values_list("objective_id", flat=True))


def pages_of_rows(label, rows):
    """The ids of the objectives whose page shows any of ``rows`` (instances of the table
    ``label``, one of ``versions.PAGE_ROWS``, of one organization), as they are now and as they
    were loaded. A few queries for the lot, whatever their number."""
    org_id = rows[0].organization_id

    def ids(*names):
        return {getattr(r, n) for r in rows for n in names} - {None}

    def was(*names):
        return {_was(r, n) for r in rows for n in names} - {None}

    if label == "okrs.Objective":
        return pages_showing(org_id, objectives=ids("pk"), descendants=True) \
            | ids("parent_id") | was("parent_id", "carried_from_id")
    if label == "okrs.KeyResult":
        return pages_showing(org_id, key_results=ids("pk", "feeds_id") | was("feeds_id"),
                             holders=ids("objective_id") | was("objective_id")) \
            | ids("aligned_to_id") | was("aligned_to_id")
    if label == "okrs.CheckIn":
        return _objectives_of(org_id, ids("key_result_id"))
    if label == "okrs.ObjectiveParent":
        with scopes_disabled():  # their primary parents list their share there
            primary = set(Objective.objects.filter(organization_id=org_id,
                                                   pk__in=ids("objective_id"))
                          .values_list("parent_id", flat=True))
        return ids("objective_id", "parent_id") | was("parent_id") | primary
    if label == "dependencies.Dependency":
        return ids("downstream_objective_id", "upstream_objective_id") | _objectives_of(
            org_id, ids("downstream_key_result_id", "upstream_key_result_id"))
    if label == "dependencies.Contribution":
        return _objectives_of(org_id, ids("key_result_id", "shared_id"))
    if label == "dependencies.ObjectiveShare":
        # Their teams own the objective too: the contributions of its key results, on other
        # pages, ask who may answer them.
        return pages_showing(org_id, objectives=ids("objective_id"))
    # Recovery actions, review comments, re-cascade requests: on their objective's page.
    return ids("objective_id")
