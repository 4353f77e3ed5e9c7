"""Reads of the network for the pages. Each loads what it shows in a fixed number of queries."""

from datetime import datetime, time, timedelta

from django.core.paginator import Paginator
from django.db.models import Case, CharField, Count, F, IntegerField, Q, Value, When
from django.utils import timezone

from okrs.models import KeyResult, Objective, ObjectiveParent
from orgs.models import Cycle, Team
from orgs.permissions import can_answer_contribution, preload_co_owners

from . import reasons
from .models import Contribution, Dependency, NetworkState, ObjectiveShare, RecoveryAction
from .services import allowed_answers, can_stop_contribution, is_escalated

# What a list of dependencies shows: both ends and both teams. ``with_ends()`` also joins the
# organization, the cycle and two people (for the dependency's own page): fifteen tables took
# PostgreSQL 10-40 ms to plan, more than running the query (under 2 ms). Lists join these eight
# and set the organization (the caller's) on each row.
LISTED_ENDS = ("requesting_team", "providing_team", "downstream_objective__team",
               "downstream_key_result__objective", "upstream_objective__team",
               "upstream_key_result__objective")


def list_with_ends(org, queryset, cycle=None):
    """The dependencies of ``queryset`` with what a list shows, and the organization (and the
    cycle, when the caller knows it) set on each row without a query."""
    rows = list(queryset.select_related(*LISTED_ENDS))
    for d in rows:
        d.organization = org
        if cycle is not None and d.cycle_id == cycle.pk:
            d.cycle = cycle
    return rows


def annotate(dependencies, membership):
    for d in dependencies:
        d.escalated = is_escalated(d)
        d.answers = allowed_answers(membership, d) if membership else []
    return dependencies

# A dependency row (dependencies/_dependency_row.html), an objective's reasons and the answers
# offered read only these columns of the eight tables a list joins: a page that selects every
# column of each spends more Python building the query and the rows than reading them.
_END_FIELDS = ("downstream_objective", "downstream_key_result", "upstream_objective",
               "upstream_key_result")
DEPENDENCY_ROW_FIELDS = (
    "organization_id", "cycle_id", "kind", "status", "need", "needed_by", "created_at",
    "requesting_team__name", "providing_team__name",
    *(f"{end}__{f}" for end in _END_FIELDS for f in ("title", "effective_health")),
    *(f"{end}__team__name" for end in _END_FIELDS[::2]),
    *(f"{end}__objective__title" for end in _END_FIELDS[1::2]),
)
# The team page lists the first few dependencies (by the date they are needed); the network
# page, filtered by the team, lists them all.
TEAM_DEPENDENCIES = 10


