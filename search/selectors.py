"""Search across an organization: objectives, key results, teams, people, dependencies and
lessons (close forms' "what we learned", retrospectives).

On PostgreSQL each kind is one full-text query: ``to_tsvector('simple', ...)`` over its text
columns (the GIN expression indexes of search/migrations use the very same expressions, from
``VECTORS``), matched by every typed word as a prefix (``onb:* & tea:*``, so it works as you
type) and ranked by ``ts_rank``. The "simple" configuration does not stem: a word matches as
typed, in any language. On SQLite every word must be found (``icontains``) in one of the
columns, and results come in title order.

Only what every member may open is searched (the pages show every live objective, team,
dependency and lesson to every member); retired objectives, withdrawn dependencies and people
who left are not. People are found by name only, never by email address.
"""

import re
from dataclasses import dataclass

from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector
from django.db import connection
from django.db.models import Q
from django.urls import reverse

from dependencies.models import Dependency
from okrs.models import KeyResult, Objective, ObjectiveClose
from orgs.models import Membership, Team
from retros.models import Retrospective

CONFIG = "simple"
MAX_WORDS = 6
MIN_WORD = 2
PREFIX_FROM = 3
RANK_AT_MOST = 300

# Per kind: the model (as "app_label.Model") and its searched columns, weighted A (titles)
# then B. The migration builds its indexes from this table.
VECTORS = {
    "objectives": ("okrs.Objective", (("title", "A"), ("why", "B"))),
    "key_results": ("okrs.KeyResult", (("title", "A"),)),
    "teams": ("orgs.Team", (("name", "A"),)),
    "people": ("orgs.User", (("full_name", "A"),)),
    "dependencies": ("dependencies.Dependency", (("need", "A"), ("fallback", "B"))),
    "close_lessons": ("okrs.ObjectiveClose", (("learned", "A"), ("differently", "B"))),
    "retro_lessons": ("retros.Retrospective", (("what_worked", "A"), ("friction", "B"))),
}

KINDS = [
    ("objectives", "Objectives"),
    ("key_results", "Key results"),
    ("teams", "Teams"),
    ("people", "People"),
    ("dependencies", "Dependencies"),
    ("lessons", "Lessons"),
]


def vector(kind, prefix=""):
    """The kind's search vector (``prefix``: the path from the queried model to its table)."""
    _, columns = VECTORS[kind]
    parts = [SearchVector(f"{prefix}{name}", weight=weight, config=CONFIG)
             for name, weight in columns]
    result = parts[0]
    for part in parts[1:]:
        result = result + part
    return result


def words(q):
    """The words of a query: letters and digits only (so nothing reaches tsquery syntax),
    without single letters, which would match most of the organization and say nothing."""
    return [w for w in re.findall(r"\w+", (q or "").lower()) if len(w) >= MIN_WORD][:MAX_WORDS]


def _tsquery(terms):
    """Every word, as the start of a word from ``PREFIX_FROM`` letters on (as you type), a
    whole word below that: a two-letter prefix matches too much to be worth ranking."""
    return SearchQuery(" & ".join(f"{w}:*" if len(w) >= PREFIX_FROM else w for w in terms),
                       search_type="raw", config=CONFIG)


def _postgres():
    return connection.vendor == "postgresql"


@dataclass
class Hit:
    title: str
    meta: str
    url: str


def _match(qs, kind, terms):
    """Filter ``qs`` to the rows matching every word, best first (PostgreSQL) or by the
    model's title (SQLite)."""
    if _postgres():
        # Ranking reads each matching row's text again: a word that thousands of rows start
        # with would cost that many. The GIN index finds the matches; only the first
        # RANK_AT_MOST of them are ranked.
        query = _tsquery(terms)
        v = vector(kind)
        candidates = (qs.alias(search_vector=v).filter(search_vector=query).order_by()
                      .values("pk")[:RANK_AT_MOST])
        return (qs.filter(pk__in=candidates).annotate(search_rank=SearchRank(v, query))
                .order_by("-search_rank", "pk"))
    _, columns = VECTORS[kind]
    for w in terms:
        any_column = Q()
        for name, _ in columns:
            any_column |= Q(**{f"{name}__icontains": w})
        qs = qs.filter(any_column)
    return qs


def _page(qs, offset, limit):
    rows = list(qs[offset:offset + limit + 1])
    return rows[:limit], len(rows) > limit


def find(org, kind, q, *, offset=0, limit=5):
    """``(hits, has_more)`` for one kind."""
    terms = words(q)
    if not terms:
        return [], False
    return FINDERS[kind](org, terms, offset, limit)


def _objectives(org, terms, offset, limit):
    qs = Objective.objects.for_org(org).live().select_related("team", "cycle")
    qs = _match(qs, "objectives", terms)
    if not _postgres():
        qs = qs.order_by("-cycle__start_date", "title", "pk")
    rows, more = _page(qs, offset, limit)
    slug = org.slug
    return [Hit(o.title, f"{o.team.name} · {o.cycle.name}"
                + (f" · {o.get_state_display().lower()}" if o.state != "published" else ""),
                reverse("objective", args=[slug, o.pk])) for o in rows], more


