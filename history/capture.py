"""What is recorded, and how every write path reaches the history.

Model signals catch ``save()`` and ``delete()``: a snapshot of the tracked fields is taken when
an instance is loaded (``post_init``, a dict copy, no query), compared with the instance when it
is saved, and one row is inserted with the fields that differ. ``QuerySet.update()`` skips the
signals, so the services call ``update(queryset, **changes)`` here instead (it reads the rows
it changes first, then records them) or ``record_change`` when they already hold the object.

Not recorded, on purpose:
- derived fields the network recompute writes (``effective_health``, ``risk_causes``,
  ``rolled_progress``, ``risk_above``, ``impact``, a key result's ``proposed_score``): they
  follow from the recorded changes and move on every recompute, so recording them would bury
  the people's changes under the machine's;
- bookkeeping the entry itself carries (``version``, ``updated_by``, ``updated_at``,
  ``created_by``, ``created_at``, ``scored_at``, ``last_check_in_at``) and the tree layout of
  django-mptt (``lft``, ``rght``, ``tree_id``, ``level``: they follow from ``parent``);
- ``retired_from`` (the state shows the retirement) and ``organization`` (never changes).
"""

import copy
import datetime
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connections
from django.db.models import ForeignKey
from django.db.models.signals import m2m_changed, post_delete, post_init, post_save

from . import context

ALWAYS_EXCLUDED = {
    "id", "organization", "version", "updated_by", "updated_at", "created_by", "created_at",
    "lft", "rght", "tree_id", "level",
}
TEXT_LIMIT = 300
_SNAPSHOT = "_history_was"


@dataclass
class Tracked:
    model: type
    object_type: str
    label: callable
    within: callable = None  # instance -> (type, id) of the object it belongs to
    exclude: set = field(default_factory=set)
    fields: list = field(default_factory=list)  # the model fields recorded

    def __post_init__(self):
        self.attnames = tuple(f.attname for f in self.fields)
        self.json_attnames = tuple(f.attname for f in self.fields
                                   if f.get_internal_type() == "JSONField")


REGISTRY = {}


def track(model, object_type, *, label=str, within=None, exclude=()):
    """Record every change of ``model``'s fields except ``exclude`` (and the bookkeeping)."""
    excluded = ALWAYS_EXCLUDED | set(exclude)
    spec = Tracked(model, object_type, label, within, excluded, [
        f for f in model._meta.concrete_fields if f.name not in excluded
    ])
    REGISTRY[model] = spec
    uid = f"history_{model._meta.label_lower}"
    post_init.connect(_snapshot, sender=model, weak=False, dispatch_uid=uid + "_init")
    post_save.connect(_saved, sender=model, weak=False, dispatch_uid=uid + "_save")
    post_delete.connect(_deleted, sender=model, weak=False, dispatch_uid=uid + "_delete")
    return spec


# Values in words -------------------------------------------------------------------------------


def _words(f, value, related=None):
    if value is None or value == "":
        return ""
    if f.is_relation:
        if related is not None and related.pk == value:
            return str(related)[:TEXT_LIMIT]
        return f"#{value}"
    if f.flatchoices:
        return str(dict(f.flatchoices).get(value, value))
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat(timespec="minutes") if isinstance(value, datetime.datetime) \
            else value.isoformat()
    if isinstance(value, list | dict):
        import json

        return json.dumps(value, default=str)[:TEXT_LIMIT]
    text = str(value)
    return text if len(text) <= TEXT_LIMIT else text[:TEXT_LIMIT - 1] + "…"


def _label(f):
    return str(f.verbose_name)


def _related_names(pairs):
    """{(model, pk): words} for the foreign keys that changed, one query per model."""
    wanted = {}
    for f, value in pairs:
        if value not in (None, ""):
            wanted.setdefault(f.related_model, set()).add(value)
    names = {}
    for model, pks in wanted.items():
        for obj in model._base_manager.filter(pk__in=pks):
            names[(model, obj.pk)] = str(obj)[:TEXT_LIMIT]
    return names


def _diff(spec, instance, was):
    """[(field, before, after)] for the tracked fields that changed."""
    now = instance.__dict__
    out = []
    for f in spec.fields:
        a = f.attname
        if a not in now:  # deferred and never set
            continue
        before = was.get(a, _MISSING) if was is not None else _MISSING
        if before is _MISSING or before != now[a]:
            out.append((f, None if before is _MISSING else before, now[a]))
    return out


_MISSING = object()