def objective_network(org, objective, present=None):
    """Sharing links, dependencies both ways, contribution links and the recovery plan of one
    objective (its key results are already loaded on it): what every reader sees alike, so the
    objective page can keep it (``okrs/sections.py``); ``for_reader`` adds the rest.
    ``present``: which lists have rows, when the caller knows; the others are not read."""
    has = (lambda name: True) if present is None else present.get
    krs = list(objective.key_results.all())
    kr_ids = [k.pk for k in krs]
    shares = list(ObjectiveShare.objects.for_org(org).filter(objective=objective)
                  .select_related("team").order_by("team__name")) if has("shares") else []
    deps = list_with_ends(
        org, Dependency.objects.for_org(org)
        .filter(Q(downstream_objective=objective) | Q(downstream_key_result__in=kr_ids)
                | Q(upstream_objective=objective) | Q(upstream_key_result__in=kr_ids))
        .exclude(status=Dependency.Status.WITHDRAWN).only(*DEPENDENCY_ROW_FIELDS)
    ) if has("dependencies") else []
    fed_by = list(KeyResult.objects.for_org(org).filter(feeds__in=kr_ids)
                  .select_related("owner_team", "objective")) if has("fed_by") else []
    feeds = {k.pk: k for k in KeyResult.objects.for_org(org)
             .filter(pk__in=[k.feeds_id for k in krs if k.feeds_id])
             .select_related("owner_team", "objective")}
    # Contributions asked or accepted, both ways (``for_reader``: who may answer or stop each).
    open_contributions = list(
        Contribution.objects.for_org(org).open()
        .filter(Q(key_result__in=kr_ids) | Q(shared__in=kr_ids))
        .select_related("key_result__owner_team", "key_result__objective__team",
                        "shared__owner_team", "shared__objective__team", "requested_by")) \
        if has("contributions") else []
    preload_co_owners([o for c in open_contributions
                       for o in (c.key_result.objective, c.shared.objective)])
    accepted = {c.key_result_id: c for c in open_contributions
                if c.status == Contribution.Status.ACCEPTED}
    for k in krs:
        k.feeds_kr = feeds.get(k.feeds_id)
        k.fed_by = [c for c in fed_by if c.feeds_id == k.pk]
        k.contribution = accepted.get(k.pk)
        for c in k.fed_by:
            c.contribution = accepted.get(c.pk)
    other_owners = sorted({k.owner_team.name for k in krs if k.owner_team_id != objective.team_id})
    depends_on = [d for d in deps if d.downstream_objective_id == objective.pk
                  or d.downstream_key_result_id in kr_ids]
    # A dependency between two parts of this objective (one of its KRs on another team's KR on
    # it) is listed once, under "Depends on".
    listed = {d.pk for d in depends_on}
    return {
        "shares": shares,
        "depends_on": depends_on,
        "needed_by": [d for d in deps if d.pk not in listed
                      and (d.upstream_objective_id == objective.pk
                           or d.upstream_key_result_id in kr_ids)],
        "kr_owner_teams": other_owners,
        "contributions": [k for k in krs if k.feeds_kr or k.fed_by],
        "open_contributions": open_contributions,
        "requests_in": [c for c in open_contributions if c.shared_id in kr_ids
                        and c.status == Contribution.Status.REQUESTED],
        "requests_out": [c for c in open_contributions if c.key_result_id in kr_ids
                         and c.status == Contribution.Status.REQUESTED],
        "recovery_actions": list(RecoveryAction.objects.for_org(org).filter(objective=objective)
                                 .select_related("owner")) if has("recovery") else [],
    }


def for_reader(network, membership, *, today=None):
    """What ``objective_network`` leaves to the reader and the day: which dependencies are
    escalated, and which contributions this person may answer or stop. No query (the
    contributions' objectives carry their co-owners)."""
    today = today or timezone.localdate()
    for d in (*network["depends_on"], *network["needed_by"]):
        d.escalated = is_escalated(d, today=today)
    accepted = [x.contribution for k in network["contributions"]
                for x in (k, *k.fed_by) if x.contribution is not None]
    for c in (*network["open_contributions"], *accepted):
        c.can_answer = membership is not None and can_answer_contribution(membership, c.shared)
        c.can_stop = membership is not None and can_stop_contribution(membership, c)
    return network