def _key_results(org, terms, offset, limit):
    qs = (KeyResult.objects.for_org(org).filter(objective__organization=org)
          .exclude(objective__state=Objective.State.RETIRED)
          .select_related("objective", "owner_team", "objective__cycle"))
    qs = _match(qs, "key_results", terms)
    if not _postgres():
        qs = qs.order_by("-objective__cycle__start_date", "title", "pk")
    rows, more = _page(qs, offset, limit)
    slug = org.slug
    return [Hit(kr.title, f"{kr.owner_team.name} · {kr.objective.title} · "
                          f"{kr.objective.cycle.name}",
                reverse("objective", args=[slug, kr.objective_id]) + f"#kr-{kr.pk}")
            for kr in rows], more


def _teams(org, terms, offset, limit):
    qs = Team.objects.for_org(org).select_related("lead")
    qs = _match(qs, "teams", terms)
    if not _postgres():
        qs = qs.order_by("name", "pk")
    rows, more = _page(qs, offset, limit)
    return [Hit(t.name, t.get_kind_display() + (f" · led by {t.lead.display_name}"
                                                if t.lead else ""),
                reverse("team", args=[org.slug, t.pk])) for t in rows], more


def _people(org, terms, offset, limit):
    """Members by name; each links to the first team they belong to, when they have one."""
    from orgs.models import User

    qs = User.objects.filter(pk__in=Membership.objects.for_org(org).values("user_id"))
    qs = _match(qs, "people", terms)
    if not _postgres():
        qs = qs.order_by("full_name", "pk")
    rows, more = _page(qs, offset, limit)
    memberships = {m.user_id: m for m in Membership.objects.for_org(org).filter(
        user__in=rows)}
    teams = {}
    through = Membership.teams.through
    for membership_id, team_id, name in (through.objects.filter(
            membership__in=memberships.values()).order_by("team__name")
            .values_list("membership_id", "team_id", "team__name")):
        teams.setdefault(membership_id, []).append((team_id, name))
    hits = []
    for u in rows:
        m = memberships.get(u.pk)
        own = teams.get(m.pk, []) if m else []
        meta = (m.get_role_display() if m else "") + (
            " · " + ", ".join(name for _, name in own[:3]) if own else "")
        url = reverse("team", args=[org.slug, own[0][0]]) if own else ""
        hits.append(Hit(u.full_name or u.display_name, meta, url))
    return hits, more


def _dependencies(org, terms, offset, limit):
    qs = (Dependency.objects.for_org(org).exclude(status=Dependency.Status.WITHDRAWN)
          .select_related("requesting_team", "providing_team", "cycle"))
    qs = _match(qs, "dependencies", terms)
    if not _postgres():
        qs = qs.order_by("-cycle__start_date", "need", "pk")
    rows, more = _page(qs, offset, limit)
    return [Hit(d.need, f"{d.requesting_team.name} needs {d.providing_team.name} · "
                        f"{d.get_status_display().lower()} · {d.cycle.name}",
                reverse("dependency", args=[org.slug, d.pk])) for d in rows], more


def _lessons(org, terms, offset, limit):
    """Close forms' lessons, then retrospectives': one list, each half ranked, the close forms
    first (they are per objective, the closest to what a person searches for)."""
    closes = (ObjectiveClose.objects.for_org(org).filter(objective__organization=org)
              .exclude(objective__state=Objective.State.RETIRED)
              .select_related("objective__team", "objective__cycle"))
    closes = _match(closes, "close_lessons", terms)
    retros = Retrospective.objects.for_org(org).select_related("workflow__cycle",
                                                               "workflow__objective")
    retros = _match(retros, "retro_lessons", terms)
    if not _postgres():
        closes = closes.order_by("-closed_at", "pk")
        retros = retros.order_by("-updated_at", "pk")
    first, more_first = _page(closes, offset, limit)
    hits = [Hit(_excerpt(c.learned or c.differently, terms),
                f"Close form of “{c.objective.title}” · {c.objective.team.name} · "
                f"{c.objective.cycle.name}",
                reverse("objective", args=[org.slug, c.objective_id]) + "#closing")
            for c in first]
    if more_first:
        return hits, True
    # Retrospectives continue the list where the close forms end.
    count_first = offset + len(first) if first or not offset else closes.count()
    rest, more = _page(retros, max(0, offset - count_first), limit - len(hits))
    hits += [Hit(_excerpt(r.what_worked or r.friction, terms),
                 f"Retrospective of “{r.workflow.objective.title}” · {r.workflow.cycle.name}",
                 reverse("workflow", args=[org.slug, r.workflow_id])) for r in rest]
    return hits, more


def _excerpt(text, terms, width=140):
    """The part of a long text around the first word found, on one line."""
    text = " ".join((text or "").split())
    lower = text.lower()
    at = min((i for i in (lower.find(w) for w in terms) if i >= 0), default=0)
    start = max(0, at - width // 3)
    if start:  # from the start of a word
        space = text.find(" ", start, at)
        start = space + 1 if space >= 0 else at
    piece = text[start:start + width]
    return ("…" if start else "") + piece + ("…" if start + width < len(text) else "")


FINDERS = {"objectives": _objectives, "key_results": _key_results, "teams": _teams,
           "people": _people, "dependencies": _dependencies, "lessons": _lessons}