def _entries_fields(instance, diffs, *, names=None):
    """The JSON of changed fields, FKs in words (the cached object, else one read)."""
    if names is None:
        fks = [(f, v) for f, before, after in diffs if isinstance(f, ForeignKey)
               for v in (before, after)
               if not (v == after and f.is_cached(instance))]
        names = _related_names(fks) if fks else {}
    rows = []
    for f, before, after in diffs:
        if isinstance(f, ForeignKey):
            cached = f.get_cached_value(instance, None) if f.is_cached(instance) else None
            b = names.get((f.related_model, before)) or _words(f, before)
            a = (str(cached)[:TEXT_LIMIT] if cached is not None and cached.pk == after
                 else names.get((f.related_model, after)) or _words(f, after))
        else:
            b, a = _words(f, before), _words(f, after)
        if a != b:
            rows.append({"field": f.name, "label": _label(f), "before": b, "after": a})
    return rows


# Recording -------------------------------------------------------------------------------------


def _entry(spec, instance, action, fields, actor=None, at=None):
    from .models import Change

    actor = actor or context.current_actor()
    within_type, within_id = spec.within(instance) if spec.within else ("", None)
    organization_id = (instance.pk if spec.object_type == "organization"
                       else instance.organization_id)
    return Change(
        organization_id=organization_id, actor_id=actor.user_id, actor_kind=actor.kind,
        actor_label=actor.label[:200], object_type=spec.object_type, object_id=instance.pk,
        object_label=str(spec.label(instance))[:200], within_type=within_type,
        within_id=within_id, action=action, fields=fields,
        **({"at": at} if at is not None else {}))


def _as_loaded(value):
    """A tracked JSON value, safe from changes made in place: a number, string or None as it
    is, an empty list or dict as a new empty one, only a filled one copied deeply (the slow
    path, pure Python)."""
    if type(value) in (list, dict):
        return copy.deepcopy(value) if value else type(value)()
    return value


def _snapshot(sender, instance, **kwargs):
    """The values as loaded: one shallow dict copy (C speed: this runs for every row loaded);
    the tracked JSON values are copied too, as code may change them in place. Derived JSON
    (health causes, impact) is not tracked, so not copied."""
    d = instance.__dict__
    snap = d.copy()
    snap.pop(_SNAPSHOT, None)
    for a in REGISTRY[sender].json_attnames:
        if a in snap:
            snap[a] = _as_loaded(snap[a])
    d[_SNAPSHOT] = snap


def _saved(sender, instance, created, raw=False, **kwargs):
    if raw or context.is_paused():
        return
    spec = REGISTRY[sender]
    was = None if created else instance.__dict__.get(_SNAPSHOT)
    diffs = _diff(spec, instance, was)
    if created:
        diffs = [d for d in diffs if d[2] not in (None, "", [], {})]
        _entry(spec, instance, "created", _entries_fields(instance, diffs)).save()
    elif diffs:
        rows = _entries_fields(instance, diffs)
        if rows:
            _entry(spec, instance, "changed", rows).save()
    _snapshot(sender, instance)


def _deleted(sender, instance, **kwargs):
    if context.is_paused():
        return
    _entry(REGISTRY[sender], instance, "deleted", []).save()


def record_change(instance, changes, *, actor=None):
    """Record that ``instance`` changed: ``changes`` is {field name: (before, after)}. For a
    write the signals do not see (``QuerySet.update()``) on an object the caller holds; reads
    nothing unless a foreign key changed. Returns the entry, or None when nothing changed."""
    if context.is_paused():
        return None
    spec = REGISTRY[type(instance)]
    diffs = [(instance._meta.get_field(name), before, after)
             for name, (before, after) in changes.items()
             if name not in spec.exclude and before != after]
    rows = _entries_fields(instance, diffs) if diffs else []
    if not rows:
        return None
    entry = _entry(spec, instance, "changed", rows, actor=actor)
    entry.save()
    return entry