def team_links(org, team, cycle):
    """Every link between this team and another in the cycle, with its kind, and its first
    dependencies. Seven queries.

    The team's objectives and key results are read first as ids: "the team's, or on the
    team's objective" is then an OR of two indexed columns, which PostgreSQL reads by index,
    where an OR through a join scanned every objective of the cycle (5,000-person tenant:
    35 -> 0.2 ms, 70 -> 1 ms, 11 -> 1 ms)."""
    links = []
    objective_ids = list(Objective.objects.for_org(org).filter(cycle=cycle, team=team)
                         .values_list("pk", flat=True))
    key_result_ids = list(KeyResult.objects.for_org(org).filter(objective__cycle=cycle,
                                                                owner_team=team)
                          .values_list("pk", flat=True))
    for s in (ObjectiveShare.objects.for_org(org).filter(objective__cycle=cycle)
              .filter(Q(team=team) | Q(objective_id__in=objective_ids))
              .exclude(objective__state=Objective.State.RETIRED)
              .select_related("team", "objective__team")
              .only("kind", "team__name", "objective__title", "objective__team__name")):
        other = s.objective.team if s.team_id == team.pk else s.team
        links.append({"kind": s.get_kind_display(), "key": s.kind, "team": other,
                      "objective": s.objective, "what": s.objective.title})
    shared_objective_krs = (
        KeyResult.objects.for_org(org).filter(objective__cycle=cycle)
        .exclude(objective__state=Objective.State.RETIRED)
        .filter(Q(owner_team=team) | Q(objective_id__in=objective_ids))
        .exclude(owner_team_id=F("objective__team_id"))
        .select_related("owner_team", "objective__team")
        .only("owner_team__name", "objective__title", "objective__team__name"))
    seen = set()
    for k in shared_objective_krs:
        other = k.objective.team if k.owner_team_id == team.pk else k.owner_team
        if (k.objective_id, other.pk) in seen:
            continue
        seen.add((k.objective_id, other.pk))
        links.append({"kind": "Only the objective shared", "key": "objective", "team": other,
                      "objective": k.objective, "what": k.objective.title})
    for k in (KeyResult.objects.for_org(org).filter(objective__cycle=cycle, feeds__isnull=False)
              .filter(Q(owner_team=team) | Q(feeds_id__in=key_result_ids))
              .exclude(owner_team_id=F("feeds__owner_team_id"))
              .select_related("owner_team", "objective", "feeds__owner_team", "feeds__objective")
              .only("title", "owner_team__name", "objective__title", "feeds__title",
                    "feeds__owner_team__name", "feeds__objective__title")):
        other = k.feeds.owner_team if k.owner_team_id == team.pk else k.owner_team
        links.append({"kind": "Only a key result shared", "key": "key_result", "team": other,
                      "objective": k.feeds.objective, "what": f"{k.title} feeds {k.feeds.title}"})
    # The first few ids first, from the one table: a LIMIT on the eight-table join tripled
    # PostgreSQL's planning time (10 -> 30 ms under load), for a few rows.
    first = list(Dependency.objects.for_org(org).filter(cycle=cycle)
                 .filter(Q(requesting_team=team) | Q(providing_team=team))
                 .exclude(status=Dependency.Status.WITHDRAWN)
                 .values_list("pk", flat=True)[:TEAM_DEPENDENCIES + 1])
    deps = list_with_ends(org, Dependency.objects.for_org(org).filter(pk__in=first)
                          .only(*DEPENDENCY_ROW_FIELDS), cycle) if first else []
    for d in deps:
        d.escalated = is_escalated(d)
        d.direction = "needs" if d.requesting_team_id == team.pk else "provides"
    links.sort(key=lambda link: (link["team"].name, link["kind"]))
    return {"links": links, "dependencies": deps[:TEAM_DEPENDENCIES],
            "more_dependencies": len(deps) > TEAM_DEPENDENCIES}


RISKY = ("off_track", "at_risk")
PER_PAGE = 50


def at_risk_from_upstream(org, cycle, *, team_ids=None, page=None, per_page=PER_PAGE):
    """Objectives and key results at risk because of something else, worst first, one page
    of them. The order is decided and the page cut in SQL on light rows (ids, health, team
    name, title); only the page's rows are loaded as objects, with the columns a row shows, so
    the cost does not grow with what is off screen."""
    objectives = (Objective.objects.for_org(org).filter(cycle=cycle).live()
                  .exclude(risk_causes=[]))
    krs = (KeyResult.objects.for_org(org).filter(objective__cycle=cycle)
           .exclude(objective__state=Objective.State.RETIRED).exclude(risk_causes=[]))
    if team_ids is not None:
        objectives = objectives.filter(team_id__in=team_ids)
        krs = krs.filter(owner_team_id__in=team_ids)
    # Worst first, then by team name and title: sorted and counted in SQL, so only the page's
    # keys come back, however many rows are at risk.
    rank = Case(When(effective_health="off_track", then=Value(0)),
                When(effective_health="at_risk", then=Value(1)), default=Value(2),
                output_field=IntegerField())
    columns = ("id", "title", "node_kind", "node_rank", "node_team")
    keys = (objectives.annotate(node_kind=Value("o", output_field=CharField()), node_rank=rank,
                                node_team=F("team__name")).values_list(*columns).order_by()
            .union(krs.annotate(node_kind=Value("k", output_field=CharField()), node_rank=rank,
                                node_team=F("owner_team__name")).values_list(*columns)
                   .order_by(), all=True)
            .order_by("node_rank", "node_team", "title", "id"))
    result = Paginator(keys, per_page).get_page(page)
    shown = [(kind, pk) for pk, _, kind, *_ in result.object_list]
    # What a row shows: the title, the health, the causes and the team's name.
    shown_fields = ("id", "organization", "title", "effective_health", "risk_causes")
    by_o = {o.pk: o for o in Objective.objects.for_org(org).select_related("team")
            .only(*shown_fields, "team", "team__name")
            .filter(pk__in=[k[1] for k in shown if k[0] == "o"])}
    by_k = {k.pk: k for k in KeyResult.objects.for_org(org).select_related("owner_team")
            .only(*shown_fields, "objective", "owner_team", "owner_team__name")
            .filter(pk__in=[k[1] for k in shown if k[0] == "k"])}
    items = []
    for kind, pk, *_ in shown:
        if kind == "o" and pk in by_o:
            items.append({"kind": "o", "node": by_o[pk], "team": by_o[pk].team,
                          "objective_id": pk})
        elif kind == "k" and pk in by_k:
            k = by_k[pk]
            items.append({"kind": "k", "node": k, "team": k.owner_team,
                          "objective_id": k.objective_id})
    result.object_list = items
    return result


