"""Versions of an organization's data, for reads that are cached (the nav's "Needs me" count,
the cycle review).

A cached value is stored under a key that holds the current version of what it reads; a write
to any of those tables moves the version, so the next read misses and computes again. Nothing
has to find and delete old entries: they are never asked for again and expire.

Each *topic* names the tables a cached read depends on. A write to one of them bumps the topic's
version for the organization written to:

- ``post_save`` / ``post_delete`` of a row (its ``organization_id``);
- ``update()`` and ``bulk_create()`` through the tenant querysets (``orgs.scoping``), which send
  no signal: the organization of the open scope, or, outside any organization's scope (the
  platform admin, factories, maintenance commands), every organization at once;
- ``bump(org_id, ...)`` by hand where a write bypasses both (the propagation run's end, raw SQL).

A version is bumped at once and again when the transaction commits: a reader that took the
version between the write and the commit cached what it read before the commit under a version
that the commit then replaces. Versions are random tokens, not counters, so an evicted version
key never comes back with an old value that old entries were stored under.

With the in-process cache (no ``REDIS_URL``) each process has its own versions: a process sees
another's writes only when its entries expire (``TTL`` of each reader). Production uses Redis.
"""

import logging
import time
import uuid

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models.signals import post_delete, post_save
from django_scopes.state import get_scope
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
# A cache that fails is skipped for this long (each call would wait for its timeout): pages
# compute what they would have read, writes bump nothing, entries expire on their own.
SKIP_AFTER_FAILURE = 15
_skip_until = 0.0