def update(queryset, **changes):
    """``queryset.update(**changes)``, recorded: reads the rows it is about to change (their
    tracked fields), updates them, and inserts one entry per row that changed. Values that are
    expressions (``F("version") + 1``) are not recorded. Returns the number of rows updated."""
    from .models import Change

    spec = REGISTRY.get(queryset.model)
    if spec is None or context.is_paused():
        return queryset.update(**changes)
    plain = {name: value for name, value in changes.items()
             if name not in spec.exclude and not hasattr(value, "resolve_expression")}
    reading = queryset
    if plain and connections[queryset.db].in_atomic_block:
        reading = queryset.select_for_update(no_key=True)  # the before values stay true
    rows = list(reading) if plain else []
    updated = queryset.update(**changes)
    actor = context.current_actor()
    entries = []
    for instance in rows:
        diffs = [(f, getattr(instance, f.attname), plain[f.name]) for f in spec.fields
                 if f.name in plain and getattr(instance, f.attname) !=
                 _attvalue(plain[f.name])]
        diffs = [(f, before, _attvalue(after)) for f, before, after in diffs]
        fields = _entries_fields(instance, diffs) if diffs else []
        if fields:
            entries.append(_entry(spec, instance, "changed", fields, actor=actor))
    if entries:
        Change._base_manager.bulk_create(entries)
    return updated


def _attvalue(value):
    return value.pk if hasattr(value, "_meta") else value


# What is tracked -------------------------------------------------------------------------------


def connect():
    from alignment.models import Milestone, Stakeholder, StepOverride, Workflow
    from dependencies.models import Contribution, Dependency, ObjectiveShare
    from okrs.models import (
        KPI,
        KeyResult,
        KPIValue,
        Objective,
        ObjectiveParent,
        Perspective,
        StrategicGoal,
    )
    from orgs.models import Cycle, Membership, Organization, Team, Theme

    derived = {"effective_health", "risk_causes", "rolled_progress", "risk_above", "impact"}
    track(Objective, "objective", exclude=derived | {"retired_from"})
    track(KeyResult, "key_result", within=lambda k: ("objective", k.objective_id),
          exclude=derived | {"proposed_score", "scored_at", "last_check_in_at"})
    track(ObjectiveParent, "also_contributes", within=lambda p: ("objective", p.objective_id),
          label=lambda p: f"also contributes to objective #{p.parent_id}")
    track(Team, "team")
    # A KPI's bands and its values: the values as entries on the KPI (kept, never edited).
    track(KPI, "kpi", within=lambda k: ("team", k.team_id),
          exclude={"health", "current_value", "current_at"})
    track(KPIValue, "kpi_value", within=lambda v: ("team", v.kpi.team_id),
          label=lambda v: f"value of {v.kpi.name}")
    track(Organization, "organization")
    track(Cycle, "cycle")
    track(Theme, "theme")
    track(Membership, "membership", label=lambda m: _user_label(m.user_id))
    m2m_changed.connect(_members_changed, sender=Membership.teams.through, weak=False,
                        dispatch_uid="history_membership_teams")
    track(Perspective, "perspective")
    track(StrategicGoal, "strategic_goal")
    track(Dependency, "dependency", label=lambda d: d.need)
    track(ObjectiveShare, "share", within=lambda s: ("objective", s.objective_id),
          label=lambda s: f"shared with {s.team}")
    track(Contribution, "key_result_link", within=lambda c: ("key_result", c.key_result_id),
          label=lambda c: f"key result #{c.key_result_id} feeds #{c.shared_id}")
    track(Workflow, "workflow", label=lambda w: f"alignment of {w.objective}")
    for model, name in ((Stakeholder, "stakeholder"), (Milestone, "milestone"),
                        (StepOverride, "workflow_step")):
        track(model, name, within=lambda x: ("workflow", x.workflow_id),
              label=_part_label)


def _members_changed(sender, instance, action, reverse, model, pk_set, **kwargs):
    """A person added to or taken off teams (``Membership.teams``): one entry on the
    membership, naming the teams."""
    if action not in ("post_add", "post_remove") or not pk_set or context.is_paused():
        return
    from orgs.models import Membership, Team

    spec = REGISTRY[Membership]
    if reverse:  # team.memberships.add(...): one entry per membership
        memberships = list(Membership._base_manager.filter(pk__in=pk_set))
        names = str(instance)
    else:
        memberships = [instance]
        names = ", ".join(sorted(str(t) for t in Team._base_manager.filter(pk__in=pk_set)))
    before, after = ("", names) if action == "post_add" else (names, "")
    row = {"field": "teams", "label": "teams " + ("joined" if after else "left"),
           "before": before, "after": after}
    for m in memberships:
        _entry(spec, m, "changed", [row]).save()


def _part_label(instance):
    return getattr(instance, "title", None) or f"{instance._meta.verbose_name} #{instance.pk}"


def _user_label(user_id):
    from orgs.models import User

    user = User.objects.filter(pk=user_id).only("full_name", "email").first()
    return user.display_name if user else f"person #{user_id}"