def escalated_q(org, *, today=None):
    """The SQL form of ``services.is_escalated``: declined, or requested and unanswered for
    the organization's escalation delay (counted in days, as ``is_escalated`` does)."""
    today = today or timezone.localdate()
    first_fresh_day = today - timedelta(days=org.escalate_after_days - 1)
    cutoff = timezone.make_aware(datetime.combine(first_fresh_day, time.min))
    return (Q(status=Dependency.Status.DECLINED)
            | Q(status=Dependency.Status.REQUESTED, created_at__lt=cutoff))


def escalations(org, *, limit=10):
    """The first escalations of the open cycles, and how many there are in all."""
    qs = (Dependency.objects.for_org(org).filter(escalated_q(org))
          .exclude(cycle__status=Cycle.Status.CLOSED).order_by("needed_by", "pk"))
    rows = _with_ends(org, list(qs.values_list("pk", flat=True)[:limit]))
    for d in rows:
        d.escalated = True
    return rows, (len(rows) if len(rows) < limit else qs.count())


def _with_ends(org, ids):
    """The dependencies ``ids``, in that order, with what a row of the Network page shows
    (``_dependency_row.html``: the two teams' names, the two ends' titles, the upstream end's
    health). Choosing the ids first on the dependency table alone keeps PostgreSQL from joining
    every row before it sorts; loading only the shown columns keeps each row light (no ends'
    teams, parents or JSON risk data to decode and copy)."""
    rows = list(Dependency.objects.for_org(org).filter(pk__in=ids)
                .select_related(*ROW_ENDS).only(*ROW_FIELDS))
    for d in rows:
        d.organization = org
        d.escalated = is_escalated(d)
    by_pk = {d.pk: d for d in rows}
    return [by_pk[pk] for pk in ids if pk in by_pk]


ROW_ENDS = ("requesting_team", "providing_team", "downstream_objective", "downstream_key_result",
            "upstream_objective", "upstream_key_result")
ROW_FIELDS = ("id", "organization", "cycle", "kind", "status", "need", "needed_by", "created_at",
              *ROW_ENDS, "requesting_team__name", "providing_team__name",
              "downstream_objective__title", "downstream_key_result__title",
              "upstream_objective__title", "upstream_objective__effective_health",
              "upstream_key_result__title", "upstream_key_result__effective_health")


def dependency_page(org, cycle, *, team_ids=None, status=None, escalated=False,
                    at_risk=False, page=None, per_page=PER_PAGE):
    """One page of the cycle's dependencies, filtered; a count and a slice in SQL."""
    qs = (Dependency.objects.for_org(org).filter(cycle=cycle)
          .exclude(status=Dependency.Status.WITHDRAWN))
    if team_ids is not None:
        qs = qs.filter(Q(requesting_team_id__in=team_ids) | Q(providing_team_id__in=team_ids))
    if status:
        qs = qs.filter(status=status)
    if escalated:
        qs = qs.filter(escalated_q(org))
    if at_risk:
        qs = qs.filter(Q(upstream_objective__effective_health__in=RISKY)
                       | Q(upstream_key_result__effective_health__in=RISKY))
    result = Paginator(qs.order_by("needed_by", "pk").values_list("pk", flat=True),
                       per_page).get_page(page)
    result.object_list = _with_ends(org, list(result.object_list))
    return result


def skipped_rows(org, cycle):
    """What the last recompute of ``cycle`` could not assess and left out (first 20)."""
    state = NetworkState.objects.for_org(org).filter(cycle=cycle).values("skipped").first()
    return (state or {}).get("skipped", [])[:20]


def filter_teams(org, membership, selected=None, *, limit=30):
    """The teams offered in the network filter: the ones this person is on or leads directly
    (not every team of the organization), and the one chosen."""
    teams = list(Team.objects.for_org(org).filter(
        Q(memberships=membership) | Q(lead_id=membership.user_id)).distinct()
        .order_by("name")[:limit])
    if selected is not None and selected not in teams:
        teams.append(selected)
    return teams