# The tables (app_label.ModelName) each cached read depends on.
TOPICS = {
    # nudges.inbox: every kind's query, and the teams, roles and cycles it starts from.
    "inbox": {
        "orgs.Team", "orgs.Membership", "orgs.Cycle",
        "okrs.Objective", "okrs.KeyResult", "okrs.CheckIn",
        "dependencies.Dependency", "dependencies.Contribution", "dependencies.RecoveryAction",
        "dependencies.EscalationStep",
        "alignment.Workflow", "alignment.SignOffRequest", "alignment.Stakeholder",
        "alignment.StatusUpdate", "alignment.RecascadeFlag", "alignment.ReviewComment",
        "integrations.DataSource",  # the kind "data sources that keep failing"
    },
    # okrs.review on an open cycle: scores, close forms, carry-overs, key results and their
    # check-ins (the rhythm), dependencies and their notes, retrospective improvements, the
    # department tree; the effective health the dependencies' "at risk" reads is bumped by the
    # propagation run.
    "review": {
        "orgs.Team", "orgs.Cycle",
        "okrs.Objective", "okrs.ObjectiveClose", "okrs.KeyResult", "okrs.CheckIn",
        "dependencies.Dependency", "dependencies.DependencyEvent",
        "alignment.Workflow", "retros.Retrospective", "retros.Improvement",
    },
    # The same for a closed cycle, which is read-only: its key results, check-ins and health
    # no longer change, so a check-in in the running cycle leaves its cached review alone.
    "review_closed": {
        "orgs.Team", "orgs.Cycle",
        "okrs.Objective", "okrs.ObjectiveClose",
        "dependencies.Dependency", "dependencies.DependencyEvent",
        "alignment.Workflow", "retros.Retrospective", "retros.Improvement",
    },
    # The misalignment report's first screen (alignment.views_cascade): the stored findings
    # and their counts (written with raw SQL, then the report row through a queryset), the
    # scorecards' unhealthy KPIs and the recovery objectives, and the links between teams that
    # the team types' findings read (dependencies, key results feeding or owned across teams,
    # shared objectives).
    "report": {
        "orgs.Team", "orgs.Cycle", "alignment.FindingsReport", "alignment.Finding",
        "okrs.KPI", "okrs.Objective", "okrs.KeyResult",
        "dependencies.Dependency", "dependencies.ObjectiveShare",
    },
    # The network page's lists (dependencies.views): dependencies with their ends' titles and
    # teams' names, what is at risk because of something else (health: bumped by the
    # propagation run), the open cycles' escalations.
    "network": {
        "orgs.Team", "orgs.Cycle", "okrs.Objective", "okrs.KeyResult",
        "dependencies.Dependency",
    },
    # alignment.views_cascade.map_drawing: the network map's units, their links and health.
    "netmap": {
        "orgs.Team", "okrs.Objective", "okrs.KeyResult",
        "dependencies.ObjectiveShare", "dependencies.Dependency",
    },
    # alignment.views_cascade.cached_matrix: objectives, their extra parents, teams, themes.
    "matrix": {"orgs.Team", "orgs.Theme", "okrs.Objective", "okrs.ObjectiveParent"},
    # okrs.sections: an objective page's rows that every reader sees alike (aligned objectives,
    # parents, key results' check-ins and contributors, shares, dependencies, contributions,
    # the recovery plan, the review thread, re-cascade requests, earlier cycles). A row of these
    # tables written with its instance (a signal, ``bulk_create``) moves only the pages that show
    # it (``PAGE_ROWS``, per objective); teams, cycles and the queryset writes that change more
    # than health and values (``PAGE_VOLATILE``) move every page of the organization. Health,
    # values and findings are read afresh on each request, so they are not in the topic.
    "objective": {
        "orgs.Team", "orgs.Cycle", "okrs.Objective", "okrs.KeyResult", "okrs.CheckIn",
        "okrs.ObjectiveParent", "dependencies.Dependency", "dependencies.Contribution",
        "dependencies.ObjectiveShare", "dependencies.RecoveryAction",
        "alignment.ReviewComment", "alignment.RecascadeFlag",
    },
    # alignment.selectors.cached_workflow_page: a workflow's steps, stakeholders, plan,
    # updates, retrospective and improvements (its own and earlier cycles'), the key results
    # it measures success by, the teams, cycles and objectives they name. Its many-to-many
    # links bump it from alignment.apps.
    "workflow": {
        "orgs.Team", "orgs.Cycle", "okrs.Objective", "okrs.KeyResult",
        "dependencies.Dependency",
        "alignment.Workflow", "alignment.Stakeholder", "alignment.Milestone",
        "alignment.StatusUpdate", "alignment.StepOverride",
        "retros.Retrospective", "retros.Improvement",
    },
    # suggestions.selectors.version: the sums over a cycle's objectives and key results (and
    # the teams) that the title suggestions' index is keyed by.
    "suggest": {"orgs.Team", "okrs.Objective", "okrs.KeyResult"},
}
# Columns some topics' reads never look at: a write of only these (``save(update_fields=...)``
# or a queryset's ``update()``) leaves those topics alone. A check-in copies its value and
# confidence onto the key result; the report's first screen (stored findings, links between
# teams) and the title suggestions' index (titles, ``version``) read none of them, so a busy
# organization's check-ins no longer make them compute again (the topics in ``HEALTH`` move
# anyway: a check-in can move health). Any other write bumps every topic.
UNREAD = {
    "okrs.KeyResult": ({"current_value", "confidence", "last_check_in_at", "is_done"},
                       {"report", "suggest"}),
}
EVERY_ORG = "*"
_BY_MODEL = {}
for _topic, _labels in TOPICS.items():
    for _label in _labels:
        _BY_MODEL.setdefault(_label, []).append(_topic)


# Per-objective versions, for the objective page (``okrs/sections.py``): the topic "objective"
# is per organization, so in a busy organization any check-in anywhere moved it. A row of these
# tables written with its instance moves instead the versions of the objectives whose page shows
# it: ``okrs.sections.pages_of_row(label, instance)`` names them (it is imported when first
# needed: orgs does not import okrs at load).
PAGE_TOPIC = "objective"
PAGE_ROWS = {
    "okrs.Objective", "okrs.KeyResult", "okrs.CheckIn", "okrs.ObjectiveParent",
    "dependencies.Dependency", "dependencies.Contribution", "dependencies.ObjectiveShare",
    "dependencies.RecoveryAction", "alignment.ReviewComment", "alignment.RecascadeFlag",
}
# Columns a queryset write may change without moving any page: the pages read them afresh on
# each request (health, values, rolled progress: the check-in's and the recompute's writes), or
# keep nothing of them (the tree's bookkeeping, which every insert shifts: a move also sets the
# parent, which is not in this list).
PAGE_VOLATILE = {
    "okrs.Objective": {"effective_health", "risk_causes", "rolled_progress", "risk_above",
                       "impact", "lft", "rght", "tree_id", "level"},
    "okrs.KeyResult": {"current_value", "confidence", "last_check_in_at", "is_done",
                       "effective_health", "risk_causes"},
}
# A per-objective version key expires this long after it was last set (bumped or first read):
# one key per objective read or written in the last hour, not one per objective ever seen. An
# expired key comes back as a new random token, so the entries stored under the old one (which
# live ``okrs.sections.TTL``, much less) are never read again.
PAGE_VERSION_TTL = 3600


def topics_of(model):
    return _BY_MODEL.get(model._meta.label, ())


def _key(topic, org_id):
    return f"v:{topic}:{org_id}"


def _page_key(org_id, objective_id):
    return f"v:page:{org_id}:{objective_id}"


def version(org_id, topic, *, page=None):
    """The current version of ``topic`` for the organization: a short string to put in a cache
    key (it also moves when every organization's version moves), and of the objective ``page``
    when given. One round trip to the cache when every version is there."""
    keys = [_key(topic, org_id), _key(topic, EVERY_ORG)]
    if page is not None:
        keys.append(_page_key(org_id, page))
    found = cache.get_many(keys)
    missing = [k for k in keys if k not in found]
    for k in missing:
        cache.add(k, uuid.uuid4().hex[:12], PAGE_VERSION_TTL if k.startswith("v:page:") else None)
    if missing:
        found = cache.get_many(keys)
    return "-".join(found.get(k, "") for k in keys)


def _cache_up():
    return time.monotonic() >= _skip_until


def _cache_failed(error):
    global _skip_until
    _skip_until = time.monotonic() + SKIP_AFTER_FAILURE
    log.warning("Cache unavailable, reading without it for %s s: %s", SKIP_AFTER_FAILURE, error)


def read_through(org_id, topic, key, compute, ttl, *, page=None):
    """``compute()``, cached under ``key`` and the organization's current version of ``topic``
    (and of the objective ``page``, when given) for ``ttl`` seconds. When the cache fails,
    ``compute()`` alone: the page still answers."""
    if not _cache_up():
        return compute()
    try:
        # The version before the rows it stands for.
        full_key = f"{key}:{version(org_id, topic, page=page)}"
        value = cache.get(full_key)
    except (RedisError, OSError) as error:
        _cache_failed(error)
        return compute()
    if value is None:
        value = compute()
        try:
            cache.set(full_key, value, ttl)
        except (RedisError, OSError) as error:
            _cache_failed(error)
    return value


def _bump_now(org_id, topics):
    try:
        cache.set_many({_key(t, org_id): uuid.uuid4().hex[:12] for t in topics}, None)
    except (RedisError, OSError) as error:
        # What was cached stays until it expires (each reader's ttl bounds it).
        _cache_failed(error)


def _bump_pages_now(org_id, objective_ids):
    try:
        cache.set_many({_page_key(org_id, pk): uuid.uuid4().hex[:12] for pk in objective_ids},
                       PAGE_VERSION_TTL)
    except (RedisError, OSError) as error:
        _cache_failed(error)


class _AfterCommit:
    """One callback per organization and topics per transaction, however many rows it writes."""

    def __init__(self, org_id, topics):
        self.key = (org_id, tuple(sorted(topics)))

    def __call__(self):
        _bump_now(*self.key)


class _PagesAfterCommit:
    """The objective pages a transaction moved, bumped once more when it commits: one callback
    per organization per transaction, gathering every row's pages."""

    def __init__(self, org_id):
        self.key = ("pages", org_id)
        self.ids = set()

    def __call__(self):
        _bump_pages_now(self.key[1], self.ids)


def bump_pages(org_id, objective_ids):
    """Move the versions of these objectives' pages (``okrs.sections``), now and once more when
    the surrounding transaction commits."""
    ids = {pk for pk in objective_ids if pk is not None}
    if not ids or org_id is None:
        return
    _bump_pages_now(org_id, ids)
    if not connection.in_atomic_block:
        return
    key = ("pages", org_id)
    callback = next((f for _, f, *_ in connection.run_on_commit
                     if getattr(f, "key", None) == key), None)
    if callback is None:
        callback = _PagesAfterCommit(org_id)
        transaction.on_commit(callback)
    callback.ids |= ids


# More rows than this in one write (a ``bulk_create``): every page of their organization moves
# (its "objective" version) instead of working out which.
PAGE_ROWS_AT_ONCE = 200