# The three reasons for a health (``reasons``), for the Why page and the objective page. The
# ``explain_*`` functions read only what is loaded on the rows they get: no query of their own.

WHY_LIMIT = 10


def _risky(health):
    return health in RISKY


def _upstream_sentences(node_is_kr, node_kr_ids, dependencies):
    lines = []
    for d in dependencies:
        if d.status not in Dependency.PROPAGATING:
            continue
        up = d.upstream
        broken = d.status == Dependency.Status.BROKEN
        if not (broken or _risky(up.effective_health)):
            continue
        who = ("It" if d.downstream_key_result_id not in node_kr_ids or node_is_kr
               else reasons.quoted(d.downstream_key_result.title))
        what = f"{who} depends on {reasons.quoted(up.title)} ({d.providing_team.name})"
        if broken:
            lines.append(f"{what}, and that dependency is broken.")
        elif node_is_kr:
            tail = ": that makes it at risk, not off track." if (
                up.effective_health == "off_track") else ": that makes it at risk."
            lines.append(f"{what}, which is {reasons.label(up.effective_health)}{tail}")
        else:
            lines.append(f"{what}, which is {reasons.label(up.effective_health)}.")
    if not lines:
        return ["Nothing upstream is at risk."]
    if len(lines) > WHY_LIMIT:
        lines = [*lines[:WHY_LIMIT], f"And {len(lines) - WHY_LIMIT} more dependencies at risk: "
                 "the Network page lists them all."]
    if not node_is_kr:
        lines.append("An upstream slip makes it at risk, never off track.")
    return lines


def explain_objective(objective, children, dependencies, *, children_total=None,
                      risky_total=None, aligned_key_results=()):
    """The three reasons of an objective's health. ``objective``: assessed (``okrs.selectors
    .assess``), its key results loaded; ``children``: its aligned objectives, those aligned to
    it as their main parent and those that also contribute to it (or the risky ones among
    ``children_total``); ``aligned_key_results``: the risky key results of other objectives
    aligned to it, owner teams loaded; ``dependencies``: those of it and its key results, ends
    loaded."""
    team = objective.team.name
    krs = list(objective.key_results.all())
    mine = [k for k in krs if k.owner_team_id == objective.team_id]
    others = [k for k in krs if k.owner_team_id != objective.team_id]
    own = []
    health = objective.assessment.health
    if not mine:
        own.append(f"{team} has no key result of its own on it.")
    elif health is None:
        own.append(f"{reasons.possessive(team)} own key results have no current health, so "
                   "its own health is unknown.")
    else:
        own.append(f"{reasons.possessive(team)} own key results are {reasons.label(health)} "
                   "taken together.")
    for k in mine:
        a = getattr(k, "assessment", None)
        if a is not None and a.is_stale:
            own.append(f"{reasons.quoted(k.title)} is stale: no check-in for "
                       f"{_days_since(k.last_check_in_at)}, so it counts as unknown.")
        elif a is not None and _risky(a.health):
            own.append(f"{reasons.quoted(k.title)} is {reasons.label(a.health)} on its own "
                       "check-ins and pace.")
    rollup = []
    for k in others:
        h = k.effective_health or getattr(getattr(k, "assessment", None), "health", None)
        rollup.append(f"{reasons.quoted(k.title)}, {reasons.possessive(k.owner_team.name)} key "
                      f"result, is {reasons.label(h)}.")
    total = len(children) if children_total is None else children_total
    risky = [c for c in children if _risky(c.effective_health)]
    risky_total = len(risky) if risky_total is None else risky_total
    for c in risky[:WHY_LIMIT]:
        rollup.append(f"Aligned objective {reasons.quoted(c.title)} ({c.team.name}) is "
                      f"{reasons.label(c.effective_health)}.")
    if risky_total > WHY_LIMIT:
        rollup.append(f"And {risky_total - WHY_LIMIT} more aligned objectives at risk or off "
                      "track.")
    for k in aligned_key_results[:WHY_LIMIT]:
        rollup.append(f"Key result {reasons.quoted(k.title)} ({k.owner_team.name}), aligned to "
                      f"it, is {reasons.label(k.effective_health)}.")
    if total and not risky:
        rollup.append(f"None of its {total} aligned objective{'s' if total > 1 else ''} is "
                      "at risk or off track.")
    if not others and not total and not aligned_key_results:
        rollup.append("Nothing else rolls up into it: no aligned objective and no key result "
                      "of another team.")
    kr_ids = {k.pk for k in krs}
    return _sections(own, rollup, _upstream_sentences(False, kr_ids, dependencies))