def _pages_of_rows(model, rows):
    """Move the pages that show ``rows`` (instances of ``model``, a ``PAGE_ROWS`` table)."""
    from okrs.sections import pages_of_rows

    by_org = {}
    for row in rows:
        org_id = getattr(row, "organization_id", None)
        by_org.setdefault(org_id, []).append(row)
    for org_id, theirs in by_org.items():
        if org_id is None or len(theirs) > PAGE_ROWS_AT_ONCE:
            bump(org_id, (PAGE_TOPIC,))
        else:
            bump_pages(org_id, pages_of_rows(model._meta.label, theirs))


def bump(org_id, topics):
    """Move the versions of ``topics`` for the organization (``None``: every organization), now
    and once more when the surrounding transaction commits."""
    topics = tuple(topics)
    if not topics:
        return
    org_id = EVERY_ORG if org_id is None else org_id
    _bump_now(org_id, topics)
    if not connection.in_atomic_block:
        return
    callback = _AfterCommit(org_id, topics)
    if any(getattr(f, "key", None) == callback.key for _, f, *_ in connection.run_on_commit):
        return
    transaction.on_commit(callback)


def scope_org_id():
    """The organization of the open django-scopes scope, or None (no scope, disabled, or more
    than one organization)."""
    state = get_scope()
    if not state.get("_enabled", True):
        return None
    org = state.get("organization")
    if org is None or isinstance(org, (list, tuple, set)):
        return None
    return getattr(org, "pk", org)


def bump_for_queryset(model, rows=None, fields=None):
    """For a queryset write that sends no signal: the organization of the rows when they say
    (``bulk_create``), else of the open scope, else every organization. ``fields``: the columns
    an ``update()`` sets, when the caller says (those of ``UNREAD`` leave some topics alone;
    those of ``PAGE_VOLATILE`` alone move no objective page)."""
    topics = _topics_written(model, fields)
    if not topics:
        return
    label = model._meta.label
    if PAGE_TOPIC in topics and (
            (rows is not None and label in PAGE_ROWS)
            or (fields is not None and set(fields) <= PAGE_VOLATILE.get(label, set()))):
        topics = tuple(t for t in topics if t != PAGE_TOPIC)
        if rows is not None:
            _pages_of_rows(model, rows)
    orgs = {getattr(r, "organization_id", None) for r in rows} if rows is not None else set()
    orgs.discard(None)
    if not orgs:
        orgs = {scope_org_id()}
    for org_id in orgs:
        bump(org_id, topics)


def _topics_written(model, fields):
    """The topics a write of ``fields`` of ``model`` moves (``None``: every column, as an insert,
    a delete or a plain ``save()``)."""
    topics = topics_of(model)
    unread = UNREAD.get(model._meta.label)
    if topics and unread and fields and set(fields) <= unread[0]:
        topics = [t for t in topics if t not in unread[1]]
    return topics


def _on_row_change(sender, instance, raw=False, update_fields=None, **kwargs):
    topics = _topics_written(sender, update_fields)
    if topics and PAGE_TOPIC in topics and sender._meta.label in PAGE_ROWS and not raw:
        topics = tuple(t for t in topics if t != PAGE_TOPIC)
        _pages_of_rows(sender, [instance])
    if topics:
        bump(getattr(instance, "organization_id", None), topics)


def connect():
    """Listen to the rows of every model some topic depends on (``OrgsConfig.ready``)."""
    from django.apps import apps

    for label in _BY_MODEL:
        model = apps.get_model(label)
        post_save.connect(_on_row_change, sender=model, dispatch_uid=f"versions:{label}:save")
        post_delete.connect(_on_row_change, sender=model,
                            dispatch_uid=f"versions:{label}:delete")


# What a change of health moves: the propagation run writes effective health, rolled progress
# and rolled values with raw SQL (no signal, no queryset), so it bumps these at its end, and
# ``mark_changed`` bumps them for any change that can move health. Not "objective": the
# objective page reads health, values and findings afresh (``okrs/sections.py``).
HEALTH = ("inbox", "review", "network", "netmap", "matrix")


def health_changed(cycle):
    """A change of ``cycle``'s health: a closed cycle's review moves too."""
    bump(cycle.organization_id, HEALTH + (("review_closed",) if cycle.is_closed else ()))