def explain_key_result(key_result, contributors, dependencies):
    """The three reasons of a key result's health. ``key_result``: assessed;
    ``contributors``: the key results that feed it (owner team loaded)."""
    a = key_result.assessment
    if a.is_stale:
        own = [f"Stale: no check-in for {_days_since(key_result.last_check_in_at)}, so its own "
               "health is unknown."]
    elif a.health:
        own = [f"Its own check-ins and pace say {reasons.label(a.health)}."]
    else:
        own = ["It has no check-in yet, and its pace is not judged yet."]
    own += [r for r in a.reasons if not r.startswith("Stale")]
    rollup = [f"{reasons.quoted(c.title)} ({c.owner_team.name}) feeds it and is "
              f"{reasons.label(c.effective_health)}."
              for c in contributors if _risky(c.effective_health)][:WHY_LIMIT]
    if contributors and not rollup:
        rollup = [f"None of the {len(contributors)} key results that feed it is at risk."]
    if not contributors:
        rollup = ["Nothing rolls up into it."]
    return _sections(own, rollup, _upstream_sentences(True, {key_result.pk}, dependencies))


def _days_since(moment):
    days = (timezone.now() - moment).days if moment else 0
    return f"{days} days" if days > 14 else "two weeks"


def _sections(own, rollup, upstream):
    return [{"key": key, "title": reasons.TITLES[key], "lines": lines}
            for key, lines in ((reasons.OWN, own), (reasons.ROLLUP, rollup),
                               (reasons.UPSTREAM, upstream))]


def why(org, kind, node):
    """What the Why page shows: the node assessed and its three reasons. A fixed number of
    queries: the objective with its key results, then its risky aligned objectives (a page),
    its dependencies (a page) or, for a key result, what feeds it."""
    from okrs.selectors import assess

    objective_id = node.pk if kind == "o" else node.objective_id
    objective = (Objective.objects.for_org(org).with_key_results()
                 .filter(pk=objective_id).first())
    assess([objective])
    if kind == "o":
        # Aligned to it as their main parent, or contributing to it besides their main one.
        also = ObjectiveParent.objects.for_org(org).filter(parent=objective).values(
            "objective_id")
        children = Objective.objects.for_org(org).filter(
            Q(parent=objective) | Q(pk__in=also)).live()
        counts = children.aggregate(
            total=Count("pk"), risky=Count("pk", filter=Q(effective_health__in=RISKY)))
        risky = list(children.filter(effective_health__in=RISKY).select_related("team")
                     .order_by("title")[:WHY_LIMIT])
        # Its key results by id (loaded above): a join in the OR made PostgreSQL scan every
        # key result of every organization (97 ms at 175,000 key results; now an index each).
        kr_ids = [k.pk for k in objective.key_results.all()]
        deps = list_with_ends(org, Dependency.objects.for_org(org)
                      .filter(Q(downstream_objective=objective)
                              | Q(downstream_key_result_id__in=kr_ids))
                      .filter(status__in=Dependency.PROPAGATING)[:WHY_LIMIT * 3])
        aligned = list(KeyResult.objects.for_org(org).filter(
            aligned_to=objective, effective_health__in=RISKY).exclude(
            objective__state=Objective.State.RETIRED).select_related("owner_team")
            .order_by("title")[:WHY_LIMIT])
        return objective, explain_objective(objective, risky, deps,
                                            children_total=counts["total"],
                                            risky_total=counts["risky"],
                                            aligned_key_results=aligned)
    key_result = next(k for k in objective.key_results.all() if k.pk == node.pk)
    contributors = list(KeyResult.objects.for_org(org).filter(feeds=key_result)
                        .select_related("owner_team")[:WHY_LIMIT * 3])
    deps = list_with_ends(org, Dependency.objects.for_org(org)
                  .filter(downstream_key_result=key_result)
                  .filter(status__in=Dependency.PROPAGATING)[:WHY_LIMIT * 3])
    return key_result, explain_key_result(key_result, contributors, deps)
